package pipeline

import "encoding/binary"

// maxIPv6ExtHeaders bounds the extension-header walk. Legitimate traffic
// carries two or three; the bound keeps a crafted chain from costing more
// than a few dozen instructions per packet.
const maxIPv6ExtHeaders = 8

// etherTypeQinQOld is the pre-standard 802.1ad tag some switches still send.
// It is refused like 0x88a8: forwarding it as an untagged frame would let a
// port smuggle an inner 802.1Q tag past VLAN isolation.
const etherTypeQinQOld uint16 = 0x9100

// Parse reads the headers of p.Data once and records what it found in
// Flags, VLAN, EtherType, L3Off, L3Len, L4Off and L4Proto, so that later
// stages can take header views without checking lengths again. It reads
// only; it neither copies nor allocates.
//
// It returns true when the frame is well formed as far as it was parsed.
// An ethertype or IP protocol the parser does not know is not an error: a
// switch must forward such frames, so Parse stops there with what it has
// (for an unknown ethertype L3Off points at the L2 payload and L3Len is
// zero; for an unknown upper layer L4Off points at it but FlagL4 is clear).
//
// It returns false, with p.Drop(reason) applied, when a header is malformed
// or runs past the frame. The parse fields are then partly filled and must
// not be used. Lengths are checked against what the IP header claims, which
// must fit in the frame; bytes past the IP datagram are Ethernet padding
// and allowed.
func (p *Packet) Parse() bool {
	p.Flags, p.VLAN, p.EtherType = 0, 0, 0
	p.L3Off, p.L4Off, p.L4Proto, p.L3Len = 0, 0, 0, 0

	d := p.Data
	if len(d) < EthernetHeaderLen {
		return p.fail(DropTruncated)
	}
	off := EthernetHeaderLen
	et := binary.BigEndian.Uint16(d[12:])
	switch et {
	case EtherTypeVLAN:
		if len(d) < EthernetHeaderLen+VLANTagLen {
			return p.fail(DropTruncated)
		}
		p.Flags |= FlagVLAN
		p.VLAN = binary.BigEndian.Uint16(d[14:]) & 0x0fff
		et = binary.BigEndian.Uint16(d[16:])
		off += VLANTagLen
		// One tag is all a port may send; a second one would be read by
		// whoever strips ours as a different VLAN.
		if et == EtherTypeVLAN || et == EtherTypeQinQ || et == etherTypeQinQOld {
			return p.fail(DropBadVLAN)
		}
	case EtherTypeQinQ, etherTypeQinQOld:
		return p.fail(DropBadVLAN)
	}
	p.EtherType = et
	p.L3Off = uint16(off)

	switch et {
	case EtherTypeIPv4:
		return p.parseIPv4(off)
	case EtherTypeIPv6:
		return p.parseIPv6(off)
	case EtherTypeARP:
		return p.parseARP(off)
	}
	return true
}

// fail drops the packet with reason r and returns false, so that parse
// errors read as one line.
func (p *Packet) fail(r DropReason) bool {
	p.Drop(r)
	return false
}

func (p *Packet) parseARP(off int) bool {
	d := p.Data
	if len(d)-off < ARPLen {
		return p.fail(DropBadARP)
	}
	a := ARP(d[off:])
	// The responders only speak Ethernet/IPv4 ARP; anything else is either
	// broken or not for an Ethernet switch to interpret.
	if a.HardwareType() != 1 || a.ProtocolType() != EtherTypeIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		return p.fail(DropBadARP)
	}
	p.Flags |= FlagARP
	p.L3Len = ARPLen
	return true
}

func (p *Packet) parseIPv4(off int) bool {
	d := p.Data
	rem := len(d) - off
	if rem < IPv4MinHeaderLen {
		return p.fail(DropTruncated)
	}
	ip := IPv4(d[off:])
	if ip.Version() != 4 {
		return p.fail(DropBadIPv4Header)
	}
	hl := ip.HeaderLen()
	if hl < IPv4MinHeaderLen {
		return p.fail(DropBadIPv4Header)
	}
	if hl > rem {
		return p.fail(DropTruncated)
	}
	tl := int(ip.TotalLen())
	if tl < hl || tl > rem {
		return p.fail(DropBadIPv4Len)
	}
	p.Flags |= FlagIPv4
	if hl > IPv4MinHeaderLen {
		p.Flags |= FlagIPOptions
	}
	p.L3Len = uint16(tl)
	p.L4Proto = ip.Protocol()

	if ff := ip.flagsFrag(); ff&(IPv4MoreFragments|ipv4FragOffMask) != 0 {
		p.Flags |= FlagFragment
		// Only the first fragment carries the L4 header; the rest start
		// in the middle of the payload.
		if ff&ipv4FragOffMask != 0 {
			return true
		}
	}
	return p.parseL4(off+hl, off+tl, p.L4Proto)
}

