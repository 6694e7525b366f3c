package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
	"github.com/vswitch/vswitch/switch/affinity"
)

type pairBenchOpts struct {
	outputFlag
	size     int
	duration time.Duration
	warmup   time.Duration
	cpus     string
	mode     string
	ringSize int
	batch    int
	// child mode (internal): the receiver, started by the parent.
	child  bool
	socket string
}

// pairResult is pair-bench's report (JSON with -o json).
type pairResult struct {
	Size        int     `json:"size"`
	Mode        string  `json:"mode"`
	RingSize    int     `json:"ring_size"`
	Batch       int     `json:"batch"`
	ProducerCPU int     `json:"producer_cpu"`
	ReceiverCPU int     `json:"receiver_cpu"`
	Hugepages   bool    `json:"hugepages"`
	RxFrames    uint64  `json:"rx_frames"`
	RxElapsed   float64 `json:"rx_elapsed_s"`
	RxMpps      float64 `json:"rx_mpps"`
	RxGbps      float64 `json:"rx_gbps"`
	TxFrames    uint64  `json:"tx_frames"`
	TxMpps      float64 `json:"tx_mpps"`
	TxFull      uint64  `json:"tx_ring_full_polls"`
	Wakeups     uint64  `json:"wakeups_sent,omitempty"`
}

// pairBatch is pair-bench's default burst: a quarter of the default ring.
// Fewer, larger bursts mean fewer index stores bouncing between the two
// cores (measured: rx about 1.4x of batch 32 at 64 B on the 2-vCPU VM).
const pairBatch = 256

// attachTimeout bounds the receiver's start: on the loaded 2-vCPU VM a
// re-executed child once took more than 10 s to attach.
const attachTimeout = 60 * time.Second

// childResult is what the receiver child prints on stdout.
type childResult struct {
	Frames  uint64  `json:"frames"`
	Elapsed float64 `json:"elapsed_s"`
	Touch   uint64  `json:"touch"`
	Error   string  `json:"error,omitempty"`
}

func newPairBenchCmd() *cobra.Command {
	o := &pairBenchOpts{}
	cmd := &cobra.Command{
		Use:   "pair-bench [--size 64] [--duration 10s] [--cpus 0,1] [--mode poll|interrupt]",
		Short: "Measure memring process to process, with no switch in between",
		Long: "pair-bench starts a memring Server on a temporary socket whose handler only holds\n" +
			"the session, and re-executes itself as the receiver (pinned to the second CPU of\n" +
			"--cpus), which attaches and counts frames. The parent (pinned to the first CPU) is the\n" +
			"producer: it fills the to-client ring of queue 0 as fast as it can with Reserve/\n" +
			"Buffer/Submit (the prebuilt frame is copied once per ring slot, after that only the\n" +
			"first 64 bytes are rewritten, like testpmd txonly writes headers). The receiver reads\n" +
			"the first byte of every frame. The rate is the receiver's, measured over --duration\n" +
			"after --warmup from its first frame.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.outputFlag.add(fs)
	fs.IntVar(&o.size, "size", 64, "frame length in bytes, without FCS")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measurement time")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "time from the first frame before measuring")
	fs.StringVar(&o.cpus, "cpus", "0,1", "producer CPU,receiver CPU")
	fs.StringVar(&o.mode, "mode", "poll", "receiver mode: poll (busy Recv loop) or interrupt (Wait on the eventfd when empty)")
	fs.IntVar(&o.ringSize, "ring-size", 1024, "descriptors per ring")
	fs.IntVar(&o.batch, "batch", pairBatch, "frames per Reserve and per Recv")
	fs.BoolVar(&o.child, "child", false, "internal: run as the receiver")
	fs.StringVar(&o.socket, "socket", "", "internal: the parent's socket (with --child)")
	_ = fs.MarkHidden("child")
	_ = fs.MarkHidden("socket")
	return cmd
}

// parseCPUs parses "A,B" into two distinct CPU numbers this process may use.
func parseCPUs(s string) ([2]int, error) {
	var cpus [2]int
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return cpus, flagErr("cpus", "want two CPUs, producer,receiver; got %q", s)
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return cpus, err
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n >= 1024 {
			return cpus, flagErr("cpus", "%q is not a CPU number", p)
		}
		if !allowed.IsSet(n) {
			return cpus, flagErr("cpus", "CPU %d is not available to this process", n)
		}
		cpus[i] = n
	}
	if cpus[0] == cpus[1] {
		return cpus, flagErr("cpus", "producer and receiver need different CPUs")
	}
	return cpus, nil
}

