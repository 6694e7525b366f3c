// Command memringe2e is the end-to-end memring benchmark: container ->
// switch -> container over memring ports versus the same traffic over veth
// pairs and AF_XDP ports, both through vswitchd (one busy-poll worker
// pinned to the switch core), measured in one run:
//
//   - throughput, Mpps at the sink, median of -reps x -dur per frame size:
//     memring: a generator client on m1 and a sink client on m2, both in
//     this process, in one loop on one thread pinned to the client core;
//     veth: bench/e2e's vswitchd case, unchanged (XDP live-frames generator
//     pinned to the client core in the source namespace, XDP_DROP sink on
//     the destination veth), so the figures compare with "make bench-e2e";
//     the repetitions run in rounds that measure both paths in turn, so
//     a slow spell of the host is shared by them;
//   - one-way latency p50/p99 at a fixed moderate rate (-lat-rate): probe
//     frames carrying a sequence number and the send time, sent by one
//     client and received by the other, both in this process on one
//     thread pinned to the client core (memring: clients on m1 and m2;
//     veth: AF_PACKET sockets on s0 and d1 of the e2e topology).
//
// Usage:
//
//	memringe2e -bin DIR [-out DIR] [flags]   the run; report on stdout, files in -out
//	memringe2e cleanup                       remove namespaces of killed runs
//	memringe2e gen ...                       the veth generator (bench/e2e), started by the run
//
// Results are reported, never asserted: the exit status is non-zero only
// when a measurement failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
	"github.com/vswitch/vswitch/switch/netnstest"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// Settings are the run's knobs, recorded in the report.
type Settings struct {
	Bin        string  `json:"bin"`
	Out        string  `json:"out,omitempty"`
	Sizes      []int   `json:"sizes"`
	Reps       int     `json:"reps"`
	DurationS  float64 `json:"duration_s"`
	ClientCPU  int     `json:"client_cpu"`
	SwitchCPU  int     `json:"switch_cpu"`
	RingSize   int     `json:"memring_ring_size"`
	LatRatePPS float64 `json:"latency_rate_pps"`
	LatDurS    float64 `json:"latency_duration_s"`
	LatWarmupS float64 `json:"latency_warmup_s"`
	Memring    bool    `json:"memring"`
	Veth       bool    `json:"veth"`
	// Hugepages is how many free 2 MiB huge pages the run makes sure of
	// (raising vm.nr_hugepages for the run), so the regions are on huge
	// pages as on a prepared host; 0 leaves the host as it is.
	Hugepages int `json:"hugepages"`
	// Nice is the niceness of the harness, vswitchd and the generator
	// (children inherit it): other work on this shared machine must not
	// starve the measured processes. 0 leaves it alone.
	Nice int `json:"nice"`
	// QuietWaitS: before measuring, wait up to this long for the machine
	// to be idle (every core < QuietBusyPct busy for 3 s in a row); other
	// engineers' benchmarks share these two cores.
	QuietWaitS   float64 `json:"quiet_wait_s"`
	QuietBusyPct float64 `json:"quiet_busy_pct"`
	// QuietAtStart records whether the machine was idle, BusyAtStart the
	// last sample.
	QuietAtStart bool      `json:"quiet_at_start"`
	BusyAtStart  []float64 `json:"cpu_busy_pct_at_start"`
	dur          time.Duration
	latDur       time.Duration
	latWarmup    time.Duration
}

