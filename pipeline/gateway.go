package pipeline

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
)

// FlowKey is the exact-match key of the flow cache: what the gateway steps
// may look at to decide. Two packets with equal keys (and equal TTL class,
// see FlowCacheable) get the same decision from the same configuration.
//
// IPv4 addresses sit in the first 4 bytes of Src and Dst, the rest zero.
// For TCP and UDP the ports are the L4 ports; for ICMP and ICMPv6
// echo, SrcPort is the identifier; DstPort is type<<8|code for every ICMP
// message. The key is comparable with ==.
type FlowKey struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	InPort           uint16
	VLAN             uint16
	Proto            uint8
	Family           uint8 // 4 or 6
	_                [2]byte
}

// HasPorts reports whether the key's ports are L4 ports (TCP and UDP
// first fragments); ACL port ranges match only such keys.
func (k *FlowKey) HasPorts() bool {
	return k.Proto == ProtoTCP || k.Proto == ProtoUDP
}

// Reverse returns the key of the reply direction as it would arrive on
// inPort in vlan.
func (k *FlowKey) Reverse(inPort, vlan uint16) FlowKey {
	r := *k
	r.Src, r.Dst = k.Dst, k.Src
	r.InPort, r.VLAN = inPort, vlan
	if k.HasPorts() {
		r.SrcPort, r.DstPort = k.DstPort, k.SrcPort
	}
	return r
}

// SrcAddr and DstAddr return the key's addresses.
func (k *FlowKey) SrcAddr() netip.Addr { return k.addr(&k.Src) }
func (k *FlowKey) DstAddr() netip.Addr { return k.addr(&k.Dst) }

