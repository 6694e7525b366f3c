package pipeline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Helpers shared by the gateway tests (route, flow cache, property, fuzz
// and benchmarks) are prefixed gw so they do not collide with other test
// files of the package.

// gwSpare is the room past a test frame: an ICMP error grows a packet by
// at most 28+28 (IPv4) or 48 bytes (IPv6).
const gwSpare = 64

var (
	gwRouterMAC = MAC{0x02, 0xaa, 0x00, 0x00, 0x00, 0x01}
	gwHostMAC   = MAC{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
)

// gwNbrKey and gwNeighbors are the fake binding table.
type gwNbrKey struct {
	vlan uint16
	ip   netip.Addr
}

type gwNeighbors map[gwNbrKey]MAC

func (n gwNeighbors) Resolve(vlan uint16, ip netip.Addr) (MAC, bool) {
	m, ok := n[gwNbrKey{vlan, ip}]
	return m, ok
}

// gwL2Key and gwLocator are the fake forwarding database.
type gwL2Key struct {
	vlan uint16
	mac  MAC
}

type gwLocator map[gwL2Key]uint16

func (l gwLocator) Locate(vlan uint16, mac MAC) (uint16, bool) {
	p, ok := l[gwL2Key{vlan, mac}]
	return p, ok
}

var (
	_ Neighbors = gwNeighbors(nil)
	_ L2Locator = gwLocator(nil)
)

// gwPkt describes a frame for gwBuild. Addresses decide the family.
type gwPkt struct {
	dstMAC, srcMAC MAC
	tag            int // -1: untagged; else the 802.1Q VLAN ID in the frame
	src, dst       netip.Addr
	proto          uint8
	sport, dport   uint16 // TCP/UDP ports
	icmpType       uint8
	icmpCode       uint8
	icmpID         uint16
	ttl            uint8
	ipID           uint16
	tos            uint8
	payload        []byte
}

// gwBuild writes the frame by hand (fast enough for the property and fuzz
// tests) with valid IP and L4 checksums, into a buffer with room for an
// ICMP error to grow in place (gwSpare bytes).
func gwBuild(s gwPkt) []byte {
	d := make([]byte, 0, 18+40+20+len(s.payload)+gwSpare)
	d = append(d, s.dstMAC[:]...)
	d = append(d, s.srcMAC[:]...)
	if s.tag >= 0 {
		d = binary.BigEndian.AppendUint16(d, EtherTypeVLAN)
		d = binary.BigEndian.AppendUint16(d, uint16(s.tag))
	}
	var l4 []byte
	switch s.proto {
	case ProtoTCP:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		binary.BigEndian.PutUint32(l4[4:], uint32(s.ipID)*7)
		l4[12] = 5 << 4
		l4[13] = 0x10
		binary.BigEndian.PutUint16(l4[14:], 65535)
	case ProtoUDP:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(s.payload)))
	case ProtoICMP, ProtoICMPv6:
		l4 = make([]byte, 8)
		l4[0], l4[1] = s.icmpType, s.icmpCode
		binary.BigEndian.PutUint16(l4[4:], s.icmpID)
		binary.BigEndian.PutUint16(l4[6:], s.ipID)
	}
	l4 = append(l4, s.payload...)
	if s.src.Is4() {
		d = binary.BigEndian.AppendUint16(d, EtherTypeIPv4)
		ip := make([]byte, 20)
		ip[0], ip[1] = 0x45, s.tos
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(ip[4:], s.ipID)
		ip[8], ip[9] = s.ttl, s.proto
		a, b := s.src.As4(), s.dst.As4()
		copy(ip[12:], a[:])
		copy(ip[16:], b[:])
		binary.BigEndian.PutUint16(ip[10:], ^Checksum(ip, 0))
		d = append(d, ip...)
	} else {
		d = binary.BigEndian.AppendUint16(d, EtherTypeIPv6)
		ip := make([]byte, 40)
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(s.tos)<<20|uint32(s.ipID))
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = s.proto, s.ttl
		a, b := s.src.As16(), s.dst.As16()
		copy(ip[8:], a[:])
		copy(ip[24:], b[:])
		d = append(d, ip...)
	}
	d = append(d, l4...)
	p := &Packet{Data: d}
	p.Reset()
	if p.Parse() {
		p.SetL4Checksum()
	}
	return d
}

