package vswitch

import (
	"fmt"
	"testing"

	"github.com/vswitch/vswitch/pipeline"
)

// Hot-path benchmarks of the L2 stage and the parse+L2 pipeline. Each
// reports allocations (must be 0 allocs/op) and ns/pkt: ns/op is per batch
// of pipeline.MaxBatch packets.

// l2Flows is a set of known-unicast flows: flow i comes from testMAC(i) on
// port i%nPorts and goes to testMAC(i+1), learned on port (i+1)%nPorts, so
// no flow hairpins.
type l2Flows struct {
	h      *l2Harness
	frames [][]byte
	ports  []uint16
}

const benchPorts = 8

func newL2Flows(tb testing.TB, nFlows int) *l2Flows {
	tb.Helper()
	ports := make([]testPort, benchPorts)
	for i := range ports {
		ports[i] = testPort{index: uint16(i)}
	}
	fl := &l2Flows{h: newL2Harness(ports...)}
	n := max(nFlows, 2)
	for i := 0; i < nFlows; i++ {
		// 22 bytes of payload: 64-byte frames.
		fl.frames = append(fl.frames, udpFrame(tb, testMAC(i), testMAC((i+1)%n), untagged, 22, uint16(i)))
		fl.ports = append(fl.ports, uint16(i%benchPorts))
	}
	if nFlows == 1 { // one flow: its destination lives on another port
		fl.h.fdb.Learn(testMAC(1), 0, 1, fl.h.clock.Load())
	}
	for i := 0; i < nFlows; i++ {
		fl.h.fdb.Learn(testMAC(i), 0, fl.ports[i], fl.h.clock.Load())
	}
	return fl
}

// fill loads the batch with flows base, base+1, ... as a worker's RX loop
// does: frame, input port, Reset.
func (fl *l2Flows) fill(b *pipeline.Batch, base int) int {
	b.Len = pipeline.MaxBatch
	for i := range b.Pkts {
		f := (base + i) % len(fl.frames)
		p := &b.Pkts[i]
		p.Data = fl.frames[f]
		p.InPort = fl.ports[f]
		p.Reset()
	}
	return (base + pipeline.MaxBatch) % len(fl.frames)
}

// checkForwarded fails unless every packet of b was forwarded.
func checkForwarded(tb testing.TB, b *pipeline.Batch) {
	tb.Helper()
	for i, p := range b.Packets() {
		if p.Verdict != pipeline.VerdictForward {
			tb.Fatalf("pkt %d: %v (%v), want forward", i, p.Verdict, p.Reason)
		}
	}
}

func reportPerPacket(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/pipeline.MaxBatch, "ns/pkt")
}

// BenchmarkL2Stage is the L2 stage alone over a parsed batch of 64
// known-unicast frames; only the verdicts are reset between iterations.
func BenchmarkL2Stage(b *testing.B) {
	for _, flows := range []int{1, 1000} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			fl := newL2Flows(b, flows)
			st := NewL2Stage(fl.h.fdb, &fl.h.clock)
			batch := &fl.h.batch
			fl.fill(batch, 0)
			pipeline.ParseStage{}.Process(batch)
			NewIngressStage(&fl.h.ports).Process(batch)
			st.Process(batch)
			checkForwarded(b, batch)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch.Pkts {
					p := &batch.Pkts[i]
					p.Verdict, p.Reason, p.OutPort = pipeline.VerdictNone, pipeline.DropNone, pipeline.NoPort
				}
				st.Process(batch)
			}
			reportPerPacket(b)
		})
	}
}

// BenchmarkPipelineL2 is ParseStage + IngressStage + L2Stage over batches of 64 64-byte
// UDP frames, each packet Reset every iteration as a worker does after RX.
// With 1000 flows each batch takes the next 64 flows (source MACs on 8
// ports), so the FDB is hit all over.
func BenchmarkPipelineL2(b *testing.B) {
	for _, flows := range []int{1, 1000} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			fl := newL2Flows(b, flows)
			batch := &fl.h.batch
			for base, n := 0, 0; n < flows; n += pipeline.MaxBatch { // warm and check every flow
				base = fl.fill(batch, base)
				fl.h.pipe.Process(batch)
				checkForwarded(b, batch)
			}
			base := 0
			b.ReportAllocs()
			b.SetBytes(int64(pipeline.MaxBatch * len(fl.frames[0])))
			for b.Loop() {
				base = fl.fill(batch, base)
				fl.h.pipe.Process(batch)
			}
			reportPerPacket(b)
		})
	}
}

// TestL2PipelineAllocs holds the hot path to 0 allocations where every CI
// run sees it, not only in benchmarks.
func TestL2PipelineAllocs(t *testing.T) {
	fl := newL2Flows(t, 1000)
	batch := &fl.h.batch
	base := 0
	if n := testing.AllocsPerRun(100, func() {
		base = fl.fill(batch, base)
		fl.h.pipe.Process(batch)
	}); n != 0 {
		t.Fatalf("parse+L2 over a batch allocates %.1f times", n)
	}
	checkForwarded(t, batch)
}
