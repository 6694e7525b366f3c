// Command routed is the routed end-to-end benchmark: vswitchd's L3 gateway
// (routing, ACL firewall, per-worker flow cache) against the Linux kernel
// as a router, on the same topology, in the same run:
//
//	vsrID-gen: G0 10.78.1.1/24 --veth-- P0 [vsrID-rtr: the router] P1 --veth-- S1 10.78.2.2/24 :vsrID-snk
//
// Cases (AllCases): linux-route (ip_forward, no nft), linux-route-nft1000
// (+ a forward chain of 1000 non-matching rules), vswitchd-route (p0
// access VLAN 1, p1 access VLAN 2, router interfaces 10.78.1.254 and
// 10.78.2.254) and vswitchd-route-acl1000 (+ 1000 non-matching deny
// rules). The generator (bench/e2e's XDP live-frames generator, routed
// variant: header restored per packet) sends 64-byte UDP frames from G0
// to the router's MAC, at 1, 1000 and 100000 flows; "rx Mpps" is what the
// XDP sink on S1 counted divided by the generator's run time.
//
// Usage:
//
//	routed -bin DIR [-out DIR] [-quick] [flags]   the run; report on stdout, files in -out
//	routed cleanup                                remove namespaces of killed runs
//	routed gen ...                                the generator child, started by the run
//
// A case whose DUT does not start (e.g. vswitchd rejecting the router
// config) is recorded as failed with the daemon's error, and the run goes
// on; the exit status is 1 when any case failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/vswitch/vswitch/bench/e2e"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// Settings are the run's knobs, recorded in the report.
type Settings struct {
	Bin       string   `json:"bin"`
	Out       string   `json:"out,omitempty"`
	Cases     []string `json:"cases"`
	Flows     []int    `json:"flows"`
	Size      int      `json:"size"`
	Reps      int      `json:"reps"`
	DurationS float64  `json:"duration_s"`
	GenCPU    int      `json:"gen_cpu"`
	SwCPU     int      `json:"switch_cpu"`
	Quick     bool     `json:"quick"`
	// QuietWaitS: before each case, wait up to this long for every core
	// to be idle (< quietBusyPct busy for 3 s in a row).
	QuietWaitS float64 `json:"quiet_wait_s"`
	// Nice is the niceness of the harness and its children (generator,
	// vswitchd), in a session of their own (see e2e.OwnSession);
	// 0 leaves it alone.
	Nice      int `json:"nice"`
	dur       time.Duration
	quietWait time.Duration
	exe       string // this binary, for the generator child
}

