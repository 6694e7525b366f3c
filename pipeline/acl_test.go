package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// refMatch is the linear reference matcher: what a rule means, written
// down directly.
func refMatch(r *ACLRule, k *FlowKey) bool {
	if r.Proto != 0 && r.Proto != k.Proto {
		return false
	}
	if !refPrefixMatch(r.Src, k, &k.Src) || !refPrefixMatch(r.Dst, k, &k.Dst) {
		return false
	}
	for _, pr := range []struct {
		r PortRange
		p uint16
	}{{r.SrcPorts, k.SrcPort}, {r.DstPorts, k.DstPort}} {
		if pr.r == (PortRange{}) || pr.r == (PortRange{0, 65535}) {
			continue
		}
		if !k.HasPorts() || pr.p < pr.r.Lo || pr.p > pr.r.Hi {
			return false
		}
	}
	return true
}

func refPrefixMatch(p netip.Prefix, k *FlowKey, a *[16]byte) bool {
	switch {
	case p == netip.Prefix{}:
		return true
	case p.Addr().Is4():
		return k.Family == 4 && p.Contains(netip.AddrFrom4([4]byte(a[:4])))
	default:
		return k.Family == 6 && p.Contains(netip.AddrFrom16(*a))
	}
}

// refClassify is the linear scan: first match wins.
func refClassify(rules []ACLRule, def bool, k *FlowKey) (int, bool) {
	for i := range rules {
		if refMatch(&rules[i], k) {
			return i, rules[i].Allow
		}
	}
	return -1, def
}

// pick returns a value in [0, n); rand in the random tests, the fuzzer's
// bytes in the fuzz target.
type pick func(n int) int

var portPool = []uint16{0, 1, 9, 53, 80, 443, 1023, 1024, 10000, 10999, 65534, 65535}

func genPort(p pick) uint16 {
	if p(4) == 0 {
		return uint16(p(256)<<8 | p(256))
	}
	return portPool[p(len(portPool))]
}

func genPorts(p pick) PortRange {
	switch p(3) {
	case 0:
		return PortRange{}
	case 1:
		v := genPort(p)
		return PortRange{v, v}
	}
	lo := genPort(p)
	hi := min(int(lo)+p(3000), 65535)
	return PortRange{lo, uint16(hi)}
}

// genAddr draws addresses from a small space so that rules overlap.
func genAddr(p pick, v6 bool) [16]byte {
	var a [16]byte
	if !v6 {
		a[0] = []byte{10, 192, 0, 255}[p(4)]
		a[1] = byte(p(3) * 0x7f)
		a[2] = byte(p(4) * 0x40)
		a[3] = byte(p(256))
		return a
	}
	copy(a[:2], [][]byte{{0x20, 0x01}, {0xfe, 0x80}, {0, 0}, {0xff, 0xff}}[p(4)])
	fill := byte(p(3) * 0x7f)
	for i := 2; i < 15; i++ {
		a[i] = fill
	}
	a[8] = byte(p(4) * 0x40)
	a[15] = byte(p(256))
	return a
}

// genPrefix returns a prefix of any length, or when long is set one at
// least half the address long.
func genPrefix(p pick, v6, long bool) netip.Prefix {
	a := genAddr(p, v6)
	if !v6 {
		bits := p(33)
		if long {
			bits = 16 + p(17)
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(a[:4])), bits).Masked()
	}
	bits := p(129)
	if long {
		bits = 64 + p(65)
	}
	if p(2) == 0 {
		bits = 120 + p(9) // exercise the last byte
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
}

var protoPool = []uint8{0, ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, 47}