func parseSettings(args []string, stderr io.Writer) (Settings, error) {
	s := Settings{Bin: "bin", Sizes: []int{64, 1500}, Reps: 3, dur: 10 * time.Second, ClientCPU: 0, SwitchCPU: 1,
		RingSize: 1024, LatRatePPS: 20000, latDur: 5 * time.Second, latWarmup: 500 * time.Millisecond,
		Memring: true, Veth: true, Nice: -15, QuietWaitS: 600, QuietBusyPct: 15, Hugepages: 32}
	fs := flag.NewFlagSet("memringe2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := "64,1500"
	fs.StringVar(&s.Bin, "bin", s.Bin, "directory with vswitchd and vswitchctl (make build)")
	fs.StringVar(&s.Out, "out", "", "directory for memring-e2e-DATE.{json,md} (empty: none)")
	fs.StringVar(&sizes, "sizes", sizes, "frame sizes, L2 bytes without FCS")
	fs.IntVar(&s.Reps, "reps", s.Reps, "throughput repetitions per path and size")
	fs.DurationVar(&s.dur, "dur", s.dur, "duration of one throughput repetition")
	fs.IntVar(&s.ClientCPU, "client-cpu", s.ClientCPU, "core of the generators, sinks and latency clients")
	fs.IntVar(&s.SwitchCPU, "sw-cpu", s.SwitchCPU, "core of vswitchd (the worker and every other thread)")
	fs.IntVar(&s.RingSize, "ring-size", s.RingSize, "memring descriptors per ring")
	fs.Float64Var(&s.LatRatePPS, "lat-rate", s.LatRatePPS, "latency probes per second")
	fs.DurationVar(&s.latDur, "lat-dur", s.latDur, "latency sending time per path and size")
	fs.DurationVar(&s.latWarmup, "lat-warmup", s.latWarmup, "probes sent in the first part of -lat-dur are not counted")
	fs.BoolVar(&s.Memring, "memring", s.Memring, "measure the memring path")
	fs.BoolVar(&s.Veth, "veth", s.Veth, "measure the veth + AF_XDP path")
	fs.Float64Var(&s.QuietWaitS, "quiet-wait", s.QuietWaitS, "seconds to wait for an idle machine before measuring (0: do not wait)")
	fs.Float64Var(&s.QuietBusyPct, "quiet-busy", s.QuietBusyPct, "a core busier than this percentage is not idle")
	fs.IntVar(&s.Nice, "nice", s.Nice, "niceness of the harness, vswitchd and the generator (0: unchanged)")
	fs.IntVar(&s.Hugepages, "hugepages", s.Hugepages, "free 2 MiB huge pages to make sure of for the regions during the run (0: leave vm.nr_hugepages alone)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s.Sizes = nil
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < e2e.MinFrameSize || n > e2e.MaxFrameSize {
			return s, fmt.Errorf("-sizes: %q is not in %d..%d", f, e2e.MinFrameSize, e2e.MaxFrameSize)
		}
		s.Sizes = append(s.Sizes, n)
	}
	if s.Reps < 1 || s.dur <= 0 || s.LatRatePPS <= 0 || s.latDur <= s.latWarmup {
		return s, errors.New("need -reps >= 1, positive -dur and -lat-rate, -lat-dur > -lat-warmup")
	}
	var err error
	if s.Bin, err = filepath.Abs(s.Bin); err != nil {
		return s, err
	}
	if s.Out != "" {
		if s.Out, err = filepath.Abs(s.Out); err != nil {
			return s, err
		}
	}
	s.DurationS, s.LatDurS, s.LatWarmupS = s.dur.Seconds(), s.latDur.Seconds(), s.latWarmup.Seconds()
	return s, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "gen":
			return e2e.GenMain(args[1:], stdout, stderr)
		case "cleanup":
			names, err := e2e.RemoveLeftovers(context.Background())
			for _, n := range names {
				fmt.Fprintln(stdout, "removed netns", n)
			}
			if err != nil {
				fmt.Fprintln(stderr, "cleanup:", err)
				return 1
			}
			return 0
		}
	}
	s, err := parseSettings(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "memringe2e:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "memringe2e: needs root (namespaces, veth, XDP, AF_PACKET, the memring socket)")
		return 2
	}
	if code, parent := e2e.OwnSession("memringe2e", s.Nice, stdout, stderr); parent {
		return code
	}
	// The host probe (CPU share) runs before the harness pins itself to
	// one core: in a process pinned there, its spinners were measured
	// taking turns (about 50% each on an idle machine).
	host := e2e.ReadHostInfo()
	// Signals end the run through ctx so every deferred teardown runs;
	// "memringe2e cleanup" removes what a SIGKILLed run left.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The whole harness lives on the client core, so its runtime threads
	// never take time from the switch core.
	if err := e2e.PinProcess(s.ClientCPU, s.Nice); err != nil {
		fmt.Fprintln(stderr, "memringe2e:", err)
		return 1
	}
	defer netnstest.HugepagesForRun(s.Hugepages, stderr, "memringe2e")()
	s.QuietAtStart, s.BusyAtStart = waitQuiet(ctx, s, stderr)
	now := time.Now()
	rep := newReport(now, host, s, args)
	// Throughput runs in rounds: each measures one repetition of every
	// size on the memring path, then on the veth path, so a slow spell of
	// the host is shared by both paths instead of moving their ratio.
	// Latency follows, memring first.
	type phase struct {
		on  bool
		run func(context.Context, Settings, io.Writer)
	}
	var phases []phase
	for round := 1; round <= s.Reps; round++ {
		last := round == s.Reps
		phases = append(phases,
			phase{s.Memring, func(ctx context.Context, s Settings, log io.Writer) {
				fmt.Fprintf(log, "round %d of %d\n", round, s.Reps)
				rep.runMemring(ctx, s, log, last)
			}},
			phase{s.Veth, rep.runVethThroughput})
	}
	phases = append(phases, phase{s.Veth, rep.runVethLatency})
	for _, ph := range phases {
		if !ph.on || ctx.Err() != nil {
			continue
		}
		// Again per phase: threads started since may have escaped the
		// mask (seen: the main thread back on both cores).
		if err := e2e.PinProcess(s.ClientCPU, s.Nice); err != nil {
			rep.fail("%v", err)
			break
		}
		ph.run(ctx, s, stderr)
	}
	if ctx.Err() != nil {
		rep.fail("interrupted")
	}
	rep.finish()
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if s.Out != "" {
		paths, err := rep.write(s.Out, now, md)
		if err != nil {
			fmt.Fprintln(stderr, "memringe2e: write results:", err)
			return 1
		}
		for _, p := range paths {
			fmt.Fprintln(stderr, "wrote", p)
		}
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintln(stderr, "memringe2e: FAILED:")
		for _, e := range rep.Errors {
			fmt.Fprintln(stderr, "  -", e)
		}
		return 1
	}
	return 0
}

