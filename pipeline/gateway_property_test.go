package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// The key property of the gateway: a flow cache hit gives a packet exactly
// what running the steps would. The harness builds random gateway
// configurations and flows, populates the cache of stage A with a flow's
// first packet, then sends a second packet of the flow (same key, other
// payload, IP ID, TTL, tagging) through A and, from an empty cache, through
// stage B, which shares A's configuration and state. Between flows it
// changes the configuration and checks every flow again, so that a stale
// entry that escaped invalidation shows up as a difference.

// gwChooser is where the harness gets its choices: a seeded PRNG in the
// property test, the fuzzer's bytes in the fuzz target.
type gwChooser interface {
	IntN(n int) int
}

func gwPick[T any](c gwChooser, xs []T) T { return xs[c.IntN(len(xs))] }

func gwChance(c gwChooser, pct int) bool { return c.IntN(100) < pct }

// gwAddrAdd returns a + k.
func gwAddrAdd(a netip.Addr, k uint32) netip.Addr {
	b := a.As16()
	v := binary.BigEndian.Uint32(b[12:]) + k
	binary.BigEndian.PutUint32(b[12:], v)
	if a.Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// gwInPrefix returns the address at offset k in p (wrapped to its size).
func gwInPrefix(p netip.Prefix, k uint32) netip.Addr {
	if hb := p.Addr().BitLen() - p.Bits(); hb < 32 {
		k %= 1 << hb
	}
	return gwAddrAdd(p.Masked().Addr(), k)
}

func (k gwNbrKey) String() string { return fmt.Sprintf("vlan %d %s", k.vlan, k.ip) }

func (k gwL2Key) String() string { return fmt.Sprintf("vlan %d %s", k.vlan, k.mac) }

// gwFlow is one flow's key material.
type gwFlow struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	icmpType     uint8
	icmpCode     uint8
	icmpID       uint16
	inPort, vlan uint16
	dstMAC       MAC
}

func (f gwFlow) String() string {
	s := fmt.Sprintf("in_port=%d vlan=%d proto=%d %s > %s", f.inPort, f.vlan, f.proto, f.src, f.dst)
	switch f.proto {
	case ProtoTCP, ProtoUDP:
		s += fmt.Sprintf(" ports %d > %d", f.sport, f.dport)
	case ProtoICMP, ProtoICMPv6:
		s += fmt.Sprintf(" icmp %d/%d id %d", f.icmpType, f.icmpCode, f.icmpID)
	}
	if f.dstMAC != gwRouterMAC {
		s += " dst_mac=" + f.dstMAC.String()
	}
	return s
}

// gwProp is one random configuration with its two stages.
type gwProp struct {
	*gwEnv
	acl     atomic.Pointer[ACLSet]
	conns   *ConnTable
	withACL bool
	a, b    *gwStage

	vlans    []uint16
	hosts    []netip.Addr // in connected prefixes
	statics  []netip.Prefix
	own      []netip.Addr
	prefixes []netip.Prefix // for ACL rules
	macs     []MAC
	flows    []gwFlow

	log []string // the configuration and every change, for failures

	// mutate lets check change one byte of some frames after building
	// them (the fuzz target), so keys, headers and parse results the
	// generator would not make get compared too.
	mutate bool

	checks, hits, dropDiffs int
}

var gwPortPool = []uint16{53, 80, 443, 1234, 40000, 40001, 0}