func (k *FlowKey) addr(a *[16]byte) netip.Addr {
	if k.Family == 4 {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(*a)
}

func (k *FlowKey) String() string {
	return fmt.Sprintf("in_port=%d vlan=%d proto=%d %s:%d > %s:%d", k.InPort, k.VLAN, k.Proto,
		k.SrcAddr(), k.SrcPort, k.DstAddr(), k.DstPort)
}

// ExtractFlowKey fills k from a parsed IPv4 or IPv6 packet and reports
// whether it is one. Non-first fragments and packets whose L4 header the
// parser did not reach get zero ports.
func ExtractFlowKey(p *Packet, k *FlowKey) bool {
	*k = FlowKey{InPort: p.InPort, VLAN: p.VLAN, Proto: p.L4Proto}
	d := p.Data
	l3 := int(p.L3Off)
	switch {
	case p.Flags&FlagIPv4 != 0:
		k.Family = 4
		copy(k.Src[:4], d[l3+12:l3+16])
		copy(k.Dst[:4], d[l3+16:l3+20])
		k.Proto = d[l3+9]
	case p.Flags&FlagIPv6 != 0:
		k.Family = 6
		copy(k.Src[:], d[l3+8:l3+24])
		copy(k.Dst[:], d[l3+24:l3+40])
	default:
		return false
	}
	if p.Flags&FlagL4 == 0 {
		return true
	}
	l4 := int(p.L4Off)
	switch k.Proto {
	case ProtoTCP, ProtoUDP:
		k.SrcPort = binary.BigEndian.Uint16(d[l4:])
		k.DstPort = binary.BigEndian.Uint16(d[l4+2:])
	case ProtoICMP, ProtoICMPv6:
		typ := d[l4]
		k.DstPort = uint16(typ)<<8 | uint16(d[l4+1])
		if isEcho(k.Proto, typ) && len(d) >= l4+8 {
			k.SrcPort = binary.BigEndian.Uint16(d[l4+4:])
		}
	}
	return true
}

func isEcho(proto, typ uint8) bool {
	if proto == ProtoICMP {
		return typ == 8 || typ == 0
	}
	return typ == 128 || typ == 129
}

// Ops are the rewrites of a FlowAction, applied in one pass in this
// order: MACs, TTL.
type Ops uint8

const (
	// OpSetMACs sets the Ethernet source and destination addresses.
	OpSetMACs Ops = 1 << iota
	// OpDecTTL decrements the IPv4 TTL (with an incremental header
	// checksum update) or the IPv6 hop limit.
	OpDecTTL
)

// Dep is a piece of state a cached result was derived from, such as a
// connection-tracking entry or a NAT mapping: the entry is valid only
// while *Ver still holds Val. The owner of the state bumps Ver when it
// removes or replaces the state.
type Dep struct {
	Ver *atomic.Uint64
	Val uint64
}

// Valid reports whether the state is unchanged (a zero Dep always is).
func (d *Dep) Valid() bool { return d.Ver == nil || d.Ver.Load() == d.Val }

// MaxDeps is how many pieces of state one cached result may depend on.
const MaxDeps = 2

// FlowAction is the result the gateway steps synthesize for a flow: what
// every packet of it gets, applied in one pass by FlowAction.Apply.
type FlowAction struct {
	Verdict Verdict    // VerdictForward or VerdictDrop
	Reason  DropReason // for VerdictDrop
	OutPort uint16     // for VerdictForward
	OutVLAN uint16     // the segment the packet leaves in
	Ops     Ops
	SrcMAC  MAC
	DstMAC  MAC
	// Hits, when set, is a per-worker counter (an ACL rule's) that every
	// packet given this result bumps. One writer: the owning worker.
	Hits *atomic.Uint64
	// Touch, when set, is a last-used time (the switch clock, seconds)
	// that packets given this result keep fresh, such as the connection
	// entry that lets the flow's replies in.
	Touch *atomic.Uint32
	// Deps must all be Valid for a cached copy to be used.
	Deps [MaxDeps]Dep
}

// AddDep records that the result depends on state (ver, its value now). It
// reports false when there is no room; the flow must then not be cached.
func (a *FlowAction) AddDep(ver *atomic.Uint64) bool {
	for i := range a.Deps {
		if a.Deps[i].Ver == nil || a.Deps[i].Ver == ver {
			a.Deps[i] = Dep{Ver: ver, Val: ver.Load()}
			return true
		}
	}
	return false
}

// FlowCtx carries one packet through the gateway steps: its key, the
// result being synthesized, and whether that result may be cached.
type FlowCtx struct {
	Key FlowKey
	Act FlowAction
	// NoCache is set by a step whose decision depends on more than the
	// key (a flood, a parked packet, a generated ICMP error).
	NoCache bool
	// Now is the switch clock in seconds.
	Now uint32
	// Trace, when not nil, collects each step's decision for vswitchctl
	// trace. Steps must test it before formatting anything, so the
	// per-packet path never builds trace text.
	Trace *Trace
}

// Reset prepares f for a new packet.
func (f *FlowCtx) Reset(now uint32, tr *Trace) {
	*f = FlowCtx{Now: now, Trace: tr}
}

// GatewayStep is one stage of the gateway pipeline (route, ACL, NAT, ...).
// Step acts on p itself (rewrites it in place, sets its verdict when it
// decides) and records in f.Act what it did, so that the flow cache can
// replay the result on the flow's later packets without running the
// steps. It returns true to let the next step run, false when it decided
// the packet (dropped it, parked it, answered it). A step never allocates
// when f.Trace is nil.
type GatewayStep interface {
	Name() string
	Step(p *Packet, f *FlowCtx) bool
}

// Trace is what vswitchctl trace shows for one packet: every step's
// decision in order, then the cache's.
type Trace struct {
	Events []TraceEvent `json:"events"`
}

// TraceEvent is one step's decision.
type TraceEvent struct {
	Stage    string `json:"stage"`
	Decision string `json:"decision"`
	Detail   string `json:"detail,omitempty"`
}

// Add appends a decision; format and args make the detail.
func (t *Trace) Add(stage, decision, format string, args ...any) {
	t.Events = append(t.Events, TraceEvent{Stage: stage, Decision: decision, Detail: fmt.Sprintf(format, args...)})
}
