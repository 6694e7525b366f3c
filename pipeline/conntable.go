package pipeline

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// ConnKey identifies a connection for the ACL's "allow established" state:
// family, protocol, addresses and ports, but not the input port or VLAN,
// because a reply arrives on a port and segment the forward direction
// cannot know. Its fields mean what FlowKey's do.
type ConnKey struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Proto            uint8
	Family           uint8 // 4 or 6
}

// ConnKeyOf returns the connection part of a flow key.
func ConnKeyOf(k *FlowKey) ConnKey {
	return ConnKey{Src: k.Src, Dst: k.Dst, SrcPort: k.SrcPort, DstPort: k.DstPort, Proto: k.Proto, Family: k.Family}
}

// Reverse returns the key of the reply direction: addresses swapped, TCP
// and UDP ports swapped, and an ICMP or ICMPv6 echo request turned into
// the echo reply it expects (same identifier and code).
func (k ConnKey) Reverse() ConnKey {
	r := k
	r.Src, r.Dst = k.Dst, k.Src
	switch k.Proto {
	case ProtoTCP, ProtoUDP:
		r.SrcPort, r.DstPort = k.DstPort, k.SrcPort
	case ProtoICMP:
		if k.DstPort>>8 == 8 { // echo request -> echo reply (type 0)
			r.DstPort = k.DstPort & 0xff
		}
	case ProtoICMPv6:
		if k.DstPort>>8 == 128 { // echo request -> echo reply (129)
			r.DstPort = 129<<8 | k.DstPort&0xff
		}
	}
	return r
}

// connKeyLive marks the last key word of a slot that holds an entry; an
// empty slot's words are all zero.
const connKeyLive = 1 << 63

// words packs k into the five words a slot stores.
func (k *ConnKey) words() [5]uint64 {
	return [5]uint64{
		binary.LittleEndian.Uint64(k.Src[:8]),
		binary.LittleEndian.Uint64(k.Src[8:]),
		binary.LittleEndian.Uint64(k.Dst[:8]),
		binary.LittleEndian.Uint64(k.Dst[8:]),
		uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32 | uint64(k.Family)<<40 | connKeyLive,
	}
}

// connKeyFromWords is the inverse of words.
func connKeyFromWords(w *[5]uint64) ConnKey {
	var k ConnKey
	binary.LittleEndian.PutUint64(k.Src[:8], w[0])
	binary.LittleEndian.PutUint64(k.Src[8:], w[1])
	binary.LittleEndian.PutUint64(k.Dst[:8], w[2])
	binary.LittleEndian.PutUint64(k.Dst[8:], w[3])
	k.SrcPort = uint16(w[4])
	k.DstPort = uint16(w[4] >> 16)
	k.Proto = uint8(w[4] >> 32)
	k.Family = uint8(w[4] >> 40)
	return k
}

// connSlots is the number of entries in a bucket: a key hashes to one
// bucket and lives in any of its slots; there is no probing past it.
const connSlots = 4

// connReadTries is how often a reader re-reads a slot that a writer is
// changing before it treats the slot as a miss.
const connReadTries = 4

// connSlot is one entry. ver is a seqlock: odd while a writer changes key,
// even otherwise, and it grows by 2 with every write, so a Dep on it turns
// invalid when the entry is replaced or removed. The key is stored in
// atomic words so that a reader racing a writer reads torn but
// well-defined values, which the version check then rejects.
type connSlot struct {
	ver  atomic.Uint64
	key  [5]atomic.Uint64
	seen atomic.Uint32 // last-seen time, switch clock seconds
}

// connBucket holds connSlots entries. seq serializes writers: a writer
// claims the bucket by moving seq from even to odd with a CAS and releases
// it by adding 1, so seq also changes whenever an entry of the bucket is
// added or removed, which is what a cached miss depends on. tags holds 16
// bits of each live slot's key hash (0: empty), so that a reader visits
// only the slots that may hold its key and a miss mostly reads one cache
// line; it is a hint, the slot's seqlock decides.
type connBucket struct {
	seq   atomic.Uint64
	tags  atomic.Uint64
	slots [connSlots]connSlot
}

// setTag sets slot i's tag; the caller holds the bucket lock.
func (b *connBucket) setTag(i int, tag uint16) {
	sh := 16 * uint(i)
	b.tags.Store(b.tags.Load()&^(0xffff<<sh) | uint64(tag)<<sh)
}

