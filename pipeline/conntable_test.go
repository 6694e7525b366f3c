package pipeline

import (
	"sync"
	"sync/atomic"
	"testing"
)

func v4ConnKey(src, dst [4]byte, proto uint8, sport, dport uint16) ConnKey {
	k := ConnKey{Family: 4, Proto: proto, SrcPort: sport, DstPort: dport}
	copy(k.Src[:], src[:])
	copy(k.Dst[:], dst[:])
	return k
}

func TestConnKeyReverse(t *testing.T) {
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{192, 0, 2, 7}
	tests := []struct {
		name string
		k    ConnKey
		want ConnKey
	}{
		{"tcp", v4ConnKey(a, b, ProtoTCP, 40000, 443), v4ConnKey(b, a, ProtoTCP, 443, 40000)},
		{"udp", v4ConnKey(a, b, ProtoUDP, 5353, 53), v4ConnKey(b, a, ProtoUDP, 53, 5353)},
		{"icmp echo", v4ConnKey(a, b, ProtoICMP, 77, 8<<8), v4ConnKey(b, a, ProtoICMP, 77, 0)},
		{"icmp other", v4ConnKey(a, b, ProtoICMP, 0, 3<<8|1), v4ConnKey(b, a, ProtoICMP, 0, 3<<8|1)},
		{"icmpv6 echo", ConnKey{Family: 6, Proto: ProtoICMPv6, SrcPort: 9, DstPort: 128 << 8, Src: [16]byte{1}, Dst: [16]byte{2}},
			ConnKey{Family: 6, Proto: ProtoICMPv6, SrcPort: 9, DstPort: 129 << 8, Src: [16]byte{2}, Dst: [16]byte{1}}},
		{"gre", v4ConnKey(a, b, 47, 0, 0), v4ConnKey(b, a, 47, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.Reverse(); got != tt.want {
				t.Fatalf("Reverse = %+v, want %+v", got, tt.want)
			}
		})
	}
	fk := FlowKey{Family: 4, Proto: ProtoTCP, SrcPort: 1, DstPort: 2, InPort: 3, VLAN: 4, Src: [16]byte{10}, Dst: [16]byte{11}}
	fk2 := fk
	fk2.InPort, fk2.VLAN = 9, 10
	if ConnKeyOf(&fk) != ConnKeyOf(&fk2) {
		t.Fatal("ConnKeyOf depends on InPort or VLAN")
	}
	ck := ConnKeyOf(&fk)
	if w := ck.words(); connKeyFromWords(&w) != ck {
		t.Fatal("words do not round-trip")
	}
}

