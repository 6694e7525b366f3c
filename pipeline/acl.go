package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrInvalidACL is wrapped by every error CompileACL returns.
var ErrInvalidACL = errors.New("invalid ACL")

// MaxACLRules is the most rules one ACL may have. The classifier's
// bitmaps grow with the square of the rule count in the worst case.
const MaxACLRules = 16384

// DefaultEstablishedTimeout is the idle time after which a connection
// entry expires when ACLConfig.EstablishedTimeout is zero.
const DefaultEstablishedTimeout = 2 * time.Minute

// PortRange is an inclusive range of L4 ports. The zero value, and
// likewise 0-65535, means any port, which also matches keys without L4
// ports; any other range matches only TCP and UDP keys.
type PortRange struct{ Lo, Hi uint16 }

// isAny reports whether r covers every port.
func (r PortRange) isAny() bool { return r.Lo == 0 && (r.Hi == 0 || r.Hi == 0xffff) }

func (r PortRange) String() string {
	switch {
	case r.isAny():
		return "any"
	case r.Lo == r.Hi:
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// ACLRule is one rule of an ACL. A zero (invalid) prefix matches any
// address; a prefix matches only keys of its own family, so a rule with an
// IPv4 prefix never matches an IPv6 key (an IPv4-mapped IPv6 prefix is an
// IPv6 prefix and matches IPv6 keys). Proto 0 matches any protocol. A rule
// with a port range must have protocol TCP, UDP or any.
type ACLRule struct {
	Allow              bool
	Proto              uint8 // 0 = any
	Src, Dst           netip.Prefix
	SrcPorts, DstPorts PortRange
}

// String formats r like "deny udp 10.0.0.0/8:any -> 10.77.2.0/24:10000-10999";
// IPv6 prefixes are bracketed.
func (r ACLRule) String() string {
	b := make([]byte, 0, 64)
	if r.Allow {
		b = append(b, "allow "...)
	} else {
		b = append(b, "deny "...)
	}
	b = append(b, protoName(r.Proto)...)
	b = append(b, ' ')
	b = appendEndpoint(b, r.Src, r.SrcPorts)
	b = append(b, " -> "...)
	b = appendEndpoint(b, r.Dst, r.DstPorts)
	return string(b)
}

func appendEndpoint(b []byte, p netip.Prefix, ports PortRange) []byte {
	switch {
	case !p.IsValid():
		b = append(b, "any"...)
	case p.Addr().Is4():
		b = p.AppendTo(b)
	default:
		b = append(b, '[')
		b = p.AppendTo(b)
		b = append(b, ']')
	}
	b = append(b, ':')
	return append(b, ports.String()...)
}

func protoName(p uint8) string {
	switch p {
	case 0:
		return "any"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return "proto" + strconv.Itoa(int(p))
}

// ACLConfig is the declarative ACL: rules in order (the first match
// decides), the decision when none matches, and whether the replies of
// allowed flows are let in ("allow established") regardless of the rules.
type ACLConfig struct {
	Rules        []ACLRule
	DefaultAllow bool
	Established  bool
	// EstablishedTimeout is how long a connection entry lives without
	// traffic; zero means DefaultEstablishedTimeout.
	EstablishedTimeout time.Duration
}

// ACLSet is a compiled, immutable ACL: a bit-vector classifier over the
// rules plus per-worker hit counters. Workers read it through an
// atomic.Pointer; the control path compiles a new one and swaps it in.
type ACLSet struct {
	rules      []ACLRule // canonical: prefixes masked, any ports zero
	defAllow   bool
	estab      bool
	estTimeout time.Duration
	workers    int
	cls        aclClassifier
	// counters holds one row of stride counters per worker: the rules',
	// then the default's, then the established one. stride leaves at
	// least a cache line between two workers' rows.
	stride   int
	counters []atomic.Uint64
	// base is what the counters of prev had counted for the same rules.
	base []uint64
}

// CompileACL checks cfg and builds its classifier, with hit counters for
// workers workers. When prev is not nil, each rule identical (same match
// and action) to a rule of prev, the default (when its action did not
// change) and the established counter start from prev's counts. Counts
// prev takes after CompileACL returns are not carried over, so publish
// the result promptly. Errors name the rule: "rules[3]: ...".
func CompileACL(cfg ACLConfig, workers int, prev *ACLSet) (*ACLSet, error) {
	if workers < 1 {
		return nil, fmt.Errorf("compile ACL: %w: %d workers", ErrInvalidACL, workers)
	}
	if len(cfg.Rules) > MaxACLRules {
		return nil, fmt.Errorf("compile ACL: %w: %d rules, at most %d", ErrInvalidACL, len(cfg.Rules), MaxACLRules)
	}
	if cfg.EstablishedTimeout < 0 {
		return nil, fmt.Errorf("compile ACL: %w: negative established timeout %v", ErrInvalidACL, cfg.EstablishedTimeout)
	}
	rules := make([]ACLRule, len(cfg.Rules))
	for i, r := range cfg.Rules {
		cr, err := canonicalRule(r)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w: %v", i, ErrInvalidACL, err)
		}
		rules[i] = cr
	}
	n := len(rules)
	s := &ACLSet{
		rules:      rules,
		defAllow:   cfg.DefaultAllow,
		estab:      cfg.Established,
		estTimeout: cfg.EstablishedTimeout,
		workers:    workers,
		cls:        buildClassifier(rules),
		stride:     (n+2+7)&^7 + 8,
		base:       make([]uint64, n+2),
	}
	if s.estTimeout == 0 {
		s.estTimeout = DefaultEstablishedTimeout
	}
	s.counters = make([]atomic.Uint64, workers*s.stride)
	if prev != nil {
		s.carryOver(prev)
	}
	return s, nil
}

// canonicalRule checks r and returns it with masked prefixes and "any"
// port ranges as zero, so that equal matches compare equal.
func canonicalRule(r ACLRule) (ACLRule, error) {
	for _, d := range []struct {
		name string
		p    *netip.Prefix
	}{{"src", &r.Src}, {"dst", &r.Dst}} {
		if *d.p == (netip.Prefix{}) {
			continue
		}
		if !d.p.IsValid() || d.p.Addr().Zone() != "" {
			return r, fmt.Errorf("%s prefix %v is not valid", d.name, *d.p)
		}
		*d.p = d.p.Masked()
	}
	if r.Src.IsValid() && r.Dst.IsValid() && r.Src.Addr().Is4() != r.Dst.Addr().Is4() {
		return r, fmt.Errorf("src %v and dst %v are of different families", r.Src, r.Dst)
	}
	for _, d := range []struct {
		name string
		r    *PortRange
	}{{"src", &r.SrcPorts}, {"dst", &r.DstPorts}} {
		if d.r.Lo > d.r.Hi {
			return r, fmt.Errorf("%s ports %d-%d: low above high", d.name, d.r.Lo, d.r.Hi)
		}
		if d.r.isAny() {
			*d.r = PortRange{}
		} else if r.Proto != 0 && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
			return r, fmt.Errorf("%s ports %v with protocol %s, which has none", d.name, *d.r, protoName(r.Proto))
		}
	}
	return r, nil
}

// carryOver sets s.base from prev's counts.
func (s *ACLSet) carryOver(prev *ACLSet) {
	hits := prev.Hits()
	byRule := make(map[ACLRule][]int, len(prev.rules))
	for j, r := range prev.rules {
		byRule[r] = append(byRule[r], j)
	}
	for i, r := range s.rules {
		if js := byRule[r]; len(js) > 0 {
			s.base[i] = hits[js[0]]
			byRule[r] = js[1:]
		}
	}
	n := len(s.rules)
	if prev.defAllow == s.defAllow {
		s.base[n] = hits[len(prev.rules)]
	}
	s.base[n+1] = prev.EstablishedHits()
}

// Rules returns a copy of the rules in canonical form (prefixes masked,
// any port ranges zero).
func (s *ACLSet) Rules() []ACLRule { return slices.Clone(s.rules) }

// DefaultAllow reports the action when no rule matches.
func (s *ACLSet) DefaultAllow() bool { return s.defAllow }

// Established reports whether replies of allowed flows are let in.
func (s *ACLSet) Established() bool { return s.estab }

// EstablishedTimeout is how long a connection entry may stay idle; the
// housekeeping passes it to ConnTable.ExpireIdle.
func (s *ACLSet) EstablishedTimeout() time.Duration { return s.estTimeout }

// Workers returns the number of workers the set has counters for.
func (s *ACLSet) Workers() int { return s.workers }

// HitCounter returns the counter of rule (-1: the default) for worker.
// Only that worker may write it. It panics if worker or rule is out of
// range.
func (s *ACLSet) HitCounter(worker, rule int) *atomic.Uint64 {
	if rule < -1 || rule >= len(s.rules) || worker < 0 || worker >= s.workers {
		panic(fmt.Sprintf("acl: hit counter %d of worker %d out of range", rule, worker))
	}
	return s.counter(worker, rule)
}

// counter is HitCounter without the range check.
func (s *ACLSet) counter(worker, rule int) *atomic.Uint64 {
	if rule < 0 {
		rule = len(s.rules)
	}
	return &s.counters[worker*s.stride+rule]
}

// estCounter is worker's counter of packets let in as established.
func (s *ACLSet) estCounter(worker int) *atomic.Uint64 {
	return &s.counters[worker*s.stride+len(s.rules)+1]
}

// Hits returns the hit counts of the rules, summed over the workers, and
// last the default's.
func (s *ACLSet) Hits() []uint64 {
	n := len(s.rules)
	h := slices.Clone(s.base[:n+1])
	for w := range s.workers {
		row := s.counters[w*s.stride:]
		for i := range h {
			h[i] += row[i].Load()
		}
	}
	return h
}

// EstablishedHits returns how many flows' packets were let in as replies
// of allowed flows, summed over the workers.
func (s *ACLSet) EstablishedHits() uint64 {
	h := s.base[len(s.rules)+1]
	for w := range s.workers {
		h += s.estCounter(w).Load()
	}
	return h
}

// Classify returns the first rule matching k and its action, or rule -1
// and the default action when none does. It does not allocate.
func (s *ACLSet) Classify(k *FlowKey) (rule int, allow bool) {
	if r := s.cls.classify(k); r >= 0 {
		return r, s.rules[r].Allow
	}
	return -1, s.defAllow
}

// The classifier is a bit-vector one (Lakshman and Stiliadis): each of
// five dimensions (source and destination address, protocol, source and
// destination port) cuts its value space into elementary intervals at the
// rules' boundaries, and gives each interval the bitmap of the rules that
// match it in that dimension. A key's bitmaps, one per dimension, are
// ANDed a word at a time; the lowest bit set is the first rule that
// matches in every dimension. Equal bitmaps are stored once, in one flat
// slice; an interval holds the offset of its bitmap there. A bitmap is
// stored as two words, the range [lo, hi) of its nonzero words, and then
// its nwords words: the AND only visits the words where all five bitmaps
// have bits, so a key that a port or protocol rules out of most rules
// costs little however many rules there are.
type aclClassifier struct {
	nwords       int
	bm           []uint64
	src, dst     aclAddrDim
	sport, dport aclPortDim
	proto        [256]uint32
}

// aclAddrDim is an address dimension. Interval i of a family starts at
// b4[i] (b6[i]) and has the bitmap at o4[i] (o6[i]); the first interval
// starts at zero. anyOff is the bitmap of the rules with no prefix here,
// for keys of neither family.
type aclAddrDim struct {
	b4     []uint32
	o4     []uint32
	b6     []u128
	o6     []uint32
	anyOff uint32
}

// aclPortDim is a port dimension, laid out like aclAddrDim. anyOff is
// for keys without L4 ports.
type aclPortDim struct {
	b      []uint16
	o      []uint32
	anyOff uint32
}

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() u128 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + c, lo}
}

