package main

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vswitch/vswitch/bench/e2e"
)

// dnsperf 2.10.0's end-of-run output, as measured through the bridge.
const dnsperfOutput = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 10.201.1.2 -d q.txt -l 5 -c 4 -q 200
[Status] Sending queries (to 10.201.1.2:53)
[Status] Started at: Wed Nov 25 10:20:01 2026
[Status] Stopping after 5.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         158876
  Queries completed:    158869 (100.00%)
  Queries lost:         7 (0.00%)

  Response codes:       NOERROR 158860 (99.99%), NXDOMAIN 9 (0.01%)
  Average packet size:  request 31, response 47
  Run time (s):         5.313907
  Queries per second:   29896.834852

  Average Latency (s):  0.005566 (min 0.000008, max 0.564017)
  Latency StdDev (s):   0.036006

`

func TestParseDnsperf(t *testing.T) {
	r, err := ParseDnsperf(dnsperfOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := DnsperfResult{
		Sent: 158876, Completed: 158869, Lost: 7, RunTimeS: 5.313907, QPS: 29896.834852,
		AvgLatencyMs: 5.566, MinLatencyMs: 0.008, MaxLatencyMs: 564.017, StdDevMs: 36.006,
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if r.Sent != want.Sent || r.Completed != want.Completed || r.Lost != want.Lost ||
		!near(r.RunTimeS, want.RunTimeS) || !near(r.QPS, want.QPS) || !near(r.AvgLatencyMs, want.AvgLatencyMs) ||
		!near(r.MinLatencyMs, want.MinLatencyMs) || !near(r.MaxLatencyMs, want.MaxLatencyMs) || !near(r.StdDevMs, want.StdDevMs) {
		t.Errorf("ParseDnsperf = %+v, want %+v", r, want)
	}
	if r.RCodes["NOERROR"] != 158860 || r.RCodes["NXDOMAIN"] != 9 || len(r.RCodes) != 2 {
		t.Errorf("RCodes = %v", r.RCodes)
	}
}

func TestParseDnsperfRejects(t *testing.T) {
	for name, out := range map[string]string{
		"empty":           "",
		"no-statistics":   "[Fatal] no queries could be sent\n",
		"missing-qps":     strings.Replace(dnsperfOutput, "Queries per second", "Queries per minute", 1),
		"missing-runtime": strings.Replace(dnsperfOutput, "Run time (s)", "Run time", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := ParseDnsperf(out); err == nil {
				t.Errorf("ParseDnsperf accepted it: %+v", r)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1) // 1..100
	}
	for _, c := range []struct {
		p, want float64
	}{{50, 50}, {99, 99}, {100, 100}, {0.1, 1}, {90, 90}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("Percentile(1..100, %g) = %g, want %g", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %g", got)
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("Percentile([7], 99) = %g", got)
	}
}

func TestSummarizeProbeCountsLossAtTimeout(t *testing.T) {
	lat := []float64{100, 110, 120, 1e6} // one lost query recorded as 1 s
	r := summarizeProbe(lat, 4, 1, 0, "")
	if r.P50Us != 110 || r.P99Us != 1e6 || r.MaxUs != 1e6 || r.Lost != 1 {
		t.Errorf("summarizeProbe = %+v", r)
	}
}

func rep(qps, p99 float64, cpu float64, bound bool) Rep {
	return Rep{
		Dnsperf:     DnsperfResult{QPS: qps, Sent: 1000, Completed: 1000, CPUShare: cpu},
		ProbeLoad:   ProbeResult{P50Us: p99 / 2, P99Us: p99},
		ProbeIdle:   &ProbeResult{P50Us: 50, P99Us: 80},
		CPUBusy:     []float64{90, 100},
		ClientBound: bound,
	}
}

func TestReportRatiosAndMarkdown(t *testing.T) {
	s := Settings{Cases: AllCases, Reps: 3, DurationS: 10, IdleS: 3, Clients: 4, Outstanding: 200, TimeoutS: 1,
		ProbeRate: 500, ClientCPU: 0, ServerCPU: 1, PollMode: "busy", ClientBound: 0.9}
	r := &Report{Date: "2026-11-25T10:00:00Z", Settings: s}
	r.Host.Cores = 2
	r.set([]CaseResult{
		{Name: CaseSwitch, Answerer: "vswitchd", Path: "vswitchd", Reps: []Rep{rep(90000, 400, 0.95, true), rep(100000, 300, 0.97, true), rep(80000, 500, 0.9, true)}},
		{Name: CaseDnsmasqVswitchd, Answerer: "dnsmasq", Path: "vswitchd", Reps: []Rep{rep(20000, 3000, 0.3, false)}},
		{Name: CaseDnsmasqBridge, Answerer: "dnsmasq", Path: "Linux bridge", Reps: []Rep{rep(25000, 2000, 0.3, false), rep(30000, 1000, 0.3, false)}},
	}, nil)
	if got := r.Cases[0].Summary; got.QPS != 90000 || got.QPSMin != 80000 || got.QPSMax != 100000 || got.LoadP99Us != 400 || got.ClientBound != 3 {
		t.Errorf("switch summary = %+v", got)
	}
	if got := r.Cases[2].Summary.QPS; got != 27500 {
		t.Errorf("bridge median of two = %g, want 27500", got)
	}
	if len(r.Ratios) != 2 || r.Ratios[0].Versus != CaseDnsmasqBridge {
		t.Fatalf("ratios = %+v", r.Ratios)
	}
	q := r.Ratios[0]
	if q.QPS < 3.27 || q.QPS > 3.28 || q.LoadP99 < 0.26 || q.LoadP99 > 0.27 || !q.AtLeast || q.IdleP99 != 1 {
		t.Errorf("ratio vs bridge = %+v, want q/s 90000/27500, p99 400/1500, lower bound", q)
	}
	mustContain(t, r.Markdown(),
		"| switch | vswitchd | vswitchd | 3 | 80000 | **90000** | 100000 |",
		"client-bound in 3 of 3 reps",
		"| dnsmasq-bridge | ≥ 3.27 (client-bound) | - | 0.27 |",
		"CPU0 % | CPU1 % |")
}

// mustContain fails t for every want that md lacks.
func mustContain(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestReportOpenLoop: open-loop answer rates get their own table and
// ratio column, from the repetitions that ran the phase.
func TestReportOpenLoop(t *testing.T) {
	s := Settings{Cases: AllCases, Reps: 2, DurationS: 10, OpenS: 5, ClientCPU: 0}
	r := &Report{Date: "2026-12-04T10:00:00Z", Settings: s}
	r.Host.Cores = 2
	open := func(rep Rep, qps, gen float64) Rep {
		rep.Open = &OpenLoopResult{QPS: qps, GenMpps: gen, Answered: uint64(qps * 5), Elapsed: 5}
		return rep
	}
	r.set([]CaseResult{
		{Name: CaseSwitch, Reps: []Rep{open(rep(90000, 400, 0.95, true), 400000, 2.5), open(rep(95000, 300, 0.95, true), 500000, 2.7)}},
		{Name: CaseDnsmasqBridge, Reps: []Rep{open(rep(60000, 2000, 0.9, true), 100000, 2.6), rep(61000, 2000, 0.9, true)}},
	}, nil)
	sw, br := r.Cases[0].Summary, r.Cases[1].Summary
	if sw.OpenN != 2 || sw.OpenQPS != 450000 || sw.OpenQPSMin != 400000 || sw.OpenQPSMax != 500000 || sw.OpenGenMpps != 2.6 {
		t.Errorf("switch open-loop summary %+v", sw)
	}
	if br.OpenN != 1 || br.OpenQPS != 100000 {
		t.Errorf("bridge open-loop summary %+v (one rep without the phase)", br)
	}
	if len(r.Ratios) != 1 || r.Ratios[0].OpenQPS != 4.5 {
		t.Fatalf("ratios %+v, want open-loop 4.5", r.Ratios)
	}
	mustContain(t, r.Markdown(),
		"| switch | 2 | 400000 | **450000** | 500000 | 2.60 |",
		"| dnsmasq-bridge | 1 | 100000 | **100000** | 100000 | 2.60 |",
		"| 4.50 |")
}

// TestOpenLoopFrame: the generated query is a well-formed DNS A query for
// the case's name inside a valid UDP/IPv4 frame to the server's port 53.
func TestOpenLoopFrame(t *testing.T) {
	spec, err := openLoopFrame(switchName)
	if err != nil {
		t.Fatal(err)
	}
	f, err := e2e.BuildUDPFrame(spec)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(f[e2e.HeaderLen:][:len(spec.Payload)]); err != nil {
		t.Fatalf("payload is not a DNS message: %v", err)
	}
	if len(m.Question) != 1 || m.Question[0].Name != switchName+"." || m.Question[0].Qtype != dns.TypeA || m.Response || !m.RecursionDesired {
		t.Fatalf("query %v", m.Question)
	}
	if spec.DstPort != dnsPort || !spec.DstIP.Equal(serverIP) || !spec.SrcIP.Equal(clientIP) {
		t.Fatalf("frame goes to %s:%d from %s", spec.DstIP, spec.DstPort, spec.SrcIP)
	}
}

func TestParseSettings(t *testing.T) {
	var sb strings.Builder
	s, err := parseSettings([]string{"-cases", "switch, dnsmasq-bridge", "-dur", "2500ms", "-reps", "2"}, &sb)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Cases, ",") != "switch,dnsmasq-bridge" || s.DurationS != 2 || s.Reps != 2 {
		t.Errorf("settings = %+v", s)
	}
	for _, bad := range [][]string{{"-cases", "nope"}, {"-cases", ","}, {"-dur", "500ms"}, {"-reps", "0"}, {"-open-dur", "-1s"}, {"extra"}} {
		if _, err := parseSettings(bad, &sb); err == nil {
			t.Errorf("parseSettings(%q) accepted", bad)
		}
	}
}
