package pipeline

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Golden frames for the parser, checksum and header tests, built with
// gopacket so that the expected layout and checksums come from an
// independent implementation.

var (
	macA = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	ip4A = net.IP{10, 0, 0, 1}
	ip4B = net.IP{10, 0, 0, 2}
	ip6A = net.ParseIP("2001:db8::1")
	ip6B = net.ParseIP("2001:db8::2")
)

// rawLayer serializes fixed bytes, for headers gopacket cannot write (IPv6
// routing, fragment and AH headers) and for hand-made malformed ones.
type rawLayer []byte

func (r rawLayer) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	bs, err := b.PrependBytes(len(r))
	if err != nil {
		return err
	}
	copy(bs, r)
	return nil
}

func (r rawLayer) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// serialize builds a frame with fixed lengths and computed checksums.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: t}
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: ip4A, DstIP: ip4B}
}

func ipv6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: ip6A, DstIP: ip6B}
}

func udp(net gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: 40000, DstPort: 53}
	if err := u.SetNetworkLayerForChecksum(net); err != nil {
		panic(err)
	}
	return u
}

func tcp(net gopacket.NetworkLayer) *layers.TCP {
	t := &layers.TCP{SrcPort: 40001, DstPort: 443, Seq: 1000, Ack: 2000, ACK: true, PSH: true, Window: 65535,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
	if err := t.SetNetworkLayerForChecksum(net); err != nil {
		panic(err)
	}
	return t
}

func payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// ipv6Opts is a hop-by-hop or destination options header of 8 bytes: a
// PadN option filling the 6 bytes after next header and length.
func ipv6Opts() []*layers.IPv6HopByHopOption {
	return []*layers.IPv6HopByHopOption{{OptionType: 1, OptionData: []byte{0, 0, 0, 0}}}
}

func hopByHop(nh layers.IPProtocol) *layers.IPv6HopByHop {
	h := &layers.IPv6HopByHop{Options: ipv6Opts()}
	h.NextHeader = nh
	return h
}

func dstOpts(nh layers.IPProtocol) *layers.IPv6Destination {
	d := &layers.IPv6Destination{}
	d.NextHeader = nh
	for _, o := range ipv6Opts() {
		d.Options = append(d.Options, (*layers.IPv6DestinationOption)(o))
	}
	return d
}

// fragHdr is an IPv6 fragment header with the offset in 8-byte units.
func fragHdr(nh layers.IPProtocol, offset uint16, more bool) rawLayer {
	b := make([]byte, 8)
	b[0] = byte(nh)
	fo := offset << 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[2:], fo)
	binary.BigEndian.PutUint32(b[4:], 0xcafe)
	return b
}

// routingHdr is a 24-byte type-0-style routing header (one address).
func routingHdr(nh layers.IPProtocol) rawLayer {
	b := make([]byte, 24)
	b[0], b[1], b[2], b[3] = byte(nh), 2, 0, 0
	return b
}

// ahHdr is a 24-byte AH header (12 bytes fixed + 12 bytes ICV).
func ahHdr(nh layers.IPProtocol) rawLayer {
	b := make([]byte, 24)
	b[0], b[1] = byte(nh), 4 // (4+2)*4 = 24
	return b
}

// golden is one well-formed frame and what Parse must find in it.
type golden struct {
	name  string
	frame []byte
	flags uint16
	vlan  uint16
	et    uint16
	l3off uint16
	l4off uint16
	proto uint8
	l3len uint16 // 0: everything after L3Off up to the end of the IP datagram as gopacket built it
}