// genRule returns a random rule. One in generalOneIn is general (any
// field may be "any", prefixes of every length); the others are specific,
// so that in a large set the first match of a key can be far down.
func genRule(p pick, generalOneIn int) ACLRule {
	general := generalOneIn <= 1 || p(generalOneIn) == 0
	anyOneIn := 3
	if !general {
		anyOneIn = 12
	}
	r := ACLRule{Allow: p(2) == 0, Proto: protoPool[p(len(protoPool))]}
	if !general && r.Proto == 0 {
		r.Proto = protoPool[1+p(len(protoPool)-1)]
	}
	v6 := p(2) == 0
	if p(anyOneIn) != 0 {
		r.Src = genPrefix(p, v6, !general)
	}
	if p(anyOneIn) != 0 {
		r.Dst = genPrefix(p, v6, !general)
	}
	if r.Proto == 0 || r.Proto == ProtoTCP || r.Proto == ProtoUDP {
		r.SrcPorts = genPorts(p)
		r.DstPorts = genPorts(p)
		if p(2) == 0 {
			r.SrcPorts = PortRange{}
		}
	}
	return r
}

// edgeAddr returns an address at or next to an end of pr, or inside it.
func edgeAddr(p pick, pr netip.Prefix) [16]byte {
	var a [16]byte
	if pr.Addr().Is4() {
		a4 := pr.Addr().As4()
		lo := binary.BigEndian.Uint32(a4[:])
		hi := lo | uint32(uint64(1)<<(32-pr.Bits())-1)
		v := []uint32{lo, hi, lo - 1, hi + 1, lo + uint32(p(256))}[p(5)]
		binary.BigEndian.PutUint32(a[:4], v)
		return a
	}
	a = pr.Addr().As16()
	lo := u128From(&a)
	hi := lo
	if b := pr.Bits(); b < 64 {
		hi.hi |= 1<<(64-b) - 1
		hi.lo = ^uint64(0)
	} else {
		hi.lo |= 1<<(128-b) - 1
	}
	prev := func(x u128) u128 {
		if x.lo == 0 {
			return u128{x.hi - 1, ^uint64(0)}
		}
		return u128{x.hi, x.lo - 1}
	}
	v := []u128{lo, hi, prev(lo), hi.next()}[p(4)]
	binary.BigEndian.PutUint64(a[:8], v.hi)
	binary.BigEndian.PutUint64(a[8:], v.lo)
	return a
}

func edgePort(p pick, r PortRange) uint16 {
	if r == (PortRange{}) {
		return genPort(p)
	}
	return []uint16{r.Lo, r.Hi, r.Lo - 1, r.Hi + 1}[p(4)]
}

// genKey returns a random key, or one on the edges of a rule's ranges.
func genKey(p pick, rules []ACLRule) FlowKey {
	k := FlowKey{Family: 4, Proto: protoPool[p(len(protoPool))], SrcPort: genPort(p), DstPort: genPort(p),
		InPort: uint16(p(4)), VLAN: uint16(p(3))}
	if k.Proto == 0 && p(2) == 0 {
		k.Proto = uint8(p(256))
	}
	if p(2) == 0 {
		k.Family = 6
	}
	if p(16) == 0 {
		k.Family = 0 // neither family: matches only rules without prefixes
	}
	k.Src, k.Dst = genAddr(p, k.Family == 6), genAddr(p, k.Family == 6)
	if len(rules) == 0 || p(3) == 0 {
		return k
	}
	r := rules[p(len(rules))]
	if r.Proto != 0 && p(4) != 0 {
		k.Proto = r.Proto
	}
	for _, pr := range []netip.Prefix{r.Src, r.Dst} {
		if pr.IsValid() {
			if pr.Addr().Is4() {
				k.Family = 4
			} else {
				k.Family = 6
			}
		}
	}
	if r.Src.IsValid() {
		k.Src = edgeAddr(p, r.Src)
	}
	if r.Dst.IsValid() {
		k.Dst = edgeAddr(p, r.Dst)
	}
	if k.Family == 4 { // keep the key canonical: IPv4 in the first 4 bytes
		clear(k.Src[4:])
		clear(k.Dst[4:])
	}
	k.SrcPort, k.DstPort = edgePort(p, r.SrcPorts), edgePort(p, r.DstPorts)
	return k
}

