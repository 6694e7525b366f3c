package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// Frame layout of the generated UDP/IPv4 frames (no VLAN, no IP options).
const (
	ethHdrLen  = 14
	ipv4HdrLen = 20
	udpHdrLen  = 8
	udpOff     = ethHdrLen + ipv4HdrLen // 34
	// HeaderLen is the length of the Ethernet + IPv4 + UDP headers.
	HeaderLen = udpOff + udpHdrLen // 42

	offUDPSrcPort = udpOff
	offUDPCsum    = udpOff + 6

	// MinFrameSize is the smallest Ethernet frame without FCS.
	MinFrameSize = 60
	// MaxFrameSize is the largest frame a 1500-byte MTU veth carries (L2, no FCS).
	MaxFrameSize = 1514
)

// ErrFrameSpec reports an unusable frame specification.
var ErrFrameSpec = errors.New("bad frame spec")

// FrameSpec describes the generator's UDP frame. Size is the L2 length
// without FCS, so 64 means 42 bytes of headers and 22 bytes of payload.
// With Payload set, the UDP payload is Payload and Size is derived from
// it (see FrameSize).
type FrameSpec struct {
	Size     int
	Payload  []byte
	SrcMAC   net.HardwareAddr
	DstMAC   net.HardwareAddr
	SrcIP    net.IP
	DstIP    net.IP
	SrcPort  uint16 // first source port; with N flows ports SrcPort..SrcPort+N-1
	DstPort  uint16
	Flows    int
	TTL      uint8
	Checksum bool // false leaves the UDP checksum 0 (legal for IPv4)
}

// udpLen is the UDP length (header and payload) of the frame.
func (s *FrameSpec) udpLen() int {
	if s.Payload != nil {
		return udpHdrLen + len(s.Payload)
	}
	return s.Size - udpOff
}

// FrameSize is the frame's L2 length: Size, or with Payload the headers
// and payload padded with zeros to MinFrameSize (the padding is outside
// the IP datagram).
func (s *FrameSpec) FrameSize() int {
	if s.Payload != nil {
		return max(MinFrameSize, udpOff+s.udpLen())
	}
	return s.Size
}

// Validate checks sizes, addresses and the flow range.
func (s *FrameSpec) Validate() error {
	switch {
	case s.Payload != nil && s.Size != 0:
		return fmt.Errorf("%w: give a size or a payload, not both", ErrFrameSpec)
	case s.FrameSize() < MinFrameSize || s.FrameSize() > MaxFrameSize:
		return fmt.Errorf("%w: size %d is not in %d..%d", ErrFrameSpec, s.FrameSize(), MinFrameSize, MaxFrameSize)
	case len(s.SrcMAC) != 6 || len(s.DstMAC) != 6:
		return fmt.Errorf("%w: MACs must be 6 bytes", ErrFrameSpec)
	case s.SrcIP.To4() == nil || s.DstIP.To4() == nil:
		return fmt.Errorf("%w: addresses must be IPv4", ErrFrameSpec)
	case s.Flows < 1 || int(s.SrcPort)+s.Flows-1 > 0xffff:
		return fmt.Errorf("%w: flows %d from port %d overflow the port range", ErrFrameSpec, s.Flows, s.SrcPort)
	}
	return nil
}

// BuildUDPFrame returns the template frame: the first flow's packet, with a
// valid IPv4 header checksum and (if Checksum) a valid UDP checksum.
func BuildUDPFrame(s FrameSpec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	f := make([]byte, s.FrameSize())
	udpLen := s.udpLen()
	copy(f[0:6], s.DstMAC)
	copy(f[6:12], s.SrcMAC)
	binary.BigEndian.PutUint16(f[12:14], 0x0800)

	ip := f[ethHdrLen:udpOff]
	ip[0] = 0x45 // version 4, IHL 5
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HdrLen+udpLen))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF: never fragmented on the way
	ip[8] = ttl
	ip[9] = 17 // UDP
	copy(ip[12:16], s.SrcIP.To4())
	copy(ip[16:20], s.DstIP.To4())
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum16(ip)))

	udp := f[udpOff:]
	binary.BigEndian.PutUint16(udp[0:2], s.SrcPort)
	binary.BigEndian.PutUint16(udp[2:4], s.DstPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	if s.Payload != nil {
		copy(f[HeaderLen:], s.Payload)
	} else {
		// A recognisable payload, so a capture shows whose frames these are.
		for i := HeaderLen; i < len(f); i++ {
			f[i] = byte(i)
		}
	}
	if s.Checksum {
		binary.BigEndian.PutUint16(f[offUDPCsum:], UDPChecksumForPort(UDPPartialSum(f), s.SrcPort))
	}
	return f, nil
}

// UDPPartialSum is the folded one's-complement sum of the UDP pseudo header,
// header and payload of frame f, leaving out the source port and the checksum
// field. The generator program adds the per-packet source port to it, so it
// can write a correct checksum without reading the frame (live frames keep
// stale contents across page-pool recycling, so the frame is no reliable base).
func UDPPartialSum(f []byte) uint16 {
	udpLen := int(binary.BigEndian.Uint16(f[udpOff+4:])) // padding is not UDP
	var s uint32
	s += sum16(f[ethHdrLen+12 : ethHdrLen+20]) // source and destination address
	s += 17                                    // zero byte + protocol
	s += uint32(udpLen)
	s += uint32(binary.BigEndian.Uint16(f[udpOff+2:])) // destination port
	s += uint32(binary.BigEndian.Uint16(f[udpOff+4:])) // length
	s += sum16(f[HeaderLen : udpOff+udpLen])
	return fold(s)
}

// UDPChecksumForPort is the UDP checksum of a frame with partial sum partial
// and source port port. It mirrors the arithmetic of the generator program.
func UDPChecksumForPort(partial, port uint16) uint16 {
	c := ^fold(uint32(partial) + uint32(port))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	return c
}

// SetSrcPort rewrites the source port of frame f and, when the frame carries
// a UDP checksum, the checksum (as the generator program does per packet).
func SetSrcPort(f []byte, partial, port uint16) {
	binary.BigEndian.PutUint16(f[offUDPSrcPort:], port)
	if binary.BigEndian.Uint16(f[offUDPCsum:]) != 0 {
		binary.BigEndian.PutUint16(f[offUDPCsum:], UDPChecksumForPort(partial, port))
	}
}

// sum16 adds b as big-endian 16-bit words (an odd tail byte is the high byte).
func sum16(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold reduces a 32-bit one's-complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
