package pipeline

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
)

// FlowCache is one worker's exact-match cache from FlowKey to the
// FlowAction the gateway steps synthesized for the flow's first packet.
//
// It is owned by one worker: lookups and inserts take no locks and never
// allocate; only the counters are atomic, so that the control path can read
// them. The memory is fixed at creation: buckets of flowWays entries, the
// least recently used entry of a full bucket is evicted.
//
// An entry is used only while all of these hold; otherwise the packet is a
// miss and the steps run again (a revalidation when the entry was stale):
//   - its generation equals the caller's current one, which every change
//     that could alter a result bumps (routes, ACL, FDB moves, neighbor
//     changes, an explicit flush);
//   - every state it depends on (FlowAction.Deps) is unchanged;
//   - it was used within the idle timeout.
type FlowCache struct {
	buckets []flowBucket
	mask    uint64
	idle    uint32
	live    int
	sweep   int // next bucket Sweep looks at
	stats   flowCounters
}

// flowWays is the associativity: entries per bucket.
const flowWays = 4

// flowBucket keeps a short tag of each entry's hash in front, so that a
// lookup compares full keys (and touches entries' cache lines) only for
// the ways whose tag matches. Tag 0 marks a free way.
type flowBucket struct {
	tags [flowWays]uint32
	e    [flowWays]flowEntry
}

type flowEntry struct {
	key  FlowKey
	gen  uint64
	used uint32 // switch clock, seconds
	act  FlowAction
}

// flowTag is the tag of hash h: its top half, never 0.
func flowTag(h uint64) uint32 { return uint32(h>>32) | 1 }

type flowCounters struct {
	hits, misses, inserts, evictions, revalidations, expired, invalidated atomic.Uint64
}

// FlowCacheStats are a FlowCache's counters.
type FlowCacheStats struct {
	Entries  int    `json:"entries"`
	Capacity int    `json:"capacity"`
	Hits     uint64 `json:"hits"`
	Misses   uint64 `json:"misses"`
	Inserts  uint64 `json:"inserts"`
	// Evictions counts live entries replaced because their bucket was full.
	Evictions uint64 `json:"evictions"`
	// Revalidations counts entries found stale (older generation) and
	// recomputed by running the steps again.
	Revalidations uint64 `json:"revalidations"`
	// Expired counts entries dropped for being idle too long.
	Expired uint64 `json:"expired"`
	// Invalidated counts entries dropped because state they depended on
	// (a connection entry, a NAT mapping) changed.
	Invalidated uint64 `json:"invalidated"`
}

// Add returns the sum of s and o (for totals over workers).
func (s FlowCacheStats) Add(o FlowCacheStats) FlowCacheStats {
	s.Entries += o.Entries
	s.Capacity += o.Capacity
	s.Hits += o.Hits
	s.Misses += o.Misses
	s.Inserts += o.Inserts
	s.Evictions += o.Evictions
	s.Revalidations += o.Revalidations
	s.Expired += o.Expired
	s.Invalidated += o.Invalidated
	return s
}

// NewFlowCache returns a cache of at least entries entries (rounded up to a
// power of two buckets) whose entries expire after idle seconds unused.
func NewFlowCache(entries int, idle uint32) *FlowCache {
	nb := max(1, (entries+flowWays-1)/flowWays)
	nb = 1 << bits.Len(uint(nb-1))
	if idle == 0 {
		idle = 1
	}
	return &FlowCache{buckets: make([]flowBucket, nb), mask: uint64(nb - 1), idle: idle}
}

// Capacity is the number of entries the cache can hold.
func (c *FlowCache) Capacity() int { return len(c.buckets) * flowWays }

// Len is the number of live entries (some may be stale or idle until a
// lookup or Sweep finds them).
func (c *FlowCache) Len() int { return c.live }

