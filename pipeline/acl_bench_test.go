package pipeline

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// bench1kACL is 1000 rules "deny udp any:any -> any:P" for P in
// 10000..10999, then the default allow.
func bench1kACL(b *testing.B, established bool) *ACLSet {
	rules := make([]ACLRule, 1000)
	for i := range rules {
		p := uint16(10000 + i)
		rules[i] = ACLRule{Proto: ProtoUDP, DstPorts: PortRange{p, p}}
	}
	s, err := CompileACL(ACLConfig{Rules: rules, DefaultAllow: true, Established: established}, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkACLClassify1k(b *testing.B) {
	s := bench1kACL(b, false)
	for _, c := range []struct {
		name  string
		dport uint16
		rule  int
	}{{"default", 9, -1}, {"last-rule", 10999, 999}} {
		b.Run(c.name, func(b *testing.B) {
			k := FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: 40000, DstPort: c.dport,
				Src: [16]byte{10, 0, 0, 1}, Dst: [16]byte{10, 77, 2, 3}}
			if r, _ := s.Classify(&k); r != c.rule {
				b.Fatalf("rule %d, want %d", r, c.rule)
			}
			b.ReportAllocs()
			var sum int
			for b.Loop() {
				r, _ := s.Classify(&k)
				sum += r
			}
			_ = sum
		})
	}
}

func BenchmarkACLStep1k(b *testing.B) {
	for _, est := range []bool{false, true} {
		b.Run(fmt.Sprintf("established=%v", est), func(b *testing.B) {
			var set atomic.Pointer[ACLSet]
			set.Store(bench1kACL(b, est))
			step := NewACLStep(&set, NewConnTable(1<<16, nil), 0)
			p := &Packet{}
			f := &FlowCtx{}
			k := FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: 40000, DstPort: 9,
				Src: [16]byte{10, 0, 0, 1}, Dst: [16]byte{10, 77, 2, 3}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k.SrcPort = uint16(i & 1023) // 1024 distinct connections
				f.Reset(0, nil)
				f.Key = k
				if !step.Step(p, f) {
					b.Fatal("denied")
				}
			}
		})
	}
}

func BenchmarkConnTableLookup(b *testing.B) {
	ct := NewConnTable(1<<16, nil)
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]ConnKey, 1<<15)
	for i := range keys {
		k := ConnKey{Family: 4, Proto: ProtoTCP, SrcPort: uint16(r.Uint32()), DstPort: 443}
		k.Src[0], k.Src[1], k.Src[2], k.Src[3] = 10, byte(i>>8), byte(i), 1
		k.Dst[0], k.Dst[3] = 192, byte(r.Uint32())
		keys[i] = k
		ct.Insert(k)
	}
	b.ReportAllocs()
	hits := 0
	for i := 0; b.Loop(); i++ {
		if _, _, ok := ct.Lookup(keys[i&(len(keys)-1)]); ok {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no lookup hit")
	}
}
