package pipeline

import (
	"fmt"
	"testing"

	"github.com/google/gopacket/layers"
)

// benchParse parses frame over and over. Every hot-path benchmark reports
// allocations: the parser must show 0 allocs/op.
func benchParse(b *testing.B, frame []byte) {
	b.Helper()
	p := &Packet{Data: frame}
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
	ip := ipv4(layers.IPProtocolUDP)
	f := serialize(b, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(64-14-20-8))
	if len(f) != 64 {
		b.Fatalf("frame is %d bytes", len(f))
	}
	benchParse(b, f)
}

func BenchmarkParseTCP4(b *testing.B) {
	ip := ipv4(layers.IPProtocolTCP)
	benchParse(b, serialize(b, eth(layers.EthernetTypeIPv4), ip, tcp(ip), payload(1400)))
}

func BenchmarkParseIPv6Ext(b *testing.B) {
	ip := ipv6(layers.IPProtocolIPv6HopByHop)
	benchParse(b, serialize(b, eth(layers.EthernetTypeIPv6), ip,
		hopByHop(layers.IPProtocolIPv6Destination), dstOpts(layers.IPProtocolIPv6Fragment),
		fragHdr(layers.IPProtocolUDP, 0, true), udp(ip), payload(64)))
}

func BenchmarkParseVLAN(b *testing.B) {
	ip := ipv4(layers.IPProtocolUDP)
	benchParse(b, serialize(b, eth(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip, udp(ip), payload(18)))
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1500, 9000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(i)
			}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var s uint16
			for b.Loop() {
				s += Checksum(buf, 0)
			}
			_ = s
		})
	}
}

// BenchmarkNATRewrite is the per-packet cost of a source NAT: address and
// port rewrite with incremental IPv4 and TCP checksum updates.
func BenchmarkNATRewrite(b *testing.B) {
	ip := ipv4(layers.IPProtocolTCP)
	p := &Packet{Data: serialize(b, eth(layers.EthernetTypeIPv4), ip, tcp(ip), payload(100))}
	p.Parse()
	addrs := [2][4]byte{{203, 0, 113, 1}, {203, 0, 113, 2}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.SetIPv4Src(addrs[i&1])
		p.TCP().SetSrcPort(uint16(i))
		i++
	}
}

// BenchmarkL4ChecksumVerify is a full TCP checksum check of a 1500-byte
// frame, pseudo-header included.
func BenchmarkL4ChecksumVerify(b *testing.B) {
	ip := ipv4(layers.IPProtocolTCP)
	p := &Packet{Data: serialize(b, eth(layers.EthernetTypeIPv4), ip, tcp(ip), payload(1500-14-20-24))}
	p.Parse()
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Data)))
	for b.Loop() {
		if !p.L4ChecksumValid() {
			b.Fatal("invalid")
		}
	}
}