// hashKey mixes the key's words; it needs to spread well, not resist
// attackers who can only pick 5-tuples that share a bucket and evict each
// other's entries (the cost is a miss, not a wrong answer).
func hashKey(k *FlowKey) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := binary.LittleEndian.Uint64(k.Src[0:]) * m
	h ^= binary.LittleEndian.Uint64(k.Src[8:])
	h = bits.RotateLeft64(h, 29) * m
	h ^= binary.LittleEndian.Uint64(k.Dst[0:])
	h = bits.RotateLeft64(h, 29) * m
	h ^= binary.LittleEndian.Uint64(k.Dst[8:])
	h = bits.RotateLeft64(h, 29) * m
	h ^= uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.InPort)<<32 | uint64(k.VLAN)<<48
	h = bits.RotateLeft64(h, 29) * m
	h ^= uint64(k.Proto) | uint64(k.Family)<<8
	h ^= h >> 32
	h *= m
	h ^= h >> 29
	return h
}

// Lookup returns the cached action for k when a valid one exists and marks
// it used at now. gen is the caller's current generation.
func (c *FlowCache) Lookup(k *FlowKey, gen uint64, now uint32) *FlowAction {
	h := hashKey(k)
	b := &c.buckets[h&c.mask]
	tag := flowTag(h)
	for i := range b.tags {
		if b.tags[i] != tag {
			continue
		}
		e := &b.e[i]
		if e.key != *k {
			continue
		}
		switch {
		case e.gen != gen:
			c.stats.revalidations.Add(1)
		case now-e.used > c.idle:
			c.stats.expired.Add(1)
		case !e.act.Deps[0].Valid() || !e.act.Deps[1].Valid():
			c.stats.invalidated.Add(1)
		default:
			e.used = now
			c.stats.hits.Add(1)
			return &e.act
		}
		b.tags[i] = 0
		c.live--
		break
	}
	c.stats.misses.Add(1)
	return nil
}

// Peek returns a copy of the entry for k and whether it would be a hit,
// without counting or touching anything (for trace).
func (c *FlowCache) Peek(k *FlowKey, gen uint64, now uint32) (act FlowAction, found, valid bool) {
	h := hashKey(k)
	b := &c.buckets[h&c.mask]
	for i := range b.e {
		e := &b.e[i]
		if b.tags[i] == flowTag(h) && e.key == *k {
			valid = e.gen == gen && now-e.used <= c.idle && e.act.Deps[0].Valid() && e.act.Deps[1].Valid()
			return e.act, true, valid
		}
	}
	return FlowAction{}, false, false
}

// Insert stores act for k at generation gen, replacing an entry of the same
// key, else taking a free slot of the bucket, else evicting its least
// recently used entry.
func (c *FlowCache) Insert(k *FlowKey, gen uint64, now uint32, act *FlowAction) {
	h := hashKey(k)
	b := &c.buckets[h&c.mask]
	tag := flowTag(h)
	victim := -1
	for i := range b.e {
		e := &b.e[i]
		live := b.tags[i] != 0
		if b.tags[i] == tag && e.key == *k {
			victim = i
			break
		}
		if !live {
			if victim < 0 || b.tags[victim] != 0 {
				victim = i
			}
			continue
		}
		if victim < 0 || b.tags[victim] != 0 && now-e.used > now-b.e[victim].used {
			victim = i
		}
	}
	e := &b.e[victim]
	switch {
	case b.tags[victim] == 0:
		c.live++
	case e.key != *k:
		c.stats.evictions.Add(1)
	}
	b.tags[victim] = tag
	e.key, e.gen, e.used, e.act = *k, gen, now, *act
	c.stats.inserts.Add(1)
}

