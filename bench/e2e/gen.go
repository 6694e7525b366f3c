package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/affinity"
)

// GenConfig is what the generator sends and for how long.
type GenConfig struct {
	Ifname   string // interface in the current netns that frames leave through
	Frame    FrameSpec
	Duration time.Duration
	CPU      int // core to run on; < 0 leaves affinity alone
	// CallTime is the target length of one BPF_PROG_RUN call. Each call sets
	// up and tears down a page pool, during which the task sleeps; short
	// calls make that overhead show up as lost rate (anchors: 2^17 packets
	// per call understated XDP redirect by ~40 %).
	CallTime time.Duration
}

// GenResult is the generator's report, printed as JSON by the gen subcommand.
type GenResult struct {
	Sent    uint64    `json:"sent"`
	Elapsed float64   `json:"elapsed_s"`
	Mpps    float64   `json:"mpps"`
	Calls   int       `json:"calls"`
	CPUBusy []float64 `json:"cpu_busy_pct"` // per core, over the sending window only
}

// RunGenerator sends frames until cfg.Duration has passed or ctx ends. It
// runs in the calling process's network namespace, on a thread pinned to
// cfg.CPU (the goroutine stays locked to it).
func RunGenerator(ctx context.Context, cfg GenConfig) (GenResult, error) {
	var res GenResult
	if cfg.CallTime <= 0 {
		cfg.CallTime = 500 * time.Millisecond
	}
	if cfg.CPU >= 0 {
		if err := PinProcess(cfg.CPU, 0); err != nil {
			return res, err
		}
		if err := affinity.PinThread(cfg.CPU); err != nil {
			return res, err
		}
	}
	ifc, err := net.InterfaceByName(cfg.Ifname)
	if err != nil {
		return res, fmt.Errorf("generator interface: %w", err)
	}
	frame, err := BuildUDPFrame(cfg.Frame)
	if err != nil {
		return res, err
	}
	var partial uint16
	if cfg.Frame.Checksum {
		partial = UDPPartialSum(frame)
		if partial == 0 {
			// The program treats 0 as "no checksum"; a zero partial sum is
			// astronomically unlikely, but fail loudly rather than send
			// frames with wrong checksums.
			return res, fmt.Errorf("%w: UDP partial sum is 0, vary the payload", ErrFrameSpec)
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return res, fmt.Errorf("remove memlock limit: %w", err)
	}
	gp, err := NewGenProgram(cfg.Frame.Flows, cfg.Frame.SrcPort, partial)
	if err != nil {
		return res, err
	}
	defer gp.Close()

	return sendLive(ctx, gp, frame, ifc.Index, cfg.Ifname, cfg.Duration, cfg.CallTime)
}

// sendLive runs gp over frame as live frames out of interface ifindex for
// dur, in BPF_PROG_RUN calls sized to last about callTime each, and
// measures what it sent and the CPUs' busy share meanwhile.
func sendLive(ctx context.Context, gp *GenProgram, frame []byte, ifindex int, ifname string, dur, callTime time.Duration) (GenResult, error) {
	var res GenResult
	opts := ebpf.RunOptions{
		Data:    frame,
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)},
		Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
	}
	cpu0, err := ReadCPUTimes()
	if err != nil {
		return res, err
	}
	start := time.Now()
	end := start.Add(dur)
	var rate float64 // packets per second of the last call
	for ctx.Err() == nil {
		now := time.Now()
		left := end.Sub(now)
		if left <= 0 {
			break
		}
		want := float64(1 << 16) // first call: probe the rate
		if rate > 0 {
			want = rate * min(left, callTime).Seconds()
		}
		opts.Repeat = uint32(max(4096, min(want, math.MaxUint32)))
		before := res.Sent
		if _, err := gp.Prog.Run(&opts); err != nil {
			return res, fmt.Errorf("BPF_PROG_RUN live frames on %s: %w", ifname, err)
		}
		res.Calls++
		if res.Sent, err = gp.Sent.Read(); err != nil {
			return res, err
		}
		if d := time.Since(now).Seconds(); d > 0 {
			rate = float64(res.Sent-before) / d
		}
	}
	res.Elapsed = time.Since(start).Seconds()
	cpu1, err := ReadCPUTimes()
	if err != nil {
		return res, err
	}
	res.CPUBusy = BusyPercent(cpu0, cpu1)
	if res.Elapsed > 0 {
		res.Mpps = float64(res.Sent) / res.Elapsed / 1e6
	}
	return res, nil
}

