package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func testSpec(size, flows int, csum bool) FrameSpec {
	return FrameSpec{
		Size: size, Flows: flows, SrcMAC: SrcMAC, DstMAC: DstMAC, SrcIP: SrcIP, DstIP: DstIP,
		SrcPort: genSrcPort, DstPort: genDstPort, Checksum: csum,
	}
}

// reserialize decodes f with gopacket and serializes it again with gopacket
// computing both checksums: an independent implementation. Equal bytes mean
// f's checksums and lengths are right.
func reserialize(t *testing.T, f []byte) ([]byte, *layers.IPv4, *layers.UDP) {
	t.Helper()
	// A DecodingLayerParser stops at UDP: gopacket would otherwise decode
	// the payload by port (1812 is RADIUS) and choke on our filler bytes.
	var (
		eth  layers.Ethernet
		ip   layers.IPv4
		udp  layers.UDP
		decd []gopacket.LayerType
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip, &udp)
	p.IgnoreUnsupported = true
	if err := p.DecodeLayers(f, &decd); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(decd) != 3 {
		t.Fatalf("frame is not Ethernet/IPv4/UDP: decoded %v", decd)
	}
	if err := udp.SetNetworkLayerForChecksum(&ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, &eth, &ip, &udp, gopacket.Payload(udp.Payload)); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes(), &ip, &udp
}

func TestBuildUDPFrameChecksums(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"min60", 60},
		{"64", 64},
		{"odd65", 65}, // odd payload: the tail byte is padded in the sum
		{"1500", 1500},
		{"max1514", MaxFrameSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := BuildUDPFrame(testSpec(tc.size, 1, true))
			if err != nil {
				t.Fatal(err)
			}
			if len(f) != tc.size {
				t.Fatalf("len %d, want %d", len(f), tc.size)
			}
			want, ip, udp := reserialize(t, f)
			if !bytes.Equal(f, want) {
				t.Fatalf("checksums differ from gopacket's:\n got %x\nwant %x", f[:HeaderLen], want[:HeaderLen])
			}
			if int(ip.Length) != tc.size-ethHdrLen || int(udp.Length) != tc.size-udpOff {
				t.Errorf("lengths ip %d udp %d for size %d", ip.Length, udp.Length, tc.size)
			}
			if !ip.SrcIP.Equal(SrcIP) || !ip.DstIP.Equal(DstIP) || udp.SrcPort != genSrcPort || udp.DstPort != genDstPort {
				t.Errorf("addresses %s:%d -> %s:%d", ip.SrcIP, udp.SrcPort, ip.DstIP, udp.DstPort)
			}
			if udp.Checksum == 0 {
				t.Error("UDP checksum is 0 with Checksum set")
			}
		})
	}
}

// TestBuildUDPFramePayload: a frame with a given payload carries it
// exactly, its IP and UDP lengths cover the payload (not the padding to
// the Ethernet minimum), and its checksums hold for every flow's port.
func TestBuildUDPFramePayload(t *testing.T) {
	for _, n := range []int{0, 5, 17, 31, 200} {
		s := testSpec(0, 100, true)
		s.Payload = make([]byte, n)
		for i := range s.Payload {
			s.Payload[i] = byte(0xa0 + i)
		}
		f, err := BuildUDPFrame(s)
		if err != nil {
			t.Fatalf("payload %d: %v", n, err)
		}
		if want := max(MinFrameSize, HeaderLen+n); len(f) != want {
			t.Fatalf("payload %d: frame %d bytes, want %d", n, len(f), want)
		}
		partial := UDPPartialSum(f)
		for port := uint16(genSrcPort); port < genSrcPort+100; port++ {
			SetSrcPort(f, partial, port)
			_, ip, udp := reserialize(t, f)
			if int(ip.Length) != ipv4HdrLen+udpHdrLen+n || int(udp.Length) != udpHdrLen+n {
				t.Fatalf("payload %d: ip length %d udp length %d", n, ip.Length, udp.Length)
			}
			if !bytes.Equal(udp.Payload, s.Payload) {
				t.Fatalf("payload %d: got %x", n, udp.Payload)
			}
			// gopacket recomputes the checksum over the UDP datagram only.
			want, _, _ := reserialize(t, f)
			if !bytes.Equal(f[:HeaderLen], want[:HeaderLen]) {
				t.Fatalf("payload %d port %d: headers %x, gopacket %x", n, port, f[:HeaderLen], want[:HeaderLen])
			}
		}
	}
	s := testSpec(64, 1, true)
	s.Payload = []byte{1}
	if _, err := BuildUDPFrame(s); !errors.Is(err, ErrFrameSpec) {
		t.Fatalf("size and payload together: err %v", err)
	}
}

