package main

import (
	"strings"
	"testing"
	"time"
)

func TestReportRatiosAndFailedCase(t *testing.T) {
	s := Settings{Flows: []int{1, 1000}, Size: 64, Reps: 2, GenCPU: 0, SwCPU: 1, dur: time.Second}
	r := newReport(time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC), s, []string{"-quick"})
	rep := func(mpps float64) Rep { return Rep{Sent: 100, Received: 100, Elapsed: 1, RxMpps: mpps, TxMpps: mpps} }
	r.add([]CaseResult{
		{Case: CaseLinux, Size: 64, Flows: 1, Reps: []Rep{rep(1), rep(0.8)}},
		{Case: CaseLinux, Size: 64, Flows: 1000, Reps: []Rep{rep(1), rep(1)}},
		{Case: CaseLinuxNft, Size: 64, Flows: 1000, Reps: []Rep{rep(0.05), rep(0.05)}},
		{Case: CaseVswitchd, Size: 64, Flows: 1000, Reps: []Rep{rep(0.95), rep(0.95)}, Unrouted: []uint64{0, 3}},
		{Case: CaseVswitchdACL, Size: 64, Flows: 1000, Error: "start: vswitchd exited before ready; log: field router not found"},
	})
	r.finish()
	if len(r.Ratios) != 2 {
		t.Fatalf("%d ratio rows, want 2", len(r.Ratios))
	}
	q := r.Ratios[1]
	if q.Plain == nil || *q.Plain != 0.95 || q.ACL != nil || !strings.HasPrefix(q.PlainMet, "met") || q.ACLTarget != "n/a" {
		t.Errorf("1000 flows: %+v", q)
	}
	if r.Ratios[0].PlainMet != "-" {
		t.Errorf("1 flow judged against the target: %q", r.Ratios[0].PlainMet)
	}
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "field router not found") {
		t.Errorf("errors: %q", r.Errors)
	}
	md := r.Markdown()
	for _, want := range []string{"2026-11-25T13:00:00Z", "make bench-routed", r.Machine, "**failed**: start: vswitchd exited", "| 1000 | 1.000 | 0.950 | 0.95 | met"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	tsv := strings.Split(strings.TrimSpace(r.TSV()), "\n")
	if len(tsv) != 1+2+2+2+2+1 {
		t.Fatalf("%d TSV lines:\n%s", len(tsv), strings.Join(tsv, "\n"))
	}
	cols := len(strings.Split(tsv[0], "\t"))
	for i, l := range tsv {
		if n := len(strings.Split(l, "\t")); n != cols {
			t.Errorf("TSV line %d has %d columns, header %d: %q", i, n, cols, l)
		}
	}
	if last := tsv[len(tsv)-1]; !strings.Contains(last, CaseVswitchdACL+"\t64\t1000\t0\t") || !strings.HasSuffix(last, "field router not found") {
		t.Errorf("failed case row: %q", last)
	}
}

func TestReportCallsOutLinuxFarFromAnchor(t *testing.T) {
	s := Settings{Flows: []int{1000}, Size: 64, Reps: 1, dur: time.Second}
	r := newReport(time.Now(), s, nil)
	rep := func(mpps float64) []Rep { return []Rep{{Sent: 1, Received: 1, Elapsed: 1, RxMpps: mpps}} }
	r.add([]CaseResult{
		{Case: CaseLinux, Flows: 1000, Reps: rep(0.9)},
		{Case: CaseLinuxNft, Flows: 1000, Reps: rep(0.02)},
		{Case: CaseVswitchdACL, Flows: 1000, Reps: rep(0.244)},
	})
	r.finish()
	md := r.Markdown()
	if strings.Contains(md, "linux-route at 1000 flows") {
		t.Error("plain routing within 25% of its anchor called out")
	}
	if !strings.Contains(md, "linux-route-nft1000 at 1000 flows measured 0.020 Mpps here, -67% off") ||
		!strings.Contains(md, "vswitchd-route-acl1000 / anchor = 4.00") {
		t.Errorf("nft1000 deviation not called out:\n%s", md)
	}
}

// TestReportMergesRounds: rounds of one case and flow count become one
// entry over all their repetitions; the first error stands.
func TestReportMergesRounds(t *testing.T) {
	s := Settings{Flows: []int{1000}, Size: 64, Reps: 3, dur: time.Second}
	r := newReport(time.Now(), s, nil)
	rep := func(mpps float64) []Rep { return []Rep{{Sent: 1, Received: 1, Elapsed: 1, RxMpps: mpps}} }
	for i, v := range []float64{0.5, 0.3, 0.4} {
		c := CaseResult{Case: CaseVswitchd, Flows: 1000, Reps: rep(v), Unrouted: []uint64{uint64(i)}, Diagnostics: "round"}
		if i == 1 {
			c.Error = "first"
		}
		if i == 2 {
			c.Error = "second"
		}
		r.add([]CaseResult{c, {Case: CaseLinux, Flows: 1000, Reps: rep(v * 2)}})
	}
	if len(r.Cases) != 2 {
		t.Fatalf("%d case entries, want 2", len(r.Cases))
	}
	v := r.find(CaseVswitchd, 1000)
	if len(v.Reps) != 3 || v.Summary.RxMedian != 0.4 || len(v.Unrouted) != 3 || v.Error != "first" {
		t.Errorf("vswitchd: %d reps, median %v, unrouted %v, error %q", len(v.Reps), v.Summary.RxMedian, v.Unrouted, v.Error)
	}
	if l := r.find(CaseLinux, 1000); len(l.Reps) != 3 || l.Summary.RxMedian != 0.8 {
		t.Errorf("linux: %+v", l.Summary)
	}
	if len(r.Errors) != 2 {
		t.Errorf("run errors %q, want both rounds'", r.Errors)
	}
}
