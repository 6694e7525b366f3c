package pipeline

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// gwBenchStage returns the basic two-interface gateway with the route step
// and, when acl is set, an ACL of 1000 rules "deny udp dport N" for N in
// 10000..10999 with default allow, plus a batch of 64 UDP packets of 64
// flows (20000.. as destination ports, so every flow is allowed by the
// default after no rule matched) and its pristine copy.
func gwBenchStage(b *testing.B, acl bool) (*gwEnv, *gwStage, *Batch, [MaxBatch][]byte) {
	b.Helper()
	e := gwBasicEnv(b)
	var extra GatewayStep
	if acl {
		cfg := ACLConfig{DefaultAllow: true}
		for port := uint16(10000); port < 11000; port++ {
			cfg.Rules = append(cfg.Rules, ACLRule{Proto: ProtoUDP, DstPorts: PortRange{Lo: port, Hi: port}})
		}
		set, err := CompileACL(cfg, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		p := new(atomic.Pointer[ACLSet])
		p.Store(set)
		extra = NewACLStep(p, nil, 0)
	}
	g := e.stage(4096, extra)
	var batch Batch
	var orig [MaxBatch][]byte
	for i := range MaxBatch {
		s := gwUDP("10.0.10.5", "10.0.20.7", 64, "0123456789abcdef0123")
		if i%2 == 1 {
			s.dst = netip.MustParseAddr("172.16.0.9") // static route
		}
		s.sport, s.dport = uint16(1000+i), uint16(20000+i)
		frame := gwBuild(s)
		if len(frame) != 62 {
			b.Fatalf("frame is %d bytes", len(frame))
		}
		orig[i] = frame[:len(frame):len(frame)]
		batch.Pkts[i] = *gwParse(b, append([]byte(nil), frame...), 1, 10)
	}
	batch.Len = MaxBatch
	return e, g, &batch, orig
}

// gwRestore puts the batch back as it arrived: the steps and the cached
// actions rewrite the frames and set verdicts in place.
func gwRestore(b *Batch, tmpl *[MaxBatch]Packet, orig *[MaxBatch][]byte) {
	for i := range b.Len {
		p := &b.Pkts[i]
		d := p.Data[:len(orig[i])]
		copy(d, orig[i])
		*p = tmpl[i]
		p.Data = d
	}
}

func gwBenchLoop(b *testing.B, e *gwEnv, g *gwStage, batch *Batch, orig [MaxBatch][]byte, bump bool) {
	b.Helper()
	tmpl := batch.Pkts
	// Warm the cache and check the packets are routed.
	g.Process(batch)
	for i := range batch.Len {
		if batch.Pkts[i].Verdict != VerdictForward {
			b.Fatalf("packet %d: %v %v, want forward", i, batch.Pkts[i].Verdict, batch.Pkts[i].Reason)
		}
	}
	before := g.Cache().Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		gwRestore(batch, &tmpl, &orig)
		if bump {
			e.otherGen.Add(1)
		}
		g.Process(batch)
	}
	b.StopTimer()
	pkts := float64(b.N) * float64(batch.Len)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/pkts, "ns/pkt")
	st := g.Cache().Stats()
	if hits := st.Hits - before.Hits; bump && hits != 0 || !bump && float64(hits) != pkts {
		b.Fatalf("%d hits over %v packets (bump %v)", hits, pkts, bump)
	}
}

// BenchmarkGatewayCacheHit is the per-packet cost of a flow cache hit:
// lookup and the cached rewrite (MACs, TTL with checksum, output).
func BenchmarkGatewayCacheHit(b *testing.B) {
	e, g, batch, orig := gwBenchStage(b, true)
	gwBenchLoop(b, e, g, batch, orig, false)
}

// BenchmarkGatewayFullPipeline is the cost of the same packets when every
// cached entry is stale (the generation moves before each batch): the
// lookup, the route step, the 1000-rule ACL and the insert.
func BenchmarkGatewayFullPipeline(b *testing.B) {
	e, g, batch, orig := gwBenchStage(b, true)
	gwBenchLoop(b, e, g, batch, orig, true)
}

// BenchmarkGatewayRouteOnly is the full pipeline without an ACL.
func BenchmarkGatewayRouteOnly(b *testing.B) {
	e, g, batch, orig := gwBenchStage(b, false)
	gwBenchLoop(b, e, g, batch, orig, true)
}

// BenchmarkGatewayRestoreOnly is the harness's own cost per packet (the
// frame and packet restore both benchmarks above include), to subtract.
func BenchmarkGatewayRestoreOnly(b *testing.B) {
	_, _, batch, orig := gwBenchStage(b, false)
	tmpl := batch.Pkts
	b.ReportAllocs()
	for b.Loop() {
		gwRestore(batch, &tmpl, &orig)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch.Len), "ns/pkt")
}
