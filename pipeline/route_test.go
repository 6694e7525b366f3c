package pipeline

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestNewRouterErrors(t *testing.T) {
	pp := netip.MustParsePrefix
	ap := netip.MustParseAddr
	lan := RouterInterface{Name: "lan", VLAN: 10, Addresses: []netip.Prefix{pp("10.0.0.1/24"), pp("2001:db8::1/64")}}
	tests := []struct {
		name    string
		mac     MAC
		ifaces  []RouterInterface
		routes  []StaticRoute
		field   string
		wantErr error
	}{
		{name: "multicast mac", mac: MAC{1, 0, 0x5e, 0, 0, 1}, field: "mac:"},
		{name: "zero mac", mac: MAC{}, field: "mac:"},
		{name: "vlan out of range", ifaces: []RouterInterface{{Name: "x", VLAN: 4095}}, field: "interfaces[0].vlan"},
		{name: "duplicate vlan", ifaces: []RouterInterface{lan, {Name: "y", VLAN: 10}}, field: "interfaces[1].vlan"},
		{name: "invalid address", ifaces: []RouterInterface{{Name: "x", VLAN: 1, Addresses: []netip.Prefix{{}}}}, field: "interfaces[0].addresses[0]"},
		{name: "4in6 address", ifaces: []RouterInterface{{Name: "x", VLAN: 1, Addresses: []netip.Prefix{pp("::ffff:10.0.0.1/120")}}}, field: "interfaces[0].addresses[0]"},
		{name: "duplicate connected", ifaces: []RouterInterface{lan, {Name: "y", VLAN: 11, Addresses: []netip.Prefix{pp("10.0.0.9/24")}}}, field: "interfaces[1].addresses[0]"},
		{name: "invalid route prefix", ifaces: []RouterInterface{lan}, routes: []StaticRoute{{Via: ap("10.0.0.2")}}, field: "routes[0].prefix", wantErr: ErrInvalidPrefix},
		{name: "route is connected", ifaces: []RouterInterface{lan}, routes: []StaticRoute{{Prefix: pp("10.0.0.0/24"), Via: ap("10.0.0.2")}}, field: "routes[0].prefix", wantErr: ErrRouteConflict},
		{name: "via of other family", ifaces: []RouterInterface{lan}, routes: []StaticRoute{{Prefix: pp("172.16.0.0/12"), Via: ap("2001:db8::2")}}, field: "routes[0].via"},
		{name: "via missing", ifaces: []RouterInterface{lan}, routes: []StaticRoute{{Prefix: pp("172.16.0.0/12")}}, field: "routes[0].via"},
		{name: "via unreached", ifaces: []RouterInterface{lan}, routes: []StaticRoute{{Prefix: pp("172.16.0.0/12"), Via: ap("192.0.2.1")}}, field: "routes[0].via", wantErr: ErrViaUnreached},
		{name: "duplicate route", ifaces: []RouterInterface{lan}, routes: []StaticRoute{
			{Prefix: pp("172.16.0.0/12"), Via: ap("10.0.0.2")}, {Prefix: pp("172.16.1.0/12"), Via: ap("10.0.0.3")}}, field: "routes[1].prefix", wantErr: ErrRouteExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mac := tc.mac
			if tc.field != "mac:" {
				mac = gwRouterMAC
			}
			r, err := NewRouter(mac, tc.ifaces, tc.routes, new(atomic.Uint64))
			if err == nil {
				t.Fatalf("NewRouter = %v, want an error naming %s", r, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field) {
				t.Errorf("error %q does not start with %q", err, tc.field)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
		})
	}
}

// gwLPMEnv is a router whose routes overlap:
//
//	lan  vlan 10: 10.1.0.1/16, 2001:db8:1::1/48
//	lab  vlan 30: 10.1.7.1/24 (inside lan's /16)
//	wan  vlan 20: 192.168.1.1/24, 2001:db8:ff::1/64
//	static 10.1.5.0/24 via 192.168.1.254, 0.0.0.0/0 via 192.168.1.253,
//	       2001:db8:1:5::/64 via 2001:db8:ff::fe
func gwLPMEnv(t *testing.T) *gwEnv {
	t.Helper()
	pp := netip.MustParsePrefix
	ap := netip.MustParseAddr
	e := &gwEnv{nbrs: gwNeighbors{}, l2: gwLocator{}}
	e.clock.Store(50)
	r, err := NewRouter(gwRouterMAC, []RouterInterface{
		{Name: "lan", VLAN: 10, Addresses: []netip.Prefix{pp("10.1.0.1/16"), pp("2001:db8:1::1/48")}},
		{Name: "lab", VLAN: 30, Addresses: []netip.Prefix{pp("10.1.7.1/24")}},
		{Name: "wan", VLAN: 20, Addresses: []netip.Prefix{pp("192.168.1.1/24"), pp("2001:db8:ff::1/64")}},
	}, []StaticRoute{
		{Prefix: pp("10.1.5.0/24"), Via: ap("192.168.1.254")},
		{Prefix: pp("0.0.0.0/0"), Via: ap("192.168.1.253")},
		{Prefix: pp("2001:db8:1:5::/64"), Via: ap("2001:db8:ff::fe")},
	}, &e.routerGen)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	for i, h := range []struct {
		vlan uint16
		ip   string
	}{
		{10, "10.1.2.3"}, {10, "10.1.5.9"}, {30, "10.1.7.9"}, {20, "192.168.1.254"}, {20, "192.168.1.253"}, {20, "192.168.1.77"},
		{10, "2001:db8:1::3"}, {20, "2001:db8:ff::fe"},
	} {
		m := MAC{2, 0, 0, 0, byte(h.vlan), byte(i + 1)}
		e.nbrs[gwNbrKey{h.vlan, ap(h.ip)}] = m
		e.l2[gwL2Key{h.vlan, m}] = uint16(100 + i)
	}
	return e
}

// gwStep runs one packet through s alone.
func gwStep(t *testing.T, s *RouteStep, p *Packet, now uint32) (FlowCtx, bool) {
	t.Helper()
	var f FlowCtx
	f.Reset(now, nil)
	if !ExtractFlowKey(p, &f.Key) {
		t.Fatal("not an IP packet")
	}
	more := s.Step(p, &f)
	return f, more
}

func TestRouteLongestPrefixMatch(t *testing.T) {
	e := gwLPMEnv(t)
	s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
	tests := []struct {
		dst  string
		vlan uint16
		via  string // whose MAC the packet goes to
	}{
		{"10.1.2.3", 10, "10.1.2.3"},           // connected /16
		{"10.1.7.9", 30, "10.1.7.9"},           // connected /24 beats the /16
		{"10.1.5.9", 20, "192.168.1.254"},      // static /24 beats connected /16
		{"192.168.1.77", 20, "192.168.1.77"},   // connected
		{"8.8.8.8", 20, "192.168.1.253"},       // default route
		{"2001:db8:1::3", 10, "2001:db8:1::3"}, // connected /48
		{"2001:db8:1:5::9", 20, "2001:db8:ff::fe"},
	}
	for _, tc := range tests {
		t.Run(tc.dst, func(t *testing.T) {
			src := "10.1.2.3"
			if strings.Contains(tc.dst, ":") {
				src = "2001:db8:1::3"
			}
			p := gwParse(t, gwBuild(gwUDP(src, tc.dst, 64, "x")), 1, 10)
			f, more := gwStep(t, s, p, 50)
			wantMAC, _ := e.nbrs.Resolve(tc.vlan, netip.MustParseAddr(tc.via))
			if !more || p.Verdict != VerdictForward || p.VLAN != tc.vlan || MAC(p.Data[0:6]) != wantMAC {
				t.Errorf("verdict %v vlan %d dst MAC %s; want forward in vlan %d to %s (%s)", p.Verdict, p.VLAN, MAC(p.Data[0:6]), tc.vlan, tc.via, wantMAC)
			}
			if f.NoCache || f.Act.Verdict != VerdictForward || f.Act.DstMAC != wantMAC || f.Act.OutVLAN != tc.vlan || f.Act.OutPort != p.OutPort {
				t.Errorf("recorded action %+v NoCache %v", f.Act, f.NoCache)
			}
		})
	}
	t.Run("no route", func(t *testing.T) {
		p := gwParse(t, gwBuild(gwUDP("2001:db8:1::3", "2001:4860::1", 64, "x")), 1, 10)
		f, more := gwStep(t, s, p, 50)
		if more || p.Verdict != VerdictDrop || p.Reason != DropNoRoute || f.Act.Verdict != VerdictDrop || f.Act.Reason != DropNoRoute || f.NoCache {
			t.Errorf("verdict %v %v, act %+v, NoCache %v; want a cacheable no_route drop", p.Verdict, p.Reason, f.Act, f.NoCache)
		}
		if s.Stats().NoRoute != 1 {
			t.Errorf("NoRoute = %d", s.Stats().NoRoute)
		}
	})
}

func TestRouterAddDelRoute(t *testing.T) {
	pp := netip.MustParsePrefix
	ap := netip.MustParseAddr
	e := gwLPMEnv(t)
	s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
	vlanOf := func(dst string) uint16 {
		p := gwParse(t, gwBuild(gwUDP("10.1.2.3", dst, 64, "x")), 1, 10)
		gwStep(t, s, p, 50)
		if p.Verdict != VerdictForward {
			return 0
		}
		return p.VLAN
	}
	if v := vlanOf("10.1.2.3"); v != 10 {
		t.Fatalf("before: vlan %d", v)
	}
	g0 := e.routerGen.Load()
	if err := e.r.AddRoute(StaticRoute{Prefix: pp("10.1.2.0/24"), Via: ap("192.168.1.254")}); err != nil {
		t.Fatal(err)
	}
	if e.routerGen.Load() != g0+1 {
		t.Errorf("AddRoute: generation %d, want %d", e.routerGen.Load(), g0+1)
	}
	if v := vlanOf("10.1.2.3"); v != 20 {
		t.Errorf("after AddRoute of a longer prefix: vlan %d, want 20", v)
	}
	for _, bad := range []struct {
		rt   StaticRoute
		want error
	}{
		{StaticRoute{Prefix: pp("10.1.2.0/24"), Via: ap("192.168.1.253")}, ErrRouteExists},
		{StaticRoute{Prefix: pp("10.1.7.0/24"), Via: ap("192.168.1.253")}, ErrRouteConflict},
		{StaticRoute{Prefix: pp("10.9.0.0/16"), Via: ap("198.51.100.1")}, ErrViaUnreached},
	} {
		if err := e.r.AddRoute(bad.rt); !errors.Is(err, bad.want) {
			t.Errorf("AddRoute(%v) = %v, want %v", bad.rt, err, bad.want)
		}
	}
	if err := e.r.DelRoute(pp("10.99.0.0/16")); !errors.Is(err, ErrNoSuchRoute) {
		t.Errorf("DelRoute of a missing route = %v", err)
	}
	if e.routerGen.Load() != g0+1 {
		t.Errorf("failed changes bumped the generation to %d", e.routerGen.Load())
	}
	if err := e.r.DelRoute(pp("10.1.2.9/24")); err != nil { // masked like AddRoute
		t.Fatal(err)
	}
	if e.routerGen.Load() != g0+2 {
		t.Errorf("DelRoute: generation %d, want %d", e.routerGen.Load(), g0+2)
	}
	if v := vlanOf("10.1.2.3"); v != 10 {
		t.Errorf("after DelRoute: vlan %d, want 10 again", v)
	}
	if err := e.r.DelRoute(pp("0.0.0.0/0")); err != nil {
		t.Fatal(err)
	}
	if v := vlanOf("8.8.8.8"); v != 0 {
		t.Errorf("after deleting the default: vlan %d, want no route", v)
	}
}

func TestRouterRoutesAndInterfaces(t *testing.T) {
	e := gwLPMEnv(t)
	got := e.r.Routes()
	var b strings.Builder
	for _, r := range got {
		b.WriteString(r.Prefix.String() + " " + r.Interface)
		if r.Connected {
			b.WriteString(" connected")
		} else {
			b.WriteString(" via " + r.Via.String())
		}
		b.WriteString("\n")
	}
	want := `0.0.0.0/0 wan via 192.168.1.253
10.1.0.0/16 lan connected
10.1.5.0/24 wan via 192.168.1.254
10.1.7.0/24 lab connected
192.168.1.0/24 wan connected
2001:db8:1::/48 lan connected
2001:db8:1:5::/64 wan via 2001:db8:ff::fe
2001:db8:ff::/64 wan connected
`
	if b.String() != want {
		t.Errorf("Routes():\n%s\nwant:\n%s", b.String(), want)
	}
	if n := len(e.r.StaticRoutes()); n != 3 {
		t.Errorf("StaticRoutes: %d, want 3", n)
	}
	if ifc, ok := e.r.InterfaceOn(30); !ok || ifc.Name != "lab" {
		t.Errorf("InterfaceOn(30) = %v, %v", ifc, ok)
	}
	if e.r.OnVLAN(40) || !e.r.OnVLAN(20) {
		t.Error("OnVLAN wrong")
	}
	if e.r.MAC() != gwRouterMAC || len(e.r.Interfaces()) != 3 {
		t.Error("MAC or Interfaces wrong")
	}
}

func TestRouteStepForwardRewrites(t *testing.T) {
	e := gwLPMEnv(t)
	s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
	for _, tc := range []struct {
		name     string
		src, dst string
		tag      int
	}{
		{"v4", "10.1.2.3", "192.168.1.77", -1},
		{"v4 tagged", "10.1.2.3", "192.168.1.77", 10},
		{"v6", "2001:db8:1::3", "2001:db8:1:5::1", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := gwUDP(tc.src, tc.dst, 64, "abc")
			sp.tag = tc.tag
			p := gwParse(t, gwBuild(sp), 1, 10)
			orig := bytes.Clone(p.Data)
			gwStep(t, s, p, 50)
			pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
			el := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if MAC(el.SrcMAC) != gwRouterMAC {
				t.Errorf("src MAC %s", el.SrcMAC)
			}
			var via netip.Addr
			if sp.dst.Is4() {
				via = sp.dst
				ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if ip.TTL != 63 || gwOnesSum(ip.Contents) != 0xffff {
					t.Errorf("TTL %d, header sum %#x", ip.TTL, gwOnesSum(ip.Contents))
				}
			} else {
				via = netip.MustParseAddr("2001:db8:ff::fe")
				ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if ip.HopLimit != 63 {
					t.Errorf("hop limit %d", ip.HopLimit)
				}
			}
			wantMAC, _ := e.nbrs.Resolve(20, via)
			port, _ := e.l2.Locate(20, wantMAC)
			if MAC(el.DstMAC) != wantMAC || p.VLAN != 20 || p.OutPort != port || p.Verdict != VerdictForward {
				t.Errorf("dst MAC %s vlan %d port %d verdict %v; want %s, 20, %d, forward", el.DstMAC, p.VLAN, p.OutPort, p.Verdict, wantMAC, port)
			}
			if !p.L4ChecksumValid() {
				t.Error("UDP checksum no longer valid")
			}
			if len(p.Data) != len(orig) || !bytes.Equal(p.Data[len(p.Data)-3:], orig[len(orig)-3:]) {
				t.Error("payload changed")
			}
		})
	}
	if st := s.Stats(); st.Routed != 3 {
		t.Errorf("Routed = %d", st.Routed)
	}
}