// gwParse parses frame as a packet that arrived on inPort and was
// classified into vlan.
func gwParse(tb testing.TB, frame []byte, inPort, vlan uint16) *Packet {
	tb.Helper()
	p := &Packet{Data: frame, InPort: inPort}
	p.Reset()
	if !p.Parse() {
		tb.Fatalf("test frame does not parse: %v", p.Reason)
	}
	p.VLAN = vlan
	return p
}

// gwRun sends p through g in a batch of one (g's, reused: a Batch is a
// few kilobytes) and returns the packet as the stage left it.
func gwRun(g *gwStage, p *Packet) Packet {
	b := &g.batch
	b.Pkts[0] = *p
	b.Len = 1
	g.Process(b)
	return b.Pkts[0]
}

// gwEnv is a gateway configuration: a router, the fakes it resolves with,
// and the generation every stage built on it reads.
type gwEnv struct {
	routerGen atomic.Uint64 // bumped by the router
	otherGen  atomic.Uint64 // bumped by the test: neighbors, FDB, ACL
	clock     atomic.Uint32
	r         *Router
	nbrs      gwNeighbors
	l2        gwLocator
	// extraFirst puts the extra step of stage before route.
	extraFirst bool
}

func (e *gwEnv) gen() uint64 { return e.routerGen.Load() + e.otherGen.Load() }

// gwStage is one worker's gateway stage over e.
type gwStage struct {
	*GatewayStage
	route *RouteStep
	park  *ParkQueue
	batch Batch
}

// stage returns a worker's stage with a cache of cacheSize entries; extra,
// when not nil, is a step (the ACL) run after route, or before it when
// e.extraFirst.
func (e *gwEnv) stage(cacheSize int, extra GatewayStep) *gwStage {
	park := NewParkQueue(1024)
	rs := NewRouteStep(e.r, e.nbrs, e.l2, park)
	steps := []GatewayStep{rs}
	if extra != nil {
		if e.extraFirst {
			steps = []GatewayStep{extra, rs}
		} else {
			steps = append(steps, extra)
		}
	}
	return &gwStage{
		GatewayStage: NewGatewayStage(e.r, steps, NewFlowCache(cacheSize, 60), e.gen, &e.clock),
		route:        rs, park: park,
	}
}