func (p *Packet) parseIPv6(off int) bool {
	d := p.Data
	rem := len(d) - off
	if rem < IPv6HeaderLen {
		return p.fail(DropTruncated)
	}
	ip := IPv6(d[off:])
	if ip.Version() != 6 {
		return p.fail(DropBadIPv6Header)
	}
	// The second test keeps L3Len in a uint16; no Ethernet frame is that
	// big, so such a length is a lie anyway.
	l3 := IPv6HeaderLen + int(ip.PayloadLen())
	if l3 > rem || l3 > 0xffff {
		return p.fail(DropBadIPv6Len)
	}
	p.Flags |= FlagIPv6
	p.L3Len = uint16(l3)
	end := off + l3

	nh := ip.NextHeader()
	pos := off + IPv6HeaderLen
	for i := 0; isIPv6Ext(nh); i++ {
		if i == maxIPv6ExtHeaders {
			return p.fail(DropBadIPv6Ext)
		}
		// RFC 8200 4.1: hop-by-hop options only directly after the fixed
		// header. Elsewhere it is an evasion trick.
		if nh == ProtoHopByHop && i != 0 {
			return p.fail(DropBadIPv6Ext)
		}
		// Every extension header is at least 8 bytes.
		if end-pos < 8 {
			return p.fail(DropBadIPv6Ext)
		}
		h := d[pos:end]
		var hlen int
		switch nh {
		case ProtoFragment:
			hlen = 8
			fo := binary.BigEndian.Uint16(h[2:])
			// Offset in the top 13 bits, M flag in the lowest bit. An
			// atomic fragment (offset 0, M clear) is a whole datagram.
			if fo&0xfff9 != 0 {
				p.Flags |= FlagFragment
			}
			if fo>>3 != 0 {
				p.Flags |= FlagIPv6Ext
				p.L4Proto = h[0]
				return true // no L4 header in a non-first fragment
			}
		case ProtoAH:
			hlen = (int(h[1]) + 2) * 4 // RFC 4302: in 4-byte units, minus 2
		default:
			hlen = (int(h[1]) + 1) * 8 // RFC 8200: in 8-byte units, minus 1
		}
		if hlen > end-pos {
			return p.fail(DropBadIPv6Ext)
		}
		p.Flags |= FlagIPv6Ext
		nh = h[0]
		pos += hlen
	}
	p.L4Proto = nh
	return p.parseL4(pos, end, nh)
}

// isIPv6Ext reports whether nh is an extension header Parse skips. ESP is
// not one: what follows it is encrypted.
func isIPv6Ext(nh uint8) bool {
	switch nh {
	case ProtoHopByHop, ProtoRouting, ProtoFragment, ProtoDstOpts, ProtoAH:
		return true
	}
	return false
}

// parseL4 checks the transport header at off in an IP payload that ends at
// end. Known headers must fit in the payload; unknown protocols are
// forwarded untouched.
func (p *Packet) parseL4(off, end int, proto uint8) bool {
	d := p.Data
	p.L4Off = uint16(off)
	avail := end - off
	switch {
	case proto == ProtoUDP:
		if avail < UDPHeaderLen {
			return p.fail(DropBadL4)
		}
		ul := int(UDP(d[off:]).Length())
		// A first fragment carries only part of the datagram the UDP
		// length describes; otherwise the length must fit the IP payload.
		if ul < UDPHeaderLen || (ul > avail && p.Flags&FlagFragment == 0) {
			return p.fail(DropBadL4)
		}
	case proto == ProtoTCP:
		// Also for a first fragment: a TCP header split across fragments
		// is the RFC 1858 tiny-fragment attack on port filters.
		if avail < TCPMinHeaderLen {
			return p.fail(DropBadL4)
		}
		doff := TCP(d[off:]).HeaderLen()
		if doff < TCPMinHeaderLen || doff > avail {
			return p.fail(DropBadL4)
		}
	case proto == ProtoICMP && p.Flags&FlagIPv4 != 0,
		proto == ProtoICMPv6 && p.Flags&FlagIPv6 != 0:
		if avail < ICMPHeaderLen {
			return p.fail(DropBadL4)
		}
	default:
		return true
	}
	p.Flags |= FlagL4
	return true
}