// runMemring: vswitchd with memring ports m1 and m2, the two clients in
// this process; one throughput repetition at every size (one round), then,
// with latency, the latency at every size.
func (r *Report) runMemring(ctx context.Context, s Settings, log io.Writer, latency bool) {
	// Before the round's vswitchd takes the switch core: how far apart
	// the host has the two cores now (see crossCoreRTT).
	if rtt, err := crossCoreRTT(s.ClientCPU, s.SwitchCPU, 200000); err != nil {
		r.fail("cross-core round trip: %v", err)
	} else {
		r.CrossCoreRTT = append(r.CrossCoreRTT, rtt)
		fmt.Fprintf(log, "cross-core round trip cpu %d <-> %d: %.0f ns\n", s.ClientCPU, s.SwitchCPU, rtt)
	}
	fmt.Fprintln(log, "memring: start vswitchd with memring ports m1, m2")
	d, err := startDaemon(ctx, daemonSpec{Bin: s.Bin, CPU: s.SwitchCPU, Memring: []string{"m1", "m2"}, RingSize: s.RingSize}, log)
	if err != nil {
		r.fail("memring: %v", err)
		return
	}
	r.Configs["memring"] = d.cfgText
	r.Commands["memring vswitchd"] = d.Command
	defer func() {
		if err := d.Stop(); err != nil {
			r.fail("memring: stop vswitchd: %v", err)
		}
	}()
	p, err := dialPairRetry(ctx, d.memSock, 5*time.Second)
	if err != nil {
		r.fail("memring: attach: %v", err)
		return
	}
	defer p.Close()
	if err := p.prime(ctx, 2*time.Second); err != nil {
		r.fail("memring: %v", err)
		return
	}
	for _, size := range s.Sizes {
		if ctx.Err() != nil {
			return
		}
		c := Throughput{Path: pathMemring, Size: size}
		if err := d.Alive(); err != nil {
			c.Error = err.Error()
			r.addThroughput(c)
			continue
		}
		f0 := foreignTicks()
		m, full, err := p.blast(ctx, size, s.dur, s.ClientCPU)
		c.ForeignPct = []float64{foreignShare(f0, foreignTicks(), m.Elapsed)}
		if err != nil {
			c.Error = err.Error()
		} else {
			c.Reps = []e2e.Rep{m}
			c.GenRingFull = []uint64{full}
			fmt.Fprintf(log, "  memring %d B: rx %.3f Mpps, gen tx %.3f Mpps, cpu %v, foreign %.0f%%\n",
				size, m.RxMpps, m.TxMpps, pct(m.CPUBusy), c.ForeignPct[0])
		}
		c.Diagnostics = d.Stats(ctx)
		r.addThroughput(c)
	}
	if !latency {
		return
	}
	for _, size := range s.Sizes {
		if ctx.Err() != nil {
			return
		}
		f0 := foreignTicks()
		res, err := measureLatency(ctx, memProbes{p}, latencyConfig{Size: size, Rate: s.LatRatePPS,
			Dur: s.latDur, Warmup: s.latWarmup, CPU: s.ClientCPU})
		res.Path = pathMemring
		res.ForeignPct = foreignShare(f0, foreignTicks(), s.latDur.Seconds())
		if err != nil {
			res.Error = err.Error()
			r.fail("memring latency %d B: %v", size, err)
		}
		r.Latency = append(r.Latency, res)
		logLatency(log, res)
	}
	r.Diagnostics["memring vswitchctl stats (end)"] = d.Stats(ctx)
}

