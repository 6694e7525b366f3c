package main

import (
	"runtime"
	"testing"

	"github.com/vswitch/vswitch/bench/e2e"
)

// TestAddThroughputMergesRounds: rounds of one path and size become one
// entry whose median is over every round's repetition, the first error
// stays.
func TestAddThroughputMergesRounds(t *testing.T) {
	r := &Report{Settings: Settings{Sizes: []int{64}}, Diagnostics: map[string]string{}}
	rep := func(mpps float64) []e2e.Rep { return []e2e.Rep{{RxMpps: mpps, Received: 1}} }
	r.addThroughput(Throughput{Path: pathMemring, Size: 64, Reps: rep(6), GenRingFull: []uint64{1}, Diagnostics: "a"})
	r.addThroughput(Throughput{Path: pathVeth, Size: 64, Reps: rep(0.5)})
	r.addThroughput(Throughput{Path: pathMemring, Size: 64, Reps: rep(4), GenRingFull: []uint64{2}, Diagnostics: "b"})
	r.addThroughput(Throughput{Path: pathVeth, Size: 64, Reps: rep(0.4), Error: "first"})
	r.addThroughput(Throughput{Path: pathMemring, Size: 64, Reps: rep(5), GenRingFull: []uint64{3}})
	r.addThroughput(Throughput{Path: pathVeth, Size: 64, Reps: rep(0.6), Error: "second"})
	if len(r.Throughput) != 2 {
		t.Fatalf("%d entries, want one per path", len(r.Throughput))
	}
	m, v := r.find(pathMemring, 64), r.find(pathVeth, 64)
	if m == nil || v == nil {
		t.Fatal("entries missing")
	}
	if len(m.Reps) != 3 || m.Summary.RxMedian != 5 || len(m.GenRingFull) != 3 || m.Diagnostics != "b" {
		t.Errorf("memring: %d reps, median %v, ring-full %v, diagnostics %q", len(m.Reps), m.Summary.RxMedian, m.GenRingFull, m.Diagnostics)
	}
	if len(v.Reps) != 3 || v.Summary.RxMedian != 0.5 || v.Error != "first" {
		t.Errorf("veth: %d reps, median %v, error %q", len(v.Reps), v.Summary.RxMedian, v.Error)
	}
	if len(r.Errors) != 2 {
		t.Errorf("report errors %v, want both rounds' errors", r.Errors)
	}
}

// TestCrossCoreRTT: the ping-pong between two cores finishes and gives a
// plausible time (a handoff cannot take less than a nanosecond nor, on
// an idle machine, anything near the 2 s timeout).
func TestCrossCoreRTT(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two cpus")
	}
	// As in the harness, which pins itself to one core first: the
	// runtime then gives it one P.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ns, err := crossCoreRTT(0, 1, 20000)
	if err != nil {
		t.Fatal(err)
	}
	if ns < 1 || ns > 100000 {
		t.Fatalf("round trip %.1f ns", ns)
	}
}
