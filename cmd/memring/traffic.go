package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
)

type genOpts struct {
	portFlags
	outputFlag
	dstMAC, srcMAC string
	srcIP, dstIP   string
	size           int
	duration       time.Duration
	rate           float64
}

// rateResult is what gen, sink and pair-bench print.
type rateResult struct {
	Command  string  `json:"command"`
	Size     int     `json:"size,omitempty"`
	Frames   uint64  `json:"frames"`
	Bytes    uint64  `json:"bytes"`
	Elapsed  float64 `json:"elapsed_s"`
	Mpps     float64 `json:"mpps"`
	Gbps     float64 `json:"gbps"`
	RingFull uint64  `json:"ring_full_batches,omitempty"`
	Closed   bool    `json:"switch_closed,omitempty"`
}

func newRate(cmd string, size int, frames, bytes uint64, elapsed time.Duration) rateResult {
	s := elapsed.Seconds()
	r := rateResult{Command: cmd, Size: size, Frames: frames, Bytes: bytes, Elapsed: s}
	if s > 0 {
		r.Mpps = float64(frames) / s / 1e6
		r.Gbps = float64(bytes) * 8 / s / 1e9
	}
	return r
}

func (r rateResult) print(w io.Writer, asJSON bool) {
	if asJSON {
		writeJSON(w, r)
		return
	}
	fmt.Fprintf(w, "%s: %d frames, %d bytes in %.3f s: %.3f Mpps, %.3f Gbit/s", r.Command, r.Frames, r.Bytes, r.Elapsed, r.Mpps, r.Gbps)
	if r.RingFull > 0 {
		fmt.Fprintf(w, ", ring full %d times", r.RingFull)
	}
	if r.Closed {
		fmt.Fprint(w, " (switch closed the session)")
	}
	fmt.Fprintln(w)
}

func newGenCmd() *cobra.Command {
	o := &genOpts{}
	cmd := &cobra.Command{
		Use:   "gen --socket S --port P --dst-mac M [--size 64] [--duration 10s] [--rate pps]",
		Short: "Send UDP frames into a memring port as fast as possible (or at --rate)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.portFlags.add(fs)
	o.outputFlag.add(fs)
	fs.StringVar(&o.dstMAC, "dst-mac", "", "destination MAC of the frames (required)")
	fs.StringVar(&o.srcMAC, "src-mac", "02:00:00:00:00:01", "source MAC of the frames")
	fs.StringVar(&o.srcIP, "src-ip", "10.0.0.1", "source IPv4 address")
	fs.StringVar(&o.dstIP, "dst-ip", "10.0.0.2", "destination IPv4 address")
	fs.IntVar(&o.size, "size", 64, "frame length in bytes, without FCS")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	fs.Float64Var(&o.rate, "rate", 0, "frames per second (0: as fast as possible)")
	return cmd
}

func (o *genOpts) run(cmd *cobra.Command) error {
	if err := o.check(); err != nil {
		return err
	}
	dst, err := parseMAC("dst-mac", o.dstMAC, false)
	if err != nil {
		return err
	}
	src, err := parseMAC("src-mac", o.srcMAC, true)
	if err != nil {
		return err
	}
	sip, err := parseIPv4("src-ip", o.srcIP)
	if err != nil {
		return err
	}
	dip, err := parseIPv4("dst-ip", o.dstIP)
	if err != nil {
		return err
	}
	if o.size < minUDPFrame || o.size > 9000 {
		return flagErr("size", "%d is not in %d..9000", o.size, minUDPFrame)
	}
	if o.duration <= 0 {
		return flagErr("duration", "must be positive")
	}
	if o.rate < 0 {
		return flagErr("rate", "must not be negative")
	}
	c, err := memring.Dial(o.socket, o.port)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.size > c.Region().Config().FrameSize {
		return flagErr("size", "%d is more than the port's frame size %d", o.size, c.Region().Config().FrameSize)
	}
	frame := make([]byte, o.size)
	buildUDP(frame, o.size, src, dst, sip.Addr().As4(), dip.Addr().As4(), 1024, 1024)
	tx, _ := c.Queue(0)
	lens := make([]int, batchSize)
	for i := range lens {
		lens[i] = o.size
	}
	ctx := cmd.Context()
	var sent, full uint64
	start := time.Now()
	end := start.Add(o.duration)
	var closed bool
	for iter := 0; ; iter++ {
		if iter&255 == 0 {
			now := time.Now()
			if now.After(end) || ctx.Err() != nil {
				break
			}
			select {
			case <-c.Closed():
				closed = true
			default:
			}
			if closed {
				break
			}
		}
		want := batchSize
		if o.rate > 0 {
			due := uint64(time.Since(start).Seconds() * o.rate)
			if due <= sent {
				time.Sleep(20 * time.Microsecond)
				iter = -1 // check the clock on the next round
				continue
			}
			want = int(min(due-sent, batchSize))
		}
		n := tx.Reserve(want)
		if n == 0 {
			full++
			continue
		}
		for i := range n {
			copy(tx.Buffer(i), frame)
		}
		if err := tx.Submit(lens[:n]); err != nil {
			return err
		}
		c.Notify(0)
		sent += uint64(n)
	}
	r := newRate("gen", o.size, sent, sent*uint64(o.size), time.Since(start))
	r.RingFull, r.Closed = full, closed
	r.print(cmd.OutOrStdout(), o.json)
	return nil
}

type sinkOpts struct {
	portFlags
	outputFlag
	duration time.Duration
}

func newSinkCmd() *cobra.Command {
	o := &sinkOpts{}
	cmd := &cobra.Command{
		Use:   "sink --socket S --port P [--duration 10s]",
		Short: "Count the frames a memring port delivers and print the rate",
		Long: "sink busy-polls queue 0 of a memring port for --duration (from the first frame),\n" +
			"counting frames and bytes, and prints the rate.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.portFlags.add(fs)
	o.outputFlag.add(fs)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to count, from the first frame")
	return cmd
}

func (o *sinkOpts) run(cmd *cobra.Command) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.duration <= 0 {
		return flagErr("duration", "must be positive")
	}
	c, err := memring.Dial(o.socket, o.port)
	if err != nil {
		return err
	}
	defer c.Close()
	_, rx := c.Queue(0)
	frames := make([][]byte, batchSize)
	ctx := cmd.Context()
	var count, bytes uint64
	var start, end time.Time
	var closed bool
	for iter := 0; ; iter++ {
		n, err := rx.Recv(frames)
		if err != nil {
			return err
		}
		if n > 0 {
			if start.IsZero() {
				start = time.Now()
				end = start.Add(o.duration)
			}
			count += uint64(n)
			for _, f := range frames[:n] {
				bytes += uint64(len(f))
			}
			rx.Release()
		}
		if iter&1023 == 0 {
			if ctx.Err() != nil || (!start.IsZero() && time.Now().After(end)) {
				break
			}
			select {
			case <-c.Closed():
				closed = true
			default:
			}
			if closed {
				break
			}
			if start.IsZero() && n == 0 {
				// Nothing yet: sleep on the eventfd rather than spin.
				c.Wait(0, 10*time.Millisecond)
			}
		}
	}
	var elapsed time.Duration
	if !start.IsZero() {
		elapsed = time.Since(start)
	}
	r := newRate("sink", 0, count, bytes, elapsed)
	r.Closed = closed
	r.print(cmd.OutOrStdout(), o.json)
	return nil
}

var _ = pipeline.MAC{}
