package pipeline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
)

// gwKey returns a distinct IPv4 UDP key for i.
func gwKey(i int) FlowKey {
	k := FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: uint16(i), DstPort: 53, InPort: 1, VLAN: 10}
	binary.BigEndian.PutUint32(k.Src[:], 0x0a000000|uint32(i))
	copy(k.Dst[:4], []byte{10, 0, 20, 7})
	return k
}

func gwAct(port uint16) FlowAction {
	return FlowAction{Verdict: VerdictForward, OutPort: port, OutVLAN: 20, Ops: OpSetMACs | OpDecTTL,
		SrcMAC: gwRouterMAC, DstMAC: MAC{2, 0, 0, 0, 0, byte(port)}}
}

func TestFlowCacheLookupInsertHits(t *testing.T) {
	c := NewFlowCache(64, 30)
	k1, k2 := gwKey(1), gwKey(2)
	if c.Lookup(&k1, 1, 100) != nil {
		t.Fatal("hit in an empty cache")
	}
	a := gwAct(3)
	c.Insert(&k1, 1, 100, &a)
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
	for i := range 3 {
		got := c.Lookup(&k1, 1, 100+uint32(i))
		if got == nil || got.OutPort != 3 || got.DstMAC != a.DstMAC {
			t.Fatalf("lookup %d: %+v, want the inserted action", i, got)
		}
	}
	if c.Lookup(&k2, 1, 100) != nil {
		t.Error("hit for a key never inserted")
	}
	// Replacing the same key takes its own slot: no eviction, one entry.
	b := gwAct(4)
	c.Insert(&k1, 1, 103, &b)
	if got := c.Lookup(&k1, 1, 103); got == nil || got.OutPort != 4 {
		t.Errorf("after re-insert: %+v, want port 4", got)
	}
	st := c.Stats()
	want := FlowCacheStats{Entries: 1, Capacity: 64, Hits: 4, Misses: 2, Inserts: 2}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func TestFlowCacheCapacityRoundsUp(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, 4}, {1, 4}, {4, 4}, {5, 8}, {13, 16}, {1000, 1024}} {
		if got := NewFlowCache(tc.n, 1).Capacity(); got != tc.want {
			t.Errorf("NewFlowCache(%d).Capacity() = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestFlowCacheStaleGeneration(t *testing.T) {
	c := NewFlowCache(64, 30)
	k := gwKey(1)
	a := gwAct(3)
	c.Insert(&k, 7, 100, &a)
	if c.Lookup(&k, 8, 100) != nil {
		t.Fatal("hit with a newer generation")
	}
	st := c.Stats()
	if st.Revalidations != 1 || st.Misses != 1 || st.Hits != 0 || c.Len() != 0 {
		t.Errorf("Stats = %+v Len %d, want one revalidation and miss, entry freed", st, c.Len())
	}
	// Freed: the old generation does not bring it back.
	if c.Lookup(&k, 7, 100) != nil {
		t.Error("stale entry still there after the revalidation miss")
	}
}

func TestFlowCacheIdleExpiry(t *testing.T) {
	c := NewFlowCache(64, 10)
	k := gwKey(1)
	a := gwAct(3)
	c.Insert(&k, 1, 100, &a)
	if c.Lookup(&k, 1, 110) == nil {
		t.Fatal("miss at exactly the idle timeout")
	}
	// The hit at 110 refreshed it: 120 is still within the timeout.
	if c.Lookup(&k, 1, 120) == nil {
		t.Fatal("a hit did not refresh the entry")
	}
	if c.Lookup(&k, 1, 131) != nil {
		t.Fatal("hit after more than the idle timeout unused")
	}
	if st := c.Stats(); st.Expired != 1 || st.Misses != 1 || c.Len() != 0 {
		t.Errorf("Stats = %+v Len %d, want one expiry", st, c.Len())
	}
}

func TestFlowCacheDependencyChanged(t *testing.T) {
	c := NewFlowCache(64, 30)
	var v1, v2 atomic.Uint64
	v1.Store(4)
	a := gwAct(3)
	if !a.AddDep(&v1) || !a.AddDep(&v2) || !a.AddDep(&v1) {
		t.Fatal("AddDep refused within MaxDeps (or for a dependency it already has)")
	}
	var v3 atomic.Uint64
	if b := a; b.AddDep(&v3) {
		t.Error("AddDep accepted more than MaxDeps dependencies")
	}
	k := gwKey(1)
	c.Insert(&k, 1, 100, &a)
	if c.Lookup(&k, 1, 100) == nil {
		t.Fatal("miss with unchanged dependencies")
	}
	v2.Add(1)
	if c.Lookup(&k, 1, 100) != nil {
		t.Fatal("hit after a dependency changed")
	}
	if st := c.Stats(); st.Invalidated != 1 || st.Hits != 1 || st.Misses != 1 || c.Len() != 0 {
		t.Errorf("Stats = %+v Len %d, want one invalidation", st, c.Len())
	}
}

func TestFlowCacheEvictsLRU(t *testing.T) {
	c := NewFlowCache(4, 1000) // one bucket: every key shares it
	if c.Capacity() != flowWays {
		t.Fatalf("Capacity = %d, want one bucket of %d", c.Capacity(), flowWays)
	}
	keys := make([]FlowKey, 5)
	for i := range keys {
		keys[i] = gwKey(i)
		a := gwAct(uint16(i))
		if i < 4 {
			c.Insert(&keys[i], 1, uint32(10+i), &a)
		}
	}
	// Use key 0 again, so key 1 becomes the least recently used.
	if c.Lookup(&keys[0], 1, 20) == nil {
		t.Fatal("key 0 missing")
	}
	a := gwAct(4)
	c.Insert(&keys[4], 1, 21, &a)
	if st := c.Stats(); st.Evictions != 1 || c.Len() != 4 {
		t.Errorf("Stats = %+v Len %d, want one eviction, bucket full", st, c.Len())
	}
	for i, want := range []bool{true, false, true, true, true} {
		if _, found, _ := c.Peek(&keys[i], 1, 21); found != want {
			t.Errorf("key %d present = %v, want %v", i, found, want)
		}
	}
	// A free slot is taken before anything is evicted.
	c.Lookup(&keys[2], 2, 21) // stale: freed
	b := gwAct(1)
	c.Insert(&keys[1], 2, 22, &b)
	if st := c.Stats(); st.Evictions != 1 {
		t.Errorf("Evictions = %d, want still 1 when a slot was free", st.Evictions)
	}
}

func TestFlowCacheSweep(t *testing.T) {
	c := NewFlowCache(256, 10)
	var ver atomic.Uint64
	keys := make([]FlowKey, 4)
	for i := range keys {
		keys[i] = gwKey(i)
	}
	valid, stale, idle, invalid := gwAct(1), gwAct(2), gwAct(3), gwAct(4)
	invalid.AddDep(&ver)
	c.Insert(&keys[0], 5, 100, &valid)
	c.Insert(&keys[1], 4, 100, &stale)
	c.Insert(&keys[2], 5, 80, &idle)
	c.Insert(&keys[3], 5, 100, &invalid)
	ver.Add(1)
	freed := 0
	for range 2 { // in two halves: Sweep continues where it stopped
		freed += c.Sweep(5, 100, len(c.buckets)/2)
	}
	if freed != 3 || c.Len() != 1 {
		t.Errorf("Sweep freed %d, Len %d; want 3 freed, 1 left", freed, c.Len())
	}
	if _, found, valid := c.Peek(&keys[0], 5, 100); !found || !valid {
		t.Error("Sweep freed the valid entry")
	}
	if st := c.Stats(); st.Expired != 1 || st.Invalidated != 1 || st.Revalidations != 0 || st.Hits+st.Misses != 0 {
		t.Errorf("Stats = %+v, want one expired and one invalidated, no lookups", st)
	}
	if n := c.Sweep(5, 100, len(c.buckets)); n != 0 {
		t.Errorf("second full Sweep freed %d", n)
	}
}

func TestFlowCacheFlushEntriesPeek(t *testing.T) {
	c := NewFlowCache(64, 10)
	for i := range 5 {
		k, a := gwKey(i), gwAct(uint16(i))
		c.Insert(&k, 1, 100, &a)
	}
	k0 := gwKey(0)
	act, found, valid := c.Peek(&k0, 1, 100)
	if !found || !valid || act.OutPort != 0 {
		t.Errorf("Peek = %+v %v %v", act, found, valid)
	}
	if _, found, valid := c.Peek(&k0, 2, 100); !found || valid {
		t.Errorf("Peek with a newer generation: found %v valid %v, want found, not valid", found, valid)
	}
	if _, _, valid := c.Peek(&k0, 1, 111); valid {
		t.Error("Peek of an idle entry reports valid")
	}
	// Peek neither counts nor refreshes: the entry still expires from 100.
	if st := c.Stats(); st.Hits+st.Misses+st.Revalidations+st.Expired != 0 {
		t.Errorf("Peek counted: %+v", st)
	}
	if _, found, valid := c.Peek(&k0, 1, 110); !found || !valid {
		t.Error("entry gone after Peek")
	}
	n, valids := 0, 0
	c.Entries(1, 105, func(e FlowEntry) {
		n++
		if e.Valid && e.Idle == 5 {
			valids++
		}
	})
	if n != 5 || valids != 5 {
		t.Errorf("Entries: %d entries, %d valid with idle 5; want 5, 5", n, valids)
	}
	if got := c.Flush(); got != 5 || c.Len() != 0 {
		t.Errorf("Flush = %d, Len %d; want 5, 0", got, c.Len())
	}
	if c.Lookup(&k0, 1, 100) != nil {
		t.Error("hit after Flush")
	}
}

func TestFlowCacheStatsAdd(t *testing.T) {
	a := FlowCacheStats{1, 2, 3, 4, 5, 6, 7, 8, 9}
	b := FlowCacheStats{10, 20, 30, 40, 50, 60, 70, 80, 90}
	if got, want := a.Add(b), (FlowCacheStats{11, 22, 33, 44, 55, 66, 77, 88, 99}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
}

func TestFlowCacheNoAllocs(t *testing.T) {
	c := NewFlowCache(1024, 10)
	a := gwAct(1)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		k := gwKey(i % 2000)
		i++
		if c.Lookup(&k, 1, 100) == nil {
			c.Insert(&k, 1, 100, &a)
		}
		c.Sweep(1, 100, 1)
	}); n != 0 {
		t.Errorf("Lookup/Insert/Sweep allocate %v times", n)
	}
}

func TestFlowActionApplyForwardIPv4(t *testing.T) {
	var hits atomic.Uint64
	var touch atomic.Uint32
	for _, tag := range []int{-1, 10} {
		for _, ttl := range []uint8{2, 64, 255} {
			s := gwUDP("10.0.10.5", "10.0.20.7", ttl, "payload")
			s.tag = tag
			s.ipID = uint16(ttl) * 257 // vary the header sum
			p := gwParse(t, gwBuild(s), 1, 10)
			orig := bytes.Clone(p.Data)
			a := gwAct(7)
			a.Hits, a.Touch = &hits, &touch
			a.Apply(p, 1234)
			l3 := int(p.L3Off)
			ip := p.Data[l3 : l3+20]
			if p.Verdict != VerdictForward || p.OutPort != 7 || p.VLAN != 20 {
				t.Errorf("tag %d ttl %d: verdict %v port %d vlan %d", tag, ttl, p.Verdict, p.OutPort, p.VLAN)
			}
			if MAC(p.Data[0:6]) != a.DstMAC || MAC(p.Data[6:12]) != gwRouterMAC {
				t.Errorf("MACs %s > %s", MAC(p.Data[6:12]), MAC(p.Data[0:6]))
			}
			if ip[8] != ttl-1 {
				t.Errorf("TTL %d, want %d", ip[8], ttl-1)
			}
			if s := gwOnesSum(ip); s != 0xffff {
				t.Errorf("tag %d ttl %d: IPv4 header checksum invalid after Apply (sum %#x)", tag, ttl, s)
			}
			// Nothing else changed: the header but TTL and checksum, the payload.
			if !bytes.Equal(p.Data[12:l3+8], orig[12:l3+8]) || !bytes.Equal(p.Data[l3+12:], orig[l3+12:]) || ip[9] != orig[l3+9] {
				t.Errorf("Apply changed bytes besides MACs, TTL and checksum")
			}
		}
	}
	if hits.Load() != 6 || touch.Load() != 1234 {
		t.Errorf("Hits %d Touch %d, want 6 and 1234", hits.Load(), touch.Load())
	}
}

func TestFlowActionApplyForwardIPv6(t *testing.T) {
	p := gwParse(t, gwBuild(gwUDP("2001:db8:10::5", "2001:db8:20::7", 64, "x")), 1, 10)
	orig := bytes.Clone(p.Data)
	a := gwAct(9)
	a.Apply(p, 1)
	l3 := int(p.L3Off)
	if p.Data[l3+7] != 63 {
		t.Errorf("hop limit %d, want 63", p.Data[l3+7])
	}
	if !bytes.Equal(p.Data[12:l3+7], orig[12:l3+7]) || !bytes.Equal(p.Data[l3+8:], orig[l3+8:]) {
		t.Error("Apply changed bytes besides MACs and hop limit")
	}
	if !p.L4ChecksumValid() {
		t.Error("UDP checksum invalid after Apply (the hop limit is not in the pseudo-header)")
	}
	if p.Verdict != VerdictForward || p.OutPort != 9 || p.VLAN != 20 {
		t.Errorf("verdict %v port %d vlan %d", p.Verdict, p.OutPort, p.VLAN)
	}
}

func TestFlowActionApplyDrop(t *testing.T) {
	var hits atomic.Uint64
	p := gwParse(t, gwBuild(gwUDP("10.0.10.5", "10.0.20.7", 64, "x")), 1, 10)
	orig := bytes.Clone(p.Data)
	a := FlowAction{Verdict: VerdictDrop, Reason: DropACLDenied, Ops: OpSetMACs | OpDecTTL, Hits: &hits}
	a.Apply(p, 1)
	if p.Verdict != VerdictDrop || p.Reason != DropACLDenied || p.VLAN != 10 || p.OutPort != NoPort {
		t.Errorf("verdict %v %v vlan %d port %d", p.Verdict, p.Reason, p.VLAN, p.OutPort)
	}
	if !bytes.Equal(p.Data, orig) {
		t.Error("a drop rewrote the frame")
	}
	if hits.Load() != 1 {
		t.Errorf("Hits = %d, want 1", hits.Load())
	}
}

func TestExtractFlowKey(t *testing.T) {
	ap := netip.MustParseAddr
	tests := []struct {
		name         string
		s            gwPkt
		sport, dport uint16
	}{
		{"udp", gwUDP("10.0.10.5", "10.0.20.7", 64, "x"), 40000, 53},
		{"tcp v6", gwPkt{tag: -1, src: ap("2001:db8::1"), dst: ap("2001:db8::2"), proto: ProtoTCP, sport: 1, dport: 443, ttl: 9}, 1, 443},
		{"echo", gwPkt{tag: -1, src: ap("10.0.0.1"), dst: ap("10.0.0.2"), proto: ProtoICMP, icmpType: 8, icmpID: 77, ttl: 9}, 77, 8 << 8},
		{"echo v6", gwPkt{tag: -1, src: ap("2001:db8::1"), dst: ap("2001:db8::2"), proto: ProtoICMPv6, icmpType: 128, icmpID: 5, ttl: 9}, 5, 128 << 8},
		{"unreachable", gwPkt{tag: -1, src: ap("10.0.0.1"), dst: ap("10.0.0.2"), proto: ProtoICMP, icmpType: 3, icmpCode: 4, icmpID: 77, ttl: 9}, 0, 3<<8 | 4},
		{"gre", gwPkt{tag: -1, src: ap("10.0.0.1"), dst: ap("10.0.0.2"), proto: 47, ttl: 9, payload: []byte("abcd")}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := gwParse(t, gwBuild(tc.s), 3, 10)
			var k FlowKey
			if !ExtractFlowKey(p, &k) {
				t.Fatal("ExtractFlowKey = false")
			}
			if k.SrcAddr() != tc.s.src || k.DstAddr() != tc.s.dst || k.Proto != tc.s.proto || k.InPort != 3 || k.VLAN != 10 {
				t.Errorf("key %v", k.String())
			}
			if k.SrcPort != tc.sport || k.DstPort != tc.dport {
				t.Errorf("ports %d, %#x; want %d, %#x", k.SrcPort, k.DstPort, tc.sport, tc.dport)
			}
			r := k.Reverse(4, 20)
			if r.SrcAddr() != k.DstAddr() || r.DstAddr() != k.SrcAddr() || r.InPort != 4 || r.VLAN != 20 {
				t.Errorf("reverse %v", r.String())
			}
			if k.HasPorts() && (r.SrcPort != k.DstPort || r.DstPort != k.SrcPort) {
				t.Errorf("reverse ports %d > %d", r.SrcPort, r.DstPort)
			}
		})
	}
}