func TestConnTableInsertLookup(t *testing.T) {
	var clock atomic.Uint32
	clock.Store(100)
	ct := NewConnTable(1000, &clock)
	if ct.Cap() < 1000 {
		t.Fatalf("Cap = %d, want >= 1000", ct.Cap())
	}
	k := v4ConnKey([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, ProtoUDP, 1000, 53)
	if _, _, ok := ct.Lookup(k); ok {
		t.Fatal("Lookup hit in an empty table")
	}
	ver, seen := ct.Insert(k)
	v0 := ver.Load()
	if v0 == 0 || v0&1 != 0 {
		t.Fatalf("version after insert = %d, want even and nonzero", v0)
	}
	if seen.Load() != 100 {
		t.Fatalf("last seen = %d, want 100", seen.Load())
	}
	ver2, seen2, ok := ct.Lookup(k)
	if !ok || ver2 != ver || seen2 != seen {
		t.Fatalf("Lookup = %p %p %v, want the inserted entry", ver2, seen2, ok)
	}
	other := k
	other.DstPort = 54
	if _, _, ok := ct.Lookup(other); ok {
		t.Fatal("Lookup hit a key that differs in a port")
	}
	clock.Store(150)
	ver3, _ := ct.Insert(k)
	if ver3 != ver || ver.Load() != v0 {
		t.Fatal("re-inserting a present key replaced it")
	}
	if seen.Load() != 150 {
		t.Fatalf("re-insert left last seen at %d, want 150", seen.Load())
	}
	if ct.Len() != 1 || ct.Stats().Inserts != 1 {
		t.Fatalf("Len = %d, Stats = %+v, want 1 entry from 1 insert", ct.Len(), ct.Stats())
	}
}

func TestConnTableEvictsLeastRecentlySeen(t *testing.T) {
	var clock atomic.Uint32
	ct := NewConnTable(connSlots, &clock) // one bucket
	if ct.Cap() != connSlots {
		t.Fatalf("Cap = %d, want %d", ct.Cap(), connSlots)
	}
	deps := make([]Dep, connSlots+1)
	keys := make([]ConnKey, connSlots+1)
	for i := range connSlots {
		clock.Store(uint32(10 + i))
		keys[i] = v4ConnKey([4]byte{10, 0, 0, byte(i)}, [4]byte{10, 0, 1, 1}, ProtoTCP, 1, 2)
		ver, _ := ct.Insert(keys[i])
		deps[i] = Dep{Ver: ver, Val: ver.Load()}
	}
	// Touch the first: the second is now the least recently seen.
	clock.Store(50)
	if _, seen, ok := ct.Lookup(keys[0]); !ok {
		t.Fatal("lookup of the first key missed")
	} else {
		seen.Store(clock.Load())
	}
	keys[connSlots] = v4ConnKey([4]byte{10, 0, 0, 99}, [4]byte{10, 0, 1, 1}, ProtoTCP, 1, 2)
	ct.Insert(keys[connSlots])
	if _, _, ok := ct.Lookup(keys[1]); ok {
		t.Fatal("the least recently seen entry is still there")
	}
	if deps[1].Valid() {
		t.Fatal("a Dep on the evicted entry is still valid")
	}
	for _, i := range []int{0, 2, 3, 4} {
		if _, _, ok := ct.Lookup(keys[i]); !ok {
			t.Fatalf("key %d was evicted", i)
		}
		if i < connSlots && !deps[i].Valid() {
			t.Fatalf("Dep on kept entry %d turned invalid", i)
		}
	}
	if st := ct.Stats(); st.Evictions != 1 || st.Inserts != connSlots+1 || ct.Len() != connSlots {
		t.Fatalf("Stats = %+v, Len = %d; want 1 eviction, %d inserts, %d entries", st, ct.Len(), connSlots+1, connSlots)
	}
}

func TestConnTableExpireAndFlush(t *testing.T) {
	var clock atomic.Uint32
	ct := NewConnTable(256, &clock)
	var keys []ConnKey
	var deps []Dep
	for i := range 20 {
		clock.Store(uint32(i)) // key i last seen at i
		k := v4ConnKey([4]byte{10, 0, 0, byte(i)}, [4]byte{10, 0, 1, 1}, ProtoUDP, uint16(i), 53)
		ver, _ := ct.Insert(k)
		keys = append(keys, k)
		deps = append(deps, Dep{Ver: ver, Val: ver.Load()})
	}
	clock.Store(40)
	// Idle for 30 s or more: seen at 0..10.
	if n := ct.ExpireIdle(30); n != 11 {
		t.Fatalf("ExpireIdle removed %d, want 11", n)
	}
	for i, k := range keys {
		_, _, ok := ct.Lookup(k)
		if want := i > 10; ok != want || deps[i].Valid() != want {
			t.Fatalf("key %d after expiry: present %v, dep valid %v; want %v", i, ok, deps[i].Valid(), want)
		}
	}
	if ct.Len() != 9 || ct.Stats().Expired != 11 {
		t.Fatalf("Len = %d, Stats = %+v; want 9 entries, 11 expired", ct.Len(), ct.Stats())
	}
	if n := ct.Flush(); n != 9 {
		t.Fatalf("Flush removed %d, want 9", n)
	}
	for i, k := range keys {
		if _, _, ok := ct.Lookup(k); ok || deps[i].Valid() {
			t.Fatalf("key %d survived Flush", i)
		}
	}
	if ct.Len() != 0 {
		t.Fatalf("Len after Flush = %d", ct.Len())
	}
	// A key inserted again gets a version no old Dep holds.
	ver, _ := ct.Insert(keys[0])
	if deps[0].Valid() || ver.Load() == deps[0].Val {
		t.Fatal("a re-inserted entry revived an old Dep")
	}
}

func TestConnTableNoAllocs(t *testing.T) {
	var clock atomic.Uint32
	ct := NewConnTable(1024, &clock)
	k := v4ConnKey([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, ProtoTCP, 1, 2)
	n := uint16(0)
	if a := testing.AllocsPerRun(1000, func() {
		n++
		k.SrcPort = n
		ct.Insert(k)
		ct.Lookup(k)
	}); a != 0 {
		t.Fatalf("Insert+Lookup: %v allocs, want 0", a)
	}
}

// stressKey is a key whose every byte follows from n, so that a torn key
// (words from two different keys) fails stressKeyOK.
func stressKey(n uint32) ConnKey {
	k := ConnKey{Family: 6, Proto: ProtoUDP, SrcPort: uint16(n), DstPort: uint16(n>>16) ^ 0x5a5a}
	for i := range k.Src {
		k.Src[i] = byte(n>>(8*(i%4))) ^ byte(i)
		k.Dst[i] = ^k.Src[i]
	}
	return k
}

func stressKeyOK(k ConnKey) bool {
	return k == stressKey(uint32(k.SrcPort)|uint32(k.DstPort^0x5a5a)<<16)
}

// TestConnTableConcurrent runs writers that insert far more keys than the
// table holds (so buckets keep evicting), a housekeeper that expires, and
// readers that look keys up and scan every slot. No reader may see a torn
// key, a hit must be on a slot that held the key at the returned version,
// and at the end no key may be in the table twice.
func TestConnTableConcurrent(t *testing.T) {
	var clock atomic.Uint32
	ct := NewConnTable(64, &clock)
	const writers, readers, perWriter, keySpace = 4, 4, 10000, 300
	var wg sync.WaitGroup
	var done atomic.Bool
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				ct.Insert(stressKey(uint32((i*7 + w*13) % keySpace)))
			}
		}()
	}
	errs := make(chan string, readers+1)
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			hits := 0
			for i := 0; !done.Load() || i < 2000; i++ {
				k := stressKey(uint32((i*11 + r) % keySpace))
				if s, ver, _ := ct.lookupDep(&k); s != nil {
					hits++
					if got, v, ok := s.read(); ok && v == ver && got != k {
						errs <- "lookup hit a slot holding another key at the same version"
						return
					}
				}
				if i%64 == 0 {
					for b := range ct.buckets {
						for j := range ct.buckets[b].slots {
							if got, _, ok := ct.buckets[b].slots[j].read(); ok && !stressKeyOK(got) {
								errs <- "torn key in a slot"
								return
							}
						}
					}
				}
			}
			_ = hits
		}()
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for !done.Load() {
			clock.Add(1)
			ct.ExpireIdle(5)
		}
	}()
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	seen := make(map[ConnKey]bool)
	live := 0
	for b := range ct.buckets {
		for j := range ct.buckets[b].slots {
			k, _, ok := ct.buckets[b].slots[j].read()
			if !ok {
				continue
			}
			live++
			if !stressKeyOK(k) {
				t.Fatalf("torn key %+v at rest", k)
			}
			if seen[k] {
				t.Fatalf("key %+v is in the table twice", k)
			}
			seen[k] = true
		}
	}
	if live != ct.Len() {
		t.Fatalf("Len = %d, %d live slots", ct.Len(), live)
	}
	st := ct.Stats()
	if st.Inserts != uint64(live)+st.Evictions+st.Expired {
		t.Fatalf("Stats %+v do not add up to %d live entries", st, live)
	}
}
