package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

const benchOut = `goos: linux
goarch: amd64
pkg: github.com/vswitch/vswitch/pipeline
cpu: Intel(R) Xeon(R) Processor
BenchmarkParse-2          	12345678	        95.31 ns/op	       0 B/op	       0 allocs/op
BenchmarkBatch/size=64-2  	  100000	     10234 ns/op	   6.25 Mpps	       0 B/op	       0 allocs/op
PASS
ok  	github.com/vswitch/vswitch/pipeline	2.345s
pkg: github.com/vswitch/vswitch/switch
BenchmarkFDBLookup-2      	50000000	        21.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkNoMem-2          	1000	      1000 ns/op
--- FAIL: BenchmarkBroken
BenchmarkGarbage-2 notanumber 1 ns/op
PASS
`

func TestParseBench(t *testing.T) {
	rs := parseBench(benchOut)
	if len(rs) != 4 {
		t.Fatalf("parsed %d results, want 4: %+v", len(rs), rs)
	}
	f := func(v float64) *float64 { return &v }
	want := []MicroResult{
		{Package: "github.com/vswitch/vswitch/pipeline", Name: "BenchmarkParse-2", Iterations: 12345678,
			NsPerOp: 95.31, BytesPerOp: f(0), AllocsPerOp: f(0)},
		{Package: "github.com/vswitch/vswitch/pipeline", Name: "BenchmarkBatch/size=64-2", Iterations: 100000,
			NsPerOp: 10234, BytesPerOp: f(0), AllocsPerOp: f(0), Extra: map[string]float64{"Mpps": 6.25}},
		{Package: "github.com/vswitch/vswitch/switch", Name: "BenchmarkFDBLookup-2", Iterations: 50000000,
			NsPerOp: 21, BytesPerOp: f(16), AllocsPerOp: f(1)},
		{Package: "github.com/vswitch/vswitch/switch", Name: "BenchmarkNoMem-2", Iterations: 1000, NsPerOp: 1000},
	}
	if !reflect.DeepEqual(rs, want) {
		got, _ := json.Marshal(rs)
		exp, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
	m := &MicroReport{Results: rs}
	fails := m.AllocFailures()
	if len(fails) != 1 || !strings.Contains(fails[0], "BenchmarkFDBLookup-2: 1 allocs/op") {
		t.Fatalf("alloc failures %v", fails)
	}
	md := microMarkdown(m)
	for _, s := range []string{"| **1** |", "6.25 Mpps", "| - | - |"} {
		if !strings.Contains(md, s) {
			t.Errorf("micro table lacks %q:\n%s", s, md)
		}
	}
}

func TestRunMicroSkipsEmptyPatterns(t *testing.T) {
	dir := t.TempDir()
	rep := runMicro(t.Context(), microSpec{Dir: dir, Packages: []string{"./nothing/"}}, io.Discard)
	if rep.Error == "" || len(rep.Skipped) != 1 || len(rep.Packages) != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestParseSettings(t *testing.T) {
	s, err := parseSettings("ci", []string{"-bin", "/x/bin", "-cases", "bridge, redirect"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.Bin != "/x/bin" || !reflect.DeepEqual(s.Cases, []string{"bridge", "redirect"}) ||
		!reflect.DeepEqual(s.Sizes, []int{64}) || !reflect.DeepEqual(s.Flows, []int{1}) ||
		s.Reps != 1 || s.duration != 3*time.Second || !s.Micro || s.MicroBenchtime == "" {
		t.Fatalf("ci settings %+v", s)
	}
	s, err = parseSettings("e2e", []string{"-sizes", "64,1500", "-flows", "1,1000", "-out", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.Micro || s.Out != "" || s.Reps != 3 || s.duration != 10*time.Second || len(s.Sizes) != 2 {
		t.Fatalf("e2e settings %+v", s)
	}
	if _, err := parseSettings("e2e", []string{"-sizes", "64,x"}, io.Discard); err == nil {
		t.Fatal("bad -sizes accepted")
	}
}

// ci stays lean (no DPDK or OVS on CI machines); full runs include testpmd
// and ovs.
func TestDefaultCases(t *testing.T) {
	if got := defaultSettings("ci").Cases; !reflect.DeepEqual(got, []string{"bridge", "redirect", "vswitchd"}) {
		t.Fatalf("ci cases %v", got)
	}
	for _, mode := range []string{"e2e", "all"} {
		got := defaultSettings(mode).Cases
		if !reflect.DeepEqual(got, e2e.DefaultCases) || !slices.Contains(got, e2e.CaseTestpmd) || !slices.Contains(got, e2e.CaseOVS) {
			t.Fatalf("%s cases %v", mode, got)
		}
	}
}

func sampleReport(mode string, allocs float64) *Report {
	s := defaultSettings(mode)
	s.DurationS = s.duration.Seconds()
	r := &Report{Date: "2026-11-25T10:00:00Z", Host: e2e.HostInfo{Kernel: "6.18", CPUModel: "cpu", Cores: 2}, Settings: s}
	r.Micro = &MicroReport{Command: "go test", Raw: benchOut,
		Results: []MicroResult{{Name: "BenchmarkX-2", NsPerOp: 1, AllocsPerOp: &allocs}}}
	r.setE2E([]e2e.CaseResult{
		{Case: e2e.CaseBridge, Label: "linux-bridge", Size: 64, Flows: 1, Reps: []e2e.Rep{{RxMpps: 0.5, TxMpps: 0.5}}},
		{Case: e2e.CaseVswitchd, Label: "vswitchd", Size: 64, Flows: 1, Error: "start: no binary"},
	}, nil)
	return r
}

func TestExitCode(t *testing.T) {
	var stderr bytes.Buffer
	if c := exitCode(sampleReport("ci", 0), "ci", nil, &stderr); c != 1 || !strings.Contains(stderr.String(), "no binary") {
		t.Fatalf("case error: exit %d, %s", c, stderr.String())
	}
	r := sampleReport("ci", 2)
	r.E2E = r.E2E[:1]
	stderr.Reset()
	if c := exitCode(r, "ci", nil, &stderr); c != 1 || !strings.Contains(stderr.String(), "allocates") {
		t.Fatalf("allocs in ci: exit %d, %s", c, stderr.String())
	}
	if c := exitCode(r, "all", nil, io.Discard); c != 0 {
		t.Fatalf("allocs outside ci must not fail: exit %d", c)
	}
}

func TestWriteReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	r := sampleReport("all", 0)
	md := r.Markdown()
	for _, s := range []string{"kernel: 6.18", "cpu: cpu, 2 cores", "| linux-bridge | 64 | 1 | 1 |", "**error**: start: no binary",
		"## Micro benchmarks", "Ratios"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	paths, err := writeReport(dir, ts, r, md)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"results-20261125-100000.json", "results-20261125-100000.md", "results-20261125-100000.bench.txt"}
	if len(paths) != len(want) {
		t.Fatalf("wrote %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] {
			t.Errorf("file %s, want %s", p, want[i])
		}
	}
	data, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		E2E []struct {
			Label   string      `json:"label"`
			Summary e2e.Summary `json:"summary"`
		} `json:"e2e"`
		Micro struct{ Results []MicroResult } `json:"micro"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.E2E) != 2 || back.E2E[0].Summary.RxMedian != 0.5 || len(back.Micro.Results) != 1 {
		t.Fatalf("json round trip: %+v", back)
	}
	if raw, _ := os.ReadFile(paths[2]); string(raw) != benchOut {
		t.Error("raw benchmark text differs")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
}

func TestUsage(t *testing.T) {
	if c := realMain(nil, io.Discard, io.Discard); c != 2 {
		t.Fatalf("no args: exit %d", c)
	}
	if c := realMain([]string{"bogus"}, io.Discard, io.Discard); c != 2 {
		t.Fatalf("unknown command: exit %d", c)
	}
}
