package peephole

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

// GleanTable holds bindings learned from observed ARP and ND (KindGleaned),
// with aging. Several workers learn into it and look it up concurrently
// from the datapath, without locks and without allocating; the control
// path expires, deletes, flushes and lists.
//
// It is a fixed array of slots in buckets of gleanWays (open addressing
// inside one bucket, no chaining). A new binding takes a free slot of its
// bucket or, when the bucket is full, replaces the slot seen longest ago
// (counted in GleanStats.Replaced). Every slot is a seqlock whose fields
// are all atomic words: a writer makes the sequence odd with a
// compare-and-swap, stores the fields and makes it even again; a reader
// that sees an odd or changed sequence retries a few times and then
// misses, so it never returns a MAC of one entry with the address of
// another. A writer that finds its slot held by another writer drops its
// update (counted in GleanStats.Busy): the next packet from that host
// learns it again, and the datapath never waits.
//
// The zero GleanTable is not usable; use NewGleanTable.
type GleanTable struct {
	slots []gleanSlot
	mask  uint64 // buckets - 1
	seed  uint64 // per-table hash seed, so bucket collisions cannot be precomputed
	clock *atomic.Uint32

	// The counters take every worker's once-per-batch writes: keep them
	// off the cache line the lookups read.
	_                                  [64]byte
	learned, refreshed, replaced, busy atomic.Uint64
	changes                            atomic.Uint64
}

// gleanWays is the number of slots in a bucket: four 32-byte slots, 128
// bytes.
const gleanWays = 4

// gleanSlot is one binding. Address words hold the key's 16-byte address
// (IPv4 as v4-mapped IPv6) big-endian; macv holds the MAC in the low 48
// bits, the VLAN in bits 48-59 and gleanValid.
type gleanSlot struct {
	seq    atomic.Uint32 // odd while a writer owns the slot
	seen   atomic.Uint32 // clock value the binding was last observed at
	hi, lo atomic.Uint64
	macv   atomic.Uint64
}

const (
	gleanValid    = uint64(1) << 63
	gleanMACMask  = uint64(1)<<48 - 1
	gleanReadTry  = 4 // attempts of a reader on a slot being written
	v4MappedLoTag = uint64(0xffff) << 32
)

// GleanStats are a GleanTable's counters.
type GleanStats struct {
	Learned   uint64 // new bindings, and bindings whose MAC changed
	Refreshed uint64 // bindings observed again with the same MAC
	Replaced  uint64 // live bindings pushed out of a full bucket
	Busy      uint64 // updates dropped because another writer held the slot
}

// NewGleanTable returns an empty table of size slots (rounded up to a power
// of two, at least one bucket) whose LastSeen times read clock, the
// switch's seconds counter that someone else advances. The table keeps
// clock; the ARP and ND stages read it once per batch.
func NewGleanTable(size int, clock *atomic.Uint32) *GleanTable {
	n := gleanWays
	for n < size {
		n <<= 1
	}
	return &GleanTable{
		slots: make([]gleanSlot, n),
		mask:  uint64(n/gleanWays - 1),
		seed:  rand.Uint64() | 1,
		clock: clock,
	}
}

// Size returns the number of slots.
func (t *GleanTable) Size() int { return len(t.slots) }

// Now returns the clock's current value.
func (t *GleanTable) Now() uint32 { return t.clock.Load() }

// Stats returns the counters.
func (t *GleanTable) Stats() GleanStats {
	return GleanStats{
		Learned:   t.learned.Load(),
		Refreshed: t.refreshed.Load(),
		Replaced:  t.replaced.Load(),
		Busy:      t.busy.Load(),
	}
}

// gleanCounts are a stage's per-batch glean counters, published into the
// table once per batch so that workers do not bounce a shared cache line
// per packet.
type gleanCounts struct{ learned, refreshed, replaced, busy uint64 }

func (t *GleanTable) publish(c *gleanCounts) {
	if c.learned != 0 {
		t.learned.Add(c.learned)
	}
	if c.refreshed != 0 {
		t.refreshed.Add(c.refreshed)
	}
	if c.replaced != 0 {
		t.replaced.Add(c.replaced)
	}
	if c.busy != 0 {
		t.busy.Add(c.busy)
	}
	*c = gleanCounts{}
}