func TestBuildUDPFrameZeroChecksum(t *testing.T) {
	f, err := BuildUDPFrame(testSpec(64, 1, false))
	if err != nil {
		t.Fatal(err)
	}
	if c := binary.BigEndian.Uint16(f[offUDPCsum:]); c != 0 {
		t.Fatalf("UDP checksum %#x, want 0", c)
	}
	want, _, _ := reserialize(t, f)
	// The IPv4 header checksum must still be right.
	if !bytes.Equal(f[ethHdrLen:udpOff], want[ethHdrLen:udpOff]) {
		t.Fatalf("IPv4 header %x, gopacket %x", f[ethHdrLen:udpOff], want[ethHdrLen:udpOff])
	}
}

// TestSetSrcPortAllFlows checks the arithmetic the generator program uses
// (partial sum + port) for every port of a 1000-flow run, including after
// the frame was rewritten before (live frames are recycled).
func TestSetSrcPortAllFlows(t *testing.T) {
	for _, size := range []int{64, 1500} {
		f, err := BuildUDPFrame(testSpec(size, 1000, true))
		if err != nil {
			t.Fatal(err)
		}
		partial := UDPPartialSum(f)
		for port := uint16(genSrcPort); port < genSrcPort+1000; port++ {
			SetSrcPort(f, partial, port)
			want, _, udp := reserialize(t, f)
			if !bytes.Equal(f, want) || uint16(udp.SrcPort) != port {
				t.Fatalf("size %d port %d: got %x want %x", size, port, f[udpOff:HeaderLen], want[udpOff:HeaderLen])
			}
		}
	}
}

func TestUDPChecksumForPortNeverZero(t *testing.T) {
	// ~fold(x) == 0 only when fold(x) == 0xffff; UDP must send 0xffff then.
	if c := UDPChecksumForPort(0xffff-1024, 1024); c != 0xffff {
		t.Fatalf("got %#x, want 0xffff", c)
	}
}

func TestFrameSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*FrameSpec)
	}{
		{"too small", func(s *FrameSpec) { s.Size = 59 }},
		{"too big", func(s *FrameSpec) { s.Size = MaxFrameSize + 1 }},
		{"ipv6", func(s *FrameSpec) { s.SrcIP = net.ParseIP("fd00::1") }},
		{"short mac", func(s *FrameSpec) { s.DstMAC = s.DstMAC[:5] }},
		{"no flows", func(s *FrameSpec) { s.Flows = 0 }},
		{"port overflow", func(s *FrameSpec) { s.SrcPort, s.Flows = 65000, 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(64, 1, true)
			tc.mod(&s)
			if _, err := BuildUDPFrame(s); !errors.Is(err, ErrFrameSpec) {
				t.Fatalf("err %v, want ErrFrameSpec", err)
			}
		})
	}
}

func TestGenArgsRoundTrip(t *testing.T) {
	// The flags the harness renders must parse back (GenMain with -h-like
	// failure would only show up as a root-only runtime error otherwise).
	// CPU -1: pinning would bind this test process's threads.
	withPayload := testSpec(0, 10, true)
	withPayload.Payload = []byte{0xde, 0xad, 0xbe, 0xef}
	for _, spec := range []FrameSpec{testSpec(1500, 1000, true), withPayload} {
		cfg := GenConfig{Ifname: "vsbxs0", Frame: spec, Duration: 3e9, CPU: -1}
		args := GenArgs(cfg)
		var stderr bytes.Buffer
		// An unknown interface makes GenMain fail after parsing, with code 1
		// (parse errors are 2).
		args[1] = "vsb-no-such-if"
		if code := GenMain(args, &bytes.Buffer{}, &stderr); code != 1 {
			t.Fatalf("GenMain exit %d, want 1 (flags parsed, then no interface): %s", code, stderr.String())
		}
	}
}
