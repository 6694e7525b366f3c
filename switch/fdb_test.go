package vswitch

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

// testMAC returns a locally administered unicast MAC that encodes i.
func testMAC(i int) pipeline.MAC {
	return pipeline.MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// records returns every entry of f keyed by MAC and VLAN.
func records(f *FDB) map[uint64]FDBRecord {
	m := map[uint64]FDBRecord{}
	f.Walk(func(r FDBRecord) { m[fdbKey(r.MAC, r.VLAN)] = r })
	return m
}

func TestFDBLearnLookup(t *testing.T) {
	f := NewFDB(1024)
	if _, ok := f.Lookup(testMAC(1), 0); ok {
		t.Fatal("lookup in an empty table hit")
	}
	for i := 0; i < 100; i++ {
		if moved := f.Learn(testMAC(i), uint16(i%5), uint16(i%7), 10); moved {
			t.Fatalf("first learn of %v reported a move", testMAC(i))
		}
	}
	for i := 0; i < 100; i++ {
		port, ok := f.Lookup(testMAC(i), uint16(i%5))
		if !ok || port != uint16(i%7) {
			t.Fatalf("Lookup(%v, %d) = %d, %v; want %d, true", testMAC(i), i%5, port, ok, i%7)
		}
		if _, ok := f.Lookup(testMAC(i), uint16(i%5+1)); ok {
			t.Fatalf("Lookup(%v) hit in a VLAN it was not learned in", testMAC(i))
		}
	}
	if n := f.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// Only the low 12 bits of the VLAN are part of the key.
	f.Learn(testMAC(500), 0x1000|7, 3, 10)
	if p, ok := f.Lookup(testMAC(500), 7); !ok || p != 3 {
		t.Fatalf("VLAN 0x1007 not stored as VLAN 7: %d, %v", p, ok)
	}
}

func TestFDBMove(t *testing.T) {
	f := NewFDB(64)
	m := testMAC(7)
	f.Learn(m, 10, 1, 100)
	if moved := f.Learn(m, 10, 1, 101); moved {
		t.Fatal("refresh on the same port reported a move")
	}
	if got := f.moves.Load(); got != 0 {
		t.Fatalf("moves = %d after refreshes, want 0", got)
	}
	if moved := f.Learn(m, 10, 2, 102); !moved {
		t.Fatal("learn on another port did not report a move")
	}
	if p, ok := f.Lookup(m, 10); !ok || p != 2 {
		t.Fatalf("after move Lookup = %d, %v; want 2, true", p, ok)
	}
	if moved := f.Learn(m, 10, 2, 102); moved {
		t.Fatal("identical learn reported a move")
	}
	f.Learn(m, 10, 1, 103)
	if got := f.moves.Load(); got != 2 {
		t.Fatalf("moves = %d, want 2", got)
	}
	if n := f.Len(); n != 1 {
		t.Fatalf("a moving MAC occupies %d entries, want 1", n)
	}
	r := records(f)[fdbKey(m, 10)]
	if r.Port != 1 || r.Seen != 103 || r.Static {
		t.Fatalf("record = %+v, want port 1 seen 103 learned", r)
	}
}

func TestFDBStatic(t *testing.T) {
	f := NewFDB(64)
	s, l := testMAC(1), testMAC(2)
	if !f.AddStatic(s, 5, 9) {
		t.Fatal("AddStatic into an empty table failed")
	}
	f.Learn(l, 5, 3, 10)

	if moved := f.Learn(s, 5, 4, 50); moved {
		t.Fatal("traffic moved a static entry")
	}
	if p, ok := f.Lookup(s, 5); !ok || p != 9 {
		t.Fatalf("static Lookup = %d, %v; want 9, true", p, ok)
	}
	if got := f.moves.Load(); got != 0 {
		t.Fatalf("moves = %d, want 0", got)
	}
	if n := f.Expire(^uint32(0)); n != 1 {
		t.Fatalf("Expire(max) removed %d entries, want only the learned one", n)
	}
	if _, ok := f.Lookup(s, 5); !ok {
		t.Fatal("aging removed a static entry")
	}
	f.Learn(l, 5, 3, 10)
	if n := f.Flush(false); n != 1 {
		t.Fatalf("Flush(false) removed %d, want 1", n)
	}
	if _, ok := f.Lookup(s, 5); !ok {
		t.Fatal("Flush(false) removed a static entry")
	}
	if _, ok := f.Lookup(l, 5); ok {
		t.Fatal("Flush(false) kept a learned entry")
	}
	r := records(f)[fdbKey(s, 5)]
	if !r.Static || r.Port != 9 || r.VLAN != 5 || r.MAC != s {
		t.Fatalf("static record = %+v", r)
	}
	if n := f.Flush(true); n != 1 || f.Len() != 0 {
		t.Fatalf("Flush(true) removed %d, Len now %d; want 1, 0", n, f.Len())
	}

	// FlushPort removes static entries too: the port is gone.
	f.AddStatic(s, 5, 9)
	f.Learn(l, 5, 9, 10)
	f.Learn(testMAC(3), 5, 8, 10)
	if n := f.FlushPort(9); n != 2 {
		t.Fatalf("FlushPort(9) removed %d, want 2", n)
	}
	if _, ok := f.Lookup(testMAC(3), 5); !ok || f.Len() != 1 {
		t.Fatalf("FlushPort(9) touched port 8's entry (Len %d)", f.Len())
	}
}

// TestFDBAddStaticOverLearned installs a static entry for a MAC that is
// already learned while an earlier slot of its bucket is free. The table
// must still hold one entry for the MAC, not a static and a learned copy.
func TestFDBAddStaticOverLearned(t *testing.T) {
	f := NewFDB(8) // one bucket: every key shares it
	f.Learn(testMAC(1), 0, 1, 10)
	f.Learn(testMAC(2), 0, 2, 10)
	f.FlushPort(1) // frees slot 0; testMAC(2) stays in slot 1
	if !f.AddStatic(testMAC(2), 0, 7) {
		t.Fatal("AddStatic failed")
	}
	if p, ok := f.Lookup(testMAC(2), 0); !ok || p != 7 {
		t.Fatalf("Lookup = %d, %v; want the static port 7", p, ok)
	}
	if n := f.Len(); n != 1 {
		t.Fatalf("Len = %d after AddStatic of a learned MAC, want 1 (duplicate entry)", n)
	}
	if n := f.Expire(^uint32(0)); n != 0 {
		t.Fatalf("Expire removed %d entries of a static MAC", n)
	}
}

func TestFDBAddStaticFullBucket(t *testing.T) {
	f := NewFDB(8)
	for i := 0; i < fdbWays; i++ {
		f.Learn(testMAC(i), 0, uint16(i), uint32(100-i)) // testMAC(7) is the oldest
	}
	if !f.AddStatic(testMAC(50), 0, 50) {
		t.Fatal("AddStatic into a bucket of learned entries failed")
	}
	if _, ok := f.Lookup(testMAC(7), 0); ok {
		t.Fatal("the oldest learned entry was not the one replaced")
	}
	if p, ok := f.Lookup(testMAC(50), 0); !ok || p != 50 {
		t.Fatalf("static Lookup = %d, %v", p, ok)
	}
	if n := f.Len(); n != fdbWays {
		t.Fatalf("Len = %d, want %d", n, fdbWays)
	}
	// Re-adding the same static entry changes its port in place.
	f.AddStatic(testMAC(50), 0, 51)
	if p, _ := f.Lookup(testMAC(50), 0); p != 51 || f.Len() != fdbWays {
		t.Fatalf("re-added static: port %d, Len %d", p, f.Len())
	}
}

// TestFDBBusySlot drives the writer protocol by hand: a slot marked busy is
// being written by another goroutine.
func TestFDBBusySlot(t *testing.T) {
	key := fdbKey(testMAC(1), 0)
	t.Run("lookup_misses", func(t *testing.T) {
		f := NewFDB(8)
		f.Learn(testMAC(1), 0, 3, 1)
		b := f.bucket(key)
		b.keys[0].Store(fdbKeyBusy)
		if _, ok := f.lookup(key); ok {
			t.Fatal("lookup hit a busy slot")
		}
		b.keys[0].Store(key)
		if p, ok := f.lookup(key); !ok || p != 3 {
			t.Fatalf("lookup after publish = %d, %v", p, ok)
		}
	})
	t.Run("learn_does_not_insert_twice", func(t *testing.T) {
		f := NewFDB(8)
		f.Learn(testMAC(1), 0, 3, 1)
		b := f.bucket(key)
		b.keys[0].Store(fdbKeyBusy) // another worker is refreshing testMAC(1)
		f.Learn(testMAC(1), 0, 3, 2)
		b.keys[0].Store(key)
		if n := f.Len(); n != 1 {
			t.Fatalf("Len = %d: the key was inserted while its slot was busy", n)
		}
	})
	t.Run("flush_waits", func(t *testing.T) {
		f := NewFDB(8)
		f.Learn(testMAC(1), 0, 3, 1)
		b := f.bucket(key)
		b.keys[0].Store(fdbKeyBusy)
		done := make(chan struct{})
		go func() {
			time.Sleep(10 * time.Millisecond)
			b.keys[0].Store(key)
			close(done)
		}()
		if n := f.FlushPort(3); n != 1 {
			t.Fatalf("FlushPort removed %d entries, want the one being refreshed", n)
		}
		<-done
	})
	t.Run("victim_turned_static", func(t *testing.T) {
		f := NewFDB(8)
		f.Learn(testMAC(1), 0, 3, 1)
		b := f.bucket(key)
		b.vals[0].Store(fdbValStatic | 3) // AddStatic won after the scan
		if b.claim(0, key) {
			t.Fatal("claimed a static entry for replacement")
		}
		if b.keys[0].Load() != key {
			t.Fatal("failed claim did not give the slot back")
		}
	})
}

func TestFDBExpire(t *testing.T) {
	f := NewFDB(256)
	for i := 0; i < 30; i++ {
		f.Learn(testMAC(i), 1, 1, uint32(10*(i%3+1))) // seen 10, 20 or 30
	}
	if n := f.Expire(10); n != 0 {
		t.Fatalf("Expire(10) removed %d; entries seen at the cutoff stay", n)
	}
	if n := f.Expire(20); n != 10 {
		t.Fatalf("Expire(20) removed %d, want 10", n)
	}
	for i := 0; i < 30; i++ {
		_, ok := f.Lookup(testMAC(i), 1)
		if want := i%3 != 0; ok != want {
			t.Fatalf("after Expire(20) MAC %d (seen %d) present = %v", i, 10*(i%3+1), ok)
		}
	}
	// A refresh keeps an entry alive.
	f.Learn(testMAC(1), 1, 1, 40)
	if n := f.Expire(31); n != 19 {
		t.Fatalf("Expire(31) removed %d, want 19", n)
	}
	if _, ok := f.Lookup(testMAC(1), 1); !ok || f.Len() != 1 {
		t.Fatalf("refreshed entry expired (Len %d)", f.Len())
	}
}

func TestFDBBucketFull(t *testing.T) {
	t.Run("replaces_oldest_learned", func(t *testing.T) {
		f := NewFDB(8) // one bucket of 8 ways
		for i := 0; i < fdbWays; i++ {
			f.Learn(testMAC(i), 0, uint16(i), uint32(100+i))
		}
		f.Learn(testMAC(0), 0, 0, 200) // 0 is now the newest, 1 the oldest
		f.Learn(testMAC(99), 0, 9, 201)
		if _, ok := f.Lookup(testMAC(1), 0); ok {
			t.Fatal("the oldest entry was not replaced")
		}
		if p, ok := f.Lookup(testMAC(99), 0); !ok || p != 9 {
			t.Fatalf("new entry Lookup = %d, %v", p, ok)
		}
		for _, i := range []int{0, 2, 3, 4, 5, 6, 7} {
			if p, ok := f.Lookup(testMAC(i), 0); !ok || p != uint16(i) {
				t.Fatalf("entry %d lost or changed: %d, %v", i, p, ok)
			}
		}
		if n := f.Len(); n != fdbWays {
			t.Fatalf("Len = %d, want %d", n, fdbWays)
		}
	})
	t.Run("static_never_replaced", func(t *testing.T) {
		f := NewFDB(8)
		// Static entries carry seen 0, the oldest possible time.
		for i := 0; i < fdbWays-1; i++ {
			f.AddStatic(testMAC(i), 0, uint16(i))
		}
		f.Learn(testMAC(50), 0, 50, 100)
		f.Learn(testMAC(51), 0, 51, 101)
		if _, ok := f.Lookup(testMAC(50), 0); ok {
			t.Fatal("the learned entry survived; a static one was replaced")
		}
		for i := 0; i < fdbWays-1; i++ {
			if p, ok := f.Lookup(testMAC(i), 0); !ok || p != uint16(i) {
				t.Fatalf("static entry %d replaced", i)
			}
		}
	})
	t.Run("all_static", func(t *testing.T) {
		f := NewFDB(8)
		for i := 0; i < fdbWays; i++ {
			if !f.AddStatic(testMAC(i), 0, 1) {
				t.Fatalf("AddStatic %d failed", i)
			}
		}
		if f.AddStatic(testMAC(100), 0, 1) {
			t.Fatal("AddStatic into a bucket full of static entries succeeded")
		}
		f.Learn(testMAC(101), 0, 2, 5)
		if _, ok := f.Lookup(testMAC(101), 0); ok {
			t.Fatal("learned into a bucket full of static entries")
		}
		if got := f.full.Load(); got != 1 {
			t.Fatalf("full = %d, want 1", got)
		}
	})
}

func TestFDBWalk(t *testing.T) {
	f := NewFDB(64)
	want := map[uint64]FDBRecord{}
	add := func(r FDBRecord) {
		if r.Static {
			f.AddStatic(r.MAC, r.VLAN, r.Port)
		} else {
			f.Learn(r.MAC, r.VLAN, r.Port, r.Seen)
		}
		want[fdbKey(r.MAC, r.VLAN)] = r
	}
	add(FDBRecord{MAC: pipeline.MAC{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54}, VLAN: 4095, Port: 0xfffe, Seen: 0xfffffff0})
	add(FDBRecord{MAC: testMAC(1), VLAN: 0, Port: 0, Seen: 1})
	add(FDBRecord{MAC: testMAC(1), VLAN: 1, Port: 2, Static: true})
	add(FDBRecord{MAC: testMAC(3), VLAN: 100, Port: 255, Seen: 77})
	got := records(f)
	if len(got) != len(want) || f.Len() != len(want) {
		t.Fatalf("Walk found %d entries, Len %d; want %d", len(got), f.Len(), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("record %v vlan %d = %+v, want %+v", w.MAC, w.VLAN, got[k], w)
		}
	}
}

func TestNewFDBSizes(t *testing.T) {
	for _, size := range []int{0, 1, 8, 64, 65536} {
		f := NewFDB(size)
		nb := max(size/fdbWays, 1)
		if len(f.buckets) != nb || f.mask != uint64(nb-1) {
			t.Errorf("NewFDB(%d): %d buckets mask %#x", size, len(f.buckets), f.mask)
		}
		f.Learn(testMAC(1), 1, 1, 1)
		if _, ok := f.Lookup(testMAC(1), 1); !ok {
			t.Errorf("NewFDB(%d): learned entry not found", size)
		}
	}
}

// fdbPortOf is the only port TestFDBConcurrent ever learns MAC i on, so a
// lookup may miss but must never return another port.
func fdbPortOf(i int) uint16 { return uint16(i%13 + 1) }

// TestFDBConcurrent has two learners (distinct and overlapping MACs, each
// learned on one fixed port only) and a lookup goroutine race a goroutine
// that expires and flushes. The table is tiny so slots are evicted and
// reused all the time. Run it with -race.
func TestFDBConcurrent(t *testing.T) {
	f := NewFDB(16) // 2 buckets, 16 slots, 48 MACs: constant eviction
	const nMACs = 48
	dur := 300 * time.Millisecond
	if testing.Short() {
		dur = 50 * time.Millisecond
	}
	var (
		stop  atomic.Bool
		clock atomic.Uint32
		wg    sync.WaitGroup
		torn  atomic.Int64
		first atomic.Value // string: the first wrong lookup
	)
	check := func(i int) {
		if p, ok := f.Lookup(testMAC(i), 1); ok && p != fdbPortOf(i) {
			if torn.Add(1) == 1 {
				first.Store(testMAC(i).String())
			}
		}
	}
	learner := func(lo, hi int) {
		defer wg.Done()
		for n := 0; !stop.Load(); n++ {
			i := lo + n%(hi-lo)
			f.Learn(testMAC(i), 1, fdbPortOf(i), clock.Add(1))
			check(i)
			check((n * 7) % nMACs)
		}
	}
	wg.Add(4)
	go learner(0, 32)  // MACs 0..31
	go learner(16, 48) // MACs 16..47: 16..31 overlap
	go func() {        // lookups only
		defer wg.Done()
		for n := 0; !stop.Load(); n++ {
			check(n % nMACs)
		}
	}()
	go func() { // the control goroutine: aging and flushes
		defer wg.Done()
		for n := 0; !stop.Load(); n++ {
			switch n % 4 {
			case 0, 1:
				if c := clock.Load(); c > 20 {
					f.Expire(c - 20)
				}
			case 2:
				f.FlushPort(uint16(n%13 + 1))
			case 3:
				f.Flush(false)
			}
		}
	}()
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	if n := torn.Load(); n > 0 {
		t.Fatalf("%d lookups returned a port the MAC was never learned on (first: %v)", n, first.Load())
	}
	// Whatever survived must be consistent too.
	f.Walk(func(r FDBRecord) {
		i := int(r.MAC[5]) | int(r.MAC[4])<<8
		if r.Port != fdbPortOf(i) {
			t.Errorf("entry %v on port %d, only ever learned on %d", r.MAC, r.Port, fdbPortOf(i))
		}
	})
}