func gleanWords(addr [16]byte) (hi, lo uint64) {
	return binary.BigEndian.Uint64(addr[:8]), binary.BigEndian.Uint64(addr[8:])
}

func macWord(m pipeline.MAC) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func wordMAC(w uint64) pipeline.MAC {
	return pipeline.MAC{byte(w >> 40), byte(w >> 32), byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w)}
}

// bucket returns the first slot index of the key's bucket.
func (t *GleanTable) bucket(vlan uint16, hi, lo uint64) int {
	h := (hi ^ t.seed) * 0x9e3779b97f4a7c15
	h = bits.RotateLeft64(h, 29) ^ lo ^ uint64(vlan)<<48
	h *= 0xff51afd7ed558ccd
	h ^= h >> 32
	return int(h&t.mask) * gleanWays
}

// read returns a consistent copy of slot s: its key words, macv (0 when
// empty) and last-seen time, and the even sequence number they were read
// at. ok is false when a writer kept the slot busy for every attempt.
func (s *gleanSlot) read() (hi, lo, macv uint64, seen, seq uint32, ok bool) {
	for range gleanReadTry {
		seq = s.seq.Load()
		if seq&1 != 0 {
			continue
		}
		macv = s.macv.Load()
		hi, lo = s.hi.Load(), s.lo.Load()
		seen = s.seen.Load()
		if s.seq.Load() == seq {
			return hi, lo, macv, seen, seq, true
		}
	}
	return 0, 0, 0, 0, 0, false
}

// lock takes slot s for writing if its sequence is still seq.
func (s *gleanSlot) lock(seq uint32) bool { return s.seq.CompareAndSwap(seq, seq+1) }

// unlock publishes the fields stored since lock(seq).
func (s *gleanSlot) unlock(seq uint32) { s.seq.Store(seq + 2) }

// gleanKey returns the macv word of a key without its MAC.
func gleanKey(vlan uint16) uint64 { return gleanValid | uint64(vlan&0xfff)<<48 }

// learn records that addr (IPv4 as v4-mapped IPv6) in vlan was seen at
// now with mac, and counts what happened in c. The caller has checked that
// addr and mac are bindable. It never waits and does not allocate.
// It reports whether the binding was learned or refreshed.
func (t *GleanTable) learn(vlan uint16, addr [16]byte, mac pipeline.MAC, now uint32, c *gleanCounts) bool {
	if vlan > MaxVLAN {
		return false
	}
	hi, lo := gleanWords(addr)
	key := gleanKey(vlan)
	want := key | macWord(mac)
	b := t.slots[t.bucket(vlan, hi, lo):][:gleanWays]
	victim, victimSeq, victimSeen, victimLive := -1, uint32(0), uint32(0), false
	for i := range b {
		s := &b[i]
		shi, slo, macv, seen, seq, ok := s.read()
		if !ok {
			c.busy++
			return false // someone is writing here right now; maybe our key
		}
		if macv&^gleanMACMask == key && shi == hi && slo == lo {
			if macv == want {
				// The common case: a known host. Write only once a
				// second, so its slot's cache line stays shared. The
				// store is outside the seqlock: if the slot changed
				// since the read, its new binding gets a time just as
				// recent, and an empty slot ignores it.
				if seen != now {
					s.seen.Store(now)
				}
				c.refreshed++
				return true
			}
			if !s.lock(seq) {
				c.busy++
				return false
			}
			s.macv.Store(want)
			s.seen.Store(now)
			s.unlock(seq)
			t.changes.Add(1)
			c.learned++
			return true
		}
		live := macv&gleanValid != 0
		switch {
		case victim < 0,
			victimLive && !live,
			victimLive && live && int32(seen-victimSeen) < 0:
			victim, victimSeq, victimSeen, victimLive = i, seq, seen, live
		}
	}
	s := &b[victim]
	if !s.lock(victimSeq) {
		c.busy++
		return false
	}
	s.hi.Store(hi) // readers see an odd sequence until unlock
	s.lo.Store(lo)
	s.seen.Store(now)
	s.macv.Store(want)
	s.unlock(victimSeq)
	c.learned++
	if victimLive {
		t.changes.Add(1)
		c.replaced++
	}
	return true
}

