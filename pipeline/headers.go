package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// Typed header views. Each view is a byte slice that aliases the frame (no
// copy); accessors read it in place and setters write it in place. Views do
// no bounds checking of their own beyond Go's: they are meant to be taken
// from a Packet that Parse accepted, which has checked every length once
// (see the Packet accessors at the bottom of this file). Setters that change
// a covered field keep the header's own checksum correct incrementally
// (RFC 1624) so a rewrite never needs a full recomputation.

// Header sizes.
const (
	EthernetHeaderLen = 14
	VLANTagLen        = 4
	ARPLen            = 28 // Ethernet/IPv4 ARP
	IPv4MinHeaderLen  = 20
	IPv6HeaderLen     = 40
	UDPHeaderLen      = 8
	TCPMinHeaderLen   = 20
	ICMPHeaderLen     = 8 // type, code, checksum and the 4-byte rest of header
)

// EtherTypes the parser knows.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // 802.1Q
	EtherTypeQinQ uint16 = 0x88a8 // 802.1ad service tag
	EtherTypeIPv6 uint16 = 0x86dd
)

// IP protocol numbers (IPv4 protocol / IPv6 next header) the parser knows.
const (
	ProtoHopByHop uint8 = 0
	ProtoICMP     uint8 = 1
	ProtoTCP      uint8 = 6
	ProtoUDP      uint8 = 17
	ProtoRouting  uint8 = 43
	ProtoFragment uint8 = 44
	ProtoESP      uint8 = 50
	ProtoAH       uint8 = 51
	ProtoICMPv6   uint8 = 58
	ProtoNoNext   uint8 = 59
	ProtoDstOpts  uint8 = 60
)

// MAC is an Ethernet address. It is a value type so that it can be copied
// out of a frame and compared without allocating.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// String returns m as six colon-separated lower-case hex bytes. It
// allocates; keep it off the per-packet path.
func (m MAC) String() string {
	const hexDigits = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hexDigits[v>>4]
		b[3*i+1] = hexDigits[v&0xf]
	}
	return string(b[:])
}

// ErrBadMAC is returned by ParseMAC for anything but a 6-byte MAC address.
var ErrBadMAC = errors.New("bad MAC address")

// ParseMAC parses a 6-byte Ethernet address in any form net.ParseMAC accepts
// (aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff). Control path only.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("parse MAC %q: %w", s, ErrBadMAC)
	}
	return MAC(hw), nil
}

// Ethernet is a view of an Ethernet II header (at least 14 bytes).
type Ethernet []byte

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// SetDst stores the destination address.
func (e Ethernet) SetDst(m MAC) { copy(e[0:6], m[:]) }

// SetSrc stores the source address.
func (e Ethernet) SetSrc(m MAC) { copy(e[6:12], m[:]) }

// EtherType returns the outer ethertype (EtherTypeVLAN for a tagged frame;
// Packet.EtherType holds the one after the tag).
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:]) }

// SetEtherType stores the outer ethertype.
func (e Ethernet) SetEtherType(t uint16) { binary.BigEndian.PutUint16(e[12:], t) }

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARP is a view of an Ethernet/IPv4 ARP packet (28 bytes, RFC 826).
type ARP []byte

func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:]) }
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:]) }
func (a ARP) HardwareLen() uint8   { return a[4] }
func (a ARP) ProtocolLen() uint8   { return a[5] }
func (a ARP) Op() uint16           { return binary.BigEndian.Uint16(a[6:]) }
func (a ARP) SenderMAC() MAC       { return MAC(a[8:14]) }
func (a ARP) SenderIP() [4]byte    { return [4]byte(a[14:18]) }
func (a ARP) TargetMAC() MAC       { return MAC(a[18:24]) }
func (a ARP) TargetIP() [4]byte    { return [4]byte(a[24:28]) }

func (a ARP) SetOp(op uint16)        { binary.BigEndian.PutUint16(a[6:], op) }
func (a ARP) SetSenderMAC(m MAC)     { copy(a[8:14], m[:]) }
func (a ARP) SetSenderIP(ip [4]byte) { copy(a[14:18], ip[:]) }
func (a ARP) SetTargetMAC(m MAC)     { copy(a[18:24], m[:]) }
func (a ARP) SetTargetIP(ip [4]byte) { copy(a[24:28], ip[:]) }