// checkClassify compiles rules and compares Classify with refClassify
// on keys.
func checkClassify(t testing.TB, rules []ACLRule, def bool, keys []FlowKey) {
	t.Helper()
	s, err := CompileACL(ACLConfig{Rules: rules, DefaultAllow: def}, 1, nil)
	if err != nil {
		t.Fatalf("CompileACL: %v", err)
	}
	canon := s.Rules()
	for i := range keys {
		k := &keys[i]
		gotRule, gotAllow := s.Classify(k)
		wantRule, wantAllow := refClassify(rules, def, k)
		if gotRule != wantRule || gotAllow != wantAllow {
			detail := "default"
			if wantRule >= 0 {
				detail = rules[wantRule].String()
			}
			t.Fatalf("key %v: Classify = %d,%v; linear = %d,%v (%s)", k, gotRule, gotAllow, wantRule, wantAllow, detail)
		}
		if r2, _ := refClassify(canon, def, k); r2 != wantRule {
			t.Fatalf("key %v: canonical rules match %d, given rules %d", k, r2, wantRule)
		}
	}
}

func TestACLClassifyMatchesLinear(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 63, 64, 65, 130, 500, 1000, 2000} {
		t.Run(fmt.Sprintf("rules=%d", n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			p := pick(r.IntN)
			rules := make([]ACLRule, n)
			for i := range rules {
				rules[i] = genRule(p, n/40)
			}
			keys := make([]FlowKey, 4000)
			for i := range keys {
				keys[i] = genKey(p, rules)
			}
			// The keys must reach rules in every part of the set.
			hits, deep := 0, 0
			for i := range keys {
				if rl, _ := refClassify(rules, false, &keys[i]); rl >= 0 {
					hits++
					if rl >= n/2 {
						deep++
					}
				}
			}
			if n >= 5 && hits < len(keys)/10 || n >= 130 && deep < len(keys)/50 {
				t.Fatalf("%d of %d keys match a rule, %d in the second half: the generator tests little", hits, len(keys), deep)
			}
			checkClassify(t, rules, n%2 == 0, keys)
		})
	}
}

func TestACLClassifyGolden(t *testing.T) {
	pp := netip.MustParsePrefix
	udpKey := func(src, dst string, sport, dport uint16) FlowKey {
		s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
		k := FlowKey{Proto: ProtoUDP, SrcPort: sport, DstPort: dport, Family: 4}
		if s.Is6() {
			k.Family = 6
		}
		sb, db := s.AsSlice(), d.AsSlice()
		copy(k.Src[:], sb)
		copy(k.Dst[:], db)
		return k
	}
	icmp := func(k FlowKey) FlowKey { k.Proto = ProtoICMP; return k }
	rules := []ACLRule{
		{Allow: true, Proto: ProtoUDP, Src: pp("10.0.0.5/32"), Dst: pp("10.77.2.0/24"), DstPorts: PortRange{10500, 10500}},
		{Allow: false, Proto: ProtoUDP, Src: pp("10.0.0.0/8"), Dst: pp("10.77.2.0/24"), DstPorts: PortRange{10000, 10999}},
		{Allow: true, Dst: pp("10.77.0.0/16")},
		{Allow: false, Src: pp("2001:db8::/32")},
		{Allow: true, DstPorts: PortRange{53, 53}},
	}
	tests := []struct {
		name  string
		key   FlowKey
		rule  int
		allow bool
	}{
		{"first match wins over a later deny", udpKey("10.0.0.5", "10.77.2.9", 1, 10500), 0, true},
		{"range deny", udpKey("10.0.0.6", "10.77.2.9", 1, 10500), 1, false},
		{"range low end", udpKey("10.1.0.6", "10.77.2.9", 1, 10000), 1, false},
		{"range high end", udpKey("10.1.0.6", "10.77.2.9", 1, 10999), 1, false},
		{"past the range", udpKey("10.1.0.6", "10.77.2.9", 1, 11000), 2, true},
		{"port rule skips icmp", icmp(udpKey("10.1.0.6", "10.77.2.9", 0, 10500)), 2, true},
		{"v6 src", udpKey("2001:db8::1", "2001:db9::1", 1, 53), 3, false},
		{"v4 prefix never matches v6", udpKey("::a00:1", "::a4d:209", 1, 53), 4, true},
		{"any-address port rule", udpKey("2001:db9::1", "::1", 7, 53), 4, true},
		{"default", udpKey("192.0.2.1", "192.0.2.2", 1, 2), -1, false},
	}
	s, err := CompileACL(ACLConfig{Rules: rules}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, allow := s.Classify(&tt.key)
			if rule != tt.rule || allow != tt.allow {
				t.Fatalf("Classify = %d,%v, want %d,%v", rule, allow, tt.rule, tt.allow)
			}
			if r, a := refClassify(rules, false, &tt.key); r != tt.rule || a != tt.allow {
				t.Fatalf("reference = %d,%v, want %d,%v", r, a, tt.rule, tt.allow)
			}
		})
	}
}