// gwBasicEnv is a router with two interfaces and a static route:
//
//	lan  vlan 10: 10.0.10.1/24, 2001:db8:10::1/64
//	wan  vlan 20: 10.0.20.1/24, 2001:db8:20::1/64
//	172.16.0.0/12 and 2001:db8:100::/48 via 10.0.20.254 / 2001:db8:20::fe
//
// with every host resolved and located.
func gwBasicEnv(tb testing.TB) *gwEnv {
	tb.Helper()
	e := &gwEnv{nbrs: gwNeighbors{}, l2: gwLocator{}}
	e.clock.Store(1000)
	ifs := []RouterInterface{
		{Name: "lan", VLAN: 10, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.10.1/24"), netip.MustParsePrefix("2001:db8:10::1/64")}},
		{Name: "wan", VLAN: 20, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.20.1/24"), netip.MustParsePrefix("2001:db8:20::1/64")}},
	}
	routes := []StaticRoute{
		{Prefix: netip.MustParsePrefix("172.16.0.0/12"), Via: netip.MustParseAddr("10.0.20.254")},
		{Prefix: netip.MustParsePrefix("2001:db8:100::/48"), Via: netip.MustParseAddr("2001:db8:20::fe")},
	}
	r, err := NewRouter(gwRouterMAC, ifs, routes, &e.routerGen)
	if err != nil {
		tb.Fatal(err)
	}
	e.r = r
	hosts := []struct {
		vlan uint16
		ip   string
		mac  MAC
		port uint16
	}{
		{10, "10.0.10.5", MAC{2, 0, 0, 0, 0x10, 5}, 1},
		{10, "2001:db8:10::5", MAC{2, 0, 0, 0, 0x10, 5}, 1},
		{20, "10.0.20.7", MAC{2, 0, 0, 0, 0x20, 7}, 2},
		{20, "2001:db8:20::7", MAC{2, 0, 0, 0, 0x20, 7}, 2},
		{20, "10.0.20.254", MAC{2, 0, 0, 0, 0x20, 0xfe}, 3},
		{20, "2001:db8:20::fe", MAC{2, 0, 0, 0, 0x20, 0xfe}, 3},
	}
	for _, h := range hosts {
		e.nbrs[gwNbrKey{h.vlan, netip.MustParseAddr(h.ip)}] = h.mac
		e.l2[gwL2Key{h.vlan, h.mac}] = h.port
	}
	return e
}

// gwUDP is a UDP packet from a lan host to dst, addressed to the router.
func gwUDP(src, dst string, ttl uint8, payload string) gwPkt {
	return gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: netip.MustParseAddr(src), dst: netip.MustParseAddr(dst),
		proto: ProtoUDP, sport: 40000, dport: 53, ttl: ttl, ipID: 0x1234, payload: []byte(payload)}
}

// gwOnesSum is an independent 16-bit one's complement sum for checking
// checksums (0xffff over a block whose checksum is right).
func gwOnesSum(parts ...[]byte) uint16 {
	var s uint32
	for _, b := range parts {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// gwPseudo6 is the IPv6 pseudo-header for an upper-layer sum.
func gwPseudo6(src, dst []byte, proto uint8, n int) []byte {
	b := append(append([]byte{}, src...), dst...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, 0, 0, 0, proto)
}

func TestGatewayLeavesOthersAlone(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	tests := []struct {
		name string
		mac  MAC
		vlan uint16
	}{
		{"other MAC", MAC{2, 0, 0, 0, 0, 0x99}, 10},
		{"broadcast", BroadcastMAC, 10},
		{"VLAN without interface", gwRouterMAC, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := gwUDP("10.0.10.5", "10.0.20.7", 64, "x")
			s.dstMAC = tc.mac
			frame := gwBuild(s)
			orig := bytes.Clone(frame)
			out := gwRun(g, gwParse(t, frame, 1, tc.vlan))
			if out.Verdict != VerdictNone || !bytes.Equal(out.Data, orig) || out.VLAN != tc.vlan {
				t.Errorf("verdict %v vlan %d, frame changed %v; want untouched", out.Verdict, out.VLAN, !bytes.Equal(out.Data, orig))
			}
		})
	}
	t.Run("already decided", func(t *testing.T) {
		p := gwParse(t, gwBuild(gwUDP("10.0.10.5", "10.0.20.7", 64, "x")), 1, 10)
		p.Drop(DropSpoofed)
		if out := gwRun(g, p); out.Verdict != VerdictDrop || out.Reason != DropSpoofed {
			t.Errorf("verdict %v %v, want the earlier drop kept", out.Verdict, out.Reason)
		}
	})
	if st := g.Cache().Stats(); st.Hits+st.Misses != 0 {
		t.Errorf("cache looked up for packets not for the router: %+v", st)
	}
}

func TestGatewayARPToRouterIsLocal(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	frame := serialize(t,
		&layers.Ethernet{SrcMAC: gwHostMAC[:], DstMAC: gwRouterMAC[:], EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: gwHostMAC[:], SourceProtAddress: []byte{10, 0, 10, 5},
			DstHwAddress: gwRouterMAC[:], DstProtAddress: []byte{10, 0, 10, 1}})
	out := gwRun(g, gwParse(t, frame, 1, 10))
	if out.Verdict != VerdictDrop || out.Reason != DropLocal {
		t.Errorf("ARP reply to the router: %v %v, want drop local", out.Verdict, out.Reason)
	}
	if st := g.Stats(); st.Local != 1 {
		t.Errorf("Local = %d, want 1", st.Local)
	}
}

func TestGatewayEchoReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst string
		proto    uint8
		typ      uint8
	}{
		{"v4", "10.0.10.5", "10.0.10.1", ProtoICMP, 8},
		{"v4 other interface", "10.0.10.5", "10.0.20.1", ProtoICMP, 8},
		{"v6", "2001:db8:10::5", "2001:db8:10::1", ProtoICMPv6, 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gwBasicEnv(t)
			g := e.stage(64, nil)
			s := gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: netip.MustParseAddr(tc.src), dst: netip.MustParseAddr(tc.dst),
				proto: tc.proto, icmpType: tc.typ, icmpID: 0x4242, ttl: 64, ipID: 7, payload: []byte("ping payload")}
			for round := range 2 { // the second must not come from the cache
				out := gwRun(g, gwParse(t, gwBuild(s), 1, 10))
				if out.Verdict != VerdictReply {
					t.Fatalf("round %d: verdict %v %v, want reply", round, out.Verdict, out.Reason)
				}
				pkt := gopacket.NewPacket(out.Data, layers.LayerTypeEthernet, gopacket.Default)
				ethL := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				if MAC(ethL.SrcMAC) != gwRouterMAC || MAC(ethL.DstMAC) != gwHostMAC {
					t.Errorf("MACs %s > %s", ethL.SrcMAC, ethL.DstMAC)
				}
				if tc.proto == ProtoICMP {
					ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
					ic := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
					if ip.SrcIP.String() != tc.dst || ip.DstIP.String() != tc.src {
						t.Errorf("addresses %s > %s", ip.SrcIP, ip.DstIP)
					}
					if ic.TypeCode.Type() != 0 || ic.Id != 0x4242 || string(ic.Payload) != "ping payload" {
						t.Errorf("ICMP %v id %#x payload %q", ic.TypeCode, ic.Id, ic.Payload)
					}
					if gwOnesSum(ip.Contents) != 0xffff || gwOnesSum(ip.Payload) != 0xffff {
						t.Errorf("checksums invalid: ip %#x icmp %#x", gwOnesSum(ip.Contents), gwOnesSum(ip.Payload))
					}
				} else {
					ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
					ic := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
					if ip.SrcIP.String() != tc.dst || ip.DstIP.String() != tc.src {
						t.Errorf("addresses %s > %s", ip.SrcIP, ip.DstIP)
					}
					if ic.TypeCode.Type() != 129 {
						t.Errorf("ICMPv6 type %v, want echo reply", ic.TypeCode)
					}
					if s := gwOnesSum(gwPseudo6(ip.SrcIP, ip.DstIP, ProtoICMPv6, len(ip.Payload)), ip.Payload); s != 0xffff {
						t.Errorf("ICMPv6 checksum invalid: sum %#x", s)
					}
				}
			}
			if st := g.Stats(); st.EchoReplies != 2 {
				t.Errorf("EchoReplies = %d, want 2", st.EchoReplies)
			}
			if st := g.Cache().Stats(); st.Inserts != 0 || st.Hits != 0 {
				t.Errorf("local traffic went into the cache: %+v", st)
			}
		})
	}
}

