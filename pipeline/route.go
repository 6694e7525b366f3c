package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// RouterInterface is one of the gateway's interfaces: its addresses on one
// segment (VLAN). Each address's prefix is a connected route.
type RouterInterface struct {
	Name      string
	VLAN      uint16
	Addresses []netip.Prefix
}

// StaticRoute sends Prefix via the neighbor Via, which must sit in a
// connected prefix of one of the interfaces.
type StaticRoute struct {
	Prefix netip.Prefix
	Via    netip.Addr
}

// RouteInfo is one route as the control path shows it.
type RouteInfo struct {
	Prefix    netip.Prefix `json:"prefix"`
	Via       netip.Addr   `json:"via,omitzero"`
	Interface string       `json:"interface"`
	VLAN      uint16       `json:"vlan"`
	Connected bool         `json:"connected"`
}

// nextHop is what a route points at: an interface and, for a static
// route, the neighbor to send to (for a connected one, the destination).
type nextHop struct {
	iface int
	via   netip.Addr // invalid for connected routes
}

// routerSnap is immutable once published.
type routerSnap struct {
	ifaces []RouterInterface
	// byVLAN maps a VLAN to its interface index; -1 when the VLAN has none.
	byVLAN [4096]int16
	table  *RouteTable
	hops   []nextHop
	static []StaticRoute
}

// Router holds the gateway's interfaces and routes. Changes build a new
// snapshot under a mutex and publish it atomically; the workers' route
// steps read it without locks. Every change bumps Gen.
type Router struct {
	mac  MAC
	mu   sync.Mutex
	snap atomic.Pointer[routerSnap]
	gen  *atomic.Uint64
}

// NewRouter returns a router with MAC mac over the interfaces and static
// routes. gen is bumped on every later change.
func NewRouter(mac MAC, ifaces []RouterInterface, routes []StaticRoute, gen *atomic.Uint64) (*Router, error) {
	if mac.IsMulticast() || mac.IsZero() {
		return nil, fmt.Errorf("mac: %s is not a unicast address", mac)
	}
	r := &Router{mac: mac, gen: gen}
	s, err := buildRouterSnap(ifaces, routes)
	if err != nil {
		return nil, err
	}
	r.snap.Store(s)
	return r, nil
}

// MAC is the router's Ethernet address on every interface.
func (r *Router) MAC() MAC { return r.mac }

// Interfaces returns the interfaces.
func (r *Router) Interfaces() []RouterInterface { return slices.Clone(r.snap.Load().ifaces) }

// InterfaceOn returns the interface on vlan.
func (r *Router) InterfaceOn(vlan uint16) (RouterInterface, bool) {
	s := r.snap.Load()
	if i := s.byVLAN[vlan&0xfff]; i >= 0 {
		return s.ifaces[i], true
	}
	return RouterInterface{}, false
}

// OnVLAN reports whether the router has an interface on vlan.
func (r *Router) OnVLAN(vlan uint16) bool { return r.snap.Load().byVLAN[vlan&0xfff] >= 0 }

// Errors of route changes.
var (
	ErrRouteExists   = errors.New("route exists")
	ErrNoSuchRoute   = errors.New("no such static route")
	ErrViaUnreached  = errors.New("via is in no connected prefix")
	ErrRouteConflict = errors.New("prefix is connected")
)

