package peephole

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vswitch/vswitch/pipeline"
)

// Shared fixtures of the ARP and ND tests. Names carry an "nbr" prefix so
// they do not collide with the DNS tests in this package.

var (
	nbrHostMAC  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a} // the requester
	nbrBoundMAC = pipeline.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0xb0}     // answer for bound IPs
	nbrGwMAC    = pipeline.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}     // the switch's gateway MAC

	nbrHost4  = netip.MustParseAddr("10.0.0.10")
	nbrBound4 = netip.MustParseAddr("10.0.0.20")
	nbrOther4 = netip.MustParseAddr("10.0.0.99")

	nbrHost6  = netip.MustParseAddr("2001:db8::10")
	nbrBound6 = netip.MustParseAddr("2001:db8::20")
	nbrGw6    = netip.MustParseAddr("2001:db8::1")
	nbrOther6 = netip.MustParseAddr("2001:db8::99")
)

const nbrVLAN = 42

// nbrTable returns a table with nbrBound4/6 bound in VLAN 0 and nbrVLAN
// and nbrGw6 as a gateway address in VLAN 0.
func nbrTable(tb testing.TB) *BindingTable {
	tb.Helper()
	t := NewBindingTable()
	for _, b := range []Binding{
		{VLAN: 0, IP: nbrBound4, MAC: nbrBoundMAC, Kind: KindStatic},
		{VLAN: nbrVLAN, IP: nbrBound4, MAC: nbrBoundMAC, Kind: KindStatic},
		{VLAN: 0, IP: nbrBound6, MAC: nbrBoundMAC, Kind: KindStatic},
		{VLAN: nbrVLAN, IP: nbrBound6, MAC: nbrBoundMAC, Kind: KindStatic},
		{VLAN: 0, IP: nbrGw6, MAC: nbrGwMAC, Kind: KindGateway},
	} {
		if err := t.Add(b); err != nil {
			tb.Fatalf("add %v: %v", b, err)
		}
	}
	return t
}

func nbrIP(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func nbrHW(m pipeline.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

// nbrSerialize builds a frame with fixed lengths and computed checksums.
func nbrSerialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// nbrL2 returns the Ethernet layer (and an 802.1Q tag when vlan != 0)
// carrying et.
func nbrL2(src, dst net.HardwareAddr, vlan uint16, et layers.EthernetType) []gopacket.SerializableLayer {
	if vlan == 0 {
		return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}}
	}
	return []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: vlan, Type: et},
	}
}

// nbrRun puts frame (copied into a buffer of capacity capacity, or of its
// own length when capacity is smaller) through the parser and stage s, and
// returns the packet.
func nbrRun(tb testing.TB, s pipeline.Stage, frame []byte, capacity int) *pipeline.Packet {
	tb.Helper()
	var b pipeline.Batch
	b.Len = 1
	p := &b.Pkts[0]
	p.Data = make([]byte, len(frame), max(len(frame), capacity))
	copy(p.Data, frame)
	p.Reset()
	if !p.Parse() {
		tb.Fatalf("golden frame does not parse: %v", p.Reason)
	}
	s.Process(&b)
	out := b.Pkts[0]
	return &out
}

// nbrRunOn is nbrRun for a frame received on port inPort, classified the
// way the switch does it before the peephole stages: a tagged frame keeps
// its tag's VLAN, an untagged one gets the port's VLAN untagged.
func nbrRunOn(tb testing.TB, s pipeline.Stage, frame []byte, capacity int, inPort, untagged uint16) *pipeline.Packet {
	tb.Helper()
	var b pipeline.Batch
	b.Len = 1
	p := &b.Pkts[0]
	p.Data = make([]byte, len(frame), max(len(frame), capacity))
	copy(p.Data, frame)
	p.Reset()
	if !p.Parse() {
		tb.Fatalf("golden frame does not parse: %v", p.Reason)
	}
	p.InPort = inPort
	if p.Flags&pipeline.FlagVLAN == 0 {
		p.VLAN = untagged
	}
	s.Process(&b)
	out := b.Pkts[0]
	return &out
}