func TestGatewayNonEchoToRouterConsumed(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	out := gwRun(g, gwParse(t, gwBuild(gwUDP("10.0.10.5", "10.0.10.1", 64, "x")), 1, 10))
	if out.Verdict != VerdictDrop || out.Reason != DropLocal {
		t.Errorf("UDP to the router: %v %v, want drop local", out.Verdict, out.Reason)
	}
}

func TestGatewayCacheMissThenHit(t *testing.T) {
	for _, tc := range []struct{ name, src, dst string }{
		{"v4 connected", "10.0.10.5", "10.0.20.7"},
		{"v4 static", "10.0.10.5", "172.17.1.1"},
		{"v6 connected", "2001:db8:10::5", "2001:db8:20::7"},
		{"v6 static", "2001:db8:10::5", "2001:db8:100::1"},
		{"no route", "10.0.10.5", "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gwBasicEnv(t)
			g := e.stage(64, nil)
			s := gwUDP(tc.src, tc.dst, 64, "same")
			a := gwRun(g, gwParse(t, gwBuild(s), 1, 10))
			st := g.Cache().Stats()
			if st.Misses != 1 || st.Hits != 0 || st.Inserts != 1 {
				t.Fatalf("first packet: %+v, want one miss and one insert", st)
			}
			b := gwRun(g, gwParse(t, gwBuild(s), 1, 10))
			st = g.Cache().Stats()
			if st.Misses != 1 || st.Hits != 1 {
				t.Fatalf("second packet: %+v, want a hit", st)
			}
			if a.Verdict != b.Verdict || a.Reason != b.Reason || a.OutPort != b.OutPort || a.VLAN != b.VLAN || !bytes.Equal(a.Data, b.Data) {
				t.Errorf("miss gave %v/%v port %d vlan %d, hit %v/%v port %d vlan %d; frames equal %v",
					a.Verdict, a.Reason, a.OutPort, a.VLAN, b.Verdict, b.Reason, b.OutPort, b.VLAN, bytes.Equal(a.Data, b.Data))
			}
		})
	}
}