func (o *pairBenchOpts) check() ([2]int, error) {
	if o.size < minUDPFrame || o.size > 2048 {
		return [2]int{}, flagErr("size", "%d is not in %d..2048", o.size, minUDPFrame)
	}
	if o.duration <= 0 {
		return [2]int{}, flagErr("duration", "must be positive")
	}
	if o.warmup < 0 {
		return [2]int{}, flagErr("warmup", "must not be negative")
	}
	if o.mode != "poll" && o.mode != "interrupt" {
		return [2]int{}, flagErr("mode", "want poll or interrupt, not %q", o.mode)
	}
	if o.ringSize < 64 || o.ringSize > 32768 || o.ringSize&(o.ringSize-1) != 0 {
		return [2]int{}, flagErr("ring-size", "%d is not a power of two in 64..32768", o.ringSize)
	}
	if o.batch < 1 || o.batch > o.ringSize {
		return [2]int{}, flagErr("batch", "%d is not in 1..ring-size", o.batch)
	}
	if o.child {
		if o.socket == "" {
			return [2]int{}, flagErr("socket", "required with --child")
		}
		return [2]int{}, nil
	}
	return parseCPUs(o.cpus)
}

func (o *pairBenchOpts) run(cmd *cobra.Command) error {
	cpus, err := o.check()
	if err != nil {
		return err
	}
	if o.child {
		return o.runChild(cmd)
	}
	return o.runParent(cmd, cpus)
}

// holdHandler holds the one session and hands its switch ends to the
// producer. Detach stops the producer and waits for it: the region is
// unmapped when Detach returns.
type holdHandler struct {
	attached chan *benchSession

	mu        sync.Mutex
	stop      atomic.Bool
	producing bool
	done      chan struct{} // closed when the producer has stopped
}

type benchSession struct {
	sess *memring.Session
	tx   *memring.Tx
}

func (h *holdHandler) Attach(s *memring.Session) error {
	tx, _ := s.Region.Queue(0, memring.SideSwitch)
	select {
	case h.attached <- &benchSession{s, tx}:
		return nil
	default:
		return errors.New("pair-bench takes one receiver")
	}
}

// startProducing reports whether the producer may start (no detach yet).
func (h *holdHandler) startProducing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop.Load() {
		return false
	}
	h.producing = true
	return true
}

func (h *holdHandler) Detach(*memring.Session) {
	h.mu.Lock()
	h.stop.Store(true)
	producing := h.producing
	h.mu.Unlock()
	if producing {
		<-h.done
	}
}

