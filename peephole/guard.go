package peephole

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// Claim says that port may send from MAC and, when IP is valid, claim IP
// (as ARP sender, IP source or ND target) with that MAC in segment VLAN. A
// claim without an IP only lets the port send from MAC. IPv6 hosts claim
// their link-local addresses too, or their Neighbor Discovery is dropped.
type Claim struct {
	Port uint16
	VLAN uint16
	IP   netip.Addr
	MAC  pipeline.MAC
}

// Guard is the spoof guard's rule set: which ports are guarded and what
// they may claim. The control plane replaces it with Set; the datapath
// reads an immutable snapshot through an atomic pointer, without locks.
//
// The zero Guard is not usable; use NewGuard.
type Guard struct {
	snap atomic.Pointer[guardSnap]
}

// guardSnap is an immutable rule set.
type guardSnap struct {
	guarded []uint64                     // bitmap of guarded port indices
	macs    map[uint64]struct{}          // port<<48 | MAC
	ip4     map[uint64][]pipeline.MAC    // port<<48 | VLAN<<32 | IPv4 address
	ip6     map[guardKey6][]pipeline.MAC // IPv6 claims
}

type guardKey6 struct {
	addr       [16]byte
	port, vlan uint16
}

// NewGuard returns a guard that guards no port.
func NewGuard() *Guard {
	g := &Guard{}
	g.Set(nil, nil)
	return g
}

// Set replaces the guarded ports and every claim. Claims of ports that are
// not guarded are kept but have no effect until their port is. Claims with
// a VLAN above MaxVLAN can never match and are left out. Set does not keep
// guarded or claims. Control path: it allocates.
func (g *Guard) Set(guarded []uint16, claims []Claim) {
	s := &guardSnap{
		macs: make(map[uint64]struct{}, len(claims)),
		ip4:  make(map[uint64][]pipeline.MAC),
		ip6:  make(map[guardKey6][]pipeline.MAC),
	}
	if len(guarded) > 0 {
		s.guarded = make([]uint64, int(slices.Max(guarded))/64+1)
		for _, p := range guarded {
			s.guarded[p/64] |= 1 << (p % 64)
		}
	}
	for _, c := range claims {
		if c.VLAN > MaxVLAN {
			continue
		}
		s.macs[uint64(c.Port)<<48|macWord(c.MAC)] = struct{}{}
		if !c.IP.IsValid() {
			continue
		}
		ip := c.IP.Unmap()
		if ip.Is4() {
			k := guardKey4(c.Port, c.VLAN, ip.As4())
			if !slices.Contains(s.ip4[k], c.MAC) {
				s.ip4[k] = append(s.ip4[k], c.MAC)
			}
			continue
		}
		k := guardKey6{addr: ip.As16(), port: c.Port, vlan: c.VLAN}
		if !slices.Contains(s.ip6[k], c.MAC) {
			s.ip6[k] = append(s.ip6[k], c.MAC)
		}
	}
	g.snap.Store(s)
}

func guardKey4(port, vlan uint16, ip [4]byte) uint64 {
	return uint64(port)<<48 | uint64(vlan)<<32 | uint64(binary.BigEndian.Uint32(ip[:]))
}

// isGuarded reports whether port has the guard on.
func (s *guardSnap) isGuarded(port uint16) bool {
	w := int(port / 64)
	return w < len(s.guarded) && s.guarded[w]&(1<<(port%64)) != 0
}

// claimed4 reports whether port may claim ip with mac in vlan.
func (s *guardSnap) claimed4(port, vlan uint16, ip [4]byte, mac pipeline.MAC) bool {
	return slices.Contains(s.ip4[guardKey4(port, vlan, ip)], mac)
}

// claimed6 reports whether port may claim ip with mac in vlan.
func (s *guardSnap) claimed6(port, vlan uint16, ip [16]byte, mac pipeline.MAC) bool {
	return slices.Contains(s.ip6[guardKey6{addr: ip, port: port, vlan: vlan}], mac)
}

// GuardStats are a GuardStage's counters.
type GuardStats struct {
	Checked       uint64 // packets from guarded ports
	DroppedSrcMAC uint64 // Ethernet source not a MAC the port claims
	DroppedARP    uint64 // ARP sender IP/MAC not claimed by the port, or a truncated ARP packet
	DroppedIP     uint64 // IPv4/IPv6 source not claimed by the port with the frame's MAC
	DroppedND     uint64 // ND announcing an address or MAC the port does not claim, or malformed
}

// GuardStage drops, with pipeline.DropSpoofed, packets from guarded ports
// that claim a MAC or address the port's claims do not cover:
//
//   - the Ethernet source must be a MAC of one of the port's claims;
//   - an ARP packet's sender IP and MAC must be claimed together, except
//     in a probe (sender IP 0.0.0.0);
//   - an IPv4 or IPv6 source must be claimed with the Ethernet source MAC,
//     except 0.0.0.0 (DHCP) and :: (duplicate address detection);
//   - a Neighbor Advertisement's target must be claimed by the port, with
//     the MAC of its target link-layer option if it has one;
//   - a Neighbor Solicitation's source link-layer option, if any, must be
//     a MAC its source address is claimed with (so a guarded host cannot
//     point its neighbors' caches at another MAC).
//
// Claims are per segment: the packet's classified VLAN (p.VLAN). Packets
// from unguarded ports and packets already decided are left alone. It runs
// before the responders so that a spoofed request cannot be gleaned. It is
// safe for one worker at a time per stage value; counters may be read from
// any goroutine.
type GuardStage struct {
	guard *Guard
	c     [guardNumCounters]atomic.Uint64
}

