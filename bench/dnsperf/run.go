package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Rep is one repetition of a case.
type Rep struct {
	Dnsperf DnsperfResult `json:"dnsperf"`
	// ProbeLoad ran alongside dnsperf, ProbeIdle alone after it.
	ProbeLoad ProbeResult  `json:"probe_under_load"`
	ProbeIdle *ProbeResult `json:"probe_idle,omitempty"`
	// CPUBusy is each core's busy share during dnsperf, in percent.
	CPUBusy []float64 `json:"cpu_busy_pct"`
	// ClientBound: the client side was the bottleneck, either dnsperf
	// itself (it used at least Settings.ClientBound of a core) or its core
	// (busy at least Settings.ClientCoreBusy percent with dnsperf, the
	// sending softirqs and whatever else runs there). ClientBoundWhy says
	// which.
	ClientBound    bool   `json:"client_bound"`
	ClientBoundWhy string `json:"client_bound_why,omitempty"`
	// SwitchAnswered and SwitchPassed are the growth of vswitchd's
	// peephole DNS counters answered and passed.outside_zone during the
	// repetition (vswitchd cases only).
	SwitchAnswered *uint64 `json:"switch_dns_answered,omitempty"`
	SwitchPassed   *uint64 `json:"switch_dns_passed_outside_zone,omitempty"`
	// SwitchBusyPct is vswitchd's worker busy share (its one-second rate)
	// read in the middle of dnsperf's window, and SwitchBatch its mean RX
	// batch size over the repetition: how much of the switch's core the
	// rate took, i.e. the headroom a client-bound case leaves. Busy time is
	// wall time in batch processing, so preemption by other work on the
	// core inflates it.
	SwitchBusyPct *float64 `json:"switch_worker_busy_pct,omitempty"`
	SwitchBatch   *float64 `json:"switch_mean_batch,omitempty"`
	// Open is the open-loop phase after the probes (Settings.OpenS > 0).
	Open *OpenLoopResult `json:"open_loop,omitempty"`
}

// CaseResult is a case's repetitions.
type CaseResult struct {
	Name     string `json:"name"`
	Query    string `json:"query"`
	Answerer string `json:"answered_by"`
	Path     string `json:"path"`
	Reps     []Rep  `json:"reps"`
	Error    string `json:"error,omitempty"`
}

// caseInfo is what distinguishes the cases.
type caseInfo struct {
	query, answer, answerer, path string
	bridge                        bool
}

var cases = map[string]caseInfo{
	CaseSwitch:          {switchName, switchAnswer, "vswitchd (peephole DNS)", "vswitchd", false},
	CaseDnsmasqVswitchd: {outsideName, outsideAnswer, "dnsmasq", "vswitchd", false},
	CaseDnsmasqBridge:   {outsideName, outsideAnswer, "dnsmasq", "Linux bridge", true},
}

