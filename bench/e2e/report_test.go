package e2e

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{3}, 3},
		{"odd unsorted", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := Median(tc.in); got != tc.want {
				t.Fatalf("Median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("Median modified its input")
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	reps := []Rep{
		{RxMpps: 0.70, TxMpps: 3.0, CPUBusy: []float64{90, 10}},
		{RxMpps: 0.60, TxMpps: 4.0, CPUBusy: []float64{95, 20}},
		{RxMpps: 0.65, TxMpps: 5.0, CPUBusy: []float64{100, 30}},
	}
	s := Summarize(reps)
	if s.N != 3 || s.RxMin != 0.60 || s.RxMedian != 0.65 || s.RxMax != 0.70 || s.TxMedian != 4.0 {
		t.Fatalf("summary %+v", s)
	}
	if len(s.CPUBusy) != 2 || s.CPUBusy[0] != 95 || s.CPUBusy[1] != 20 {
		t.Fatalf("cpu %v", s.CPUBusy)
	}
	if z := Summarize(nil); z.N != 0 || z.CPUBusy != nil {
		t.Fatalf("empty summary %+v", z)
	}
}

func sampleResults() []CaseResult {
	rep := func(rx, tx float64) Rep { return Rep{RxMpps: rx, TxMpps: tx, CPUBusy: []float64{93, 1}} }
	return []CaseResult{
		{Case: CaseBridge, Label: "linux-bridge", Note: "static fdb", Size: 64, Flows: 1,
			Reps: []Rep{rep(0.6, 0.6), rep(0.7, 0.7), rep(0.8, 0.8)}},
		{Case: CaseRedirect, Label: "xdp-redirect", Note: "bpf_redirect", Size: 64, Flows: 1,
			Reps: []Rep{rep(4, 4)}},
		{Case: CaseVswitchd, Label: "vswitchd", Note: "AF_XDP", Size: 64, Flows: 1,
			Reps: []Rep{rep(0.84, 3.5), rep(0.8, 3.6), rep(0.9, 3.7)}},
		{Case: CaseVswitchd, Label: "vswitchd", Note: "AF_XDP", Size: 1500, Flows: 1,
			Error: "start: vswitchd binary: missing | really"},
	}
}

func TestRatios(t *testing.T) {
	qs := Ratios(sampleResults())
	if len(qs) != 2 {
		t.Fatalf("got %d ratios, want 2", len(qs))
	}
	q := qs[0]
	if q.Size != 64 || q.VsBridge == nil || q.VsRedirect == nil {
		t.Fatalf("ratio %+v", q)
	}
	if *q.VsBridge != 0.84/0.7 || *q.VsRedirect != 0.84/4 {
		t.Fatalf("ratios %v %v", *q.VsBridge, *q.VsRedirect)
	}
	if qs[1].VsBridge != nil || qs[1].VsRedirect != nil {
		t.Fatalf("failed vswitchd row has ratios: %+v", qs[1])
	}
}

func TestMarkdownTable(t *testing.T) {
	got := MarkdownTable(sampleResults(), []int{0, 1})
	want := `| case | frame B | flows | reps | rx Mpps min | rx median | rx max | gen tx Mpps | CPU0 % | CPU1 % | notes |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
| linux-bridge | 64 | 1 | 3 | 0.600 | **0.700** | 0.800 | 0.700 | 93 | 1 | static fdb |
| xdp-redirect | 64 | 1 | 1 | 4.000 | **4.000** | 4.000 | 4.000 | 93 | 1 | bpf_redirect |
| vswitchd | 64 | 1 | 3 | 0.800 | **0.840** | 0.900 | 3.600 | 93 | 1 | AF_XDP |
| vswitchd | 1500 | 1 | 0 | - | - | - | - | - | - | **error**: start: vswitchd binary: missing \| really |
`
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	ratios := MarkdownRatios(Ratios(sampleResults()))
	for _, s := range []string{"| 64 | 1 | 1.20 | 0.21 |", "| 1500 | 1 | n/a | n/a |"} {
		if !strings.Contains(ratios, s) {
			t.Errorf("ratios table lacks %q:\n%s", s, ratios)
		}
	}
	if MarkdownRatios(nil) != "" {
		t.Error("ratios table without vswitchd rows is not empty")
	}
}

func TestCPUModel(t *testing.T) {
	in := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n"
	if got := cpuModel([]byte(in)); got != "AMD EPYC 7B13" {
		t.Fatalf("got %q", got)
	}
	if got := cpuModel(nil); got != "unknown" {
		t.Fatalf("got %q", got)
	}
}