// IPv4 is a view of an IPv4 header and, when taken from a Packet, its
// payload up to the total length (Ethernet padding excluded).
type IPv4 []byte

// IPv4 flag bits in the flags/fragment-offset word.
const (
	IPv4DontFragment  uint16 = 0x4000
	IPv4MoreFragments uint16 = 0x2000
	ipv4FragOffMask   uint16 = 0x1fff
)

func (ip IPv4) Version() uint8    { return ip[0] >> 4 }
func (ip IPv4) HeaderLen() int    { return int(ip[0]&0xf) * 4 }
func (ip IPv4) TOS() uint8        { return ip[1] }
func (ip IPv4) TotalLen() uint16  { return binary.BigEndian.Uint16(ip[2:]) }
func (ip IPv4) ID() uint16        { return binary.BigEndian.Uint16(ip[4:]) }
func (ip IPv4) TTL() uint8        { return ip[8] }
func (ip IPv4) Protocol() uint8   { return ip[9] }
func (ip IPv4) Checksum() uint16  { return binary.BigEndian.Uint16(ip[10:]) }
func (ip IPv4) Src() [4]byte      { return [4]byte(ip[12:16]) }
func (ip IPv4) Dst() [4]byte      { return [4]byte(ip[16:20]) }
func (ip IPv4) Options() []byte   { return ip[IPv4MinHeaderLen:ip.HeaderLen()] }
func (ip IPv4) Payload() []byte   { return ip[ip.HeaderLen():] }
func (ip IPv4) flagsFrag() uint16 { return binary.BigEndian.Uint16(ip[6:]) }

// DontFragment reports the DF bit.
func (ip IPv4) DontFragment() bool { return ip.flagsFrag()&IPv4DontFragment != 0 }

// MoreFragments reports the MF bit.
func (ip IPv4) MoreFragments() bool { return ip.flagsFrag()&IPv4MoreFragments != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (ip IPv4) FragmentOffset() uint16 { return (ip.flagsFrag() & ipv4FragOffMask) * 8 }

// SetChecksum stores the header checksum as given.
func (ip IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(ip[10:], c) }

// SetTTL stores the TTL and updates the header checksum.
func (ip IPv4) SetTTL(ttl uint8) {
	// TTL shares a 16-bit word with the protocol.
	old := binary.BigEndian.Uint16(ip[8:])
	ip[8] = ttl
	ip.SetChecksum(ChecksumUpdate16(ip.Checksum(), old, binary.BigEndian.Uint16(ip[8:])))
}

// SetTOS stores the TOS/DSCP byte and updates the header checksum.
func (ip IPv4) SetTOS(tos uint8) {
	old := binary.BigEndian.Uint16(ip[0:])
	ip[1] = tos
	ip.SetChecksum(ChecksumUpdate16(ip.Checksum(), old, binary.BigEndian.Uint16(ip[0:])))
}

// SetSrc stores the source address and updates the header checksum. It does
// not touch a TCP/UDP checksum; Packet.SetIPv4Src does both.
func (ip IPv4) SetSrc(a [4]byte) { ip.setAddr(12, a) }

// SetDst stores the destination address and updates the header checksum.
// It does not touch a TCP/UDP checksum; Packet.SetIPv4Dst does both.
func (ip IPv4) SetDst(a [4]byte) { ip.setAddr(16, a) }

func (ip IPv4) setAddr(off int, a [4]byte) {
	old := binary.BigEndian.Uint32(ip[off:])
	nw := binary.BigEndian.Uint32(a[:])
	copy(ip[off:off+4], a[:])
	ip.SetChecksum(ChecksumUpdate32(ip.Checksum(), old, nw))
}

// IPv6 is a view of the fixed IPv6 header and, when taken from a Packet, the
// extension headers and payload up to the payload length.
type IPv6 []byte

func (ip IPv6) Version() uint8      { return ip[0] >> 4 }
func (ip IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(ip[0:]) >> 4) }
func (ip IPv6) FlowLabel() uint32   { return binary.BigEndian.Uint32(ip[0:]) & 0xfffff }
func (ip IPv6) PayloadLen() uint16  { return binary.BigEndian.Uint16(ip[4:]) }
func (ip IPv6) NextHeader() uint8   { return ip[6] }
func (ip IPv6) HopLimit() uint8     { return ip[7] }
func (ip IPv6) Src() [16]byte       { return [16]byte(ip[8:24]) }
func (ip IPv6) Dst() [16]byte       { return [16]byte(ip[24:40]) }
func (ip IPv6) Payload() []byte     { return ip[IPv6HeaderLen:] }

