package pipeline

import (
	"encoding/binary"
	"math/bits"
)

// Internet checksum (RFC 1071) helpers.
//
// Two kinds of value appear here and the names keep them apart:
//   - a "sum" is the folded 16-bit ones' complement sum of some bytes, not
//     inverted. Sums compose: Checksum(b, Checksum(a, 0)) is the sum of a||b
//     when a has even length.
//   - a "checksum" is what goes on the wire: the inverted sum.
//
// None of these functions allocate.

// Checksum returns the ones' complement sum of b added to initial, folded to
// 16 bits and not inverted. b is read as big-endian 16-bit words; an odd last
// byte is padded with a zero byte, as RFC 1071 says.
func Checksum(b []byte, initial uint16) uint16 {
	return fold64(sum64(b, uint64(initial)))
}

// sum64 adds b as big-endian 16-bit words into acc without folding. The
// ones' complement sum does not care about word size as long as carries wrap
// around, so reading 8 bytes at a time and adding with carry gives the same
// result as 2 bytes at a time, four times faster.
func sum64(b []byte, acc uint64) uint64 {
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	// The end-around carry of the 64-bit additions.
	acc, carry = bits.Add64(acc, carry, 0)
	acc += carry
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		acc += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		acc += carry
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, 0)
		acc += carry
	}
	return acc
}

// fold64 folds a 64-bit ones' complement accumulator to 16 bits with
// end-around carries.
func fold64(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff) // at most 33 bits
	s = (s >> 32) + (s & 0xffffffff) // at most 32 bits
	s = (s >> 16) + (s & 0xffff)     // at most 17 bits
	s = (s >> 16) + (s & 0xffff)     // 16 bits
	return uint16(s)
}

// ChecksumCombine returns the ones' complement sum of two sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderSumIPv4 returns the sum of the IPv4 pseudo-header (RFC 768,
// RFC 793) that TCP and UDP checksums cover. length is the L4 length (header
// plus payload).
func PseudoHeaderSumIPv4(src, dst [4]byte, proto uint8, length uint16) uint16 {
	s := uint64(binary.BigEndian.Uint32(src[:])) +
		uint64(binary.BigEndian.Uint32(dst[:])) +
		uint64(proto) + uint64(length)
	return fold64(s)
}

// PseudoHeaderSumIPv6 returns the sum of the IPv6 pseudo-header (RFC 8200
// section 8.1) that TCP, UDP and ICMPv6 checksums cover. length is the
// upper-layer length (header plus payload).
func PseudoHeaderSumIPv6(src, dst [16]byte, proto uint8, length uint32) uint16 {
	s := sum64(src[:], 0)
	s = sum64(dst[:], s)
	var c uint64
	s, c = bits.Add64(s, uint64(proto)+uint64(length), 0)
	return fold64(s + c)
}