func TestACLDefaults(t *testing.T) {
	k := FlowKey{Family: 4, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}
	for _, def := range []bool{false, true} {
		s, err := CompileACL(ACLConfig{DefaultAllow: def}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rule, allow := s.Classify(&k); rule != -1 || allow != def {
			t.Fatalf("empty ACL, default %v: Classify = %d,%v", def, rule, allow)
		}
		if s.DefaultAllow() != def {
			t.Fatalf("DefaultAllow = %v, want %v", s.DefaultAllow(), def)
		}
	}
	s, _ := CompileACL(ACLConfig{Established: true}, 1, nil)
	if !s.Established() || s.EstablishedTimeout() != DefaultEstablishedTimeout {
		t.Fatalf("Established = %v, timeout %v", s.Established(), s.EstablishedTimeout())
	}
}

func TestACLCompileErrors(t *testing.T) {
	pp := netip.MustParsePrefix
	ok := ACLRule{Allow: true}
	tests := []struct {
		name string
		bad  ACLRule
		want string
	}{
		{"mixed families", ACLRule{Src: pp("10.0.0.0/8"), Dst: pp("2001:db8::/32")}, "different families"},
		{"reversed src ports", ACLRule{SrcPorts: PortRange{20, 10}}, "src ports 20-10"},
		{"reversed dst ports", ACLRule{DstPorts: PortRange{5, 0}}, "dst ports 5-0"},
		{"ports on icmp", ACLRule{Proto: ProtoICMP, DstPorts: PortRange{1, 2}}, "protocol icmp"},
		{"invalid prefix", ACLRule{Dst: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 40)}, "dst prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileACL(ACLConfig{Rules: []ACLRule{ok, ok, ok, tt.bad, ok}}, 1, nil)
			if err == nil {
				t.Fatal("CompileACL accepted the rule")
			}
			if !strings.HasPrefix(err.Error(), "rules[3]: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want rules[3]: ... %s", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidACL) {
				t.Fatalf("error %v does not wrap ErrInvalidACL", err)
			}
		})
	}
	if _, err := CompileACL(ACLConfig{}, 0, nil); !errors.Is(err, ErrInvalidACL) {
		t.Fatalf("0 workers: err = %v", err)
	}
	if _, err := CompileACL(ACLConfig{Rules: make([]ACLRule, MaxACLRules+1)}, 1, nil); !errors.Is(err, ErrInvalidACL) {
		t.Fatalf("too many rules: err = %v", err)
	}
}

