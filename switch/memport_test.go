package vswitch

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/memring/memringtest"
	"github.com/vswitch/vswitch/pipeline"
)

// TestSplitHead: only unfragmented TCP and UDP whose headers all fit in
// the head may leave their payload in the client's buffer.
func TestSplitHead(t *testing.T) {
	src4, dst4 := net.IPv4(10, 1, 0, 1), net.IPv4(10, 1, 0, 2)
	src6, dst6 := net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
	v4 := func(proto layers.IPProtocol, mod func(*layers.IPv4)) *layers.IPv4 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src4, DstIP: dst4}
		if mod != nil {
			mod(ip)
		}
		return ip
	}
	v6 := func(nh layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: src6, DstIP: dst6}
	}
	udp := func(n gopacket.NetworkLayer) *layers.UDP {
		u := &layers.UDP{SrcPort: 4000, DstPort: 9}
		_ = u.SetNetworkLayerForChecksum(n)
		return u
	}
	tcp := func(n gopacket.NetworkLayer, opts int) *layers.TCP {
		tc := &layers.TCP{SrcPort: 4000, DstPort: 80, ACK: true, Window: 1000}
		for range opts {
			tc.Options = append(tc.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1})
		}
		_ = tc.SetNetworkLayerForChecksum(n)
		return tc
	}
	pay := gopacket.Payload(make([]byte, 1200))
	eth := func(et layers.EthernetType) []gopacket.SerializableLayer {
		return l2Header(macA, macB, untagged, et)
	}
	tagged := func(et layers.EthernetType) []gopacket.SerializableLayer {
		return l2Header(macA, macB, 10, et)
	}
	frame := func(l2 []gopacket.SerializableLayer, ls ...gopacket.SerializableLayer) []byte {
		return serializeFrame(t, append(l2, ls...)...)
	}
	ipOpts := func(ip *layers.IPv4) {
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	}
	frag := func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }
	late := func(ip *layers.IPv4) { ip.FragOffset = 100 }
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolUDP
	hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}

	i4u := v4(layers.IPProtocolUDP, nil)
	i4t := v4(layers.IPProtocolTCP, nil)
	i4o := v4(layers.IPProtocolTCP, ipOpts)
	i6u := v6(layers.IPProtocolUDP)
	i6t := v6(layers.IPProtocolTCP)
	i4tv := v4(layers.IPProtocolUDP, nil)
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"IPv4 UDP", frame(eth(layers.EthernetTypeIPv4), i4u, udp(i4u), pay), true},
		{"IPv4 TCP", frame(eth(layers.EthernetTypeIPv4), i4t, tcp(i4t, 0), pay), true},
		{"IPv4 options, TCP options", frame(eth(layers.EthernetTypeIPv4), i4o, tcp(i4o, 40), pay), true},
		{"IPv6 UDP", frame(eth(layers.EthernetTypeIPv6), i6u, udp(i6u), pay), true},
		{"IPv6 TCP", frame(eth(layers.EthernetTypeIPv6), i6t, tcp(i6t, 12), pay), true},
		{"802.1Q IPv4 UDP", frame(tagged(layers.EthernetTypeIPv4), i4tv, udp(i4tv), pay), true},
		{"IPv4 first fragment", frame(eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolUDP, frag), pay), false},
		{"IPv4 later fragment", frame(eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolUDP, late), pay), false},
		{"IPv4 ICMP", frame(eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolICMPv4, nil),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, pay), false},
		{"IPv6 hop-by-hop", frame(eth(layers.EthernetTypeIPv6), v6(layers.IPProtocolIPv6HopByHop), hbh, pay), false},
		{"ARP", frame(eth(layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6,
			ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA[:], SourceProtAddress: src4.To4(),
			DstHwAddress: make([]byte, 6), DstProtAddress: dst4.To4()}, pay), false},
	}
	for _, tc := range tests {
		if got := splitHead(tc.frame[:memHeadLen]); got != tc.want {
			t.Errorf("%s: splitHead = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A lying IHL or TCP data offset never reads past the head.
	bad := frame(eth(layers.EthernetTypeIPv4), i4u, udp(i4u), pay)
	bad[14] = 0x4f // IHL 60: the UDP header is then read at 74
	if !splitHead(bad[:memHeadLen]) {
		t.Error("IHL 15 UDP: headers end at 82, inside the head")
	}
	bad[14] = 0x43 // IHL 12 bytes
	if splitHead(bad[:memHeadLen]) {
		t.Error("IHL 3 accepted")
	}
	bad[14] = 0x65 // version 6 in an IPv4 ethertype
	if splitHead(bad[:memHeadLen]) {
		t.Error("version 6 in IPv4 accepted")
	}
	var zero [memHeadLen]byte
	if splitHead(zero[:]) {
		t.Error("all-zero head accepted")
	}
}

// TestMemOutputToCorruptClient: a client that moves its to-client
// consumer index past what the switch produced gets no more frames; the
// frames for it are dropped as tx_full, the session is marked corrupt and
// counted once, and nothing panics.
func TestMemOutputToCorruptClient(t *testing.T) {
	mb := newMemBench(t, 1500)
	pair := memringtest.NewPair(t, memring.Config{QueuePairs: 1, RingSize: 64, FrameSize: 2048})
	stx, srx := pair.Switch.Queue(0, memring.SideSwitch)
	out := &memQueue{port: 1, mp: &memPort{}, tx: stx, rx: srx, maxLen: 2048, wakeFD: -1, notifyFD: -1}
	mb.w.memTx[1] = out
	send := func() {
		t.Helper()
		if mb.sendTx.Reserve(1) != 1 {
			t.Fatal("sender ring full")
		}
		copy(mb.sendTx.Buffer(0), mb.frame)
		if err := mb.sendTx.Submit(mb.lens[:1]); err != nil {
			t.Fatal(err)
		}
		mb.w.pollMem(mb.in)
	}
	txFull := func() uint64 { return mb.w.ctr.drops[pipeline.DropTxFull].Load() }

	send()
	if got := pair.Recv(0, 8); len(got) != 1 || string(got[0]) != string(mb.frame) {
		t.Fatalf("healthy client got %d frames", len(got))
	}
	ring := memringtest.ToClient(0)
	pair.SetConsumer(ring, pair.Producer(ring)+100)
	before := txFull()
	send()
	send()
	if d := txFull() - before; d != 2 {
		t.Errorf("tx_full drops %d, want 2", d)
	}
	if !out.mp.corrupt.Load() || out.mp.corrupts.Load() != 1 {
		t.Errorf("corrupt %v, counted %d times; want marked and counted once", out.mp.corrupt.Load(), out.mp.corrupts.Load())
	}
}