// lock claims the bucket for one writer.
func (b *connBucket) lock() {
	for spins := 0; ; spins++ {
		if v := b.seq.Load(); v&1 == 0 && b.seq.CompareAndSwap(v, v+1) {
			return
		}
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

func (b *connBucket) unlock() { b.seq.Add(1) }

// ConnTableStats are a ConnTable's cumulative counters.
type ConnTableStats struct {
	Inserts   uint64 // new entries
	Evictions uint64 // entries replaced because their bucket was full
	Expired   uint64 // entries removed by ExpireIdle or Flush
}

// ConnTable is the fixed-size connection table behind the ACL's "allow
// established": the ACL step of every worker inserts the reverse key of
// each flow it allows and looks up the keys it would deny.
//
// Readers (Lookup) take no lock and never write. Writers (Insert, and the
// control path's ExpireIdle and Flush) serialize per bucket on the
// bucket's seq, so two workers inserting the same key cannot create two
// entries; each changed slot is published through its own version so
// readers never see a torn key. When a bucket is full, Insert evicts its
// least recently seen entry. Insert and Lookup do not allocate.
type ConnTable struct {
	buckets []connBucket
	mask    uint64
	seed    uint64
	clock   *atomic.Uint32
	live    atomic.Int64
	inserts atomic.Uint64
	evicts  atomic.Uint64
	expired atomic.Uint64
}

// NewConnTable returns a table of at least size entries (rounded up to a
// power-of-two number of buckets). clock is the switch clock in seconds,
// advanced elsewhere; entries are stamped with it.
func NewConnTable(size int, clock *atomic.Uint32) *ConnTable {
	nb := 1
	for nb*connSlots < size {
		nb <<= 1
	}
	if clock == nil {
		clock = new(atomic.Uint32)
	}
	return &ConnTable{
		buckets: make([]connBucket, nb),
		mask:    uint64(nb - 1),
		seed:    rand.Uint64() | 1,
		clock:   clock,
	}
}

// Cap returns the number of entries the table holds when full.
func (t *ConnTable) Cap() int { return len(t.buckets) * connSlots }

// Len returns the number of entries.
func (t *ConnTable) Len() int { return int(t.live.Load()) }

// Stats returns the table's counters.
func (t *ConnTable) Stats() ConnTableStats {
	return ConnTableStats{Inserts: t.inserts.Load(), Evictions: t.evicts.Load(), Expired: t.expired.Load()}
}

// bucket returns the bucket of the key words w and the key's tag there.
func (t *ConnTable) bucket(w *[5]uint64) (*connBucket, uint16) {
	h := t.seed
	for _, x := range w {
		h = (h ^ x) * 0x9e3779b97f4a7c15
		h ^= h >> 32
	}
	return &t.buckets[h&t.mask], uint16(h>>48) | 1
}

// find returns the slot of b holding w and the slot's version at which it
// did, or nil when no slot holds it (or a writer kept changing it).
func (b *connBucket) find(w *[5]uint64, tag uint16) (*connSlot, uint64) {
	tags := b.tags.Load()
	for i := range b.slots {
		if uint16(tags>>(16*uint(i))) != tag {
			continue
		}
		s := &b.slots[i]
		for range connReadTries {
			v := s.ver.Load()
			if v&1 != 0 {
				continue
			}
			match := s.key[4].Load() == w[4] && s.key[0].Load() == w[0] && s.key[1].Load() == w[1] &&
				s.key[2].Load() == w[2] && s.key[3].Load() == w[3]
			if s.ver.Load() != v {
				continue
			}
			if match {
				return s, v
			}
			break
		}
	}
	return nil, 0
}

// Lookup returns the entry for k: its version (a Dep on it stays valid
// until the entry is replaced or removed) and its last-seen time, which
// the caller may refresh. Lookup takes no lock and does not allocate.
func (t *ConnTable) Lookup(k ConnKey) (ver *atomic.Uint64, lastSeen *atomic.Uint32, ok bool) {
	w := k.words()
	b, tag := t.bucket(&w)
	s, _ := b.find(&w, tag)
	if s == nil {
		return nil, nil, false
	}
	return &s.ver, &s.seen, true
}

// lookupDep is Lookup for the ACL step. On a hit it returns the slot and
// the version at which the slot held k. On a miss it returns the bucket's
// seq as it was before the search: it changes when an entry is added to
// the bucket, so a cached "not established" can depend on it.
func (t *ConnTable) lookupDep(k *ConnKey) (s *connSlot, ver uint64, seq *atomic.Uint64) {
	w := k.words()
	b, tag := t.bucket(&w)
	seqVal := b.seq.Load()
	if s, v := b.find(&w, tag); s != nil {
		return s, v, nil
	}
	return nil, seqVal, &b.seq
}

// Insert adds k stamped with the clock's time, or refreshes its last-seen
// time when it is already present, and returns the entry's version and
// last-seen time as Lookup does. A full bucket gives up its least
// recently seen entry. Insert does not allocate.
func (t *ConnTable) Insert(k ConnKey) (ver *atomic.Uint64, lastSeen *atomic.Uint32) {
	s, _ := t.insert(&k)
	return &s.ver, &s.seen
}

// insert is Insert returning the slot and the version at which it holds k.
func (t *ConnTable) insert(k *ConnKey) (*connSlot, uint64) {
	w := k.words()
	b, tag := t.bucket(&w)
	now := t.clock.Load()
	if s, v := b.find(&w, tag); s != nil {
		s.touch(now)
		return s, v
	}
	b.lock()
	defer b.unlock()
	// Under the bucket lock no slot changes: look again (another writer
	// may have added k since) and choose the victim.
	var victim *connSlot
	var oldest uint32
	vi := 0
	for i := range b.slots {
		s := &b.slots[i]
		kw := s.key[4].Load()
		if kw == 0 {
			if victim == nil || victim.key[4].Load() != 0 {
				victim, vi = s, i
			}
			continue
		}
		if kw == w[4] && s.key[0].Load() == w[0] && s.key[1].Load() == w[1] &&
			s.key[2].Load() == w[2] && s.key[3].Load() == w[3] {
			s.touch(now)
			return s, s.ver.Load()
		}
		if victim == nil || victim.key[4].Load() != 0 && now-s.seen.Load() > oldest {
			victim, vi, oldest = s, i, now-s.seen.Load()
		}
	}
	if victim.key[4].Load() != 0 {
		t.evicts.Add(1)
	} else {
		t.live.Add(1)
	}
	t.inserts.Add(1)
	victim.ver.Add(1)
	for i := range w {
		victim.key[i].Store(w[i])
	}
	victim.seen.Store(now)
	v := victim.ver.Add(1)
	b.setTag(vi, tag)
	return victim, v
}

// touch sets the last-seen time, skipping the store (a locked instruction
// on a shared line) when it holds already.
func (s *connSlot) touch(now uint32) {
	if s.seen.Load() != now {
		s.seen.Store(now)
	}
}

// clear removes the entry in slot i of b; the caller holds the lock.
func (t *ConnTable) clear(b *connBucket, i int) {
	b.setTag(i, 0)
	s := &b.slots[i]
	s.ver.Add(1)
	for i := range s.key {
		s.key[i].Store(0)
	}
	s.ver.Add(1)
	t.live.Add(-1)
	t.expired.Add(1)
}

// ExpireIdle removes the entries not seen for idle seconds or more and
// returns how many it removed; flows depending on them become invalid.
// It is for the control path: it walks the whole table.
func (t *ConnTable) ExpireIdle(idle uint32) int {
	now := t.clock.Load()
	n := 0
	for i := range t.buckets {
		b := &t.buckets[i]
		stale := false
		for j := range b.slots {
			s := &b.slots[j]
			if s.key[4].Load() != 0 && now-s.seen.Load() >= idle {
				stale = true
			}
		}
		if !stale {
			continue
		}
		b.lock()
		for j := range b.slots {
			s := &b.slots[j]
			if s.key[4].Load() != 0 && now-s.seen.Load() >= idle {
				t.clear(b, j)
				n++
			}
		}
		b.unlock()
	}
	return n
}

// Flush removes every entry and returns how many there were.
func (t *ConnTable) Flush() int {
	n := 0
	for i := range t.buckets {
		b := &t.buckets[i]
		b.lock()
		for j := range b.slots {
			if b.slots[j].key[4].Load() != 0 {
				t.clear(b, j)
				n++
			}
		}
		b.unlock()
	}
	return n
}

// read returns the key s holds and the version it holds it at, for tests: ok is
// false when the slot is empty or kept changing.
func (s *connSlot) read() (k ConnKey, ver uint64, ok bool) {
	for range connReadTries {
		v := s.ver.Load()
		if v&1 != 0 {
			continue
		}
		var w [5]uint64
		for i := range w {
			w[i] = s.key[i].Load()
		}
		if s.ver.Load() != v {
			continue
		}
		if w[4] == 0 {
			return ConnKey{}, v, false
		}
		return connKeyFromWords(&w), v, true
	}
	return ConnKey{}, 0, false
}