// dialPairRetry attaches both clients, retrying while the daemon brings up
// its memring socket.
func dialPairRetry(ctx context.Context, sock string, timeout time.Duration) (*ringPair, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := dialPair(sock)
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runVethThroughput is bench/e2e's vswitchd case as "make bench-e2e" runs
// it (topology, daemon, ping check, generator child, sink), at our sizes.
func (r *Report) runVethThroughput(ctx context.Context, s Settings, log io.Writer) {
	exe, err := os.Executable()
	if err != nil {
		r.fail("veth: find own binary for the generator: %v", err)
		return
	}
	if left, _ := e2e.Leftovers(); len(left) > 0 {
		fmt.Fprintf(log, "note: namespaces of killed runs exist (%s); 'memringe2e cleanup' removes them\n",
			strings.Join(left, " "))
	}
	fmt.Fprintln(log, "veth: bench/e2e vswitchd case")
	f0, t0 := foreignTicks(), time.Now()
	results, err := e2e.Run(ctx, e2e.Options{
		Bin: s.Bin, Cases: []string{e2e.CaseVswitchd}, Sizes: s.Sizes, Flows: []int{1}, Reps: 1,
		Duration: s.dur, GenCPU: s.ClientCPU, SwCPU: s.SwitchCPU, PinSwitch: true,
		GenCommand: []string{exe, "gen"}, Checksum: true, Log: log,
	})
	foreign := foreignShare(f0, foreignTicks(), time.Since(t0).Seconds())
	if err != nil {
		r.fail("veth: %v", err)
	}
	names := e2e.NewNames(os.Getpid())
	r.Commands["veth generator (per repetition, bench/e2e)"] = "ip netns exec " + names.SrcNS + " " + exe + " gen " +
		strings.Join(e2e.GenArgs(e2e.GenConfig{
			Ifname: names.S0, Duration: s.dur, CPU: s.ClientCPU, CallTime: 500 * time.Millisecond,
			Frame: e2e.FrameSpec{Size: s.Sizes[0], Flows: 1, SrcMAC: e2e.SrcMAC, DstMAC: e2e.DstMAC,
				SrcIP: e2e.SrcIP, DstIP: e2e.DstIP, SrcPort: 1024, DstPort: 9, Checksum: true},
		}), " ") + "   (then -size for each size)"
	r.Commands["veth vswitchd (bench/e2e)"] = fmt.Sprintf("vswitchd --config <e2e.VswitchdConfig: ports p0=%s, p1=%s, "+
		"worker cpu %d, poll_mode busy>, whole process pinned to cpu %d", names.P0, names.P1, s.SwitchCPU, s.SwitchCPU)
	for _, c := range results {
		r.addThroughput(Throughput{Path: pathVeth, Size: c.Size, Reps: c.Reps, Error: c.Error,
			Diagnostics: c.Diagnostics, Note: c.Note, ForeignPct: []float64{foreign}})
	}
}

// runVethLatency builds the e2e topology again, runs vswitchd on p0 and p1
// with the same settings, and measures probe latency s0 -> d1.
func (r *Report) runVethLatency(ctx context.Context, s Settings, log io.Writer) {
	names := e2e.NewNames(os.Getpid())
	fmt.Fprintf(log, "veth latency: topology %s\n", names.ID)
	topo, err := e2e.SetupTopology(ctx, names)
	if err != nil {
		r.fail("veth latency: topology: %v", err)
		return
	}
	defer func() {
		if err := topo.Close(); err != nil {
			r.fail("veth latency: tear down topology: %v", err)
		}
	}()
	d, err := startDaemon(ctx, daemonSpec{Bin: s.Bin, CPU: s.SwitchCPU,
		Veth: []e2e.VswitchdPort{{Name: "p0", Interface: names.P0}, {Name: "p1", Interface: names.P1}}}, log)
	if err != nil {
		r.fail("veth latency: %v", err)
		return
	}
	r.Configs["veth latency"] = d.cfgText
	r.Commands["veth latency vswitchd"] = d.Command
	defer func() {
		if err := d.Stop(); err != nil {
			r.fail("veth latency: stop vswitchd: %v", err)
		}
	}()
	pp, err := openPacketProbes(names.SrcNS, names.S0, names.DstNS, names.D1, e2e.DstMAC)
	if err != nil {
		r.fail("veth latency: %v", err)
		return
	}
	defer pp.Close()
	if err := primeVeth(ctx, pp, 5*time.Second); err != nil {
		r.fail("veth latency: %v", err)
		return
	}
	for _, size := range s.Sizes {
		if ctx.Err() != nil {
			return
		}
		f0 := foreignTicks()
		res, err := measureLatency(ctx, pp, latencyConfig{Size: size, Rate: s.LatRatePPS,
			Dur: s.latDur, Warmup: s.latWarmup, CPU: s.ClientCPU})
		res.Path = pathVeth
		res.ForeignPct = foreignShare(f0, foreignTicks(), s.latDur.Seconds())
		if err != nil {
			res.Error = err.Error()
			r.fail("veth latency %d B: %v", size, err)
		}
		r.Latency = append(r.Latency, res)
		logLatency(log, res)
	}
	r.Diagnostics["veth latency vswitchctl stats (end)"] = d.Stats(ctx)
}

// primeVeth sends one frame from d1 (so the switch learns its MAC on p1)
// and then probes s0 -> d1 until one arrives: forwarding works and the
// daemon's AF_XDP sockets are up.
func primeVeth(ctx context.Context, pp *packetProbes, timeout time.Duration) error {
	buf := make([]byte, probeMinSize)
	n, err := buildProbe(buf, probeMinSize, defaultProbeAddrs().reversed(), ^uint64(0), 0)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := pp.sendFromReceiver(buf[:n], e2e.SrcMAC); err != nil {
			return fmt.Errorf("prime: send from d1: %w", err)
		}
		m, _ := buildProbe(buf, probeMinSize, defaultProbeAddrs(), 1<<62, 0)
		if err := pp.Send(buf[:m]); err != nil {
			return fmt.Errorf("prime: send from s0: %w", err)
		}
		arrived := false
		for t := time.Now(); time.Since(t) < 100*time.Millisecond && !arrived; {
			if err := pp.Poll(func(f []byte, _ int64) {
				if seq, _, err := parseProbe(f); err == nil && seq == 1<<62 {
					arrived = true
				}
			}); err != nil {
				return fmt.Errorf("prime: %w", err)
			}
		}
		if arrived {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("prime: no probe s0 -> d1 through the switch within %s", timeout)
		}
		n, _ = buildProbe(buf, probeMinSize, defaultProbeAddrs().reversed(), ^uint64(0), 0)
	}
}