// ChecksumUpdate16 returns the checksum csum (as stored in a header) after
// one 16-bit word of the covered data changed from old to new, per RFC 1624
// equation 3: HC' = ~(~HC + ~m + m'). Equation 3 is used because the older
// RFC 1141 form gets the 0x0000/0xFFFF case wrong. The result equals a
// full recomputation unless every covered byte is zero, which no header
// with a version field or pseudo-header ever is.
func ChecksumUpdate16(csum, old, new uint16) uint16 {
	s := uint32(^csum) + uint32(^old) + uint32(new)
	s = (s >> 16) + (s & 0xffff)
	s += s >> 16
	return ^uint16(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit field (two words), such
// as an IPv4 address.
func ChecksumUpdate32(csum uint16, old, new uint32) uint16 {
	s := uint64(^csum) +
		uint64(^uint16(old>>16)) + uint64(^uint16(old)) +
		uint64(new>>16) + uint64(new&0xffff)
	return ^fold64(s)
}

// ChecksumUpdateBytes is ChecksumUpdate16 for a run of bytes that changed
// from old to new, such as a 4- or 16-byte address. old and new must have
// the same even length and sit at an even offset of the covered data.
func ChecksumUpdateBytes(csum uint16, old, new []byte) uint16 {
	s := uint64(^csum)
	n := min(len(old), len(new)) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint64(^binary.BigEndian.Uint16(old[i:])) + uint64(binary.BigEndian.Uint16(new[i:]))
	}
	return ^fold64(s)
}

// CalculateChecksum returns the header checksum the IPv4 header should carry:
// the inverted sum of the header with the checksum field counted as zero.
func (ip IPv4) CalculateChecksum() uint16 {
	hl := ip.HeaderLen()
	s := sum64(ip[:10], 0)
	s = sum64(ip[12:hl], s)
	return ^fold64(s)
}

// UpdateChecksum recomputes and stores the header checksum from scratch. Use
// it after several changes; single-field setters update it incrementally.
func (ip IPv4) UpdateChecksum() {
	ip.SetChecksum(ip.CalculateChecksum())
}

// IsChecksumValid reports whether the header checksum is correct: the sum of
// the whole header, checksum included, is 0xFFFF.
func (ip IPv4) IsChecksumValid() bool {
	return Checksum(ip[:ip.HeaderLen()], 0) == 0xffff
}

// l4Sum returns the sum the L4 checksum of the packet covers: the
// pseudo-header (TCP, UDP, ICMPv6) plus the L4 header and payload, with the
// checksum field left out. It also returns the checksum field's offset in
// the L4 header. ok is false when the packet has no L4 header whose
// checksum this frame can check: no FlagL4, an unknown protocol, or an IP
// fragment (its checksum covers bytes other frames carry). The IPv6
// pseudo-header uses the header's destination; with a routing header still
// to be processed the sender used the final one, which a switch has no need
// to find, so such checksums read as invalid.
func (p *Packet) l4Sum() (sum uint16, csumOff int, ok bool) {
	if p.Flags&FlagL4 == 0 || p.Flags&FlagFragment != 0 {
		return 0, 0, false
	}
	p.Materialize() // the sum covers the payload
	switch p.L4Proto {
	case ProtoTCP:
		csumOff = 16
	case ProtoUDP:
		csumOff = 6
	case ProtoICMP, ProtoICMPv6:
		csumOff = 2
	default:
		return 0, 0, false
	}
	l4 := p.l4()
	if p.L4Proto == ProtoUDP {
		l4 = p.UDP() // the checksum covers the UDP length, not the IP payload
	}
	var initial uint64
	switch {
	case p.Flags&FlagIPv4 != 0:
		if p.L4Proto != ProtoICMP { // ICMPv4 has no pseudo-header
			ip := IPv4(p.Data[p.L3Off:])
			initial = uint64(PseudoHeaderSumIPv4(ip.Src(), ip.Dst(), p.L4Proto, uint16(len(l4))))
		}
	case p.Flags&FlagIPv6 != 0:
		ip := IPv6(p.Data[p.L3Off:])
		initial = uint64(PseudoHeaderSumIPv6(ip.Src(), ip.Dst(), p.L4Proto, uint32(len(l4))))
	}
	// csumOff is even, so the two halves compose into one sum.
	s := sum64(l4[:csumOff], initial)
	s = sum64(l4[csumOff+2:], s)
	return fold64(s), csumOff, true
}

// ComputeL4Checksum returns the checksum the parsed packet's TCP, UDP,
// ICMP or ICMPv6 header should carry. A computed UDP checksum of zero is
// returned as 0xFFFF, because zero on the wire means "no checksum" (RFC
// 768). ok is false when the packet has no such L4 header or is an IP
// fragment.
func (p *Packet) ComputeL4Checksum() (csum uint16, ok bool) {
	s, _, ok := p.l4Sum()
	if !ok {
		return 0, false
	}
	return p.finishL4(s), true
}

func (p *Packet) finishL4(sum uint16) uint16 {
	csum := ^sum
	if csum == 0 && p.L4Proto == ProtoUDP {
		csum = 0xffff
	}
	return csum
}

// SetL4Checksum computes the L4 checksum and stores it in the frame. It
// reports false, and changes nothing, when there is no L4 header to
// checksum (see ComputeL4Checksum).
func (p *Packet) SetL4Checksum() bool {
	s, off, ok := p.l4Sum()
	if !ok {
		return false
	}
	binary.BigEndian.PutUint16(p.Data[int(p.L4Off)+off:], p.finishL4(s))
	return true
}

// L4ChecksumValid reports whether the L4 checksum in the frame is correct:
// the sum over everything it covers, itself included, is 0xFFFF. An IPv4
// UDP checksum of zero means the sender did not compute one and counts as
// valid. It reports false when there is no L4 header to check.
func (p *Packet) L4ChecksumValid() bool {
	s, off, ok := p.l4Sum()
	if !ok {
		return false
	}
	field := binary.BigEndian.Uint16(p.Data[int(p.L4Off)+off:])
	if field == 0 && p.L4Proto == ProtoUDP && p.Flags&FlagIPv4 != 0 {
		return true
	}
	return ChecksumCombine(s, field) == 0xffff
}