// lookup returns the MAC bound to the address words hi, lo in vlan.
func (t *GleanTable) lookup(vlan uint16, hi, lo uint64) (pipeline.MAC, bool) {
	key := gleanKey(vlan)
	if vlan > MaxVLAN {
		return pipeline.MAC{}, false
	}
	b := t.slots[t.bucket(vlan, hi, lo):][:gleanWays]
	for i := range b {
		shi, slo, macv, _, _, ok := b[i].read()
		if ok && macv&^gleanMACMask == key && shi == hi && slo == lo {
			return wordMAC(macv), true
		}
	}
	return pipeline.MAC{}, false
}

// lookup4 returns the MAC gleaned for IPv4 address ip in vlan.
func (t *GleanTable) lookup4(vlan uint16, ip [4]byte) (pipeline.MAC, bool) {
	return t.lookup(vlan, 0, v4MappedLoTag|uint64(binary.BigEndian.Uint32(ip[:])))
}

// lookup6 returns the MAC gleaned for IPv6 address addr in vlan. A
// v4-mapped address finds nothing: it is the key of an IPv4 binding.
func (t *GleanTable) lookup6(vlan uint16, addr [16]byte) (pipeline.MAC, bool) {
	hi, lo := gleanWords(addr)
	if hi == 0 && lo&^0xffffffff == v4MappedLoTag {
		return pipeline.MAC{}, false
	}
	return t.lookup(vlan, hi, lo)
}

// clearIf empties every slot for which drop returns true and says how
// many it emptied. A slot a datapath writer holds is skipped: it is being
// refreshed, so it is not stale.
func (t *GleanTable) clearIf(drop func(hi, lo, macv uint64, seen uint32) bool) int {
	n := 0
	for i := range t.slots {
		s := &t.slots[i]
		hi, lo, macv, seen, seq, ok := s.read()
		if !ok || macv&gleanValid == 0 || !drop(hi, lo, macv, seen) || !s.lock(seq) {
			continue
		}
		s.macv.Store(0)
		s.hi.Store(0)
		s.lo.Store(0)
		s.seen.Store(0)
		s.unlock(seq)
		n++
	}
	t.changes.Add(uint64(n))
	return n
}

// Changes counts the events that changed or removed a binding (a new MAC
// for an address, an eviction, an expiry, a deletion); learning a new
// address does not count. It only grows. The gateway's flow cache, whose
// results hold neighbor MACs, watches it.
func (t *GleanTable) Changes() uint64 { return t.changes.Load() }

// Expire removes the bindings last seen before clock value olderThan and
// says how many. Control path; safe concurrently with the datapath.
// ExpireIdle is the usual way to call it.
func (t *GleanTable) Expire(olderThan uint32) int {
	return t.clearIf(func(_, _, _ uint64, seen uint32) bool { return seen < olderThan })
}

// ExpireIdle removes the bindings not seen for more than idle seconds of
// the clock and says how many. Unlike Expire(Now()-idle) it does not wrap
// around (and expire everything) while the clock is younger than idle.
func (t *GleanTable) ExpireIdle(idle uint32) int {
	now := t.Now()
	if now <= idle {
		return 0
	}
	return t.Expire(now - idle)
}

// Flush removes every binding and says how many.
func (t *GleanTable) Flush() int {
	return t.clearIf(func(uint64, uint64, uint64, uint32) bool { return true })
}

// Del removes the binding of ip in vlan and reports whether there was one.
func (t *GleanTable) Del(vlan uint16, ip netip.Addr) bool {
	if !ip.IsValid() || vlan > MaxVLAN {
		return false
	}
	hi, lo := gleanWords(ip.Unmap().As16())
	key := gleanKey(vlan)
	return t.clearIf(func(shi, slo, macv uint64, _ uint32) bool {
		return macv&^gleanMACMask == key && shi == hi && slo == lo
	}) > 0
}

// List returns a copy of every binding (Kind KindGleaned), ordered by VLAN,
// then address. toTime turns a clock value into LastSeen; nil leaves
// LastSeen zero. Control path only: it allocates.
func (t *GleanTable) List(toTime func(uint32) time.Time) []Binding {
	var out []Binding
	for i := range t.slots {
		hi, lo, macv, seen, _, ok := t.slots[i].read()
		if !ok || macv&gleanValid == 0 {
			continue
		}
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], hi)
		binary.BigEndian.PutUint64(a[8:], lo)
		b := Binding{
			VLAN: uint16(macv>>48) & 0xfff,
			IP:   netip.AddrFrom16(a).Unmap(),
			MAC:  wordMAC(macv),
			Kind: KindGleaned,
		}
		if toTime != nil {
			b.LastSeen = toTime(seen)
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		if a.VLAN != b.VLAN {
			return int(a.VLAN) - int(b.VLAN)
		}
		return a.IP.Compare(b.IP)
	})
	return out
}