// SetHopLimit stores the hop limit (IPv6 has no header checksum).
func (ip IPv6) SetHopLimit(h uint8) { ip[7] = h }

// SetSrc stores the source address. Upper-layer checksums cover it; use
// Packet.SetIPv6Src to keep them right.
func (ip IPv6) SetSrc(a [16]byte) { copy(ip[8:24], a[:]) }

// SetDst stores the destination address. Upper-layer checksums cover it;
// use Packet.SetIPv6Dst to keep them right.
func (ip IPv6) SetDst(a [16]byte) { copy(ip[24:40], a[:]) }

// UDP is a view of a UDP header and payload.
type UDP []byte

func (u UDP) SrcPort() uint16  { return binary.BigEndian.Uint16(u[0:]) }
func (u UDP) DstPort() uint16  { return binary.BigEndian.Uint16(u[2:]) }
func (u UDP) Length() uint16   { return binary.BigEndian.Uint16(u[4:]) }
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:]) }
func (u UDP) Payload() []byte  { return u[UDPHeaderLen:] }

// SetChecksum stores the checksum as given.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:], c) }

// SetSrcPort stores the source port and updates the checksum.
func (u UDP) SetSrcPort(p uint16) { u.setWord(0, p) }

// SetDstPort stores the destination port and updates the checksum.
func (u UDP) SetDstPort(p uint16) { u.setWord(2, p) }

func (u UDP) setWord(off int, v uint16) {
	old := binary.BigEndian.Uint16(u[off:])
	binary.BigEndian.PutUint16(u[off:], v)
	// Zero means the sender sent no checksum (IPv4), which must stay zero;
	// a computed zero goes on the wire as 0xFFFF (RFC 768).
	if c := u.Checksum(); c != 0 {
		if c = ChecksumUpdate16(c, old, v); c == 0 {
			c = 0xffff
		}
		u.SetChecksum(c)
	}
}