func (o *pairBenchOpts) runParent(cmd *cobra.Command, cpus [2]int) error {
	dir, err := os.MkdirTemp("", "memring-pb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "pb.sock")
	h := &holdHandler{attached: make(chan *benchSession, 1), done: make(chan struct{})}
	srv, err := memring.NewServer(sock, 0o600, h, nil)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.AddPort(memring.PortConfig{Name: "pb", Config: memring.Config{RingSize: o.ringSize}}); err != nil {
		return err
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(exe, "pair-bench", "--child", "--socket", sock, "--size", strconv.Itoa(o.size),
		"--duration", o.duration.String(), "--warmup", o.warmup.String(), "--mode", o.mode,
		"--ring-size", strconv.Itoa(o.ringSize), "--batch", strconv.Itoa(o.batch))
	var childOut bytes.Buffer
	child.Stdout = &childOut
	child.Stderr = cmd.ErrOrStderr()
	// The child dies with us; it has its own process group so a signal to
	// ours is not a signal to it twice.
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := affinity.StartPinned(child, cpus[1]); err != nil {
		return fmt.Errorf("start receiver: %w", err)
	}
	var childDone atomic.Bool
	waitErr := make(chan error, 1)
	go func() {
		err := child.Wait()
		childDone.Store(true)
		waitErr <- err
	}()
	killChild := func() {
		if !childDone.Load() {
			child.Process.Kill() // by PID
		}
	}
	defer killChild()

	var bs *benchSession
	select {
	case bs = <-h.attached:
	case err := <-waitErr:
		waitErr <- err
		return fmt.Errorf("receiver exited before attaching: %v", err)
	case <-time.After(attachTimeout):
		return fmt.Errorf("receiver did not attach within %v", attachTimeout)
	case <-cmd.Context().Done():
		return errFailed
	}

	// The producer: this goroutine, on its own thread, on cpus[0]; every
	// other thread of ours too, so none of them steals the receiver's CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return err
	}
	set.Set(cpus[0])
	if err := affinity.SetAllThreads(&set); err != nil {
		return err
	}
	// Give the process its CPUs back when done (it matters in tests, which
	// run this in-process).
	defer affinity.SetAllThreads(&orig)
	frame := make([]byte, o.size)
	buildUDP(frame, o.size, pipeline.MAC{2, 0, 0, 0, 0, 2}, pipeline.MAC{2, 0, 0, 0, 0, 1},
		[4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1024, 1024)
	ps := producer{tx: bs.tx, frame: frame, ringSize: o.ringSize, batch: o.batch,
		interrupt: o.mode == "interrupt", wakeFD: bs.sess.WakeFD(0, true)}
	if err := ps.template(); err != nil {
		killChild()
		<-waitErr
		return err
	}
	if h.startProducing() {
		ps.run(&h.stop, cmd.Context().Done(), o.warmup+o.duration+30*time.Second)
		close(h.done)
	}

	var werr error
	select {
	case werr = <-waitErr:
	case <-time.After(10 * time.Second):
		killChild()
		werr = <-waitErr
	}
	var cr childResult
	if err := json.Unmarshal(childOut.Bytes(), &cr); err != nil {
		return fmt.Errorf("receiver (%v) printed %q: %w", werr, childOut.String(), err)
	}
	if cr.Error != "" || werr != nil {
		return fmt.Errorf("receiver: %s (%v)", cr.Error, werr)
	}
	res := pairResult{
		Size: o.size, Mode: o.mode, RingSize: o.ringSize, Batch: o.batch,
		ProducerCPU: cpus[0], ReceiverCPU: cpus[1], Hugepages: bs.sess.Hugepages,
		RxFrames: cr.Frames, RxElapsed: cr.Elapsed,
		TxFrames: ps.sent, TxFull: ps.full, Wakeups: ps.wakeups,
	}
	if cr.Elapsed > 0 {
		res.RxMpps = float64(cr.Frames) / cr.Elapsed / 1e6
		res.RxGbps = float64(cr.Frames) * float64(o.size) * 8 / cr.Elapsed / 1e9
	}
	if s := ps.elapsed.Seconds(); s > 0 {
		res.TxMpps = float64(ps.sent) / s / 1e6
	}
	out := cmd.OutOrStdout()
	if o.json {
		return writeJSON(out, res)
	}
	fmt.Fprintf(out, "pair-bench %d B %s: rx %.3f Mpps (%.3f Gbit/s, %d frames in %.3f s), tx %.3f Mpps, ring full %d polls\n",
		o.size, o.mode, res.RxMpps, res.RxGbps, res.RxFrames, res.RxElapsed, res.TxMpps, res.TxFull)
	return nil
}

// producer fills the to-client ring like testpmd txonly.
type producer struct {
	tx        *memring.Tx
	frame     []byte
	ringSize  int
	batch     int
	interrupt bool
	wakeFD    int

	sent, full, wakeups uint64
	elapsed             time.Duration
}

// headerBytes is how much of the prebuilt frame the producer rewrites per
// frame once every buffer holds a full copy.
const headerBytes = 64

// template writes the whole frame into every buffer of the ring before the
// run: a reservation of the whole empty ring covers each buffer once.
// Nothing is submitted.
func (p *producer) template() error {
	if n := p.tx.Reserve(p.ringSize); n != p.ringSize {
		return fmt.Errorf("ring not empty before the run: %d of %d slots free", n, p.ringSize)
	}
	for i := range p.ringSize {
		copy(p.tx.Buffer(i), p.frame)
	}
	p.tx.Reserve(0)
	return nil
}

// run produces until stop is set, done is closed or limit passes.
func (p *producer) run(stop *atomic.Bool, done <-chan struct{}, limit time.Duration) {
	lens := make([]int, p.batch)
	for i := range lens {
		lens[i] = len(p.frame)
	}
	hdr := p.frame[:min(headerBytes, len(p.frame))]
	one := [8]byte{1}
	start := time.Now()
	deadline := start.Add(limit)
	tx := p.tx
	for iter := 1; ; iter++ {
		if iter&1023 == 0 {
			if stop.Load() || time.Now().After(deadline) {
				break
			}
			select {
			case <-done:
				p.elapsed = time.Since(start)
				return
			default:
			}
		}
		n := tx.Reserve(p.batch)
		if n == 0 {
			p.full++
			// Back off instead of hammering the consumer index's cache
			// line, which the receiver writes on every Release (measured:
			// rx up to 1.2x at 64 B on the 2-vCPU VM).
			runtime.Gosched()
			continue
		}
		for i := range n {
			copy(tx.Buffer(i), hdr)
		}
		if tx.Submit(lens[:n]) != nil {
			break
		}
		p.sent += uint64(n)
		if p.interrupt && tx.NeedWakeup() {
			unix.Write(p.wakeFD, one[:])
			p.wakeups++
		}
	}
	p.elapsed = time.Since(start)
}

// runChild is the receiver: attach, count for warmup+duration from the
// first frame, print a childResult.
func (o *pairBenchOpts) runChild(cmd *cobra.Command) error {
	runtime.LockOSThread()
	out := cmd.OutOrStdout()
	res := o.receive()
	return json.NewEncoder(out).Encode(res)
}

func (o *pairBenchOpts) receive() childResult {
	c, err := memring.Dial(o.socket, "pb")
	if err != nil {
		return childResult{Error: err.Error()}
	}
	defer c.Close()
	_, rx := c.Queue(0)
	frames := make([][]byte, o.batch)
	interrupt := o.mode == "interrupt"
	var count, touch, base uint64
	var measureFrom, end time.Time
	started := false
	// Wait for the first frame.
	for !started {
		n, err := rx.Recv(frames)
		if err != nil {
			return childResult{Error: err.Error()}
		}
		if n > 0 {
			rx.Release()
			started = true
			measureFrom = time.Now().Add(o.warmup)
			break
		}
		if err := c.Wait(0, 10*time.Second); err != nil {
			return childResult{Error: "no frame: " + err.Error()}
		}
	}
	measuring := o.warmup == 0
	var t0 time.Time
	if measuring {
		t0 = time.Now()
		end = t0.Add(o.duration)
	}
	for iter := 1; ; iter++ {
		n, err := rx.Recv(frames)
		if err != nil {
			return childResult{Error: err.Error()}
		}
		if n > 0 {
			for _, f := range frames[:n] {
				touch += uint64(f[0])
			}
			count += uint64(n)
			rx.Release()
		} else if interrupt {
			if err := c.Wait(0, time.Second); err != nil && !errors.Is(err, memring.ErrTimeout) {
				return childResult{Error: err.Error()}
			}
		}
		if iter&63 == 0 {
			now := time.Now()
			if !measuring {
				if now.After(measureFrom) {
					measuring, t0, base = true, now, count
					end = now.Add(o.duration)
				}
			} else if now.After(end) {
				return childResult{Frames: count - base, Elapsed: now.Sub(t0).Seconds(), Touch: touch}
			}
		}
	}
}