const (
	guardChecked = iota
	guardSrcMAC
	guardARP
	guardIP
	guardND
	guardNumCounters
	guardPass = guardNumCounters // an outcome that is not a drop
)

var _ pipeline.Stage = (*GuardStage)(nil)

// NewGuardStage returns a stage enforcing g.
func NewGuardStage(g *Guard) *GuardStage { return &GuardStage{guard: g} }

// Name implements pipeline.Stage.
func (*GuardStage) Name() string { return "peephole-guard" }

// Stats returns the counters.
func (s *GuardStage) Stats() GuardStats {
	return GuardStats{
		Checked:       s.c[guardChecked].Load(),
		DroppedSrcMAC: s.c[guardSrcMAC].Load(),
		DroppedARP:    s.c[guardARP].Load(),
		DroppedIP:     s.c[guardIP].Load(),
		DroppedND:     s.c[guardND].Load(),
	}
}

// Process implements pipeline.Stage. It loads the rule set once and
// publishes its counters once per batch.
func (s *GuardStage) Process(b *pipeline.Batch) {
	var n [guardNumCounters + 1]uint64
	snap := s.guard.snap.Load()
	if len(snap.guarded) == 0 {
		return
	}
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone || !snap.isGuarded(p.InPort) {
			continue
		}
		n[guardChecked]++
		r := guardCheck(p, snap)
		n[r]++
		if r != guardPass {
			p.Drop(pipeline.DropSpoofed)
		}
	}
	for r, v := range n[:guardNumCounters] {
		if v != 0 {
			s.c[r].Add(v)
		}
	}
}

// guardCheck returns guardPass or the counter of the rule p breaks. It
// rechecks offsets against the frame rather than trusting the parser's
// flags, and treats what it cannot read as a violation: a guarded port
// gets no benefit of the doubt.
func guardCheck(p *pipeline.Packet, s *guardSnap) int {
	d := p.Data
	if len(d) < pipeline.EthernetHeaderLen {
		return guardSrcMAC
	}
	port, vlan := p.InPort, p.VLAN
	src := pipeline.Ethernet(d).Src()
	if _, ok := s.macs[uint64(port)<<48|macWord(src)]; !ok {
		return guardSrcMAC
	}
	l3 := int(p.L3Off)
	switch {
	case p.EtherType == pipeline.EtherTypeARP:
		if l3 < pipeline.EthernetHeaderLen || l3 > len(d) || len(d)-l3 < pipeline.ARPLen {
			return guardARP
		}
		a := pipeline.ARP(d[l3 : l3+pipeline.ARPLen])
		sip := a.SenderIP()
		if sip == [4]byte{} || s.claimed4(port, vlan, sip, a.SenderMAC()) {
			return guardPass
		}
		return guardARP
	case p.Flags&pipeline.FlagIPv4 != 0:
		if l3 < pipeline.EthernetHeaderLen || l3 > len(d) || len(d)-l3 < pipeline.IPv4MinHeaderLen {
			return guardIP
		}
		sip := pipeline.IPv4(d[l3:]).Src()
		if sip == [4]byte{} || s.claimed4(port, vlan, sip, src) {
			return guardPass
		}
		return guardIP
	case p.Flags&pipeline.FlagIPv6 != 0:
		if l3 < pipeline.EthernetHeaderLen || l3 > len(d) || len(d)-l3 < pipeline.IPv6HeaderLen {
			return guardIP
		}
		sip := pipeline.IPv6(d[l3:]).Src()
		if sip != ([16]byte{}) && !s.claimed6(port, vlan, sip, src) {
			return guardIP
		}
		if p.Flags&pipeline.FlagL4 != 0 && p.L4Proto == pipeline.ProtoICMPv6 {
			return guardND6(p, s, sip)
		}
		return guardPass
	}
	// Anything else (other EtherTypes, or L3 the parser did not
	// recognize) carries no address to check: the MAC was enough.
	return guardPass
}

// guardND6 checks the link-layer addresses a Neighbor Discovery message
// announces: a Neighbor Advertisement's target must be claimed by the port
// (with the MAC of its target link-layer option, if any), and a Neighbor
// Solicitation's source link-layer option must be a MAC its (already
// checked) source is claimed with. Other ICMPv6 messages pass.
func guardND6(p *pipeline.Packet, s *guardSnap, src [16]byte) int {
	d := p.Data
	l4, end := int(p.L4Off), int(p.L3Off)+int(p.L3Len)
	if end > len(d) || l4 < pipeline.EthernetHeaderLen || l4+pipeline.ICMPHeaderLen > end {
		return guardND
	}
	icmp := d[l4:end]
	var addr [16]byte
	var llOpt byte
	switch icmp[0] {
	case pipeline.ICMPv6NeighborAdvert:
		if len(icmp) < ndMsgLen {
			return guardND
		}
		addr, llOpt = [16]byte(icmp[8:24]), ndOptTargetLL
	case pipeline.ICMPv6NeighborSolicit:
		if src == ([16]byte{}) {
			return guardPass // DAD: the source rule let it through, and it announces no MAC
		}
		if len(icmp) < ndMsgLen {
			return guardND
		}
		addr, llOpt = src, ndOptSourceLL
	default:
		return guardPass
	}
	claims, ok := s.ip6[guardKey6{addr: addr, port: p.InPort, vlan: p.VLAN}]
	if !ok {
		return guardND
	}
	for opts := icmp[ndMsgLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return guardND
		}
		if opts[0] == llOpt && (opts[1] != 1 || !slices.Contains(claims, pipeline.MAC(opts[2:8]))) {
			return guardND
		}
		opts = opts[int(opts[1])*8:]
	}
	return guardPass
}