func logLatency(log io.Writer, r LatencyResult) {
	st := r.Stats
	fmt.Fprintf(log, "  %s latency %d B at %.0f pps: sent %d, received %d, lost %d; p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; foreign %.0f%%\n",
		r.Path, r.Size, r.RatePPS, r.Sent, r.Received, r.Lost, st.P50Us, st.P99Us, st.P999Us, st.MaxUs, r.ForeignPct)
}

func pct(b []float64) string {
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = fmt.Sprintf("%d:%.0f%%", i, v)
	}
	return strings.Join(parts, " ")
}

// waitQuiet samples /proc/stat every second until every core was less
// than s.QuietBusyPct busy for 3 samples in a row, or s.QuietWaitS passed.
// It returns whether the machine was idle and the last sample.
func waitQuiet(ctx context.Context, s Settings, log io.Writer) (bool, []float64) {
	prev, err := e2e.ReadCPUTimes()
	if err != nil || s.QuietWaitS <= 0 {
		return false, nil
	}
	deadline := time.Now().Add(time.Duration(s.QuietWaitS * float64(time.Second)))
	var busy []float64
	for quiet := 0; ctx.Err() == nil; {
		time.Sleep(time.Second)
		cur, err := e2e.ReadCPUTimes()
		if err != nil {
			return false, busy
		}
		busy, prev = e2e.BusyPercent(prev, cur), cur
		quiet++
		for _, b := range busy {
			if b >= s.QuietBusyPct {
				quiet = 0
			}
		}
		if quiet >= 3 {
			return true, busy
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(log, "machine not idle after %.0f s (cpu %s); measuring anyway\n", s.QuietWaitS, pct(busy))
			return false, busy
		}
	}
	return false, busy
}

// topCPU lists the processes that used the most CPU recently (ps), so a
// report shows what else was running on the machine.
func topCPU() string {
	out, err := exec.Command("ps", "-eo", "pid,pcpu,psr,comm", "--sort=-pcpu").Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 9 {
		lines = lines[:9]
	}
	return strings.Join(lines, "\n")
}