// Sweep examines up to n buckets, continuing where the last call stopped,
// and frees entries that are stale, idle or invalid, so that Len stays
// honest on an idle worker. It returns how many it freed.
func (c *FlowCache) Sweep(gen uint64, now uint32, n int) int {
	freed := 0
	for ; n > 0; n-- {
		b := &c.buckets[c.sweep]
		c.sweep = (c.sweep + 1) & int(c.mask)
		for i := range b.e {
			e := &b.e[i]
			if b.tags[i] == 0 {
				continue
			}
			switch {
			case now-e.used > c.idle:
				c.stats.expired.Add(1)
			case !e.act.Deps[0].Valid() || !e.act.Deps[1].Valid():
				c.stats.invalidated.Add(1)
			case e.gen != gen:
				// Stale: dropped without recomputing; the next packet of
				// the flow is a plain miss.
			default:
				continue
			}
			b.tags[i] = 0
			c.live--
			freed++
		}
	}
	return freed
}

// Flush frees every entry and returns how many were live.
func (c *FlowCache) Flush() int {
	n := c.live
	clear(c.buckets)
	c.live = 0
	return n
}

// Stats returns the counters. Entries is read without synchronisation and
// is exact only on the owning worker.
func (c *FlowCache) Stats() FlowCacheStats {
	return FlowCacheStats{
		Entries: c.live, Capacity: c.Capacity(),
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), Inserts: c.stats.inserts.Load(),
		Evictions: c.stats.evictions.Load(), Revalidations: c.stats.revalidations.Load(),
		Expired: c.stats.expired.Load(), Invalidated: c.stats.invalidated.Load(),
	}
}

// FlowEntry is one cache entry as the control path sees it.
type FlowEntry struct {
	Key    FlowKey
	Action FlowAction
	Idle   uint32 // seconds since last use
	Valid  bool   // current generation and dependencies
}

// Entries calls fn for every live entry. Run it on the owning worker.
func (c *FlowCache) Entries(gen uint64, now uint32, fn func(FlowEntry)) {
	for bi := range c.buckets {
		for i := range c.buckets[bi].e {
			e := &c.buckets[bi].e[i]
			if c.buckets[bi].tags[i] == 0 {
				continue
			}
			fn(FlowEntry{Key: e.key, Action: e.act, Idle: now - e.used,
				Valid: e.gen == gen && now-e.used <= c.idle && e.act.Deps[0].Valid() && e.act.Deps[1].Valid()})
		}
	}
}

// Apply gives p the cached result: the rewrites in one pass, then the
// verdict; now refreshes the state the flow keeps alive.
func (a *FlowAction) Apply(p *Packet, now uint32) {
	if a.Hits != nil {
		a.Hits.Store(a.Hits.Load() + 1)
	}
	if a.Touch != nil && a.Touch.Load() != now {
		a.Touch.Store(now)
	}
	if a.Verdict != VerdictForward {
		p.Drop(a.Reason)
		return
	}
	if a.Ops&OpSetMACs != 0 {
		SetMACs(p.Data, a.SrcMAC, a.DstMAC)
	}
	if a.Ops&OpDecTTL != 0 {
		DecTTL(p)
	}
	p.VLAN = a.OutVLAN
	p.Forward(a.OutPort)
}

// SetMACs writes the Ethernet source and destination addresses.
func SetMACs(d []byte, src, dst MAC) {
	copy(d[0:6], dst[:])
	copy(d[6:12], src[:])
}

// DecTTL decrements the IPv4 TTL, updating the header checksum
// incrementally, or the IPv6 hop limit. The caller has checked that it is
// above 1.
func DecTTL(p *Packet) {
	d := p.Data
	l3 := int(p.L3Off)
	if p.Flags&FlagIPv4 != 0 {
		old := binary.BigEndian.Uint16(d[l3+8:])
		d[l3+8]--
		csum := binary.BigEndian.Uint16(d[l3+10:])
		binary.BigEndian.PutUint16(d[l3+10:], ChecksumUpdate16(csum, old, binary.BigEndian.Uint16(d[l3+8:])))
		return
	}
	d[l3+7]--
}

// TTL returns the IPv4 TTL or IPv6 hop limit of a parsed IP packet.
func TTL(p *Packet) uint8 {
	if p.Flags&FlagIPv4 != 0 {
		return p.Data[int(p.L3Off)+8]
	}
	return p.Data[int(p.L3Off)+7]
}