// gwNewProp builds a random configuration. It returns nil when the router
// refuses the interfaces (the caller tries another).
func gwNewProp(c gwChooser) *gwProp {
	e := &gwEnv{nbrs: gwNeighbors{}, l2: gwLocator{}}
	e.clock.Store(1000)
	g := &gwProp{gwEnv: e}
	seen := map[netip.Prefix]bool{}
	var ifs []RouterInterface
	vlanPool := []uint16{0, 1, 2, 3, 5, 8, 10, 11, 20, 100, 4094}
	nIf := 1 + c.IntN(4)
	for i := range nIf {
		vlan := gwPick(c, vlanPool)
		dup := false
		for _, v := range g.vlans {
			dup = dup || v == vlan
		}
		if dup {
			continue
		}
		ifc := RouterInterface{Name: "if" + strconv.Itoa(i), VLAN: vlan}
		nAddr := 1 + c.IntN(2)
		for range nAddr {
			var p netip.Prefix
			if gwChance(c, 60) {
				base := netip.AddrFrom4([4]byte{10, byte(c.IntN(3)), byte(c.IntN(4) * 16), 0})
				p = netip.PrefixFrom(base, gwPick(c, []int{8, 16, 20, 24, 28})).Masked()
			} else {
				base := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(c.IntN(3)), byte(c.IntN(4)), 0})
				p = netip.PrefixFrom(base, gwPick(c, []int{48, 56, 64, 120})).Masked()
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			own := gwAddrAdd(p.Addr(), 1)
			ifc.Addresses = append(ifc.Addresses, netip.PrefixFrom(own, p.Bits()))
			g.own = append(g.own, own)
			g.prefixes = append(g.prefixes, p)
			for range 3 {
				g.hosts = append(g.hosts, gwInPrefix(p, uint32(2+c.IntN(12))))
			}
		}
		g.vlans = append(g.vlans, vlan)
		ifs = append(ifs, ifc)
	}
	var routes []StaticRoute
	for range c.IntN(6) {
		if rt, ok := g.randomStatic(c); ok {
			if _, err := NewRouter(gwRouterMAC, ifs, append(routes, rt), new(atomic.Uint64)); err == nil {
				routes = append(routes, rt)
			}
		}
	}
	r, err := NewRouter(gwRouterMAC, ifs, routes, &e.routerGen)
	if err != nil {
		return nil
	}
	e.r = r
	g.log = append(g.log, fmt.Sprintf("interfaces %v", ifs), fmt.Sprintf("routes %v", routes))
	for _, rt := range routes {
		g.prefixes = append(g.prefixes, rt.Prefix)
	}

	for i := range 6 {
		g.macs = append(g.macs, MAC{2, 0, 0, 0, 0xee, byte(i + 1)})
	}
	targets := append([]netip.Addr{}, g.hosts...)
	for _, rt := range routes {
		targets = append(targets, rt.Via)
	}
	for _, t := range targets {
		for _, v := range g.vlans {
			if gwChance(c, 75) {
				e.nbrs[gwNbrKey{v, t}] = gwPick(c, g.macs)
			}
		}
	}
	for _, v := range g.vlans {
		for _, m := range g.macs {
			if gwChance(c, 80) {
				e.l2[gwL2Key{v, m}] = uint16(1 + c.IntN(8))
			}
		}
	}
	g.log = append(g.log, fmt.Sprintf("neighbors %v", e.nbrs), fmt.Sprintf("fdb %v", e.l2))

	g.conns = NewConnTable(16<<c.IntN(3), &e.clock)
	g.withACL = gwChance(c, 75)
	e.extraFirst = gwChance(c, 50)
	if g.withACL {
		if !g.recompileACL(c) {
			return nil
		}
	}
	g.a = g.stage(c, 0, gwPick(c, []int{16, 64, 1024}))
	g.b = g.stage(c, 1, 4) // flushed before every packet: keep it one bucket
	return g
}

func (g *gwProp) stage(c gwChooser, worker, cacheSize int) *gwStage {
	var extra GatewayStep
	if g.withACL {
		extra = NewACLStep(&g.acl, g.conns, worker)
	}
	return g.gwEnv.stage(cacheSize, extra)
}

// randomStatic returns a static route via a host of a connected prefix.
func (g *gwProp) randomStatic(c gwChooser) (StaticRoute, bool) {
	v4 := gwChance(c, 60)
	var p netip.Prefix
	if v4 {
		p = gwPick(c, []netip.Prefix{
			netip.MustParsePrefix("0.0.0.0/0"),
			netip.MustParsePrefix("172.16.0.0/12"),
			netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(c.IntN(4)), 0}), 24),
			netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 1, byte(c.IntN(8))}), 32),
			netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(c.IntN(3)), byte(c.IntN(4)*16 + c.IntN(2)), 0}), 24),
			netip.MustParsePrefix("192.0.2.0/24"),
		})
	} else {
		p = gwPick(c, []netip.Prefix{
			netip.MustParsePrefix("::/0"),
			netip.MustParsePrefix("2001:db8:ff::/48"),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, byte(c.IntN(4))}), 64),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(c.IntN(3)), byte(c.IntN(4)), 1}), 64),
		})
	}
	var vias []netip.Addr
	for _, h := range g.hosts {
		if h.Is4() == v4 {
			vias = append(vias, h)
		}
	}
	if len(vias) == 0 {
		return StaticRoute{}, false
	}
	return StaticRoute{Prefix: p, Via: gwPick(c, vias)}, true
}