func TestRouteStepFloodsUnknownPort(t *testing.T) {
	e := gwLPMEnv(t)
	m, _ := e.nbrs.Resolve(20, netip.MustParseAddr("192.168.1.77"))
	delete(e.l2, gwL2Key{20, m})
	s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
	p := gwParse(t, gwBuild(gwUDP("10.1.2.3", "192.168.1.77", 64, "x")), 1, 10)
	f, more := gwStep(t, s, p, 50)
	if !more || p.Verdict != VerdictFlood || !f.NoCache || p.VLAN != 20 || MAC(p.Data[0:6]) != m {
		t.Errorf("more %v verdict %v NoCache %v vlan %d; want a rewritten, uncached flood in vlan 20", more, p.Verdict, f.NoCache, p.VLAN)
	}
	if s.Stats().Flooded != 1 {
		t.Errorf("Flooded = %d", s.Stats().Flooded)
	}
}

func TestRouteStepTimeExceeded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src, dst  string
		vlan      uint16
		wantSrc   string
		tag       int
		payloadSz int
	}{
		{"v4", "10.1.2.3", "8.8.8.8", 10, "10.1.0.1", -1, 100},
		{"v4 tagged", "10.1.2.3", "8.8.8.8", 10, "10.1.0.1", 10, 3},
		{"v4 from the lab", "10.1.7.9", "192.168.1.77", 30, "10.1.7.1", -1, 20},
		{"v6", "2001:db8:1::3", "2001:db8:ff::5", 10, "2001:db8:1::1", -1, 100},
		{"v6 big, quote capped", "2001:db8:1::3", "2001:db8:ff::5", 10, "2001:db8:1::1", -1, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gwLPMEnv(t)
			s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
			sp := gwUDP(tc.src, tc.dst, 1, strings.Repeat("p", tc.payloadSz))
			sp.tag = tc.tag
			p := gwParse(t, gwBuild(sp), 1, tc.vlan)
			orig := bytes.Clone(p.Data)
			l3 := int(p.L3Off)
			f, more := gwStep(t, s, p, 50)
			if more || !f.NoCache || p.Verdict != VerdictReply || p.VLAN != tc.vlan {
				t.Fatalf("more %v NoCache %v verdict %v %v vlan %d; want an uncached reply in the input VLAN", more, f.NoCache, p.Verdict, p.Reason, p.VLAN)
			}
			pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); MAC(el.SrcMAC) != gwRouterMAC || MAC(el.DstMAC) != gwHostMAC {
				t.Errorf("MACs %s > %s, want router > sender", el.SrcMAC, el.DstMAC)
			}
			if tc.tag >= 0 {
				if d := pkt.Layer(layers.LayerTypeDot1Q); d == nil || d.(*layers.Dot1Q).VLANIdentifier != uint16(tc.tag) {
					t.Error("the reply lost its VLAN tag")
				}
			}
			if sp.src.Is4() {
				ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				ic, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if ic == nil {
					t.Fatal("no ICMPv4 layer")
				}
				if ip.SrcIP.String() != tc.wantSrc || ip.DstIP.String() != tc.src || ip.TTL == 0 || ip.Protocol != layers.IPProtocolICMPv4 {
					t.Errorf("IP %s > %s ttl %d", ip.SrcIP, ip.DstIP, ip.TTL)
				}
				if ic.TypeCode.Type() != 11 || ic.TypeCode.Code() != 0 {
					t.Errorf("ICMP %v, want time exceeded", ic.TypeCode)
				}
				if gwOnesSum(ip.Contents) != 0xffff || gwOnesSum(ip.Payload) != 0xffff {
					t.Errorf("checksums: ip sum %#x icmp sum %#x", gwOnesSum(ip.Contents), gwOnesSum(ip.Payload))
				}
				if int(ip.Length) != len(ip.Contents)+len(ip.Payload) {
					t.Errorf("total length %d, header+payload %d", ip.Length, len(ip.Contents)+len(ip.Payload))
				}
				// RFC 792: the original IP header and 8 bytes of its data.
				quote := ic.Payload
				if want := orig[l3 : l3+28]; !bytes.Equal(quote, want) {
					t.Errorf("quote %x, want %x", quote, want)
				}
			} else {
				ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				ic, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
				if ic == nil {
					t.Fatal("no ICMPv6 layer")
				}
				if ip.SrcIP.String() != tc.wantSrc || ip.DstIP.String() != tc.src || ip.HopLimit != 255 {
					t.Errorf("IP %s > %s hop limit %d", ip.SrcIP, ip.DstIP, ip.HopLimit)
				}
				if ic.TypeCode.Type() != 3 || ic.TypeCode.Code() != 0 {
					t.Errorf("ICMPv6 %v, want time exceeded", ic.TypeCode)
				}
				if s := gwOnesSum(gwPseudo6(ip.SrcIP, ip.DstIP, ProtoICMPv6, len(ip.Payload)), ip.Payload); s != 0xffff {
					t.Errorf("ICMPv6 checksum invalid: sum %#x", s)
				}
				if len(ip.Contents)+len(ip.Payload) > 1280 {
					t.Errorf("error is %d bytes, more than the IPv6 minimum MTU", len(ip.Contents)+len(ip.Payload))
				}
				// RFC 4443: as much of the packet as fits in 1280 bytes.
				quote := ip.Payload[8:]
				want := orig[l3:]
				if len(want) > 1280-48 {
					want = want[:1280-48]
				}
				if !bytes.Equal(quote, want) {
					t.Errorf("quote of %d bytes differs from the first %d of the original", len(quote), len(want))
				}
			}
			if st := s.Stats(); st.TTLExceeded != 1 || st.ICMPSent != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestRouteStepNoICMPErrorFor(t *testing.T) {
	ap := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		s    gwPkt
	}{
		{"ICMP error", gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: ap("10.1.2.3"), dst: ap("8.8.8.8"), proto: ProtoICMP, icmpType: 3, icmpCode: 1, ttl: 1}},
		{"ICMPv6 error", gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: ap("2001:db8:1::3"), dst: ap("2001:db8:ff::5"), proto: ProtoICMPv6, icmpType: 1, ttl: 1}},
		{"multicast source MAC", gwPkt{dstMAC: gwRouterMAC, srcMAC: MAC{1, 0, 0x5e, 0, 0, 1}, tag: -1, src: ap("10.1.2.3"), dst: ap("8.8.8.8"), proto: ProtoUDP, ttl: 1}},
		{"unspecified source", gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: ap("0.0.0.0"), dst: ap("8.8.8.8"), proto: ProtoUDP, ttl: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gwLPMEnv(t)
			s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
			p := gwParse(t, gwBuild(tc.s), 1, 10)
			gwStep(t, s, p, 50)
			if p.Verdict != VerdictDrop || p.Reason != DropTTLExceeded {
				t.Errorf("verdict %v %v, want a silent ttl_exceeded drop", p.Verdict, p.Reason)
			}
			if st := s.Stats(); st.ICMPSent != 0 || st.TTLExceeded != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	t.Run("echo request gets one", func(t *testing.T) {
		e := gwLPMEnv(t)
		s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
		p := gwParse(t, gwBuild(gwPkt{dstMAC: gwRouterMAC, srcMAC: gwHostMAC, tag: -1, src: ap("10.1.2.3"), dst: ap("8.8.8.8"),
			proto: ProtoICMP, icmpType: 8, ttl: 1}), 1, 10)
		gwStep(t, s, p, 50)
		if p.Verdict != VerdictReply {
			t.Errorf("verdict %v, want the time exceeded", p.Verdict)
		}
	})
}