func TestGatewayLowTTLSkipsCache(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	s := gwUDP("10.0.10.5", "10.0.20.7", 64, "x")
	gwRun(g, gwParse(t, gwBuild(s), 1, 10)) // populate
	before := g.Cache().Stats()
	for _, ttl := range []uint8{1, 0} {
		s.ttl = ttl
		out := gwRun(g, gwParse(t, gwBuild(s), 1, 10))
		if out.Verdict != VerdictReply {
			t.Errorf("TTL %d: verdict %v %v, want an ICMP time exceeded", ttl, out.Verdict, out.Reason)
		}
	}
	if after := g.Cache().Stats(); after.Hits != before.Hits || after.Misses != before.Misses || after.Inserts != before.Inserts {
		t.Errorf("TTL <= 1 packets touched the cache: before %+v after %+v", before, after)
	}
}

func TestGatewayTrace(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	s := gwUDP("10.0.10.5", "10.0.20.7", 64, "x")

	res := g.Trace(gwParse(t, gwBuild(s), 1, 10))
	if res.Cache != "miss (no entry)" {
		t.Errorf("Cache = %q before any packet, want miss (no entry)", res.Cache)
	}
	if !gwHasEvent(res.Events, "route", "forward") {
		t.Errorf("events %+v have no route forward", res.Events)
	}
	if res.Verdict != "forward" || res.OutPort != 2 || !res.Cacheable || res.Entry == nil {
		t.Errorf("trace result %+v", res)
	}
	if st := g.Cache().Stats(); st.Inserts != 0 || st.Misses != 0 {
		t.Errorf("Trace used the cache: %+v", st)
	}

	gwRun(g, gwParse(t, gwBuild(s), 1, 10))
	res = g.Trace(gwParse(t, gwBuild(s), 1, 10))
	if res.Cache != "hit" || res.Cached == nil {
		t.Errorf("Cache = %q after a real packet, want hit", res.Cache)
	}
	if res.Same == nil || !*res.Same {
		t.Errorf("Same = %v, want true", res.Same)
	}
	if !strings.Contains(res.Cached.Actions, "dec_ttl") || !strings.Contains(res.Cached.Actions, "output:2") {
		t.Errorf("cached actions %q", res.Cached.Actions)
	}
	if st := g.Cache().Stats(); st.Hits != 0 {
		t.Errorf("Trace counted a hit: %+v", st)
	}

	e.otherGen.Add(1)
	if res = g.Trace(gwParse(t, gwBuild(s), 1, 10)); !strings.HasPrefix(res.Cache, "miss (stale") {
		t.Errorf("Cache = %q after a generation bump, want a stale miss", res.Cache)
	}

	t.Run("unresolved next hop is not parked", func(t *testing.T) {
		res := g.Trace(gwParse(t, gwBuild(gwUDP("10.0.10.5", "10.0.20.99", 64, "x")), 1, 10))
		if res.Verdict != "pending" || !gwHasEvent(res.Events, "route", "park") || res.Cacheable {
			t.Errorf("trace %+v", res)
		}
		if g.park.Len() != 0 || len(g.park.Solicitations()) != 0 {
			t.Errorf("Trace parked a packet")
		}
	})
	t.Run("not for the router", func(t *testing.T) {
		s := gwUDP("10.0.10.5", "10.0.20.7", 64, "x")
		s.dstMAC = MAC{2, 0, 0, 0, 0, 9}
		if res := g.Trace(gwParse(t, gwBuild(s), 1, 10)); res.Verdict != "pass" || res.Cache != "not looked up" {
			t.Errorf("trace %+v", res)
		}
	})
	t.Run("TTL 1", func(t *testing.T) {
		res := g.Trace(gwParse(t, gwBuild(gwUDP("10.0.10.5", "10.0.20.7", 1, "x")), 1, 10))
		if res.Cache != "not looked up (TTL <= 1)" || !gwHasEvent(res.Events, "route", "ttl-exceeded") {
			t.Errorf("trace %+v", res)
		}
	})
	t.Run("echo", func(t *testing.T) {
		s := gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: netip.MustParseAddr("10.0.10.5"),
			dst: netip.MustParseAddr("10.0.10.1"), proto: ProtoICMP, icmpType: 8, ttl: 64}
		if res := g.Trace(gwParse(t, gwBuild(s), 1, 10)); res.Verdict != "reply" || !gwHasEvent(res.Events, "local", "reply") {
			t.Errorf("trace %+v", res)
		}
	})
}