// TCP flag bits.
const (
	TCPFin uint8 = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

// TCP is a view of a TCP header and payload.
type TCP []byte

func (t TCP) SrcPort() uint16   { return binary.BigEndian.Uint16(t[0:]) }
func (t TCP) DstPort() uint16   { return binary.BigEndian.Uint16(t[2:]) }
func (t TCP) Seq() uint32       { return binary.BigEndian.Uint32(t[4:]) }
func (t TCP) Ack() uint32       { return binary.BigEndian.Uint32(t[8:]) }
func (t TCP) HeaderLen() int    { return int(t[12]>>4) * 4 }
func (t TCP) Flags() uint8      { return t[13] }
func (t TCP) Window() uint16    { return binary.BigEndian.Uint16(t[14:]) }
func (t TCP) Checksum() uint16  { return binary.BigEndian.Uint16(t[16:]) }
func (t TCP) UrgentPtr() uint16 { return binary.BigEndian.Uint16(t[18:]) }
func (t TCP) Options() []byte   { return t[TCPMinHeaderLen:t.HeaderLen()] }
func (t TCP) Payload() []byte   { return t[t.HeaderLen():] }

// SetChecksum stores the checksum as given.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[16:], c) }

// SetSrcPort stores the source port and updates the checksum.
func (t TCP) SetSrcPort(p uint16) { t.setWord(0, p) }

// SetDstPort stores the destination port and updates the checksum.
func (t TCP) SetDstPort(p uint16) { t.setWord(2, p) }

func (t TCP) setWord(off int, v uint16) {
	old := binary.BigEndian.Uint16(t[off:])
	binary.BigEndian.PutUint16(t[off:], v)
	t.SetChecksum(ChecksumUpdate16(t.Checksum(), old, v))
}

// ICMP types the switch answers or inspects.
const (
	ICMPv4EchoReply          uint8 = 0
	ICMPv4EchoRequest        uint8 = 8
	ICMPv6EchoRequest        uint8 = 128
	ICMPv6EchoReply          uint8 = 129
	ICMPv6RouterSolicitation uint8 = 133
	ICMPv6RouterAdvert       uint8 = 134
	ICMPv6NeighborSolicit    uint8 = 135
	ICMPv6NeighborAdvert     uint8 = 136
)

// ICMP is a view of an ICMPv4 or ICMPv6 message; both share the first 8
// bytes' layout.
type ICMP []byte

func (c ICMP) Type() uint8      { return c[0] }
func (c ICMP) Code() uint8      { return c[1] }
func (c ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(c[2:]) }

// Ident and Seq are the echo request/reply identifier and sequence number.
func (c ICMP) Ident() uint16 { return binary.BigEndian.Uint16(c[4:]) }
func (c ICMP) Seq() uint16   { return binary.BigEndian.Uint16(c[6:]) }

// Body returns everything after type, code and checksum.
func (c ICMP) Body() []byte { return c[4:] }

// SetChecksum stores the checksum as given.
func (c ICMP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(c[2:], v) }

// SetTypeCode stores type and code and updates the checksum, e.g. to turn
// an echo request into a reply in place.
func (c ICMP) SetTypeCode(typ, code uint8) {
	old := binary.BigEndian.Uint16(c[0:])
	c[0], c[1] = typ, code
	c.SetChecksum(ChecksumUpdate16(c.Checksum(), old, binary.BigEndian.Uint16(c[0:])))
}

// Views of a parsed packet. Each returns nil when the packet does not carry
// that header (check Flags or L4Proto first, or test for nil); the slice ends
// where the IP length says the datagram ends, so Ethernet padding is never
// part of a view.

// Ethernet returns the Ethernet header (without any VLAN tag).
func (p *Packet) Ethernet() Ethernet {
	if len(p.Data) < EthernetHeaderLen {
		return nil
	}
	return Ethernet(p.Data[:EthernetHeaderLen])
}

// ARP returns the ARP packet when FlagARP is set.
func (p *Packet) ARP() ARP {
	if p.Flags&FlagARP == 0 {
		return nil
	}
	return ARP(p.Data[p.L3Off : p.L3Off+ARPLen])
}

// IPv4 returns the IPv4 header and payload when FlagIPv4 is set.
func (p *Packet) IPv4() IPv4 {
	if p.Flags&FlagIPv4 == 0 {
		return nil
	}
	return IPv4(p.l3())
}

// IPv6 returns the IPv6 header, extension headers and payload when FlagIPv6
// is set.
func (p *Packet) IPv6() IPv6 {
	if p.Flags&FlagIPv6 == 0 {
		return nil
	}
	return IPv6(p.l3())
}

// UDP returns the UDP header and payload when a UDP header was parsed. The
// view ends where the UDP length says, which may be before the IP payload
// ends; in a first fragment it ends with the fragment.
func (p *Packet) UDP() UDP {
	if p.Flags&FlagL4 == 0 || p.L4Proto != ProtoUDP {
		return nil
	}
	u := UDP(p.l4())
	if n := int(u.Length()); n < len(u) {
		u = u[:n] // Parse checked n >= UDPHeaderLen
	}
	return u
}

// TCP returns the TCP header and payload when a TCP header was parsed.
func (p *Packet) TCP() TCP {
	if p.Flags&FlagL4 == 0 || p.L4Proto != ProtoTCP {
		return nil
	}
	return TCP(p.l4())
}

// ICMP returns the ICMPv4 or ICMPv6 message when one was parsed (L4Proto
// says which).
func (p *Packet) ICMP() ICMP {
	if p.Flags&FlagL4 == 0 || (p.L4Proto != ProtoICMP && p.L4Proto != ProtoICMPv6) {
		return nil
	}
	return ICMP(p.l4())
}

// L4Payload returns the bytes after the parsed TCP/UDP/ICMP header, or nil.
// For an ICMP message that is everything after the first 8 bytes.
func (p *Packet) L4Payload() []byte {
	if p.Flags&FlagL4 == 0 {
		return nil
	}
	l4 := p.l4()
	switch p.L4Proto {
	case ProtoTCP:
		return l4[TCP(l4).HeaderLen():]
	case ProtoUDP:
		return p.UDP()[UDPHeaderLen:]
	default:
		return l4[ICMPHeaderLen:]
	}
}

func (p *Packet) l3() []byte { return p.Data[p.L3Off : int(p.L3Off)+int(p.L3Len)] }
func (p *Packet) l4() []byte { return p.Data[p.L4Off : int(p.L3Off)+int(p.L3Len)] }

// SetIPv4Src rewrites the IPv4 source address (source NAT) and updates the
// IPv4 header checksum and the TCP/UDP checksum, whose pseudo-header covers
// the address. It reports false, changing nothing, if the packet is not IPv4.
func (p *Packet) SetIPv4Src(a [4]byte) bool { return p.setIPv4Addr(12, a) }

// SetIPv4Dst is SetIPv4Src for the destination address.
func (p *Packet) SetIPv4Dst(a [4]byte) bool { return p.setIPv4Addr(16, a) }

func (p *Packet) setIPv4Addr(off int, a [4]byte) bool {
	if p.Flags&FlagIPv4 == 0 {
		return false
	}
	ip := IPv4(p.l3())
	old := binary.BigEndian.Uint32(ip[off:])
	nw := binary.BigEndian.Uint32(a[:])
	ip.setAddr(off, a)
	// A non-first fragment has no L4 header (no FlagL4); the first one
	// carries the checksum of the whole datagram, which still changes.
	if p.Flags&FlagL4 != 0 {
		switch p.L4Proto {
		case ProtoTCP:
			t := TCP(p.l4())
			t.SetChecksum(ChecksumUpdate32(t.Checksum(), old, nw))
		case ProtoUDP:
			u := UDP(p.l4())
			if c := u.Checksum(); c != 0 {
				c = ChecksumUpdate32(c, old, nw)
				if c == 0 {
					c = 0xffff
				}
				u.SetChecksum(c)
			}
		}
	}
	return true
}

// SetIPv6Src rewrites the IPv6 source address and updates the TCP, UDP or
// ICMPv6 checksum, whose pseudo-header covers it. It reports false, changing
// nothing, if the packet is not IPv6.
func (p *Packet) SetIPv6Src(a [16]byte) bool { return p.setIPv6Addr(8, a) }

// SetIPv6Dst is SetIPv6Src for the destination address.
func (p *Packet) SetIPv6Dst(a [16]byte) bool { return p.setIPv6Addr(24, a) }

func (p *Packet) setIPv6Addr(off int, a [16]byte) bool {
	if p.Flags&FlagIPv6 == 0 {
		return false
	}
	ip := IPv6(p.l3())
	var old [16]byte
	copy(old[:], ip[off:off+16])
	copy(ip[off:off+16], a[:])
	if p.Flags&FlagL4 != 0 {
		var csumOff int
		switch p.L4Proto {
		case ProtoTCP:
			csumOff = 16
		case ProtoUDP:
			csumOff = 6
		case ProtoICMPv6:
			csumOff = 2
		default:
			return true
		}
		f := p.Data[int(p.L4Off)+csumOff:]
		c := ChecksumUpdateBytes(binary.BigEndian.Uint16(f), old[:], a[:])
		if c == 0 && p.L4Proto == ProtoUDP {
			c = 0xffff // zero is not a valid IPv6 UDP checksum
		}
		binary.BigEndian.PutUint16(f, c)
	}
	return true
}