// recompileACL publishes a new random ACL (workers 0 and 1).
func (g *gwProp) recompileACL(c gwChooser) bool {
	cfg := ACLConfig{DefaultAllow: gwChance(c, 50), Established: gwChance(c, 60)}
	for range c.IntN(7) {
		cfg.Rules = append(cfg.Rules, g.randomRule(c))
	}
	set, err := CompileACL(cfg, 2, g.acl.Load())
	if err != nil {
		g.log = append(g.log, fmt.Sprintf("acl refused: %v", err))
		return false
	}
	g.acl.Store(set)
	var b strings.Builder
	for _, r := range set.Rules() {
		b.WriteString(r.String() + "; ")
	}
	g.log = append(g.log, fmt.Sprintf("acl default_allow=%v established=%v rules: %s", cfg.DefaultAllow, cfg.Established, b.String()))
	return true
}

func (g *gwProp) randomRule(c gwChooser) ACLRule {
	r := ACLRule{Allow: gwChance(c, 50), Proto: gwPick(c, []uint8{0, 0, ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6})}
	pfx := func() netip.Prefix {
		if len(g.prefixes) == 0 || gwChance(c, 50) {
			return netip.Prefix{}
		}
		if gwChance(c, 30) && len(g.hosts) > 0 {
			h := gwPick(c, g.hosts)
			return netip.PrefixFrom(h, h.BitLen())
		}
		return gwPick(c, g.prefixes)
	}
	r.Src, r.Dst = pfx(), pfx()
	if r.Src.IsValid() && r.Dst.IsValid() && r.Src.Addr().Is4() != r.Dst.Addr().Is4() {
		r.Dst = netip.Prefix{}
	}
	if r.Proto == 0 || r.Proto == ProtoTCP || r.Proto == ProtoUDP {
		ports := func() PortRange {
			if gwChance(c, 50) {
				return PortRange{}
			}
			lo := gwPick(c, gwPortPool)
			return PortRange{Lo: lo, Hi: lo + uint16(c.IntN(3))}
		}
		r.SrcPorts, r.DstPorts = ports(), ports()
	}
	return r
}