func TestRouteStepICMPRateLimit(t *testing.T) {
	e := gwLPMEnv(t)
	s := NewRouteStep(e.r, e.nbrs, e.l2, NewParkQueue(8))
	send := func(now uint32) Verdict {
		p := gwParse(t, gwBuild(gwUDP("10.1.2.3", "8.8.8.8", 1, "x")), 1, 10)
		gwStep(t, s, p, now)
		return p.Verdict
	}
	for i := range 100 {
		if v := send(7); v != VerdictReply {
			t.Fatalf("error %d in the second: %v", i+1, v)
		}
	}
	if v := send(7); v != VerdictDrop {
		t.Errorf("101st error in one second: %v, want dropped", v)
	}
	if st := s.Stats(); st.ICMPSent != 100 || st.ICMPLimited != 1 || st.TTLExceeded != 101 {
		t.Errorf("stats %+v", st)
	}
	if v := send(8); v != VerdictReply {
		t.Errorf("first error of the next second: %v", v)
	}
}

func TestRouteStepParksUnresolved(t *testing.T) {
	ap := netip.MustParseAddr
	e := gwLPMEnv(t)
	q := NewParkQueue(3)
	s := NewRouteStep(e.r, e.nbrs, e.l2, q)
	send := func(dst string, now uint32) (*Packet, FlowCtx) {
		p := gwParse(t, gwBuild(gwUDP("10.1.2.3", dst, 64, "x")), 1, 10)
		p.Addr = uint64(now)<<8 | uint64(q.Len())
		f, _ := gwStep(t, s, p, now)
		return p, f
	}
	// 10.1.5.9 goes via 192.168.1.254: unbind it. 192.168.1.99 is connected and unknown.
	delete(e.nbrs, gwNbrKey{20, ap("192.168.1.254")})
	orig := gwBuild(gwUDP("10.1.2.3", "10.1.5.9", 64, "x"))
	p, f := send("10.1.5.9", 100)
	if p.Verdict != VerdictPending || !f.NoCache || !bytes.Equal(p.Data, orig) {
		t.Fatalf("verdict %v NoCache %v changed %v; want an unchanged pending packet", p.Verdict, f.NoCache, !bytes.Equal(p.Data, orig))
	}
	asks := q.Solicitations()
	if len(asks) != 1 || asks[0] != (Solicitation{VLAN: 20, Target: ap("192.168.1.254")}) {
		t.Fatalf("solicitations %v, want one for 192.168.1.254 in vlan 20", asks)
	}
	send("10.1.5.10", 100) // same next hop, same second
	if asks := q.Solicitations(); len(asks) != 0 {
		t.Errorf("second packet to the same next hop within ParkRetry asked again: %v", asks)
	}
	send("192.168.1.99", 101)
	if asks := q.Solicitations(); len(asks) != 1 || asks[0].Target != ap("192.168.1.99") {
		t.Errorf("solicitations %v, want one for 192.168.1.99", asks)
	}
	if q.Len() != 3 || s.Stats().Parked != 3 {
		t.Fatalf("Len %d Parked %d, want 3", q.Len(), s.Stats().Parked)
	}
	if p, _ := send("10.1.5.11", 101); p.Verdict != VerdictDrop || p.Reason != DropNoNeighbor {
		t.Errorf("full queue: %v %v, want no_neighbor drop", p.Verdict, p.Reason)
	}

	// 192.168.1.254 answers; 192.168.1.99 never does.
	e.nbrs[gwNbrKey{20, ap("192.168.1.254")}] = MAC{2, 0, 0, 0, 20, 0x54}
	resolve := func(vlan uint16, ip netip.Addr) bool { _, ok := e.nbrs.Resolve(vlan, ip); return ok }
	var released, timedOut []ParkedPacket
	out := func(pp ParkedPacket, ok bool) {
		if ok {
			released = append(released, pp)
		} else {
			timedOut = append(timedOut, pp)
		}
	}
	q.Drain(102, resolve, out)
	if len(released) != 2 || len(timedOut) != 0 || q.Len() != 1 {
		t.Fatalf("released %d timed out %d left %d; want 2, 0, 1", len(released), len(timedOut), q.Len())
	}
	if released[0].Target != ap("192.168.1.254") || released[0].InPort != 1 || released[0].VLAN != 10 || released[0].Since != 100 ||
		released[0].Addr != 100<<8 || int(released[0].Len) != len(orig) {
		t.Errorf("released %+v", released[0])
	}
	if asks := q.Solicitations(); len(asks) != 1 || asks[0].Target != ap("192.168.1.99") {
		t.Errorf("Drain after ParkRetry asked %v, want 192.168.1.99 again", asks)
	}
	q.Drain(103, resolve, out)
	if len(timedOut) != 0 {
		t.Errorf("timed out before ParkTimeout")
	}
	q.Drain(101+ParkTimeout, resolve, out)
	if len(timedOut) != 1 || timedOut[0].Target != ap("192.168.1.99") || q.Len() != 0 {
		t.Errorf("timed out %v, left %d; want the 192.168.1.99 packet after ParkTimeout", timedOut, q.Len())
	}
}

