package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Generator ports: source ports from genSrcPort, destination ports from
// genDstPort (outside the denied 10000..10999, and clear of the well-known
// ports the switch's peephole answers, such as 53).
const (
	genSrcPort = 1024
	genDstPort = 20000
	// maxSrcPorts: above this many flows, flows = maxSrcPorts source ports
	// x flows/maxSrcPorts destination ports.
	maxSrcPorts = 1000
)

// flowPorts splits a flow count into source x destination ports.
func flowPorts(flows int) (src, dst int, err error) {
	switch {
	case flows < 1:
		return 0, 0, fmt.Errorf("flows %d < 1", flows)
	case flows <= maxSrcPorts:
		return flows, 1, nil
	case flows%maxSrcPorts != 0 || flows/maxSrcPorts > 0xffff-genDstPort:
		return 0, 0, fmt.Errorf("flows %d: above %d flows must be a multiple of %d up to %d", flows, maxSrcPorts, maxSrcPorts, maxSrcPorts*(0xffff-genDstPort))
	}
	return maxSrcPorts, flows / maxSrcPorts, nil
}

// Rep is one measured repetition (bench/e2e's, so Summarize applies).
type Rep = e2e.Rep

// CaseResult is every repetition of one case at one flow count.
type CaseResult struct {
	Case  string `json:"case"`
	Note  string `json:"note"`
	Size  int    `json:"size"`
	Flows int    `json:"flows"`
	Reps  []Rep  `json:"reps"`
	// Unrouted is, per repetition, UDP frames that reached the sink
	// without being routed (wrong MAC or TTL); not counted in Reps.
	Unrouted    []uint64 `json:"unrouted"`
	Error       string   `json:"error,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	Diagnostics string   `json:"diagnostics,omitempty"`
}

// newDUT returns the device under test of a case.
func newDUT(name string, s *Settings, log io.Writer) (dut, error) {
	switch name {
	case CaseLinux:
		return &linuxRouter{ns: -1}, nil
	case CaseLinuxNft:
		return &linuxRouter{nft: true, ns: -1}, nil
	case CaseVswitchd, CaseVswitchdACL:
		return &vswitchdRouter{bin: s.Bin, cpu: s.SwCPU, acl: name == CaseVswitchdACL, readyTimeout: 15 * time.Second, log: log}, nil
	}
	return nil, fmt.Errorf("unknown case %q (have %v)", name, AllCases)
}

// caseIO is what runDUT does on the topology besides driving the DUT: the
// forwarding check and one measured repetition. runCase uses the real
// ones; tests hand in their own.
type caseIO struct {
	ping    func(ctx context.Context) error
	measure func(ctx context.Context, flows int) (Rep, uint64, error)
}

// runCase sets the case's DUT up, checks forwarding with a ping, measures
// every flow count, and tears the DUT down. Failures are recorded in the
// results; the returned error is only ctx's.
func runCase(ctx context.Context, s *Settings, t *Topology, name string, log io.Writer) ([]CaseResult, string, error) {
	d, err := newDUT(name, s, log)
	if err != nil {
		return nil, "", err
	}
	return runDUT(ctx, s, t, name, d, caseIO{
		ping: func(ctx context.Context) error { return pingCheck(ctx, t, 5*time.Second) },
		measure: func(ctx context.Context, flows int) (Rep, uint64, error) {
			return measureRep(ctx, s, t, flows)
		},
	}, log)
}

// runDUT is runCase with the DUT made and the topology's work in cio.
func runDUT(ctx context.Context, s *Settings, t *Topology, name string, d dut, cio caseIO, log io.Writer) ([]CaseResult, string, error) {
	var rs []CaseResult
	for _, f := range s.Flows {
		rs = append(rs, CaseResult{Case: name, Note: d.Note(), Size: s.Size, Flows: f})
	}
	failAll := func(msg string) {
		for i := range rs {
			if rs[i].Error == "" {
				rs[i].Error = msg
			}
		}
	}
	warnAll := func(msg string) {
		for i := range rs {
			rs[i].Warnings = append(rs[i].Warnings, msg)
		}
	}
	fmt.Fprintf(log, "case %s: start\n", name)
	if quiet, busy := waitQuiet(ctx, s.quietWait, log); !quiet && s.quietWait > 0 {
		warnAll(fmt.Sprintf("machine not idle before the case (cpu busy %s after waiting %s)", pct(busy), s.quietWait))
	}
	stop := func() {
		if err := d.Stop(); err != nil {
			fmt.Fprintf(log, "case %s: stop: %v\n", name, err)
			warnAll("stop: " + err.Error())
		}
	}
	if err := d.Start(ctx, t); err != nil {
		stop()
		failAll("start: " + err.Error())
		fmt.Fprintf(log, "case %s: %v\n", name, err)
		return rs, d.Config(), ctx.Err()
	}
	defer stop()
	// A ping both ways through the DUT before measuring. Its failure is
	// a warning: the measurement itself shows whether UDP gets through.
	if err := cio.ping(ctx); err != nil {
		warnAll("forwarding check: " + err.Error())
		fmt.Fprintf(log, "case %s: warning: %v\n", name, err)
	}
	for i := range rs {
		r := &rs[i]
		for rep := 1; rep <= s.Reps; rep++ {
			if err := d.Alive(); err != nil {
				r.Error = err.Error()
				break
			}
			m, unrouted, err := cio.measure(ctx, r.Flows)
			if ctx.Err() != nil {
				r.Error = "interrupted"
				return rs, d.Config(), ctx.Err()
			}
			if err != nil {
				r.Error = err.Error()
				fmt.Fprintf(log, "  %s %d flows rep %d: %v\n", name, r.Flows, rep, err)
				break
			}
			// A DUT that died during the repetition forwarded only part
			// of it: that rate is not the DUT's, so it is not kept.
			if err := d.Alive(); err != nil {
				r.Error = fmt.Sprintf("DUT died during repetition %d: %v", rep, err)
				fmt.Fprintf(log, "  %s %d flows rep %d: %s\n", name, r.Flows, rep, r.Error)
				break
			}
			r.Reps = append(r.Reps, m)
			r.Unrouted = append(r.Unrouted, unrouted)
			fmt.Fprintf(log, "  %s %d flows rep %d: rx %.3f Mpps, gen tx %.3f Mpps, unrouted %d, cpu %s\n",
				name, r.Flows, rep, m.RxMpps, m.TxMpps, unrouted, pct(m.CPUBusy))
			if unrouted > 0 && !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.HasPrefix(w, "unrouted") }) {
				r.Warnings = append(r.Warnings, fmt.Sprintf("unrouted UDP frames reached the sink (wrong MAC or TTL; not counted): %d in rep %d", unrouted, rep))
			}
			if m.Received == 0 {
				r.Error = fmt.Sprintf("sink received 0 routed of %d packets (%d unrouted)", m.Sent, unrouted)
				break
			}
		}
		if diag := d.Diagnose(ctx); diag != "" {
			r.Diagnostics = diag
		}
	}
	return rs, d.Config(), nil
}

// pingCheck pings the sink from the generator namespace until one echo
// comes back or timeout passes (ICMP passes the sink program).
func pingCheck(ctx context.Context, t *Topology, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		last = runCmd(ctx, "ip", "netns", "exec", t.GenNS, "ping", "-n", "-q", "-c", "1", "-W", "1", SinkIP.String())
		if last == nil {
			return nil
		}
		select { // ping can fail at once: do not spin
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no ping reply %s -> %s within %s: %v", GenIP, SinkIP, timeout, last)
}

// genConfig is the generator of one repetition at flows flows.
func genConfig(s *Settings, n Names, flows int) (e2e.RoutedGenConfig, error) {
	src, dst, err := flowPorts(flows)
	if err != nil {
		return e2e.RoutedGenConfig{}, err
	}
	return e2e.RoutedGenConfig{
		GenConfig: e2e.GenConfig{
			Ifname: n.G0,
			Frame: e2e.FrameSpec{
				Size: s.Size, Flows: src, SrcMAC: GenMAC, DstMAC: RouterMAC, SrcIP: GenIP, DstIP: SinkIP,
				SrcPort: genSrcPort, DstPort: genDstPort, TTL: genTTL, Checksum: true,
			},
			Duration: s.dur,
			CPU:      s.GenCPU,
			CallTime: 500 * time.Millisecond,
		},
		DstPorts: dst,
	}, nil
}

// measureRep runs the generator child once and counts what reached the
// sink: routed frames (the Rep) and other UDP frames.
func measureRep(ctx context.Context, s *Settings, t *Topology, flows int) (Rep, uint64, error) {
	cfg, err := genConfig(s, t.Names, flows)
	if err != nil {
		return Rep{}, 0, err
	}
	rx0, err := t.SinkCount()
	if err != nil {
		return Rep{}, 0, err
	}
	un0, err := t.UnroutedCount()
	if err != nil {
		return Rep{}, 0, err
	}
	g, err := runGenChild(ctx, s, t, cfg)
	if err != nil {
		return Rep{}, 0, err
	}
	rx1, err := t.WaitSinkQuiet(ctx, time.Second)
	if err != nil {
		return Rep{}, 0, err
	}
	un1, err := t.UnroutedCount()
	if err != nil {
		return Rep{}, 0, err
	}
	m := Rep{Sent: g.Sent, Received: rx1 - rx0, Elapsed: g.Elapsed, TxMpps: g.Mpps, CPUBusy: g.CPUBusy}
	if g.Elapsed > 0 {
		m.RxMpps = float64(m.Received) / g.Elapsed / 1e6
	}
	if g.Sent == 0 {
		return m, un1 - un0, fmt.Errorf("generator sent 0 packets")
	}
	return m, un1 - un0, nil
}

// runGenChild runs "ip netns exec GEN <this binary> gen <flags>" (the
// child pins itself to the generator core) and parses its JSON result.
func runGenChild(ctx context.Context, s *Settings, t *Topology, cfg e2e.RoutedGenConfig) (e2e.GenResult, error) {
	return e2e.RunGenChild(ctx, t.GenNS, -1, cfg.Duration, append([]string{s.exe, "gen"}, e2e.RoutedGenArgs(cfg)...))
}

func pct(b []float64) string {
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = fmt.Sprintf("%d:%.0f%%", i, v)
	}
	return strings.Join(parts, " ")
}
