package peephole

import (
	"testing"

	"github.com/vswitch/vswitch/pipeline"
)

// The benchmarks answer a full batch of 64 requests per iteration. Each
// iteration first copies the request template back into the 64 frames and
// parses them; the copy (60-90 bytes a packet) and pipeline.Parse are inside
// the timed loop and included in ns/op. ns/op is per batch; ns/pkt is per
// packet, copy and parse included.

func benchStage(b *testing.B, s pipeline.Stage, frame []byte) {
	var batch pipeline.Batch
	bufs := make([][]byte, pipeline.MaxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, len(frame), 2048)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		batch.Len = pipeline.MaxBatch
		for i := range batch.Len {
			p := &batch.Pkts[i]
			p.Data = bufs[i][:len(frame)]
			copy(p.Data, frame)
			p.Reset()
			p.Parse()
		}
		s.Process(&batch)
		if batch.Pkts[0].Verdict != pipeline.VerdictReply {
			b.Fatalf("verdict %v", batch.Pkts[0].Verdict)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/pipeline.MaxBatch, "ns/pkt")
}

func BenchmarkARPAnswer(b *testing.B) {
	benchStage(b, NewARPStage(nbrTable(b)), arpFrame(b, arpRequest(0, nbrIP(nbrBound4))))
}

func BenchmarkNDAnswer(b *testing.B) {
	benchStage(b, NewNDStage(nbrTable(b)), nsFrame(b, nsRequest(0, nbrBound6)))
}