// GenMain is the generator subcommand: it parses args, sends, and prints a
// GenResult as one JSON line on stdout. The harness runs it under
// "ip netns exec" because the generator must live in the source namespace.
// It returns the process exit code.
func GenMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                      GenConfig
		smac, dmac, sip, dip     string
		size, flows, sport, dprt int
		payload                  string
	)
	fs.StringVar(&cfg.Ifname, "if", "", "interface to send on (in the current netns)")
	fs.StringVar(&smac, "smac", "", "source MAC")
	fs.StringVar(&dmac, "dmac", "", "destination MAC")
	fs.StringVar(&sip, "sip", "", "source IPv4")
	fs.StringVar(&dip, "dip", "", "destination IPv4")
	fs.IntVar(&size, "size", 64, "L2 frame size without FCS (ignored with -payload)")
	fs.StringVar(&payload, "payload", "", "UDP payload in hex (default: a pattern filling -size)")
	fs.IntVar(&flows, "flows", 1, "number of UDP source ports, cycled per packet")
	fs.IntVar(&sport, "sport", 1024, "first UDP source port")
	fs.IntVar(&dprt, "dport", 9, "UDP destination port")
	fs.BoolVar(&cfg.Frame.Checksum, "csum", true, "write UDP checksums (false: 0)")
	fs.DurationVar(&cfg.Duration, "dur", 10*time.Second, "how long to send")
	fs.DurationVar(&cfg.CallTime, "call", 500*time.Millisecond, "target length of one BPF_PROG_RUN call")
	fs.IntVar(&cfg.CPU, "cpu", 0, "core to pin to (-1: no pinning)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	f := &cfg.Frame
	f.Size, f.Flows = size, flows
	if payload != "" {
		if f.Payload, err = hex.DecodeString(payload); err != nil {
			fmt.Fprintln(stderr, "gen: -payload:", err)
			return 2
		}
		f.Size = 0
	}
	if sport < 0 || sport > 0xffff || dprt < 0 || dprt > 0xffff {
		fmt.Fprintln(stderr, "gen: ports must be in 0..65535")
		return 2
	}
	f.SrcPort, f.DstPort = uint16(sport), uint16(dprt)
	if f.SrcMAC, err = net.ParseMAC(smac); err == nil {
		f.DstMAC, err = net.ParseMAC(dmac)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 2
	}
	f.SrcIP, f.DstIP = net.ParseIP(sip), net.ParseIP(dip)

	// SIGTERM/SIGINT end the run after the current call; the partial
	// result is still printed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := RunGenerator(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 1
	}
	return 0
}

// GenArgs renders the gen subcommand's flags for cfg.
func GenArgs(cfg GenConfig) []string {
	f := cfg.Frame
	args := []string{
		"-if", cfg.Ifname,
		"-smac", f.SrcMAC.String(), "-dmac", f.DstMAC.String(),
		"-sip", f.SrcIP.String(), "-dip", f.DstIP.String(),
		"-size", fmt.Sprint(f.Size), "-flows", fmt.Sprint(f.Flows),
		"-sport", fmt.Sprint(f.SrcPort), "-dport", fmt.Sprint(f.DstPort),
		fmt.Sprintf("-csum=%t", f.Checksum),
		"-dur", cfg.Duration.String(), "-call", cfg.CallTime.String(),
		"-cpu", fmt.Sprint(cfg.CPU),
	}
	if f.Payload != nil {
		args = append(args, "-payload", hex.EncodeToString(f.Payload))
	}
	return args
}

// ErrGenerator wraps failures of the generator child process.
var ErrGenerator = errors.New("generator failed")