func TestRouterSolicit(t *testing.T) {
	ap := netip.MustParseAddr
	e := gwLPMEnv(t)
	buf := make([]byte, 128)
	t.Run("ARP", func(t *testing.T) {
		n := e.r.Solicit(buf, Solicitation{VLAN: 20, Target: ap("192.168.1.99")})
		if n != 60 {
			t.Fatalf("length %d, want 60", n)
		}
		pkt := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
		el := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		a, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if a == nil {
			t.Fatal("no ARP layer")
		}
		if MAC(el.DstMAC) != BroadcastMAC || MAC(el.SrcMAC) != gwRouterMAC {
			t.Errorf("MACs %s > %s", el.SrcMAC, el.DstMAC)
		}
		if a.Operation != layers.ARPRequest || MAC(a.SourceHwAddress) != gwRouterMAC ||
			!net.IP(a.SourceProtAddress).Equal(net.IP{192, 168, 1, 1}) || !net.IP(a.DstProtAddress).Equal(net.IP{192, 168, 1, 99}) ||
			a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 {
			t.Errorf("ARP %+v", a)
		}
	})
	t.Run("NS", func(t *testing.T) {
		target := ap("2001:db8:ff::1234:5678")
		n := e.r.Solicit(buf, Solicitation{VLAN: 20, Target: target})
		if n != 14+40+32 {
			t.Fatalf("length %d", n)
		}
		pkt := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.Default)
		el := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ns, _ := pkt.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if ns == nil {
			t.Fatal("no neighbor solicitation layer")
		}
		if MAC(el.DstMAC) != (MAC{0x33, 0x33, 0xff, 0x34, 0x56, 0x78}) || MAC(el.SrcMAC) != gwRouterMAC {
			t.Errorf("MACs %s > %s", el.SrcMAC, el.DstMAC)
		}
		if ip.DstIP.String() != "ff02::1:ff34:5678" || ip.SrcIP.String() != "2001:db8:ff::1" || ip.HopLimit != 255 {
			t.Errorf("IP %s > %s hop limit %d", ip.SrcIP, ip.DstIP, ip.HopLimit)
		}
		if ns.TargetAddress.String() != target.String() {
			t.Errorf("target %s", ns.TargetAddress)
		}
		if len(ns.Options) != 1 || ns.Options[0].Type != layers.ICMPv6OptSourceAddress || MAC(ns.Options[0].Data) != gwRouterMAC {
			t.Errorf("options %+v, want one SLLAO with the router's MAC", ns.Options)
		}
		if s := gwOnesSum(gwPseudo6(ip.SrcIP, ip.DstIP, ProtoICMPv6, len(ip.Payload)), ip.Payload); s != 0xffff {
			t.Errorf("ICMPv6 checksum invalid: sum %#x", s)
		}
	})
	t.Run("no address of the family", func(t *testing.T) {
		if n := e.r.Solicit(buf, Solicitation{VLAN: 30, Target: ap("2001:db8:1::9")}); n != 0 {
			t.Errorf("length %d, want 0 (lab has no IPv6 address)", n)
		}
		if n := e.r.Solicit(buf[:40], Solicitation{VLAN: 20, Target: ap("192.168.1.9")}); n != 0 {
			t.Errorf("length %d into a short buffer, want 0", n)
		}
	})
}

func TestStaticRouteViaLongestConnectedPrefix(t *testing.T) {
	var gen atomic.Uint64
	r, err := NewRouter(MAC{2, 0, 0, 0, 0, 1}, []RouterInterface{
		{Name: "lab", VLAN: 30, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.7.1/24")}},
		{Name: "lan", VLAN: 10, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/16")}},
	}, []StaticRoute{{Prefix: netip.MustParsePrefix("172.16.0.0/12"), Via: netip.MustParseAddr("10.1.7.9")}}, &gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range r.Routes() {
		if ri.Prefix.String() == "172.16.0.0/12" && (ri.Interface != "lab" || ri.VLAN != 30) {
			t.Errorf("static route via 10.1.7.9 on %s vlan %d, want lab vlan 30 (the /24 beats the /16)", ri.Interface, ri.VLAN)
		}
	}
}