func buildRouterSnap(ifaces []RouterInterface, routes []StaticRoute) (*routerSnap, error) {
	s := &routerSnap{ifaces: slices.Clone(ifaces), table: NewRouteTable(), static: slices.Clone(routes)}
	for i := range s.byVLAN {
		s.byVLAN[i] = -1
	}
	connected := map[netip.Prefix]bool{}
	for i, ifc := range ifaces {
		if ifc.VLAN > 4094 {
			return nil, fmt.Errorf("interfaces[%d].vlan: %d is not a VLAN ID (0..4094)", i, ifc.VLAN)
		}
		if s.byVLAN[ifc.VLAN] >= 0 {
			return nil, fmt.Errorf("interfaces[%d].vlan: VLAN %d already has interface %q", i, ifc.VLAN, ifaces[s.byVLAN[ifc.VLAN]].Name)
		}
		s.byVLAN[ifc.VLAN] = int16(i)
		for j, a := range ifc.Addresses {
			if !a.IsValid() || a.Addr().Zone() != "" || a.Addr().Is4In6() {
				return nil, fmt.Errorf("interfaces[%d].addresses[%d]: %v is not an IPv4 or IPv6 prefix", i, j, a)
			}
			p := a.Masked()
			if connected[p] {
				return nil, fmt.Errorf("interfaces[%d].addresses[%d]: prefix %v is already connected", i, j, p)
			}
			connected[p] = true
			s.hops = append(s.hops, nextHop{iface: i})
			if err := s.table.Add(p, uint32(len(s.hops)-1)); err != nil {
				return nil, fmt.Errorf("interfaces[%d].addresses[%d]: %w", i, j, err)
			}
		}
	}
	for i, rt := range routes {
		p := rt.Prefix.Masked()
		if !p.IsValid() {
			return nil, fmt.Errorf("routes[%d].prefix: %v: %w", i, rt.Prefix, ErrInvalidPrefix)
		}
		if connected[p] {
			return nil, fmt.Errorf("routes[%d].prefix: %v: %w", i, p, ErrRouteConflict)
		}
		if !rt.Via.IsValid() || rt.Via.Is4() != p.Addr().Is4() {
			return nil, fmt.Errorf("routes[%d].via: %v is not an address of the prefix's family", i, rt.Via)
		}
		// The via is reached through the interface with the longest
		// connected prefix holding it.
		ifc, best := -1, -1
		for j, c := range ifaces {
			for _, a := range c.Addresses {
				if a.Masked().Contains(rt.Via) && a.Bits() > best {
					ifc, best = j, a.Bits()
				}
			}
		}
		if ifc < 0 {
			return nil, fmt.Errorf("routes[%d].via: %v: %w", i, rt.Via, ErrViaUnreached)
		}
		s.hops = append(s.hops, nextHop{iface: ifc, via: rt.Via})
		if _, dup := s.table.routes[p]; dup {
			return nil, fmt.Errorf("routes[%d].prefix: %v: %w", i, p, ErrRouteExists)
		}
		if err := s.table.Add(p, uint32(len(s.hops)-1)); err != nil {
			return nil, fmt.Errorf("routes[%d].prefix: %w", i, err)
		}
	}
	return s, nil
}