// Len returns the number of bindings. It walks the table: control path.
func (t *GleanTable) Len() int {
	n := 0
	for i := range t.slots {
		if t.slots[i].macv.Load()&gleanValid != 0 {
			n++
		}
	}
	return n
}

// gleanable4 reports whether an IPv4 sender address may be gleaned: not
// 0.0.0.0/8 ("this network"), loopback, multicast, reserved or broadcast.
func gleanable4(ip [4]byte) bool {
	return ip[0] != 0 && ip[0] != 127 && ip[0] < 224
}

// gleanable6 reports whether an IPv6 address may be gleaned: not
// unspecified, loopback, multicast or v4-mapped (which would shadow an
// IPv4 binding).
func gleanable6(a [16]byte) bool {
	hi, lo := gleanWords(a)
	return a[0] != 0xff && !(hi == 0 && (lo <= 1 || lo&^0xffffffff == v4MappedLoTag))
}

// gleanableMAC reports whether m may be bound: unicast and not zero.
func gleanableMAC(m pipeline.MAC) bool { return !m.IsZero() && !m.IsMulticast() }

// nbrBatch is what the ARP and ND stages load once per batch: the binding
// snapshot, the glean table and the time, and the glean counters they
// publish when the batch is done.
type nbrBatch struct {
	snap  *snapshot
	glean *GleanTable
	now   uint32
	gc    gleanCounts
}

func (c *nbrBatch) load(t *BindingTable) {
	c.snap = t.load()
	if c.glean = t.Gleaned(); c.glean != nil {
		c.now = c.glean.Now()
	}
}

// done publishes the glean counters.
func (c *nbrBatch) done() {
	if c.glean != nil {
		c.glean.publish(&c.gc)
	}
}

// glean4 learns ip -> mac in vlan from an ARP packet whose Ethernet source
// is ethSrc, unless the binding would be bogus or a static or gateway
// binding owns ip there. It reports whether it learned or refreshed.
func (c *nbrBatch) glean4(vlan uint16, ip [4]byte, mac, ethSrc pipeline.MAC) bool {
	if c.glean == nil || mac != ethSrc || !gleanableMAC(mac) || !gleanable4(ip) {
		return false
	}
	if _, static := c.snap.find4(vlan, ip); static {
		return false
	}
	return c.glean.learn(vlan, [16]byte{10: 0xff, 11: 0xff, 12: ip[0], 13: ip[1], 14: ip[2], 15: ip[3]}, mac, c.now, &c.gc)
}

// glean6 is glean4 for an address from Neighbor Discovery.
func (c *nbrBatch) glean6(vlan uint16, ip [16]byte, mac, ethSrc pipeline.MAC) bool {
	if c.glean == nil || mac != ethSrc || !gleanableMAC(mac) || !gleanable6(ip) {
		return false
	}
	if _, static := c.snap.find6(vlan, ip); static {
		return false
	}
	return c.glean.learn(vlan, ip, mac, c.now, &c.gc)
}

// find4 returns the binding that answers for ip in vlan: the static or
// gateway one, else the gleaned one (never with the Router flag).
func (c *nbrBatch) find4(vlan uint16, ip [4]byte) (entry, bool) {
	if e, ok := c.snap.find4(vlan, ip); ok {
		return e, true
	}
	if c.glean != nil {
		if m, ok := c.glean.lookup4(vlan, ip); ok {
			return entry{mac: m, gleaned: true}, true
		}
	}
	return entry{}, false
}

// find6 is find4 for IPv6.
func (c *nbrBatch) find6(vlan uint16, ip [16]byte) (entry, bool) {
	if e, ok := c.snap.find6(vlan, ip); ok {
		return e, true
	}
	if c.glean != nil {
		if m, ok := c.glean.lookup6(vlan, ip); ok {
			return entry{mac: m, gleaned: true}, true
		}
	}
	return entry{}, false
}