// randomFlow returns a new flow, sometimes the reverse of an earlier one.
func (g *gwProp) randomFlow(c gwChooser) gwFlow {
	vlan := uint16(4000)
	if gwChance(c, 95) {
		vlan = gwPick(c, g.vlans)
	}
	dstMAC := gwRouterMAC
	if gwChance(c, 4) {
		dstMAC = MAC{2, 0, 0, 0, 0, 0x77}
	}
	inPort := uint16(1 + c.IntN(8))
	if len(g.flows) > 0 && gwChance(c, 25) {
		f := gwPick(c, g.flows)
		f.src, f.dst = f.dst, f.src
		f.sport, f.dport = f.dport, f.sport
		switch f.icmpType {
		case 8:
			f.icmpType = 0
		case 128:
			f.icmpType = 129
		}
		f.inPort, f.vlan, f.dstMAC = inPort, vlan, dstMAC
		return f
	}
	v4 := gwChance(c, 55)
	fam := func(as []netip.Addr) []netip.Addr {
		var out []netip.Addr
		for _, a := range as {
			if a.Is4() == v4 {
				out = append(out, a)
			}
		}
		return out
	}
	random := func() netip.Addr {
		if v4 {
			return netip.AddrFrom4([4]byte{gwPick(c, []byte{10, 172, 192, 8}), byte(c.IntN(32)), byte(c.IntN(4)), byte(c.IntN(256))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(c.IntN(4) | c.IntN(2)*0xff), 0, byte(c.IntN(4)), 15: byte(c.IntN(256))})
	}
	f := gwFlow{inPort: inPort, vlan: vlan, dstMAC: dstMAC}
	if hs := fam(g.hosts); len(hs) > 0 && gwChance(c, 60) {
		f.src = gwPick(c, hs)
	} else {
		f.src = random()
	}
	var statics []netip.Prefix
	for _, rt := range g.r.StaticRoutes() {
		if rt.Prefix.Addr().Is4() == v4 {
			statics = append(statics, rt.Prefix)
		}
	}
	switch n := c.IntN(100); {
	case n < 45 && len(fam(g.hosts)) > 0:
		f.dst = gwPick(c, fam(g.hosts))
	case n < 75 && len(statics) > 0:
		f.dst = gwInPrefix(gwPick(c, statics), uint32(c.IntN(300)))
	case n < 82 && len(fam(g.own)) > 0:
		f.dst = gwPick(c, fam(g.own))
	default:
		f.dst = random()
	}
	icmp := ProtoICMP
	echo, reply, errType := uint8(8), uint8(0), uint8(3)
	if !v4 {
		icmp, echo, reply, errType = ProtoICMPv6, 128, 129, 1
	}
	switch c.IntN(8) {
	case 0, 1, 2:
		f.proto = ProtoUDP
	case 3, 4:
		f.proto = ProtoTCP
	case 5:
		f.proto, f.icmpType, f.icmpID = icmp, echo, uint16(c.IntN(3))
	case 6:
		f.proto, f.icmpType, f.icmpCode = icmp, gwPick(c, []uint8{reply, errType}), uint8(c.IntN(2))
		if f.icmpType == reply {
			f.icmpID = uint16(c.IntN(3))
		}
	default:
		f.proto = 47 // GRE: no ports
	}
	if f.proto == ProtoUDP || f.proto == ProtoTCP {
		f.sport, f.dport = gwPick(c, gwPortPool), gwPick(c, gwPortPool)
	}
	return f
}

// frame builds a packet of f whose bytes other than the key vary.
func (g *gwProp) frame(c gwChooser, f gwFlow, minTTL int) []byte {
	s := gwPkt{dstMAC: f.dstMAC, srcMAC: gwHostMAC, tag: -1, src: f.src, dst: f.dst, proto: f.proto,
		sport: f.sport, dport: f.dport, icmpType: f.icmpType, icmpCode: f.icmpCode, icmpID: f.icmpID,
		ttl: uint8(minTTL + c.IntN(256-minTTL)), ipID: uint16(c.IntN(1 << 16)), tos: uint8(c.IntN(256))}
	if gwChance(c, 50) {
		s.tag = int(f.vlan)
	}
	s.payload = make([]byte, c.IntN(48))
	for i := range s.payload {
		s.payload[i] = byte(c.IntN(256))
	}
	return gwBuild(s)
}

// change applies one random change to the configuration or state.
func (g *gwProp) change(c gwChooser) {
	switch c.IntN(9) {
	case 0:
		if rt, ok := g.randomStatic(c); ok {
			err := g.r.AddRoute(rt)
			g.log = append(g.log, fmt.Sprintf("add route %v via %v: %v", rt.Prefix, rt.Via, err))
		}
	case 1:
		if rs := g.r.StaticRoutes(); len(rs) > 0 {
			rt := gwPick(c, rs)
			err := g.r.DelRoute(rt.Prefix)
			g.log = append(g.log, fmt.Sprintf("del route %v: %v", rt.Prefix, err))
		}
	case 2, 3:
		// A neighbor moves to another MAC, appears or disappears.
		t := gwPick(c, g.hosts)
		v := gwPick(c, g.vlans)
		k := gwNbrKey{v, t}
		if _, ok := g.nbrs[k]; ok && gwChance(c, 30) {
			delete(g.nbrs, k)
			g.log = append(g.log, fmt.Sprintf("neighbor %v gone", k))
		} else {
			g.nbrs[k] = gwPick(c, g.macs)
			g.log = append(g.log, fmt.Sprintf("neighbor %v = %v", k, g.nbrs[k]))
		}
		g.otherGen.Add(1)
	case 4:
		k := gwL2Key{gwPick(c, g.vlans), gwPick(c, g.macs)}
		if gwChance(c, 30) {
			delete(g.l2, k)
		} else {
			g.l2[k] = uint16(1 + c.IntN(8))
		}
		g.log = append(g.log, fmt.Sprintf("fdb %v = %v", k, g.l2[k]))
		g.otherGen.Add(1)
	case 5:
		if g.withACL && g.recompileACL(c) {
			g.otherGen.Add(1)
		}
	case 6:
		// No generation bump: cached results depending on connection
		// entries must notice on their own.
		n := g.conns.Flush()
		g.log = append(g.log, fmt.Sprintf("conn table flushed (%d entries)", n))
	case 7:
		n := g.conns.ExpireIdle(uint32(c.IntN(40)))
		g.log = append(g.log, fmt.Sprintf("conn table expired %d", n))
	default:
		d := uint32(1 + c.IntN(100))
		g.clock.Add(d)
		g.log = append(g.log, fmt.Sprintf("clock +%d = %d", d, g.clock.Load()))
	}
}

// check sends a second packet of f through A (cache) and B (steps) and
// reports a difference. strict also compares the frames of drops.
func (g *gwProp) check(c gwChooser, f gwFlow) string {
	frame := g.frame(c, f, 2)
	if g.mutate && gwChance(c, 30) {
		frame[c.IntN(len(frame))] = byte(c.IntN(256))
	}
	fa := append(make([]byte, 0, len(frame)+gwSpare), frame...)
	fb := append(make([]byte, 0, len(frame)+gwSpare), frame...)
	pa := &Packet{Data: fa, InPort: f.inPort}
	pa.Reset()
	pa.Parse()
	pa.VLAN = f.vlan
	pb := *pa
	pb.Data = fb
	hits := g.a.Cache().Stats().Hits
	limited := g.a.route.Stats().ICMPLimited + g.b.route.Stats().ICMPLimited
	outA := gwRun(g.a, pa)
	g.b.Cache().Flush()
	outB := gwRun(g.b, &pb)
	g.checks++
	if g.a.route.Stats().ICMPLimited+g.b.route.Stats().ICMPLimited != limited {
		// The ICMP rate limiter is per worker and A saw other packets
		// than B; a TTL <= 1 packet never uses the cache anyway.
		g.drainParked()
		return ""
	}
	if g.a.Cache().Stats().Hits != hits {
		g.hits++
	}
	if st := g.b.Cache().Stats(); st.Hits != 0 {
		return "stage B hit its flushed cache"
	}
	g.drainParked()
	if outA.Verdict != outB.Verdict || outA.Reason != outB.Reason {
		return fmt.Sprintf("verdict cache %v/%v, steps %v/%v", outA.Verdict, outA.Reason, outB.Verdict, outB.Reason)
	}
	if outA.Verdict == VerdictDrop && g.withACL && !g.extraFirst {
		// Route ran before the ACL denied: the steps left the packet
		// rewritten, the cached drop does not rewrite. Dropped either
		// way, so only counted (see the report).
		if !bytes.Equal(outA.Data, outB.Data) || outA.VLAN != outB.VLAN || outA.OutPort != outB.OutPort {
			g.dropDiffs++
		}
		return ""
	}
	if outA.OutPort != outB.OutPort || outA.VLAN != outB.VLAN {
		return fmt.Sprintf("%v: out port/vlan cache %d/%d, steps %d/%d", outA.Verdict, outA.OutPort, outA.VLAN, outB.OutPort, outB.VLAN)
	}
	if !bytes.Equal(outA.Data, outB.Data) {
		return fmt.Sprintf("%v: frames differ:\ncache %x\nsteps %x", outA.Verdict, outA.Data, outB.Data)
	}
	return ""
}

// drainParked empties both park queues so they never fill.
func (g *gwProp) drainParked() {
	for _, s := range []*gwStage{g.a, g.b} {
		s.park.Drain(g.clock.Load(), func(uint16, netip.Addr) bool { return true }, func(ParkedPacket, bool) {})
		s.park.Solicitations()
	}
}

// run plays one configuration: flows with their first packets through A,
// checks of their second packets, and changes in between. It returns a
// description of the first difference.
func (g *gwProp) run(c gwChooser, nFlows int) string {
	for range nFlows {
		f := g.randomFlow(c)
		g.flows = append(g.flows, f)
		minTTL := 2
		if gwChance(c, 10) {
			minTTL = 0
		}
		p := &Packet{Data: g.frame(c, f, minTTL), InPort: f.inPort}
		p.Reset()
		p.Parse()
		p.VLAN = f.vlan
		gwRun(g.a, p)
		g.drainParked()
		if msg := g.check(c, f); msg != "" {
			return "flow " + f.String() + ": " + msg
		}
		if gwChance(c, 20) {
			g.change(c)
			for _, f := range g.flows {
				if msg := g.check(c, f); msg != "" {
					return "after " + g.log[len(g.log)-1] + ": flow " + f.String() + ": " + msg
				}
			}
		}
	}
	return ""
}

func TestGatewayCacheHitEqualsSteps(t *testing.T) {
	seed := uint64(0x9a7e_2026)
	if s := os.Getenv("GW_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	configs := 400
	if testing.Short() {
		configs = 100
	}
	var checks, hits, dropDiffs, withACL int
	for i := range configs {
		c := rand.New(rand.NewPCG(seed, uint64(i)))
		g := gwNewProp(c)
		if g == nil {
			continue
		}
		if msg := g.run(c, 10+c.IntN(30)); msg != "" {
			t.Fatalf("seed %#x config %d (GW_PROPERTY_SEED=%#x): cache hit differs from the steps\n%s\nconfiguration and changes:\n  %s",
				seed, i, seed, msg, strings.Join(g.log, "\n  "))
		}
		checks += g.checks
		hits += g.hits
		dropDiffs += g.dropDiffs
		if g.withACL {
			withACL++
		}
	}
	t.Logf("seed %#x: %d configs (%d with ACL), %d checks, %d cache hits, %d route-then-deny drops with a rewritten frame", seed, configs, withACL, checks, hits, dropDiffs)
	if hits < checks/5 {
		t.Errorf("only %d of %d checks hit the cache: the property is barely exercised", hits, checks)
	}
}
