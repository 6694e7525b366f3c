package pipeline

import (
	"encoding/binary"
	"net/netip"
)

// ParkedPacket is a frame held while the switch resolves its next hop. The
// frame itself stays where the port put it (Addr); the worker that parked
// it owns it until Drain hands it back.
type ParkedPacket struct {
	Addr   uint64
	Len    uint32
	InPort uint16
	VLAN   uint16 // the segment it arrived in
	// Target is the next hop being resolved in NextVLAN.
	Target   netip.Addr
	NextVLAN uint16
	Since    uint32 // switch clock when parked
	asked    uint32 // when the last ARP/ND for Target went out
}

// Solicitation is an ARP request or neighbor solicitation the worker must
// send for a parked packet's next hop.
type Solicitation struct {
	VLAN   uint16
	Target netip.Addr
}

// ParkQueue is a worker's bounded queue of packets waiting for ARP/ND.
// Everything is fixed-size: a full queue refuses (the packet is then
// dropped as no_neighbor), so a host that never answers costs at most the
// queue's frames for ParkTimeout seconds.
type ParkQueue struct {
	pkts    []ParkedPacket
	asks    []Solicitation
	timeout uint32
}

// Park timing, in switch clock seconds.
const (
	// ParkTimeout is how long a packet waits for its next hop.
	ParkTimeout = 3
	// ParkRetry is the interval between solicitations for one next hop.
	ParkRetry = 1
)

// NewParkQueue returns a queue of at most n packets.
func NewParkQueue(n int) *ParkQueue {
	return &ParkQueue{pkts: make([]ParkedPacket, 0, n), asks: make([]Solicitation, 0, n), timeout: ParkTimeout}
}

// Len is the number of parked packets.
func (q *ParkQueue) Len() int { return len(q.pkts) }

// Cap is the most packets the queue holds.
func (q *ParkQueue) Cap() int { return cap(q.pkts) }

// Park holds p (unchanged, still in its frame) until target in vlan is
// resolved, and queues a solicitation unless one for the same target went
// out within ParkRetry. It reports false when the queue is full.
func (q *ParkQueue) Park(p *Packet, vlan uint16, target netip.Addr, now uint32) bool {
	if len(q.pkts) == cap(q.pkts) {
		return false
	}
	ask := true
	var asked uint32
	for i := range q.pkts {
		o := &q.pkts[i]
		if o.NextVLAN == vlan && o.Target == target && now-o.asked < ParkRetry {
			ask, asked = false, o.asked
			break
		}
	}
	// The frame outlives its batch here, and a tail (see Packet.Tail)
	// only lives as long as the batch.
	p.Materialize()
	if ask {
		asked = now
		q.asks = append(q.asks, Solicitation{VLAN: vlan, Target: target})
	}
	q.pkts = append(q.pkts, ParkedPacket{Addr: p.Addr, Len: uint32(len(p.Data)), InPort: p.InPort, VLAN: p.VLAN,
		Target: target, NextVLAN: vlan, Since: now, asked: asked})
	return true
}

// Solicitations returns the solicitations to send and empties the list.
// The slice is reused by the next Park.
func (q *ParkQueue) Solicitations() []Solicitation {
	a := q.asks
	q.asks = q.asks[:0]
	return a
}

// Drain hands back every packet whose next hop resolve now knows
// (resolved true: run it again) or that waited longer than ParkTimeout
// (resolved false: drop it as no_neighbor), keeping the rest in order, and
// queues a fresh solicitation for next hops still unanswered after
// ParkRetry.
func (q *ParkQueue) Drain(now uint32, resolve func(vlan uint16, ip netip.Addr) bool, out func(pp ParkedPacket, resolved bool)) {
	kept := q.pkts[:0]
	for _, pp := range q.pkts {
		switch {
		case resolve(pp.NextVLAN, pp.Target):
			out(pp, true)
		case now-pp.Since >= q.timeout:
			out(pp, false)
		default:
			if now-pp.asked >= ParkRetry {
				pp.asked = now
				dup := false
				for _, a := range q.asks {
					dup = dup || a.VLAN == pp.NextVLAN && a.Target == pp.Target
				}
				if !dup {
					q.asks = append(q.asks, Solicitation{VLAN: pp.NextVLAN, Target: pp.Target})
				}
			}
			kept = append(kept, pp)
		}
	}
	clear(q.pkts[len(kept):])
	q.pkts = kept
}

// Solicit writes into buf the frame that asks for s.Target on the router's
// interface in s.VLAN: a broadcast ARP request for IPv4, a neighbor
// solicitation to the solicited-node multicast group with a source
// link-layer address option for IPv6. The frame is untagged (the TX path
// tags it for the output port). It returns the frame length, or 0 when the
// router has no address of the target's family there or buf is too small.
func (r *Router) Solicit(buf []byte, s Solicitation) int {
	snap := r.snap.Load()
	src, ok := snap.ownAddr(s.VLAN, s.Target.Is4(), s.Target)
	if !ok {
		return 0
	}
	if s.Target.Is4() {
		const n = 14 + 28
		if len(buf) < 60 {
			return 0
		}
		clear(buf[:60]) // padded to the Ethernet minimum
		SetMACs(buf, r.mac, BroadcastMAC)
		binary.BigEndian.PutUint16(buf[12:], EtherTypeARP)
		a := ARP(buf[14:n])
		binary.BigEndian.PutUint16(a[0:], 1)
		binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
		a[4], a[5] = 6, 4
		a.SetOp(1)
		a.SetSenderMAC(r.mac)
		a.SetSenderIP(src.As4())
		a.SetTargetIP(s.Target.As4())
		return 60
	}
	const n = 14 + 40 + 32
	if len(buf) < n {
		return 0
	}
	clear(buf[:n])
	t := s.Target.As16()
	group := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]}
	dmac := MAC{0x33, 0x33, 0xff, t[13], t[14], t[15]}
	SetMACs(buf, r.mac, dmac)
	binary.BigEndian.PutUint16(buf[12:], EtherTypeIPv6)
	ip := buf[14:]
	binary.BigEndian.PutUint32(ip[0:], 6<<28)
	binary.BigEndian.PutUint16(ip[4:], 32)
	ip[6], ip[7] = ProtoICMPv6, 255
	s16 := src.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], group[:])
	icmp := ip[40:72]
	icmp[0] = 135
	copy(icmp[8:24], t[:])
	icmp[24], icmp[25] = 1, 1 // source link-layer address option, 8 bytes
	copy(icmp[26:32], r.mac[:])
	sum := PseudoHeaderSumIPv6(s16, group, ProtoICMPv6, 32)
	binary.BigEndian.PutUint16(icmp[2:], ^Checksum(icmp, sum))
	return n
}
