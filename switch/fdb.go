package vswitch

import (
	"math/bits"
	"runtime"
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// FDB is the L2 forwarding database: MAC+VLAN -> port, shared by every
// worker without locks. It is a fixed array of 8-slot buckets; each slot is
// a key word and a value word updated with atomics. Readers never wait;
// writers (learning on a worker, aging and flushing on the control
// goroutine) race only on the same slot, where the last store wins and a
// lost update is re-learned from the next frame.
//
// A writer owns a slot while it changes the value: it swaps the key for
// fdbKeyBusy, stores the value, then publishes the key. A reader loads the
// key, the value, and the key again; if the key changed, the slot went to
// another key meanwhile and the reader reports a miss, never that key's
// port.
//
// Key word: 1<<63 | vlan<<48 | mac (0 = empty slot).
// Value word: seen(seconds, 32 bits)<<32 | static<<16 | port(16 bits).
type FDB struct {
	buckets []fdbBucket
	mask    uint64
	// moves counts MAC moves between ports and removed the entries
	// removed; the gateway's flow cache watches their sum (Changes).
	moves   atomic.Uint64
	removed atomic.Uint64
	full    atomic.Uint64
}

const fdbWays = 8

type fdbBucket struct {
	keys [fdbWays]atomic.Uint64
	vals [fdbWays]atomic.Uint64
}

const (
	fdbKeyValid  = uint64(1) << 63
	fdbValStatic = uint64(1) << 16
	// fdbKeyBusy marks a slot being written; it matches no real key because
	// real keys have the valid bit.
	fdbKeyBusy = uint64(1)
)

// NewFDB returns an empty table of size entries (a power of two >= 8).
func NewFDB(size int) *FDB {
	nb := size / fdbWays
	if nb < 1 {
		nb = 1
	}
	return &FDB{buckets: make([]fdbBucket, nb), mask: uint64(nb - 1)}
}

func fdbKey(mac pipeline.MAC, vlan uint16) uint64 {
	return fdbKeyValid | uint64(vlan&0xfff)<<48 |
		uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 |
		uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
}

func fdbKeyBytes(b []byte, vlan uint16) uint64 {
	_ = b[5]
	return fdbKeyValid | uint64(vlan&0xfff)<<48 |
		uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 |
		uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

func (f *FDB) bucket(key uint64) *fdbBucket {
	h := (key * 0x9e3779b97f4a7c15) >> 17
	h ^= bits.RotateLeft64(key, 29)
	return &f.buckets[(h*0xbf58476d1ce4e5b9>>32)&f.mask]
}

// lookup returns the port of key; ok is false when unknown.
func (f *FDB) lookup(key uint64) (port uint16, ok bool) {
	b := f.bucket(key)
	for i := range b.keys {
		if b.keys[i].Load() == key {
			v := b.vals[i].Load()
			// Aging, a flush or an eviction may have given the slot to
			// another key between the two loads, and v may be that key's
			// port. A miss floods; a wrong port misdelivers.
			if b.keys[i].Load() != key {
				return 0, false
			}
			return uint16(v), true
		}
	}
	return 0, false
}

// learn records that key was seen on port at time now (seconds). It returns
// true when the entry moved to another port.
func (f *FDB) learn(key uint64, port uint16, now uint32) (moved bool) {
	b := f.bucket(key)
	val := uint64(now)<<32 | uint64(port)
	free, busy := -1, false
	for i := range b.keys {
		switch k := b.keys[i].Load(); {
		case k == key:
			return f.refresh(b, i, key, val)
		case k == 0 && free < 0:
			free = i
		case k == fdbKeyBusy:
			busy = true
		}
	}
	if busy {
		// The busy slot may be this key, being refreshed by another
		// worker; inserting it now could store it twice.
		return false // lost the race; the next frame learns again
	}
	victim := uint64(0)
	if free < 0 {
		// Bucket full: replace the least recently seen learned entry.
		if free, victim = b.oldestLearned(); free < 0 {
			f.full.Add(1)
			return false
		}
	}
	// Claim the slot with a busy marker, write the value, then publish the
	// key: a reader never sees this key with another key's value, and two
	// writers never share the slot.
	if !b.claim(free, victim) {
		return false // lost the race; the next frame learns again
	}
	b.vals[free].Store(val)
	b.keys[free].Store(key)
	if victim != 0 {
		f.removed.Add(1) // an eviction moves the victim's MAC to "unknown"
	}
	return false
}

// refresh stores val for key, found in slot i. Static entries keep their
// value: traffic never moves them.
func (f *FDB) refresh(b *fdbBucket, i int, key, val uint64) (moved bool) {
	old := b.vals[i].Load()
	if old&fdbValStatic != 0 || old == val {
		return false
	}
	// Own the slot while the value changes: aging, a flush or another
	// worker may hand it to another key at any moment, and a plain store
	// would then give that key this port.
	if !b.keys[i].CompareAndSwap(key, fdbKeyBusy) {
		return false // lost the race; the next frame learns again
	}
	old = b.vals[i].Load()
	if old&fdbValStatic == 0 {
		b.vals[i].Store(val)
	}
	b.keys[i].Store(key)
	if old&fdbValStatic == 0 && uint16(old) != uint16(val) {
		f.moves.Add(1)
		return true
	}
	return false
}

// oldestLearned returns the slot of the least recently seen learned entry
// and its key, or -1 when every entry is static.
func (b *fdbBucket) oldestLearned() (slot int, key uint64) {
	slot = -1
	oldest := ^uint32(0)
	for i := range b.keys {
		k, v := b.keys[i].Load(), b.vals[i].Load()
		if k&fdbKeyValid != 0 && v&fdbValStatic == 0 && uint32(v>>32) < oldest {
			oldest, slot, key = uint32(v>>32), i, k
		}
	}
	return slot, key
}

// claim marks slot i busy if it still holds want (0: empty). A learned
// entry chosen for replacement may have turned static meanwhile; claim
// then gives the slot back and fails.
func (b *fdbBucket) claim(i int, want uint64) bool {
	if !b.keys[i].CompareAndSwap(want, fdbKeyBusy) {
		return false
	}
	if want != 0 && b.vals[i].Load()&fdbValStatic != 0 {
		b.keys[i].Store(want)
		return false
	}
	return true
}

// Lookup returns the port a MAC is on in a VLAN.
func (f *FDB) Lookup(mac pipeline.MAC, vlan uint16) (uint16, bool) {
	return f.lookup(fdbKey(mac, vlan))
}

// Learn records mac in vlan on port at time now (seconds).
func (f *FDB) Learn(mac pipeline.MAC, vlan, port uint16, now uint32) bool {
	return f.learn(fdbKey(mac, vlan), port, now)
}

// AddStatic installs a static entry that traffic never moves and aging
// never removes. A learned entry of the MAC becomes static in place; in a
// full bucket the static entry replaces the least recently seen learned
// one. It reports false when the bucket holds only static entries.
func (f *FDB) AddStatic(mac pipeline.MAC, vlan, port uint16) bool {
	key := fdbKey(mac, vlan)
	b := f.bucket(key)
	val := fdbValStatic | uint64(port)
	// Learners only hold a slot for a few instructions; retry the scan
	// when one of them wins a slot first.
	for {
		slot, want := -1, uint64(0)
		for i := range b.keys {
			k := b.keys[i].Load()
			if k == key || k == fdbKeyBusy {
				slot, want = i, k
				break
			}
			if k == 0 && slot < 0 {
				slot = i
			}
		}
		switch {
		case want == fdbKeyBusy:
			runtime.Gosched()
			continue
		case slot < 0:
			if slot, want = b.oldestLearned(); slot < 0 {
				return false
			}
		}
		if want == key {
			if !b.keys[slot].CompareAndSwap(key, fdbKeyBusy) {
				continue
			}
		} else if !b.claim(slot, want) {
			continue
		}
		b.vals[slot].Store(val)
		b.keys[slot].Store(key)
		return true
	}
}

// FDBRecord is one entry as the control plane sees it.
type FDBRecord struct {
	MAC    pipeline.MAC
	VLAN   uint16
	Port   uint16
	Seen   uint32
	Static bool
}

// Walk calls fn for every entry.
func (f *FDB) Walk(fn func(FDBRecord)) {
	for bi := range f.buckets {
		b := &f.buckets[bi]
		for i := range b.keys {
			k := b.keys[i].Load()
			if k&fdbKeyValid == 0 {
				continue
			}
			v := b.vals[i].Load()
			if b.keys[i].Load() != k {
				continue // reused meanwhile: v may belong to another key
			}
			var r FDBRecord
			for j := 0; j < 6; j++ {
				r.MAC[j] = byte(k >> (40 - 8*j))
			}
			r.VLAN = uint16(k>>48) & 0xfff
			r.Port = uint16(v)
			r.Seen = uint32(v >> 32)
			r.Static = v&fdbValStatic != 0
			fn(r)
		}
	}
}

// Len counts entries (control path: walks the table).
func (f *FDB) Len() int {
	n := 0
	f.Walk(func(FDBRecord) { n++ })
	return n
}

// Expire removes learned entries last seen before cutoff (seconds) and
// returns how many it removed.
func (f *FDB) Expire(cutoff uint32) int {
	return f.remove(func(v uint64) bool { return v&fdbValStatic == 0 && uint32(v>>32) < cutoff })
}

// Flush removes every learned entry (and static ones when all is true).
func (f *FDB) Flush(all bool) int {
	return f.remove(func(v uint64) bool { return all || v&fdbValStatic == 0 })
}

// FlushPort removes every entry, static or learned, that points at port.
func (f *FDB) FlushPort(port uint16) int {
	return f.remove(func(v uint64) bool { return uint16(v) == port })
}

func (f *FDB) remove(match func(v uint64) bool) int {
	n := 0
	for bi := range f.buckets {
		b := &f.buckets[bi]
		for i := range b.keys {
			k := b.keys[i].Load()
			for k == fdbKeyBusy {
				// A learner holds the slot for a few instructions. Wait,
				// so that FlushPort never misses an entry being refreshed.
				runtime.Gosched()
				k = b.keys[i].Load()
			}
			if k&fdbKeyValid == 0 || !match(b.vals[i].Load()) {
				continue
			}
			if b.keys[i].CompareAndSwap(k, 0) {
				n++
			}
		}
	}
	f.removed.Add(uint64(n))
	return n
}

// Changes counts the events that can change where a known MAC is: moves
// between ports and removals. It only grows.
func (f *FDB) Changes() uint64 { return f.moves.Load() + f.removed.Load() }