// goldens returns the well-formed frames, fresh on every call so that
// tests may modify them.
func goldens(tb testing.TB) []golden {
	tb.Helper()
	var gs []golden
	add := func(g golden) { gs = append(gs, g) }

	{
		ip := ipv4(layers.IPProtocolUDP)
		add(golden{name: "ipv4_udp", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(18)),
			flags: FlagIPv4 | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 17, l3len: 20 + 8 + 18})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		add(golden{name: "ipv4_udp_padded", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(2)),
			flags: FlagIPv4 | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 17, l3len: 30})
	}
	{
		ip := ipv4(layers.IPProtocolTCP)
		add(golden{name: "ipv4_tcp", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, tcp(ip), payload(100)),
			flags: FlagIPv4 | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 6, l3len: 20 + 24 + 100})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		add(golden{name: "vlan_ipv4_udp", frame: serialize(tb, eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 5, Type: layers.EthernetTypeIPv4}, ip, udp(ip), payload(40)),
			flags: FlagVLAN | FlagIPv4 | FlagL4, vlan: 100, et: 0x0800, l3off: 18, l4off: 38, proto: 17, l3len: 68})
	}
	{
		add(golden{name: "arp_request", frame: serialize(tb, eth(layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: ip4A,
			DstHwAddress: make([]byte, 6), DstProtAddress: ip4B}),
			flags: FlagARP, et: 0x0806, l3off: 14, l3len: 28})
	}
	{
		add(golden{name: "vlan_arp", frame: serialize(tb, eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 4094, Type: layers.EthernetTypeARP}, &layers.ARP{
				AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPReply, SourceHwAddress: macA, SourceProtAddress: ip4A,
				DstHwAddress: macB, DstProtAddress: ip4B}),
			flags: FlagVLAN | FlagARP, vlan: 4094, et: 0x0806, l3off: 18, l3len: 28})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
		add(golden{name: "ipv4_options_udp", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(10)),
			flags: FlagIPv4 | FlagIPOptions | FlagL4, et: 0x0800, l3off: 14, l4off: 38, proto: 17, l3len: 24 + 8 + 10})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		ip.Flags = layers.IPv4MoreFragments
		add(golden{name: "ipv4_first_fragment", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(64)),
			flags: FlagIPv4 | FlagFragment | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 17, l3len: 20 + 8 + 64})
	}
	{
		// The UDP length of a first fragment covers the whole datagram.
		ip := ipv4(layers.IPProtocolUDP)
		ip.Flags = layers.IPv4MoreFragments
		f := serialize(tb, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(64))
		binary.BigEndian.PutUint16(f[34+4:], 3000)
		add(golden{name: "ipv4_first_fragment_long_udp", frame: f,
			flags: FlagIPv4 | FlagFragment | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 17, l3len: 20 + 8 + 64})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		ip.FragOffset = 9 // 72 bytes in
		add(golden{name: "ipv4_later_fragment", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, payload(40)),
			flags: FlagIPv4 | FlagFragment, et: 0x0800, l3off: 14, proto: 17, l3len: 60})
	}
	{
		ip := ipv4(layers.IPProtocolUDP)
		ip.Flags = layers.IPv4MoreFragments
		ip.FragOffset = 9
		add(golden{name: "ipv4_middle_fragment", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, payload(40)),
			flags: FlagIPv4 | FlagFragment, et: 0x0800, l3off: 14, proto: 17, l3len: 60})
	}
	{
		ip := ipv4(layers.IPProtocolICMPv4)
		add(golden{name: "ipv4_icmp_echo", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip,
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}, payload(56)),
			flags: FlagIPv4 | FlagL4, et: 0x0800, l3off: 14, l4off: 34, proto: 1, l3len: 20 + 8 + 56})
	}
	{
		ip := ipv4(47) // GRE: forwarded, not interpreted
		add(golden{name: "ipv4_gre", frame: serialize(tb, eth(layers.EthernetTypeIPv4), ip, payload(30)),
			flags: FlagIPv4, et: 0x0800, l3off: 14, l4off: 34, proto: 47, l3len: 50})
	}
	{
		ip := ipv6(layers.IPProtocolUDP)
		add(golden{name: "ipv6_udp", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip, udp(ip), payload(20)),
			flags: FlagIPv6 | FlagL4, et: 0x86dd, l3off: 14, l4off: 54, proto: 17, l3len: 40 + 8 + 20})
	}
	{
		ip := ipv6(layers.IPProtocolTCP)
		add(golden{name: "ipv6_tcp", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip, tcp(ip), payload(200)),
			flags: FlagIPv6 | FlagL4, et: 0x86dd, l3off: 14, l4off: 54, proto: 6, l3len: 40 + 24 + 200})
	}
	{
		ip := ipv6(layers.IPProtocolIPv6HopByHop)
		u := udp(ip)
		add(golden{name: "ipv6_ext_chain_udp", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip,
			hopByHop(layers.IPProtocolIPv6Destination), dstOpts(layers.IPProtocolIPv6Routing),
			routingHdr(layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolIPv6Destination, 0, false),
			dstOpts(layers.IPProtocolUDP), u, payload(20)),
			flags: FlagIPv6 | FlagIPv6Ext | FlagL4, et: 0x86dd, l3off: 14, l4off: 54 + 8 + 8 + 24 + 8 + 8, proto: 17,
			l3len: 40 + 56 + 8 + 20})
	}
	{
		ip := ipv6(layers.IPProtocolIPv6HopByHop)
		u := udp(ip)
		add(golden{name: "ipv6_first_fragment_udp", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip,
			hopByHop(layers.IPProtocolIPv6Destination), dstOpts(layers.IPProtocolIPv6Fragment),
			fragHdr(layers.IPProtocolUDP, 0, true), u, payload(32)),
			flags: FlagIPv6 | FlagIPv6Ext | FlagFragment | FlagL4, et: 0x86dd, l3off: 14, l4off: 54 + 24, proto: 17,
			l3len: 40 + 24 + 8 + 32})
	}
	{
		ip := ipv6(layers.IPProtocolIPv6HopByHop)
		add(golden{name: "ipv6_later_fragment", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip,
			hopByHop(layers.IPProtocolIPv6Fragment), fragHdr(layers.IPProtocolUDP, 5, false), payload(32)),
			flags: FlagIPv6 | FlagIPv6Ext | FlagFragment, et: 0x86dd, l3off: 14, proto: 17, l3len: 40 + 16 + 32})
	}
	{
		ip := ipv6(layers.IPProtocolAH)
		t := tcp(ip)
		add(golden{name: "ipv6_ah_tcp", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip, ahHdr(layers.IPProtocolTCP), t, payload(10)),
			flags: FlagIPv6 | FlagIPv6Ext | FlagL4, et: 0x86dd, l3off: 14, l4off: 54 + 24, proto: 6, l3len: 40 + 24 + 24 + 10})
	}
	{
		ip := ipv6(layers.IPProtocolICMPv6)
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
		if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		add(golden{name: "ipv6_icmpv6_echo", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip, ic,
			&layers.ICMPv6Echo{Identifier: 9, SeqNumber: 3}, payload(32)),
			flags: FlagIPv6 | FlagL4, et: 0x86dd, l3off: 14, l4off: 54, proto: 58, l3len: 40 + 8 + 32})
	}
	{
		ip := ipv6(layers.IPProtocolICMPv6)
		ip.DstIP = net.ParseIP("ff02::1:ff00:2")
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
		if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		add(golden{name: "vlan_ipv6_neighbor_solicit", frame: serialize(tb, eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv6}, ip, ic,
			&layers.ICMPv6NeighborSolicitation{TargetAddress: ip6B, Options: []layers.ICMPv6Option{
				{Type: layers.ICMPv6OptSourceAddress, Data: macA}}}),
			flags: FlagVLAN | FlagIPv6 | FlagL4, vlan: 7, et: 0x86dd, l3off: 18, l4off: 58, proto: 58, l3len: 40 + 4 + 20 + 8})
	}
	{
		ip := ipv6(layers.IPProtocolNoNextHeader)
		add(golden{name: "ipv6_no_next_header", frame: serialize(tb, eth(layers.EthernetTypeIPv6), ip),
			flags: FlagIPv6, et: 0x86dd, l3off: 14, l4off: 54, proto: 59, l3len: 40})
	}
	{
		add(golden{name: "unknown_ethertype_lldp", frame: serialize(tb, eth(0x88cc), payload(40)),
			et: 0x88cc, l3off: 14})
	}
	{
		add(golden{name: "vlan_unknown_ethertype", frame: serialize(tb, eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 42, Type: 0x88b5}, payload(50)),
			flags: FlagVLAN, vlan: 42, et: 0x88b5, l3off: 18})
	}
	return gs
}
