package peephole

import (
	"net/netip"
	"sync/atomic"
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

// BenchmarkARPAnswerGleaned answers from a gleaned binding; every request
// also refreshes its sender's gleaned binding.
func BenchmarkARPAnswerGleaned(b *testing.B) {
	bt, g, _ := glTables(b)
	glLearn(g, 0, nbrOther4, glMAC1, 1)
	benchStage(b, NewARPStage(bt), arpFrame(b, arpRequest(0, nbrIP(nbrOther4))))
}

func BenchmarkNDAnswerGleaned(b *testing.B) {
	bt, g, _ := glTables(b)
	glLearn(g, 0, nbrOther6, glMAC1, 1)
	benchStage(b, NewNDStage(bt), nsFrame(b, nsRequest(0, nbrOther6)))
}

// benchKeys are 4096 IPv4 keys, v4-mapped, spread over 4 VLANs.
func benchKeys() [][16]byte {
	keys := make([][16]byte, 4096)
	for i := range keys {
		keys[i] = netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)}).As16()
	}
	return keys
}

// BenchmarkGleanLearn is one learn per op. "refresh" relearns known
// bindings in a table with room (the steady state), "new" cycles 4096 keys
// through a 1024-slot table so that every learn replaces a binding.
func BenchmarkGleanLearn(b *testing.B) {
	keys := benchKeys()
	for _, bc := range []struct {
		name string
		size int
	}{{"refresh", 8192}, {"new", 1024}} {
		b.Run(bc.name, func(b *testing.B) {
			var clock atomic.Uint32
			g := NewGleanTable(bc.size, &clock)
			var c gleanCounts
			for i, k := range keys {
				g.learn(uint16(i&3), k, glMAC1, 1, &c)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g.learn(uint16(i&3), keys[i&4095], glMAC1, 2, &c)
				i++
			}
			g.publish(&c)
		})
	}
}

// BenchmarkGleanLearnParallel has every CPU learn into one table, as the
// workers do.
func BenchmarkGleanLearnParallel(b *testing.B) {
	keys := benchKeys()
	var clock atomic.Uint32
	g := NewGleanTable(8192, &clock)
	b.ReportAllocs()
	var id atomic.Uint32
	b.RunParallel(func(pb *testing.PB) {
		var c gleanCounts
		i := int(id.Add(1)) * 997
		for pb.Next() {
			g.learn(uint16(i&3), keys[i&4095], glMAC1, uint32(i>>12), &c)
			i++
		}
		g.publish(&c)
	})
}

func BenchmarkGleanLookup4(b *testing.B) {
	var clock atomic.Uint32
	g := NewGleanTable(8192, &clock)
	var c gleanCounts
	var ips [][4]byte
	for i := range 4096 {
		ip := [4]byte{10, 3, byte(i >> 8), byte(i)}
		g.learn(uint16(i&3), netip.AddrFrom4(ip).As16(), glMAC1, 1, &c)
		ips = append(ips, ip)
	}
	// A full bucket replaces: look up only what stayed.
	hits := ips[:0]
	for i, ip := range ips {
		if _, ok := g.lookup4(uint16(i&3), ip); ok && i&3 == len(hits)&3 {
			hits = append(hits, ip)
		}
	}
	n := len(hits) &^ 3
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := g.lookup4(uint16(i&3), hits[i%n]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}