func (r *Router) update(edit func(ifaces []RouterInterface, routes []StaticRoute) ([]RouterInterface, []StaticRoute, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.snap.Load()
	ifaces, routes, err := edit(slices.Clone(cur.ifaces), slices.Clone(cur.static))
	if err != nil {
		return err
	}
	s, err := buildRouterSnap(ifaces, routes)
	if err != nil {
		return err
	}
	r.snap.Store(s)
	r.gen.Add(1)
	return nil
}

// AddRoute adds a static route.
func (r *Router) AddRoute(rt StaticRoute) error {
	return r.update(func(ifs []RouterInterface, rs []StaticRoute) ([]RouterInterface, []StaticRoute, error) {
		for _, o := range rs {
			if o.Prefix.Masked() == rt.Prefix.Masked() {
				return nil, nil, fmt.Errorf("%v: %w", rt.Prefix.Masked(), ErrRouteExists)
			}
		}
		return ifs, append(rs, StaticRoute{Prefix: rt.Prefix.Masked(), Via: rt.Via}), nil
	})
}

// DelRoute removes the static route for prefix.
func (r *Router) DelRoute(prefix netip.Prefix) error {
	return r.update(func(ifs []RouterInterface, rs []StaticRoute) ([]RouterInterface, []StaticRoute, error) {
		for i, o := range rs {
			if o.Prefix.Masked() == prefix.Masked() {
				return ifs, slices.Delete(rs, i, i+1), nil
			}
		}
		return nil, nil, fmt.Errorf("%v: %w", prefix.Masked(), ErrNoSuchRoute)
	})
}

// StaticRoutes returns the static routes in the order they were added.
func (r *Router) StaticRoutes() []StaticRoute { return slices.Clone(r.snap.Load().static) }

// Routes returns every route, connected and static, sorted by prefix.
func (r *Router) Routes() []RouteInfo {
	s := r.snap.Load()
	var out []RouteInfo
	for _, rt := range s.table.Routes() {
		h := s.hops[rt.NextHop]
		ifc := s.ifaces[h.iface]
		out = append(out, RouteInfo{Prefix: rt.Prefix, Via: h.via, Interface: ifc.Name, VLAN: ifc.VLAN, Connected: !h.via.IsValid()})
	}
	return out
}

// ownAddr returns an address of the interface on vlan in the family of
// v4 (for ICMP errors), preferring one whose prefix holds peer.
func (s *routerSnap) ownAddr(vlan uint16, v4 bool, peer netip.Addr) (netip.Addr, bool) {
	i := s.byVLAN[vlan&0xfff]
	if i < 0 {
		return netip.Addr{}, false
	}
	var best netip.Addr
	for _, a := range s.ifaces[i].Addresses {
		if a.Addr().Is4() != v4 {
			continue
		}
		if a.Contains(peer) {
			return a.Addr(), true
		}
		if !best.IsValid() {
			best = a.Addr()
		}
	}
	return best, best.IsValid()
}

// isOwn reports whether ip (4 or 16 bytes) is one of the router's
// addresses.
func (s *routerSnap) isOwn(k *FlowKey) bool {
	dst := k.DstAddr()
	for i := range s.ifaces {
		for _, a := range s.ifaces[i].Addresses {
			if a.Addr() == dst {
				return true
			}
		}
	}
	return false
}

// Neighbors resolves next hops to MAC addresses (the switch's binding
// table: static, gateway and gleaned bindings).
type Neighbors interface {
	Resolve(vlan uint16, ip netip.Addr) (MAC, bool)
}

// L2Locator finds the port behind a MAC address in a VLAN (the switch's
// forwarding database).
type L2Locator interface {
	Locate(vlan uint16, mac MAC) (port uint16, ok bool)
}

// RouteStep is the L3 routing step of the gateway pipeline, one per
// worker. For a packet addressed to the router's MAC it finds the longest
// prefix match, resolves the next hop's MAC and port, rewrites the MACs,
// decrements the TTL and forwards. A packet whose TTL runs out is turned
// into an ICMP time exceeded back to its sender; one whose next hop is not
// yet resolved is parked while the switch asks for it.
type RouteStep struct {
	r     *Router
	nbrs  Neighbors
	l2    L2Locator
	park  *ParkQueue
	icmp  icmpLimiter
	stats routeCounters
}

type routeCounters struct {
	routed, noRoute, ttlExceeded, icmpSent, icmpLimited, parked, flooded atomic.Uint64
}

// RouteStats are a RouteStep's counters.
type RouteStats struct {
	Routed      uint64 `json:"routed"`
	NoRoute     uint64 `json:"no_route"`
	TTLExceeded uint64 `json:"ttl_exceeded"`
	ICMPSent    uint64 `json:"icmp_sent"`
	ICMPLimited uint64 `json:"icmp_rate_limited"`
	Parked      uint64 `json:"parked"`
	Flooded     uint64 `json:"flooded"`
}

// Add returns the sum of s and o.
func (s RouteStats) Add(o RouteStats) RouteStats {
	s.Routed += o.Routed
	s.NoRoute += o.NoRoute
	s.TTLExceeded += o.TTLExceeded
	s.ICMPSent += o.ICMPSent
	s.ICMPLimited += o.ICMPLimited
	s.Parked += o.Parked
	s.Flooded += o.Flooded
	return s
}

// NewRouteStep returns a worker's routing step.
func NewRouteStep(r *Router, nbrs Neighbors, l2 L2Locator, park *ParkQueue) *RouteStep {
	return &RouteStep{r: r, nbrs: nbrs, l2: l2, park: park, icmp: icmpLimiter{perSecond: 100}}
}

// Name implements GatewayStep.
func (s *RouteStep) Name() string { return "route" }

// Stats returns the step's counters.
func (s *RouteStep) Stats() RouteStats {
	return RouteStats{
		Routed: s.stats.routed.Load(), NoRoute: s.stats.noRoute.Load(), TTLExceeded: s.stats.ttlExceeded.Load(),
		ICMPSent: s.stats.icmpSent.Load(), ICMPLimited: s.stats.icmpLimited.Load(),
		Parked: s.stats.parked.Load(), Flooded: s.stats.flooded.Load(),
	}
}

// Step implements GatewayStep.
func (s *RouteStep) Step(p *Packet, f *FlowCtx) bool {
	snap := s.r.snap.Load()
	k := &f.Key
	var nh uint32
	var ok bool
	if k.Family == 4 {
		nh, ok = snap.table.Lookup4([4]byte(k.Dst[:4]))
	} else {
		nh, ok = snap.table.Lookup6(k.Dst)
	}
	if !ok {
		s.stats.noRoute.Add(1)
		p.Drop(DropNoRoute)
		f.Act.Verdict, f.Act.Reason = VerdictDrop, DropNoRoute
		if f.Trace != nil {
			f.Trace.Add("route", "drop", "no route to %s", k.DstAddr())
		}
		return false
	}
	if TTL(p) <= 1 {
		// Depends on the packet's TTL, not only on its key: never cached
		// (the gateway stage also never looks such packets up).
		f.NoCache = true
		s.stats.ttlExceeded.Add(1)
		sent := s.timeExceeded(p, snap, f.Now)
		if f.Trace != nil {
			f.Trace.Add("route", "ttl-exceeded", "TTL/hop limit %d; ICMP time exceeded sent: %v", TTL(p), sent)
		}
		return false
	}
	hop := snap.hops[nh]
	ifc := &snap.ifaces[hop.iface]
	target := hop.via
	if !target.IsValid() {
		target = k.DstAddr()
	}
	mac, ok := s.nbrs.Resolve(ifc.VLAN, target)
	if !ok {
		f.NoCache = true
		if f.Trace != nil {
			// A traced packet is a copy, not a port's frame: report what
			// would happen instead of parking it.
			p.Verdict = VerdictPending
			f.Trace.Add("route", "park", "next hop %s on %s (vlan %d) unresolved: a packet would be parked and ARP/ND sent", target, ifc.Name, ifc.VLAN)
			return false
		}
		if s.park.Park(p, ifc.VLAN, target, f.Now) {
			s.stats.parked.Add(1)
			p.Verdict = VerdictPending
		} else {
			p.Drop(DropNoNeighbor)
		}
		return false
	}
	SetMACs(p.Data, s.r.mac, mac)
	DecTTL(p)
	p.VLAN = ifc.VLAN
	out, known := s.l2.Locate(ifc.VLAN, mac)
	if !known {
		// The neighbor is bound but its port is unknown: flood it in the
		// segment like any unknown unicast, and do not cache that.
		f.NoCache = true
		s.stats.flooded.Add(1)
		p.Verdict = VerdictFlood
		if f.Trace != nil {
			f.Trace.Add("route", "flood", "%s via %s (%s) on %s (vlan %d): port of %s unknown", k.DstAddr(), target, mac, ifc.Name, ifc.VLAN, mac)
		}
		return true
	}
	s.stats.routed.Add(1)
	p.Forward(out)
	f.Act = FlowAction{Verdict: VerdictForward, OutPort: out, OutVLAN: ifc.VLAN, Ops: OpSetMACs | OpDecTTL,
		SrcMAC: s.r.mac, DstMAC: mac, Hits: f.Act.Hits, Touch: f.Act.Touch, Deps: f.Act.Deps}
	if f.Trace != nil {
		f.Trace.Add("route", "forward", "%s via %s (%s) out port %d on %s (vlan %d), TTL-1", k.DstAddr(), target, mac, out, ifc.Name, ifc.VLAN)
	}
	return true
}

// icmpLimiter lets at most perSecond ICMP errors out per second of the
// switch clock, per worker.
type icmpLimiter struct {
	perSecond uint32
	sec, n    uint32
}

func (l *icmpLimiter) allow(now uint32) bool {
	if now != l.sec {
		l.sec, l.n = now, 0
	}
	if l.n >= l.perSecond {
		return false
	}
	l.n++
	return true
}

// timeExceeded rewrites p in place into an ICMP time exceeded to its sender
// (RFC 792 / RFC 4443) and sets VerdictReply, or drops it: never for an
// ICMP error, a multicast or broadcast sender, when the rate limit is hit,
// or when the frame cannot hold the message. It reports whether it sent.
func (s *RouteStep) timeExceeded(p *Packet, snap *routerSnap, now uint32) bool {
	p.Drop(DropTTLExceeded)
	p.Materialize() // the quote may reach into the payload
	d := p.Data
	l3 := int(p.L3Off)
	v4 := p.Flags&FlagIPv4 != 0
	if MAC(d[6:12]).IsMulticast() || isICMPError(p) {
		return false
	}
	var src netip.Addr
	var peer netip.Addr
	if v4 {
		peer = netip.AddrFrom4([4]byte(d[l3+12 : l3+16]))
	} else {
		peer = netip.AddrFrom16([16]byte(d[l3+8 : l3+24]))
	}
	if peer.IsMulticast() || peer.IsUnspecified() || (v4 && peer == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return false
	}
	src, ok := snap.ownAddr(p.VLAN, v4, peer)
	if !ok {
		return false
	}
	if !s.icmp.allow(now) {
		s.stats.icmpLimited.Add(1)
		return false
	}
	// Quote: the IPv4 header + 8 bytes (RFC 792), or as much of the packet
	// as keeps the error within the IPv6 minimum MTU (RFC 4443).
	var hdr, quote int
	if v4 {
		hdr = 20 + 8
		quote = min(int(p.L3Len), int(d[l3]&0xf)*4+8, len(d)-l3)
	} else {
		hdr = 40 + 8
		quote = min(int(p.L3Len), 1280-hdr, len(d)-l3)
	}
	if l3+hdr+quote > cap(d) {
		return false
	}
	d = d[:l3+hdr+quote]
	copy(d[l3+hdr:], d[l3:l3+quote])
	me, them := MAC(d[0:6]), MAC(d[6:12])
	SetMACs(d, me, them)
	ip := d[l3:]
	if v4 {
		ip[0], ip[1] = 0x45, 0xc0
		binary.BigEndian.PutUint16(ip[2:], uint16(hdr+quote))
		binary.BigEndian.PutUint32(ip[4:], 0) // ID 0, DF clear
		ip[8], ip[9] = 64, ProtoICMP
		ip[10], ip[11] = 0, 0
		s4 := src.As4()
		copy(ip[12:16], s4[:])
		p4 := peer.As4()
		copy(ip[16:20], p4[:])
		binary.BigEndian.PutUint16(ip[10:], ^Checksum(ip[:20], 0))
		icmp := ip[20:]
		icmp[0], icmp[1] = 11, 0
		binary.BigEndian.PutUint32(icmp[2:], 0)
		binary.BigEndian.PutUint16(icmp[6:], 0)
		binary.BigEndian.PutUint16(icmp[2:], ^Checksum(icmp[:8+quote], 0))
	} else {
		binary.BigEndian.PutUint32(ip[0:], 6<<28)
		binary.BigEndian.PutUint16(ip[4:], uint16(8+quote))
		ip[6], ip[7] = ProtoICMPv6, 255
		s16 := src.As16()
		copy(ip[8:24], s16[:])
		p16 := peer.As16()
		copy(ip[24:40], p16[:])
		icmp := ip[40:]
		icmp[0], icmp[1] = 3, 0
		binary.BigEndian.PutUint32(icmp[2:], 0)
		binary.BigEndian.PutUint16(icmp[6:], 0)
		sum := PseudoHeaderSumIPv6(s16, p16, ProtoICMPv6, uint32(8+quote))
		binary.BigEndian.PutUint16(icmp[2:], ^Checksum(icmp[:8+quote], sum))
	}
	p.Data = d
	p.Verdict, p.Reason = VerdictReply, DropNone
	s.stats.icmpSent.Add(1)
	return true
}

// isICMPError reports whether p is an ICMP or ICMPv6 error message (or a
// non-first fragment, whose type is unknown), which never gets an error
// back.
func isICMPError(p *Packet) bool {
	if p.L4Proto != ProtoICMP && p.L4Proto != ProtoICMPv6 {
		return false
	}
	if p.Flags&FlagL4 == 0 {
		return true
	}
	t := p.Data[p.L4Off]
	if p.L4Proto == ProtoICMP {
		return t != 0 && t != 8 && t != 13 && t != 14
	}
	return t < 128
}