func TestACLRuleString(t *testing.T) {
	pp := netip.MustParsePrefix
	tests := []struct {
		r    ACLRule
		want string
	}{
		{ACLRule{Proto: ProtoUDP, Src: pp("10.0.0.0/8"), Dst: pp("10.77.2.0/24"), DstPorts: PortRange{10000, 10999}},
			"deny udp 10.0.0.0/8:any -> 10.77.2.0/24:10000-10999"},
		{ACLRule{Allow: true}, "allow any any:any -> any:any"},
		{ACLRule{Allow: true, Proto: ProtoTCP, Dst: pp("2001:db8::/32"), SrcPorts: PortRange{0, 65535}, DstPorts: PortRange{443, 443}},
			"allow tcp any:any -> [2001:db8::/32]:443"},
		{ACLRule{Proto: 47, Src: pp("192.0.2.1/32")}, "deny proto47 192.0.2.1/32:any -> any:any"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
}

func TestACLCanonicalRules(t *testing.T) {
	r := ACLRule{Src: netip.MustParsePrefix("10.1.2.3/8"), DstPorts: PortRange{0, 65535}}
	s, err := CompileACL(ACLConfig{Rules: []ACLRule{r}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ACLRule{Src: netip.MustParsePrefix("10.0.0.0/8")}
	if got := s.Rules()[0]; got != want {
		t.Fatalf("canonical rule %+v, want %+v", got, want)
	}
	// 0-65535 is any: it matches keys without ports.
	k := FlowKey{Family: 4, Proto: ProtoICMP, Src: [16]byte{10, 9}}
	if rule, _ := s.Classify(&k); rule != 0 {
		t.Fatalf("icmp key: rule %d, want 0", rule)
	}
}

func TestACLHitCounters(t *testing.T) {
	pp := netip.MustParsePrefix
	rules := []ACLRule{
		{Allow: true, Dst: pp("10.0.0.1/32")},
		{Allow: false, Dst: pp("10.0.0.2/32")},
		{Allow: true, Dst: pp("10.0.0.3/32")},
	}
	s, err := CompileACL(ACLConfig{Rules: rules}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Per worker, and far enough apart not to share a cache line.
	for w := range 3 {
		for r := -1; r < len(rules); r++ {
			s.HitCounter(w, r).Add(uint64(100*w + r + 2))
		}
	}
	a, b := s.HitCounter(0, len(rules)-1), s.HitCounter(1, -1)
	if d := uintptrDist(a, b); d < 64 {
		t.Fatalf("workers' counters %d bytes apart", d)
	}
	// Rule r of worker w got 100w+r+2; the default (-1) is last.
	want := []uint64{2 + 102 + 202, 3 + 103 + 203, 4 + 104 + 204, 1 + 101 + 201}
	if got := s.Hits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Hits = %v, want %v", got, want)
	}
	// Edit rule 1 and insert a rule in front: the others keep their counts.
	rules2 := []ACLRule{
		{Allow: true, Dst: pp("10.0.0.9/32")},
		rules[0],
		{Allow: true, Dst: pp("10.0.0.2/32")}, // action changed
		rules[2],
	}
	s2, err := CompileACL(ACLConfig{Rules: rules2}, 2, s)
	if err != nil {
		t.Fatal(err)
	}
	want2 := []uint64{0, want[0], 0, want[2], want[3]}
	if got := s2.Hits(); fmt.Sprint(got) != fmt.Sprint(want2) {
		t.Fatalf("Hits after edit = %v, want %v", got, want2)
	}
	s2.HitCounter(1, 1).Add(5)
	if got := s2.Hits()[1]; got != want[0]+5 {
		t.Fatalf("carried-over count did not keep counting: %d", got)
	}
	// A changed default starts from zero.
	s3, _ := CompileACL(ACLConfig{Rules: rules2, DefaultAllow: true}, 1, s2)
	if got := s3.Hits(); got[4] != 0 || got[1] != want[0]+5 {
		t.Fatalf("Hits after default change = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("HitCounter of a worker out of range did not panic")
		}
	}()
	s3.HitCounter(1, 0)
}

func uintptrDist(a, b *atomic.Uint64) int {
	x, y := int(uintptr(unsafe.Pointer(a))), int(uintptr(unsafe.Pointer(b)))
	return max(x-y, y-x)
}

// aclFixture is a gateway with one ACL step per worker.
type aclFixture struct {
	set   atomic.Pointer[ACLSet]
	clock atomic.Uint32
	conns *ConnTable
	steps []*ACLStep
}

func newACLFixture(t *testing.T, cfg ACLConfig, workers int) *aclFixture {
	t.Helper()
	fx := &aclFixture{}
	fx.conns = NewConnTable(1024, &fx.clock)
	s, err := CompileACL(cfg, workers, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx.set.Store(s)
	for w := range workers {
		fx.steps = append(fx.steps, NewACLStep(&fx.set, fx.conns, w))
	}
	return fx
}

// run runs worker w's step on a packet with key k.
func (fx *aclFixture) run(w int, k FlowKey, tr *Trace) (bool, *Packet, *FlowCtx) {
	p := &Packet{}
	p.Reset()
	f := &FlowCtx{}
	f.Reset(fx.clock.Load(), tr)
	f.Key = k
	return fx.steps[w].Step(p, f), p, f
}

func depsValid(f *FlowCtx) bool {
	for i := range f.Act.Deps {
		if !f.Act.Deps[i].Valid() {
			return false
		}
	}
	return true
}

func TestACLStepAllowDeny(t *testing.T) {
	pp := netip.MustParsePrefix
	cfg := ACLConfig{Rules: []ACLRule{
		{Allow: false, Proto: ProtoUDP, DstPorts: PortRange{10000, 10999}},
		{Allow: true, Dst: pp("10.0.0.0/8")},
	}}
	fx := newACLFixture(t, cfg, 2)
	deny := FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: 1, DstPort: 10001, Dst: [16]byte{10, 1}}
	allow := deny
	allow.DstPort = 80
	def := FlowKey{Family: 4, Proto: ProtoTCP, Dst: [16]byte{11}}

	ok, p, f := fx.run(1, deny, nil)
	if ok || p.Verdict != VerdictDrop || p.Reason != DropACLDenied ||
		f.Act.Verdict != VerdictDrop || f.Act.Reason != DropACLDenied {
		t.Fatalf("denied flow: ok %v, packet %v/%v, act %v/%v", ok, p.Verdict, p.Reason, f.Act.Verdict, f.Act.Reason)
	}
	set := fx.set.Load()
	if f.Act.Hits != set.HitCounter(1, 0) || f.Act.Hits.Load() != 1 {
		t.Fatal("denied flow's Hits is not worker 1's counter of rule 0, bumped once")
	}
	// A traced packet decides the same and is not counted.
	tr := &Trace{}
	if ok, p, f = fx.run(1, deny, tr); ok || p.Reason != DropACLDenied || f.Act.Hits.Load() != 1 {
		t.Fatalf("traced denied flow: ok %v, reason %v, hits %d (want 1: traces are not counted)", ok, p.Reason, f.Act.Hits.Load())
	}
	if len(tr.Events) != 1 || tr.Events[0].Stage != "acl" || tr.Events[0].Decision != "deny" ||
		!strings.Contains(tr.Events[0].Detail, "rules[0]") || !strings.Contains(tr.Events[0].Detail, "10000-10999") {
		t.Fatalf("trace %+v", tr.Events)
	}

	ok, p, f = fx.run(0, allow, nil)
	if !ok || p.Verdict != VerdictNone || f.Act.Verdict != VerdictNone || f.Act.Hits != set.HitCounter(0, 1) {
		t.Fatalf("allowed flow: ok %v, verdict %v, act %+v", ok, p.Verdict, f.Act)
	}
	if f.Act.Touch != nil || f.Act.Deps[0].Ver != nil {
		t.Fatal("without Established an allowed flow depends on a connection")
	}

	tr = &Trace{}
	ok, p, f = fx.run(0, def, tr)
	if ok || p.Reason != DropACLDenied || f.Act.Hits != set.HitCounter(0, -1) {
		t.Fatalf("default deny: ok %v, reason %v", ok, p.Reason)
	}
	if tr.Events[0].Decision != "deny" || !strings.Contains(tr.Events[0].Detail, "default") {
		t.Fatalf("trace %+v", tr.Events)
	}
	if got := set.Hits(); fmt.Sprint(got) != "[1 1 0]" {
		t.Fatalf("Hits = %v, want [1 1 0] (the default's only packet was traced)", got)
	}

	fx.set.Store(nil)
	if ok, p, f = fx.run(0, deny, nil); !ok || p.Verdict != VerdictNone || f.Act.Hits != nil {
		t.Fatal("a nil set did not allow the flow untouched")
	}
}

func TestACLStepEstablished(t *testing.T) {
	pp := netip.MustParsePrefix
	inside := pp("10.0.0.0/8")
	cfg := ACLConfig{
		Rules:       []ACLRule{{Allow: true, Proto: ProtoTCP, Src: inside}},
		Established: true,
	}
	fx := newACLFixture(t, cfg, 2)
	fx.clock.Store(1000)
	fwd := FlowKey{Family: 4, Proto: ProtoTCP, SrcPort: 40000, DstPort: 443, InPort: 1, VLAN: 10,
		Src: [16]byte{10, 0, 0, 5}, Dst: [16]byte{192, 0, 2, 9}}
	reply := fwd.Reverse(7, 20) // arrives on another port and VLAN

	// A reply before any forward flow is denied; the denial depends on
	// the connection table.
	ok, _, denied := fx.run(1, reply, nil)
	if ok {
		t.Fatal("reply allowed before its forward flow")
	}
	if !depsValid(denied) || denied.Act.Deps[0].Ver == nil {
		t.Fatal("a denial under Established does not depend on the table")
	}

	ok, _, f := fx.run(0, fwd, nil)
	if !ok || f.Act.Touch == nil || f.Act.Deps[0].Ver == nil || !depsValid(f) {
		t.Fatalf("forward flow: ok %v, act %+v", ok, f.Act)
	}
	if depsValid(denied) {
		t.Fatal("the cached denial of the reply stayed valid after the forward flow was allowed")
	}

	ok, p, r := fx.run(1, reply, nil)
	if !ok || p.Verdict != VerdictNone {
		t.Fatalf("reply of an allowed flow denied: %v", p.Reason)
	}
	tr := &Trace{}
	if ok, _, _ := fx.run(1, reply, tr); !ok {
		t.Fatal("traced reply of an allowed flow denied")
	}
	set := fx.set.Load()
	if r.Act.Hits != set.estCounter(1) || set.EstablishedHits() != 1 || r.Act.Touch != f.Act.Touch ||
		r.Act.Deps[0] != f.Act.Deps[0] {
		t.Fatalf("established reply: act %+v, forward %+v, established hits %d", r.Act, f.Act, set.EstablishedHits())
	}
	if got := set.Hits(); got[1] != 1 {
		t.Fatalf("the default counted the established reply: %v", got)
	}
	if len(tr.Events) != 1 || tr.Events[0].Decision != "allow-established" ||
		!strings.Contains(tr.Events[0].Detail, "over default deny") {
		t.Fatalf("trace %+v", tr.Events)
	}
	if r.Act.Touch.Load() != 1000 {
		t.Fatalf("touch = %d", r.Act.Touch.Load())
	}

	// Idle past the timeout: the entry expires, both flows' cached
	// results turn invalid, and the reply is denied again.
	fx.clock.Store(1000 + uint32(set.EstablishedTimeout().Seconds()))
	if n := fx.conns.ExpireIdle(uint32(set.EstablishedTimeout().Seconds())); n != 1 {
		t.Fatalf("ExpireIdle removed %d", n)
	}
	if depsValid(f) || depsValid(r) {
		t.Fatal("cached flows still valid after their connection expired")
	}
	if ok, _, _ := fx.run(1, reply, nil); ok {
		t.Fatal("reply allowed after its connection expired")
	}

	// Again, and Flush.
	if ok, _, f = fx.run(0, fwd, nil); !ok {
		t.Fatal("forward flow denied")
	}
	if ok, _, r = fx.run(1, reply, nil); !ok {
		t.Fatal("reply denied after the forward flow came back")
	}
	if fx.conns.Flush() != 1 || depsValid(f) || depsValid(r) {
		t.Fatal("Flush left the flows valid")
	}
	if ok, _, _ := fx.run(1, reply, nil); ok {
		t.Fatal("reply allowed after Flush")
	}

	// A reply that a rule allows anyway counts on its rule.
	other := fwd
	other.Src = [16]byte{192, 0, 2, 1}
	if ok, _, _ := fx.run(0, other, nil); ok {
		t.Fatal("flow from outside allowed")
	}
}

func TestACLStepNoRoomForDep(t *testing.T) {
	fx := newACLFixture(t, ACLConfig{DefaultAllow: true, Established: true}, 1)
	p := &Packet{}
	f := &FlowCtx{Key: FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: 1, DstPort: 2}}
	var a, b atomic.Uint64
	f.Act.AddDep(&a)
	f.Act.AddDep(&b)
	if !fx.steps[0].Step(p, f) || !f.NoCache {
		t.Fatal("a flow whose dependency did not fit was left cacheable")
	}
}

func TestACLStepNoAllocs(t *testing.T) {
	rules := make([]ACLRule, 1000)
	for i := range rules {
		rules[i] = ACLRule{Proto: ProtoUDP, DstPorts: PortRange{uint16(10000 + i), uint16(10000 + i)}}
	}
	fx := newACLFixture(t, ACLConfig{Rules: rules, DefaultAllow: true, Established: true}, 1)
	p := &Packet{}
	f := &FlowCtx{}
	k := FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: 1, DstPort: 9}
	deny := k
	deny.DstPort = 10500
	if a := testing.AllocsPerRun(1000, func() {
		k.SrcPort++
		f.Reset(0, nil)
		f.Key = k
		fx.steps[0].Step(p, f)
		f.Reset(0, nil)
		f.Key = deny
		fx.steps[0].Step(p, f)
	}); a != 0 {
		t.Fatalf("Step: %v allocs, want 0", a)
	}
}

// TestACLStepConcurrentWorkers runs several workers' steps at once on one
// set and one connection table (for the race detector: each worker writes
// only its own counters) and checks that every packet was counted once
// and every reply found its connection.
func TestACLStepConcurrentWorkers(t *testing.T) {
	const workers, flows = 4, 500
	cfg := ACLConfig{Rules: []ACLRule{{Allow: true, Proto: ProtoUDP, Src: netip.MustParsePrefix("10.0.0.0/8")}}, Established: true}
	fx := newACLFixture(t, cfg, workers)
	// Large enough that no bucket overflows (an eviction would deny a
	// reply): 2000 keys in 64k buckets.
	fx.conns = NewConnTable(1<<18, &fx.clock)
	for w := range workers {
		fx.steps[w] = NewACLStep(&fx.set, fx.conns, w)
	}
	key := func(w, i int) FlowKey {
		return FlowKey{Family: 4, Proto: ProtoUDP, SrcPort: uint16(i), DstPort: 53,
			Src: [16]byte{10, byte(w), 0, 1}, Dst: [16]byte{192, 0, 2, 53}}
	}
	var wg sync.WaitGroup
	fails := make([]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range flows {
				if ok, _, _ := fx.run(w, key(w, i), nil); !ok {
					fails[w]++
				}
				// The reply, handled by the next worker.
				k := key(w, i)
				if ok, _, _ := fx.run((w+1)%workers, k.Reverse(0, 0), nil); !ok {
					fails[w]++
				}
			}
		}()
	}
	wg.Wait()
	for w, n := range fails {
		if n != 0 {
			t.Fatalf("worker %d: %d packets denied", w, n)
		}
	}
	set := fx.set.Load()
	if got := set.Hits(); got[0] != workers*flows || got[1] != 0 {
		t.Fatalf("Hits = %v, want [%d 0]", got, workers*flows)
	}
	if got := set.EstablishedHits(); got != workers*flows {
		t.Fatalf("EstablishedHits = %d, want %d", got, workers*flows)
	}
	if fx.conns.Len() != workers*flows {
		t.Fatalf("conn table holds %d entries, want %d", fx.conns.Len(), workers*flows)
	}
}