func gwHasEvent(evs []TraceEvent, stage, decision string) bool {
	for _, ev := range evs {
		if ev.Stage == stage && ev.Decision == decision {
			return true
		}
	}
	return false
}

// gwLearner records what the stage learns.
type gwLearner map[gwL2Key]uint16

func (l gwLearner) Learn(vlan uint16, mac MAC, port uint16) { l[gwL2Key{vlan, mac}] = port }

func TestGatewayLearnsSources(t *testing.T) {
	e := gwBasicEnv(t)
	g := e.stage(64, nil)
	learned := gwLearner{}
	g.SetLearner(learned)
	s := gwUDP("10.0.10.5", "10.0.20.7", 64, "x")
	gwRun(g, gwParse(t, gwBuild(s), 3, 10)) // miss
	delete(learned, gwL2Key{10, gwHostMAC})
	gwRun(g, gwParse(t, gwBuild(s), 3, 10)) // hit, same second: not learned again
	if _, ok := learned[gwL2Key{10, gwHostMAC}]; ok {
		t.Errorf("the same source was learned twice in one clock second")
	}
	e.clock.Add(1)
	gwRun(g, gwParse(t, gwBuild(s), 3, 10)) // hit, next second
	if g.Cache().Stats().Hits != 2 {
		t.Fatalf("later packets did not hit: %+v", g.Cache().Stats())
	}
	if port, ok := learned[gwL2Key{10, gwHostMAC}]; !ok || port != 3 {
		t.Errorf("a cache hit did not learn the source: %v", learned)
	}
	// A move to another port is learned at once.
	delete(learned, gwL2Key{10, gwHostMAC})
	gwRun(g, gwParse(t, gwBuild(s), 5, 10))
	if port := learned[gwL2Key{10, gwHostMAC}]; port != 5 {
		t.Errorf("a move to port 5 was not learned at once: %v", learned)
	}
	other := s
	other.dstMAC, other.srcMAC = MAC{2, 0, 0, 0, 0, 0x99}, MAC{2, 0, 0, 0, 0, 0x98}
	gwRun(g, gwParse(t, gwBuild(other), 4, 10))
	if _, ok := learned[gwL2Key{10, other.srcMAC}]; ok {
		t.Error("learned from a frame not for the router (that is the L2 stage's job)")
	}
}

func TestFlowActionDescribe(t *testing.T) {
	mac := func(b byte) MAC { return MAC{2, 0, 0, 0, 0, b} }
	for _, c := range []struct {
		a    FlowAction
		name func(uint16) string
		want string
	}{
		{FlowAction{Verdict: VerdictDrop, Reason: DropACLDenied}, nil, "drop"},
		{FlowAction{Verdict: VerdictForward, Ops: OpSetMACs | OpDecTTL, SrcMAC: mac(1), DstMAC: mac(2), OutVLAN: 2, OutPort: 1}, nil,
			"set_eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),dec_ttl,vlan=2,output:1"},
		// A hop that only switches (no rewrite) says so: no set_eth, no dec_ttl.
		{FlowAction{Verdict: VerdictForward, OutVLAN: 7, OutPort: 3}, func(p uint16) string { return "p" + string(rune('0'+p)) },
			"vlan=7,output:p3"},
		{FlowAction{Verdict: VerdictForward, Ops: OpDecTTL, OutVLAN: 1, OutPort: 0}, nil, "dec_ttl,vlan=1,output:0"},
	} {
		if got := c.a.Describe(c.name); got != c.want {
			t.Errorf("Describe(%+v) = %q, want %q", c.a, got, c.want)
		}
	}
}