func parseSettings(args []string, stderr io.Writer) (Settings, error) {
	s := Settings{Bin: "bin", Cases: AllCases, Flows: []int{1, 1000, 100000}, Size: 64, Reps: 3,
		dur: 10 * time.Second, GenCPU: 0, SwCPU: 1, quietWait: 120 * time.Second, Nice: -15}
	fs := flag.NewFlagSet("routed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cases, flows := strings.Join(s.Cases, ","), "1,1000,100000"
	fs.StringVar(&s.Bin, "bin", s.Bin, "directory with vswitchd and vswitchctl (make build)")
	fs.StringVar(&s.Out, "out", "", "directory for routed-DATE.{tsv,md} (empty: none)")
	fs.StringVar(&cases, "cases", cases, "cases to measure, in this order")
	fs.StringVar(&flows, "flows", flows, "flow counts (UDP source x destination ports)")
	fs.IntVar(&s.Size, "size", s.Size, "frame size, L2 bytes without FCS")
	fs.IntVar(&s.Reps, "reps", s.Reps, "repetitions per case and flow count")
	fs.DurationVar(&s.dur, "dur", s.dur, "duration of one repetition")
	fs.IntVar(&s.GenCPU, "gen-cpu", s.GenCPU, "generator core (the harness runs there too; Linux forwards inline on it)")
	fs.IntVar(&s.SwCPU, "sw-cpu", s.SwCPU, "vswitchd core (worker and every other thread)")
	fs.DurationVar(&s.quietWait, "quiet-wait", s.quietWait, "before each case, wait up to this long for an idle machine (0: do not wait)")
	fs.IntVar(&s.Nice, "nice", s.Nice, "niceness of the harness, the generator and vswitchd (0: unchanged)")
	fs.BoolVar(&s.Quick, "quick", false, "1 repetition of 3 s (overrides -reps and -dur)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.Quick {
		s.Reps, s.dur = 1, 3*time.Second
	}
	s.Cases = nil
	for _, c := range strings.Split(cases, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(AllCases, c) {
			return s, fmt.Errorf("-cases: unknown case %q (have %s)", c, strings.Join(AllCases, ","))
		}
		s.Cases = append(s.Cases, c)
	}
	s.Flows = nil
	for _, f := range strings.Split(flows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return s, fmt.Errorf("-flows: %q: %w", f, err)
		}
		if _, _, err := flowPorts(n); err != nil {
			return s, fmt.Errorf("-flows: %w", err)
		}
		s.Flows = append(s.Flows, n)
	}
	if s.Size < e2e.MinFrameSize || s.Size > e2e.MaxFrameSize {
		return s, fmt.Errorf("-size %d is not in %d..%d", s.Size, e2e.MinFrameSize, e2e.MaxFrameSize)
	}
	if s.Reps < 1 || s.dur <= 0 {
		return s, errors.New("need -reps >= 1 and a positive -dur")
	}
	if n := runtime.NumCPU(); s.GenCPU < 0 || s.GenCPU >= n || s.SwCPU < 0 || s.SwCPU >= n {
		return s, fmt.Errorf("-gen-cpu %d / -sw-cpu %d outside 0..%d", s.GenCPU, s.SwCPU, n-1)
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
	if s.exe, err = os.Executable(); err != nil {
		return s, fmt.Errorf("find own binary for the generator: %w", err)
	}
	s.DurationS, s.QuietWaitS = s.dur.Seconds(), s.quietWait.Seconds()
	return s, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "gen":
			return e2e.RoutedGenMain(args[1:], stdout, stderr)
		case "cleanup":
			names, err := removeLeftovers(context.Background())
			for _, n := range names {
				fmt.Fprintln(stdout, "removed netns", n)
			}
			if err != nil {
				fmt.Fprintln(stderr, "routed cleanup:", err)
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
		fmt.Fprintln(stderr, "routed:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "routed: needs root (namespaces, veth, XDP, nft)")
		return 2
	}
	if code, parent := e2e.OwnSession("routed", s.Nice, stdout, stderr); parent {
		return code
	}
	// Signals end the run through ctx, so every deferred teardown runs;
	// "routed cleanup" removes what a SIGKILLed run left.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintln(stderr, "routed: remove memlock limit:", err)
		return 1
	}
	// The harness lives on the generator core, so its threads never take
	// time from the vswitchd core.
	if err := e2e.PinProcess(s.GenCPU, s.Nice); err != nil {
		fmt.Fprintln(stderr, "routed:", err)
		return 1
	}
	now := time.Now()
	rep := newReport(now, s, args)
	runAll(ctx, &s, rep, stderr)
	rep.finish()
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if s.Out != "" {
		paths, err := rep.write(s.Out, now, md)
		if err != nil {
			fmt.Fprintln(stderr, "routed: write results:", err)
			return 1
		}
		for _, p := range paths {
			fmt.Fprintln(stderr, "wrote", p)
		}
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintln(stderr, "routed: FAILED:")
		for _, e := range rep.Errors {
			fmt.Fprintln(stderr, "  -", e)
		}
		return 1
	}
	return 0
}

// runAll builds the topology, runs every case on it and tears it down.
func runAll(ctx context.Context, s *Settings, rep *Report, log io.Writer) {
	if left, _ := removeLeftovers(ctx); len(left) > 0 {
		fmt.Fprintf(log, "removed namespaces of killed runs: %s\n", strings.Join(left, " "))
	}
	n := NewNames(os.Getpid())
	fmt.Fprintf(log, "topology %s: %s/%s <-> %s [%s] %s <-> %s/%s\n", n.ID, n.GenNS, n.G0, n.P0, n.RtrNS, n.P1, n.S1, n.SnkNS)
	t, err := SetupTopology(ctx, n, log)
	if err != nil {
		rep.fail("set up topology: %v", err)
		return
	}
	rep.Topology = t.Commands
	defer func() {
		if err := t.Close(); err != nil {
			rep.fail("tear down topology: %v", err)
		}
	}()
	// Rounds: each runs every case once with one repetition per flow
	// count, so a slow spell of the host is shared by the cases instead
	// of moving their ratios (they used to run one after the other).
	one := *s
	one.Reps = 1
rounds:
	for round := 1; round <= s.Reps; round++ {
		fmt.Fprintf(log, "round %d of %d\n", round, s.Reps)
		for _, c := range s.Cases {
			if ctx.Err() != nil {
				break rounds
			}
			rs, cfg, err := runCase(ctx, &one, t, c, log)
			rep.add(rs)
			if cfg != "" {
				rep.Configs[c] = cfg
			}
			if err != nil {
				rep.fail("interrupted: %v", err)
				break rounds
			}
		}
	}
	g, err := genConfig(s, n, s.Flows[0])
	if err == nil {
		rep.GenCommand = "ip netns exec " + n.GenNS + " " + s.exe + " gen " + strings.Join(e2e.RoutedGenArgs(g), " ") +
			"   (-flows/-dports per flow count)"
	}
}