// Run measures every case of s in order on one topology and returns what it
// measured; a case that fails records its error and the run goes on.
func Run(ctx context.Context, s Settings, log io.Writer) (results []CaseResult, err error) {
	dir, err := os.MkdirTemp("", "vsb-dns-")
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if keep {
			fmt.Fprintf(log, "config and logs kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	fmt.Fprintf(log, "topology: netns %s (dnsperf, %s) -- %s/%s -- netns %s (dnsmasq, %s)\n",
		e2e.NewNames(os.Getpid()).SrcNS, clientIP, e2e.NewNames(os.Getpid()).P0, e2e.NewNames(os.Getpid()).P1,
		e2e.NewNames(os.Getpid()).DstNS, serverIP)
	topo, err := setupTopology(ctx)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	defer func() { err = errors.Join(err, topo.close()) }()
	dm, err := startDnsmasq(ctx, topo, dir, s.ServerCPU)
	if err != nil {
		keep = true
		return nil, err
	}
	defer func() {
		if serr := dm.stop(); serr != nil {
			keep = true
			err = errors.Join(err, serr)
		}
	}()
	pr, err := newProber(topo.SrcNS, serverIP)
	if err != nil {
		return nil, err
	}
	defer pr.Close()

	var vs *vswitchd
	stopVswitchd := func() error {
		if vs == nil {
			return nil
		}
		err := vs.stop()
		vs = nil
		if err != nil {
			keep = true
		}
		return err
	}
	defer func() { err = errors.Join(err, stopVswitchd()) }()

	// Rounds: every case once per round, so that a change in the machine's
	// load during the run (this is a shared machine) hits every case alike
	// instead of one block of repetitions.
	results = make([]CaseResult, len(s.Cases))
	for i, name := range s.Cases {
		ci := cases[name]
		results[i] = CaseResult{Name: name, Query: ci.query + " A", Answerer: ci.answerer, Path: ci.path}
	}
	for round := 1; round <= s.Reps && ctx.Err() == nil; round++ {
		for i, name := range s.Cases {
			cr := &results[i]
			if ctx.Err() != nil || cr.Error != "" {
				continue
			}
			ci := cases[name]
			fmt.Fprintf(log, "round %d, case %s: %s answered by %s through %s\n", round, name, cr.Query, ci.answerer, ci.path)
			// Bring up the path: vswitchd or the bridge, never both.
			var perr error
			if ci.bridge {
				perr = stopVswitchd()
				if perr == nil && !topo.bridgeUp {
					perr = topo.bridge(ctx)
				}
			} else {
				perr = topo.unbridge()
				if perr == nil && vs == nil {
					vs, perr = startVswitchd(ctx, s, topo, dir)
				}
			}
			if perr == nil {
				// Who answers: the expected server, with its own answer.
				perr = waitFor(ctx, 20*time.Second, func() error { return pr.checkOnce(ctx, ci.query, ci.answer) })
			}
			var r Rep
			if perr == nil {
				r, perr = runRep(ctx, s, topo, pr, vs, ci, dir)
			}
			if perr != nil {
				cr.Error = fmt.Sprintf("round %d: %v", round, perr)
				keep = true
				fmt.Fprintf(log, "  error: %v\n", perr)
				continue
			}
			cr.Reps = append(cr.Reps, r)
			fmt.Fprintf(log, "  %s\n", r.line())
		}
	}
	return results, ctx.Err()
}

// runRep runs dnsperf with the prober alongside, then the prober alone.
func runRep(ctx context.Context, s Settings, topo *topology, pr *prober, vs *vswitchd, ci caseInfo, dir string) (Rep, error) {
	var r Rep
	var c0 dnsCounters
	if vs != nil {
		var err error
		if c0, err = vs.dnsStats(ctx); err != nil {
			return r, err
		}
	}
	cpu0, err := e2e.ReadCPUTimes()
	if err != nil {
		return r, err
	}
	// The prober covers the middle of the dnsperf window: it starts once
	// dnsperf has ramped up and ends before dnsperf stops sending.
	var wg sync.WaitGroup
	var perr error
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-pctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		r.ProbeLoad, perr = pr.run(pctx, ci.query, ci.answer, s.ProbeRate, s.dur-time.Second)
	}()
	// The switch's busy share is a rate over its last one-second sample:
	// read it in the middle of the window, not after dnsperf has stopped.
	var mid dnsCounters
	var midErr error
	if vs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-pctx.Done():
				midErr = pctx.Err()
				return
			case <-time.After(s.dur / 2):
			}
			mid, midErr = vs.dnsStats(pctx)
		}()
	}
	res, out, err := runDnsperf(ctx, dnsperfSpec{
		NS: topo.SrcNS, CPU: s.ClientCPU, Server: serverIP.String(), Name: ci.query, Dur: s.dur,
		Clients: s.Clients, Outstanding: s.Outstanding, TimeoutS: s.TimeoutS, Dir: dir,
	})
	cpu1, cerr := e2e.ReadCPUTimes()
	pcancel()
	wg.Wait()
	if err != nil {
		return r, err
	}
	if perr != nil {
		return r, perr
	}
	if cerr != nil {
		return r, cerr
	}
	r.Dnsperf = res
	r.CPUBusy = e2e.BusyPercent(cpu0, cpu1)
	switch {
	case res.CPUShare >= s.ClientBound:
		r.ClientBound, r.ClientBoundWhy = true, fmt.Sprintf("dnsperf used %.0f%% of a core", 100*res.CPUShare)
	case s.ClientCPU < len(r.CPUBusy) && r.CPUBusy[s.ClientCPU] >= s.ClientCoreBusy:
		r.ClientBound, r.ClientBoundWhy = true, fmt.Sprintf("client core %d %.0f%% busy (dnsperf %.0f%% of it)",
			s.ClientCPU, r.CPUBusy[s.ClientCPU], 100*res.CPUShare)
	}
	if res.Completed == 0 {
		return r, fmt.Errorf("dnsperf completed no query: %s", lastLines(out, 8))
	}
	if n := res.RCodes["NOERROR"]; n != res.Completed {
		return r, fmt.Errorf("dnsperf: %d of %d answers NOERROR: %s", n, res.Completed, lastLines(out, 8))
	}
	if vs != nil {
		c1, err := vs.dnsStats(ctx)
		if err != nil {
			return r, err
		}
		a, p := c1.Answered-c0.Answered, c1.OutsideZone-c0.OutsideZone
		r.SwitchAnswered, r.SwitchPassed = &a, &p
		if midErr != nil {
			return r, fmt.Errorf("switch stats mid-run: %w", midErr)
		}
		busy := mid.BusyPct
		r.SwitchBusyPct = &busy
		if nb := c1.Batches - c0.Batches; nb > 0 {
			mb := float64(c1.RxPackets-c0.RxPackets) / float64(nb)
			r.SwitchBatch = &mb
		}
	}
	if s.idleDur > 0 {
		idle, err := pr.run(ctx, ci.query, ci.answer, s.ProbeRate, s.idleDur)
		if err != nil {
			return r, err
		}
		r.ProbeIdle = &idle
	}
	if s.openDur > 0 {
		open, err := runOpenLoop(ctx, s, topo, vs, ci)
		if err != nil {
			return r, err
		}
		r.Open = &open
	}
	return r, nil
}