func u128From(a *[16]byte) u128 {
	return u128{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
}

func (c *aclClassifier) classify(k *FlowKey) int {
	n := c.nwords
	if n == 0 {
		return -1
	}
	var so, do uint32
	switch k.Family {
	case 4:
		so = c.src.lookup4(binary.BigEndian.Uint32(k.Src[:4]))
		do = c.dst.lookup4(binary.BigEndian.Uint32(k.Dst[:4]))
	case 6:
		so = c.src.lookup6(u128From(&k.Src))
		do = c.dst.lookup6(u128From(&k.Dst))
	default:
		so, do = c.src.anyOff, c.dst.anyOff
	}
	spo, dpo := c.sport.anyOff, c.dport.anyOff
	if k.HasPorts() {
		spo, dpo = c.sport.lookup(k.SrcPort), c.dport.lookup(k.DstPort)
	}
	po := c.proto[k.Proto]
	bm := c.bm
	lo := max(bm[so], bm[do], bm[po], bm[spo], bm[dpo])
	hi := min(bm[so+1], bm[do+1], bm[po+1], bm[spo+1], bm[dpo+1])
	if lo >= hi {
		return -1
	}
	sb, db := bm[so+2+uint32(lo):so+2+uint32(hi)], bm[do+2+uint32(lo):do+2+uint32(hi)]
	pb := bm[po+2+uint32(lo) : po+2+uint32(hi)]
	spb, dpb := bm[spo+2+uint32(lo):spo+2+uint32(hi)], bm[dpo+2+uint32(lo):dpo+2+uint32(hi)]
	for w := range sb {
		if x := sb[w] & db[w] & pb[w] & spb[w] & dpb[w]; x != 0 {
			return (int(lo)+w)<<6 | bits.TrailingZeros64(x)
		}
	}
	return -1
}

func (d *aclAddrDim) lookup4(a uint32) uint32 {
	b := d.b4
	lo, hi := 0, len(b)
	for lo < hi { // first boundary above a
		m := int(uint(lo+hi) >> 1)
		if b[m] <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return d.o4[lo-1]
}

func (d *aclAddrDim) lookup6(a u128) uint32 {
	b := d.b6
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !a.less(b[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return d.o6[lo-1]
}

func (d *aclPortDim) lookup(p uint16) uint32 {
	b := d.b
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m] <= p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return d.o[lo-1]
}

// bitmapStore collects bitmaps of nwords words, storing equal ones once.
type bitmapStore struct {
	nwords int
	flat   []uint64
	index  map[string]uint32
	key    []byte
}

func (st *bitmapStore) add(bm []uint64) uint32 {
	st.key = st.key[:0]
	for _, w := range bm {
		st.key = binary.LittleEndian.AppendUint64(st.key, w)
	}
	if off, ok := st.index[string(st.key)]; ok {
		return off
	}
	off := uint32(len(st.flat))
	lo, hi := 0, 0
	for i, w := range bm {
		if w != 0 {
			if hi == 0 {
				lo = i
			}
			hi = i + 1
		}
	}
	st.flat = append(st.flat, uint64(lo), uint64(hi))
	st.flat = append(st.flat, bm...)
	st.index[string(st.key)] = off
	return off
}

// aclSpan is the inclusive range [lo, hi] a rule matches in a dimension.
type aclSpan struct {
	lo, hi u128
	rule   int
}

// buildDim cuts [0, max] into elementary intervals at the spans'
// boundaries and returns each interval's start and bitmap offset: the
// bitmap holds every rule in all (rules matching anything in this
// dimension) and the rules whose span covers the interval.
func (st *bitmapStore) buildDim(all []uint64, spans []aclSpan, max u128) ([]u128, []uint32) {
	type event struct {
		at   u128
		rule int
		add  bool
	}
	ev := make([]event, 0, 2*len(spans))
	for _, s := range spans {
		ev = append(ev, event{s.lo, s.rule, true})
		if s.hi != max {
			ev = append(ev, event{s.hi.next(), s.rule, false})
		}
	}
	slices.SortFunc(ev, func(a, b event) int {
		switch {
		case a.at.less(b.at):
			return -1
		case b.at.less(a.at):
			return 1
		}
		return 0
	})
	// A rule has one span in a dimension (lo <= hi), so at one point it
	// is either added or removed, never both: the order of the events at
	// a point does not matter.
	cur := slices.Clone(all)
	var starts []u128
	var offs []uint32
	i := 0
	at := u128{}
	for {
		for i < len(ev) && ev[i].at == at {
			e := ev[i]
			if e.add {
				cur[e.rule>>6] |= 1 << (e.rule & 63)
			} else {
				cur[e.rule>>6] &^= 1 << (e.rule & 63)
			}
			i++
		}
		starts = append(starts, at)
		offs = append(offs, st.add(cur))
		if i == len(ev) {
			return starts, offs
		}
		at = ev[i].at
	}
}

// buildClassifier builds the bit-vector classifier of canonical rules.
func buildClassifier(rules []ACLRule) aclClassifier {
	n := len(rules)
	nw := (n + 63) / 64
	c := aclClassifier{nwords: nw}
	if nw == 0 {
		return c
	}
	st := &bitmapStore{nwords: nw, index: make(map[string]uint32)}
	setBit := func(bm []uint64, i int) { bm[i>>6] |= 1 << (i & 63) }

	// Addresses.
	max4 := u128{0, 0xffffffff}
	max6 := u128{^uint64(0), ^uint64(0)}
	addr := func(d *aclAddrDim, pick func(*ACLRule) netip.Prefix) {
		all := make([]uint64, nw)
		var spans4, spans6 []aclSpan
		for i := range rules {
			p := pick(&rules[i])
			if !p.IsValid() {
				setBit(all, i)
				continue
			}
			if p.Addr().Is4() {
				a4 := p.Addr().As4()
				lo := uint64(binary.BigEndian.Uint32(a4[:]))
				hi := lo | (1<<(32-p.Bits()) - 1)
				spans4 = append(spans4, aclSpan{u128{0, lo}, u128{0, hi}, i})
			} else {
				a16 := p.Addr().As16()
				lo := u128From(&a16)
				hi := lo
				if b := p.Bits(); b < 64 {
					hi.hi |= 1<<(64-b) - 1
					hi.lo = ^uint64(0)
				} else {
					hi.lo |= 1<<(128-b) - 1
				}
				spans6 = append(spans6, aclSpan{lo, hi, i})
			}
		}
		d.anyOff = st.add(all)
		starts, offs := st.buildDim(all, spans4, max4)
		d.b4 = make([]uint32, len(starts))
		for i, s := range starts {
			d.b4[i] = uint32(s.lo)
		}
		d.o4 = offs
		d.b6, d.o6 = st.buildDim(all, spans6, max6)
	}
	addr(&c.src, func(r *ACLRule) netip.Prefix { return r.Src })
	addr(&c.dst, func(r *ACLRule) netip.Prefix { return r.Dst })

	// Ports.
	port := func(d *aclPortDim, pick func(*ACLRule) PortRange) {
		all := make([]uint64, nw)
		var spans []aclSpan
		for i := range rules {
			pr := pick(&rules[i])
			if pr.isAny() {
				setBit(all, i)
				continue
			}
			spans = append(spans, aclSpan{u128{0, uint64(pr.Lo)}, u128{0, uint64(pr.Hi)}, i})
		}
		d.anyOff = st.add(all)
		starts, offs := st.buildDim(all, spans, u128{0, 0xffff})
		d.b = make([]uint16, len(starts))
		for i, s := range starts {
			d.b[i] = uint16(s.lo)
		}
		d.o = offs
	}
	port(&c.sport, func(r *ACLRule) PortRange { return r.SrcPorts })
	port(&c.dport, func(r *ACLRule) PortRange { return r.DstPorts })

	// Protocols.
	anyProto := make([]uint64, nw)
	for i := range rules {
		if rules[i].Proto == 0 {
			setBit(anyProto, i)
		}
	}
	byProto := make(map[uint8][]uint64)
	for i := range rules {
		if p := rules[i].Proto; p != 0 {
			if byProto[p] == nil {
				byProto[p] = slices.Clone(anyProto)
			}
			setBit(byProto[p], i)
		}
	}
	anyOff := st.add(anyProto)
	for p := range c.proto {
		c.proto[p] = anyOff
		if bm := byProto[uint8(p)]; bm != nil {
			c.proto[p] = st.add(bm)
		}
	}
	c.bm = st.flat
	return c
}

// ACLStep is the gateway step that applies the ACL: it classifies the
// flow's key against the current ACLSet, counts the hit on the worker's
// counter of the deciding rule, and with "allow established" records each
// allowed flow's reply in the ConnTable and lets such replies in.
type ACLStep struct {
	set    *atomic.Pointer[ACLSet]
	conns  *ConnTable
	worker int
}

var _ GatewayStep = (*ACLStep)(nil)

// NewACLStep returns the ACL step of worker. set is the current ACL (nil
// in it: allow everything); every set published there must have counters
// for more than worker workers. conns, shared by all workers, may be nil
// when no set enables Established.
func NewACLStep(set *atomic.Pointer[ACLSet], conns *ConnTable, worker int) *ACLStep {
	return &ACLStep{set: set, conns: conns, worker: worker}
}

// Name returns "acl".
func (a *ACLStep) Name() string { return "acl" }

// Step decides f.Key. An allowed flow gets its rule's (or the default's)
// hit counter in f.Act.Hits; with Established it also depends on the
// connection entry of its reply, which it keeps fresh through f.Act.Touch.
// A denied flow is let in when it is the reply of an allowed one
// (depending on and touching that entry); otherwise p and f.Act are
// dropped with DropACLDenied. With Established, a denial depends on the
// table's bucket for the key, so a reply cached as denied is
// re-evaluated once its forward flow creates the entry. Step does not
// allocate when f.Trace is nil.
func (a *ACLStep) Step(p *Packet, f *FlowCtx) bool {
	s := a.set.Load()
	if s == nil {
		return true
	}
	rule, allow := s.Classify(&f.Key)
	estab := s.estab && a.conns != nil
	if allow {
		a.count(f, s.counter(a.worker, rule))
		if f.Trace != nil {
			// A traced packet is not traffic: it leaves no connection
			// entry behind.
			traceACL(f.Trace, s, rule, "allow")
			if estab {
				f.Trace.Add("acl", "note", "a real packet would also let its replies in (established)")
			}
			return true
		}
		if estab {
			rk := ConnKeyOf(&f.Key).Reverse()
			slot, ver := a.conns.insert(&rk)
			a.depend(f, &slot.ver, ver)
			f.Act.Touch = &slot.seen
		}
		return true
	}
	if estab {
		k := ConnKeyOf(&f.Key)
		slot, ver, seq := a.conns.lookupDep(&k)
		if slot != nil {
			a.count(f, s.estCounter(a.worker))
			if f.Trace == nil {
				slot.seen.Store(a.conns.clock.Load())
			}
			a.depend(f, &slot.ver, ver)
			f.Act.Touch = &slot.seen
			if f.Trace != nil {
				traceACL(f.Trace, s, rule, "allow-established")
			}
			return true
		}
		a.depend(f, seq, ver)
	}
	a.count(f, s.counter(a.worker, rule))
	p.Drop(DropACLDenied)
	f.Act.Verdict = VerdictDrop
	f.Act.Reason = DropACLDenied
	if f.Trace != nil {
		traceACL(f.Trace, s, rule, "deny")
	}
	return false
}

// count bumps the worker's counter c for this packet and makes it the
// counter of the flow's later packets. The worker is c's only writer.
func (a *ACLStep) count(f *FlowCtx, c *atomic.Uint64) {
	if f.Trace == nil { // a traced packet is not counted
		c.Store(c.Load() + 1)
	}
	f.Act.Hits = c
}

// depend records in f that its result holds while *ver is val; when there
// is no room for the dependency, the result must not be cached.
func (a *ACLStep) depend(f *FlowCtx, ver *atomic.Uint64, val uint64) {
	for i := range f.Act.Deps {
		if d := &f.Act.Deps[i]; d.Ver == nil || d.Ver == ver {
			*d = Dep{Ver: ver, Val: val}
			return
		}
	}
	f.NoCache = true
}

// traceACL records the step's decision; kept out of Step so that its
// formatting stays off the per-packet path.
//
//go:noinline
func traceACL(t *Trace, s *ACLSet, rule int, decision string) {
	what := "default " + allowWord(s.defAllow)
	if rule >= 0 {
		what = fmt.Sprintf("rules[%d]: %v", rule, s.rules[rule])
	}
	if decision == "allow-established" {
		t.Add("acl", decision, "reply of an allowed flow, over %s", what)
		return
	}
	t.Add("acl", decision, "%s", what)
}

func allowWord(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}
