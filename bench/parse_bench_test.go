package bench

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vswitch/vswitch/pipeline"
)

// Parser benchmarks from outside package pipeline, the way a worker calls
// it. Each must report 0 allocs/op.

var (
	benchMACA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	benchMACB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func buildFrame(b *testing.B, ls ...gopacket.SerializableLayer) []byte {
	b.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		b.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func ether(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: benchMACA, DstMAC: benchMACB, EthernetType: t}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
}

func ip6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
}

func udpOver(nl gopacket.NetworkLayer) *layers.UDP {
	u := &layers.UDP{SrcPort: 40000, DstPort: 53}
	_ = u.SetNetworkLayerForChecksum(nl)
	return u
}

// rawExt writes fixed bytes, for the IPv6 fragment header gopacket cannot
// serialize.
type rawExt []byte

func (r rawExt) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	bs, err := b.PrependBytes(len(r))
	copy(bs, r)
	return err
}

func (r rawExt) LayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

func parseLoop(b *testing.B, frame []byte) {
	b.Helper()
	p := &pipeline.Packet{Data: frame}
	if !p.Parse() {
		b.Fatalf("bench frame does not parse: %v", p.Reason)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		p.Parse()
	}
}

func BenchmarkParseUDP4_64B(b *testing.B) {
	ip := ip4(layers.IPProtocolUDP)
	f := buildFrame(b, ether(layers.EthernetTypeIPv4), ip, udpOver(ip), gopacket.Payload(make([]byte, 64-14-20-8)))
	if len(f) != 64 {
		b.Fatalf("frame is %d bytes", len(f))
	}
	parseLoop(b, f)
}

func BenchmarkParseTCP4(b *testing.B) {
	ip := ip4(layers.IPProtocolTCP)
	t := &layers.TCP{SrcPort: 40001, DstPort: 443, ACK: true, Window: 65535,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	_ = t.SetNetworkLayerForChecksum(ip)
	parseLoop(b, buildFrame(b, ether(layers.EthernetTypeIPv4), ip, t, gopacket.Payload(make([]byte, 1400))))
}

func BenchmarkParseIPv6Ext(b *testing.B) {
	ip := ip6(layers.IPProtocolIPv6HopByHop)
	pad := []*layers.IPv6HopByHopOption{{OptionType: 1, OptionData: []byte{0, 0, 0, 0}}}
	hbh := &layers.IPv6HopByHop{Options: pad}
	hbh.NextHeader = layers.IPProtocolIPv6Destination
	dst := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{(*layers.IPv6DestinationOption)(pad[0])}}
	dst.NextHeader = layers.IPProtocolIPv6Fragment
	frag := rawExt{byte(layers.IPProtocolUDP), 0, 0, 1, 0, 0, 0xca, 0xfe} // offset 0, more fragments
	parseLoop(b, buildFrame(b, ether(layers.EthernetTypeIPv6), ip, hbh, dst, frag, udpOver(ip),
		gopacket.Payload(make([]byte, 64))))
}

func BenchmarkParseVLAN(b *testing.B) {
	ip := ip4(layers.IPProtocolUDP)
	parseLoop(b, buildFrame(b, ether(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip, udpOver(ip),
		gopacket.Payload(make([]byte, 18))))
}

// BenchmarkParseBatch parses a full batch of 64-byte UDP frames, the unit
// a worker processes per poll.
func BenchmarkParseBatch(b *testing.B) {
	ip := ip4(layers.IPProtocolUDP)
	f := buildFrame(b, ether(layers.EthernetTypeIPv4), ip, udpOver(ip), gopacket.Payload(make([]byte, 64-14-20-8)))
	var batch pipeline.Batch
	batch.Len = pipeline.MaxBatch
	for i := range batch.Pkts {
		batch.Pkts[i].Data = f
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch.Packets() {
			batch.Pkts[i].Parse()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pipeline.MaxBatch), "ns/pkt")
}