// line is a one-line progress report of a repetition.
func (r Rep) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f q/s (lost %d), dnsperf mean %.3f ms, dnsperf CPU %.0f%%; probe under load p50 %.0f µs p99 %.0f µs (lost %d, wrong %d)",
		r.Dnsperf.QPS, r.Dnsperf.Lost, r.Dnsperf.AvgLatencyMs, 100*r.Dnsperf.CPUShare,
		r.ProbeLoad.P50Us, r.ProbeLoad.P99Us, r.ProbeLoad.Lost, r.ProbeLoad.Wrong)
	if r.ProbeIdle != nil {
		fmt.Fprintf(&b, "; idle p50 %.0f µs p99 %.0f µs", r.ProbeIdle.P50Us, r.ProbeIdle.P99Us)
	}
	if r.SwitchAnswered != nil {
		fmt.Fprintf(&b, "; switch answered %d, passed %d", *r.SwitchAnswered, *r.SwitchPassed)
	}
	if r.SwitchBusyPct != nil {
		fmt.Fprintf(&b, ", worker busy %.1f%%", *r.SwitchBusyPct)
		if r.SwitchBatch != nil {
			fmt.Fprintf(&b, ", mean batch %.1f", *r.SwitchBatch)
		}
	}
	if r.ClientBound {
		b.WriteString(" [client-bound: " + r.ClientBoundWhy + "]")
	}
	if o := r.Open; o != nil {
		fmt.Fprintf(&b, "; open loop: %.0f answers/s for %.2f M queries/s sent", o.QPS, o.GenMpps)
		if o.SwitchAnswered != nil {
			fmt.Fprintf(&b, " (switch answered %d, client got %d)", *o.SwitchAnswered, o.Answered)
		}
	}
	return b.String()
}
