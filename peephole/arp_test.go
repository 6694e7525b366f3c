package peephole

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vswitch/vswitch/pipeline"
)

type arpSpec struct {
	vlan     uint16
	op       uint16
	srcMAC   net.HardwareAddr
	senderIP net.IP
	targetIP net.IP
}

func arpFrame(tb testing.TB, s arpSpec) []byte {
	tb.Helper()
	ls := nbrL2(s.srcMAC, layers.EthernetBroadcast, s.vlan, layers.EthernetTypeARP)
	ls = append(ls, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: s.op,
		SourceHwAddress: s.srcMAC, SourceProtAddress: s.senderIP.To4(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: s.targetIP.To4(),
	})
	return nbrSerialize(tb, ls...)
}

func arpRequest(vlan uint16, target net.IP) arpSpec {
	return arpSpec{vlan: vlan, op: layers.ARPRequest, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: target}
}

func TestARPStageAnswers(t *testing.T) {
	for _, vlan := range []uint16{0, nbrVLAN} {
		t.Run(fmt.Sprintf("vlan%d", vlan), func(t *testing.T) {
			s := NewARPStage(nbrTable(t))
			p := nbrRun(t, s, arpFrame(t, arpRequest(vlan, nbrIP(nbrBound4))), 0)
			if p.Verdict != pipeline.VerdictReply {
				t.Fatalf("verdict %v, want reply", p.Verdict)
			}
			// Byte-exact: the reply gopacket builds independently.
			ls := nbrL2(nbrHW(nbrBoundMAC), nbrHostMAC, vlan, layers.EthernetTypeARP)
			ls = append(ls, &layers.ARP{
				AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
				SourceHwAddress: nbrHW(nbrBoundMAC), SourceProtAddress: nbrIP(nbrBound4),
				DstHwAddress: nbrHostMAC, DstProtAddress: nbrIP(nbrHost4),
			})
			want := nbrSerialize(t, ls...)
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("reply\n got %x\nwant %x", p.Data, want)
			}
			// And field by field, decoded.
			pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
			e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
			if !ok {
				t.Fatalf("no ARP layer: %v", pkt)
			}
			if !bytes.Equal(e.DstMAC, nbrHostMAC) || !bytes.Equal(e.SrcMAC, nbrBoundMAC[:]) {
				t.Errorf("ethernet %v -> %v", e.SrcMAC, e.DstMAC)
			}
			if vlan != 0 {
				q := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
				if q.VLANIdentifier != vlan {
					t.Errorf("vlan %d, want %d", q.VLANIdentifier, vlan)
				}
			}
			if a.Operation != layers.ARPReply || a.AddrType != layers.LinkTypeEthernet ||
				a.Protocol != layers.EthernetTypeIPv4 || a.HwAddressSize != 6 || a.ProtAddressSize != 4 ||
				!bytes.Equal(a.SourceHwAddress, nbrBoundMAC[:]) || !net.IP(a.SourceProtAddress).Equal(nbrIP(nbrBound4)) ||
				!bytes.Equal(a.DstHwAddress, nbrHostMAC) || !net.IP(a.DstProtAddress).Equal(nbrIP(nbrHost4)) {
				t.Errorf("bad ARP reply %+v", a)
			}
			if st := s.Stats(); st != (ARPStats{Answered: 1}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestARPStagePassesThrough(t *testing.T) {
	zero := net.IPv4zero.To4()
	tests := []struct {
		name string
		spec arpSpec
		want ARPStats
	}{
		{"reply", arpSpec{op: layers.ARPReply, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrBound4)}, ARPStats{NotRequest: 1}},
		{"gratuitous", arpSpec{op: layers.ARPRequest, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrBound4), targetIP: nbrIP(nbrBound4)}, ARPStats{Gratuitous: 1}},
		{"probe", arpSpec{op: layers.ARPRequest, srcMAC: nbrHostMAC, senderIP: zero, targetIP: nbrIP(nbrBound4)}, ARPStats{Probe: 1}},
		{"unknown target", arpRequest(0, nbrIP(nbrOther4)), ARPStats{UnknownTarget: 1}},
		{"other vlan", arpRequest(7, nbrIP(nbrBound4)), ARPStats{UnknownTarget: 1}},
		{"multicast sender", arpSpec{op: layers.ARPRequest, srcMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrBound4)}, ARPStats{Malformed: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewARPStage(nbrTable(t))
			in := arpFrame(t, tc.spec)
			p := nbrRun(t, s, in, 0)
			if p.Verdict != pipeline.VerdictNone {
				t.Fatalf("verdict %v, want none", p.Verdict)
			}
			if !bytes.Equal(p.Data, in) {
				t.Fatalf("frame changed\n got %x\nwant %x", p.Data, in)
			}
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
		})
	}
}

// TestARPStageMalformed feeds frames the parser would drop, as if it had
// not run, to check the stage's own bounds checks: they pass, counted.
func TestARPStageMalformed(t *testing.T) {
	good := arpFrame(t, arpRequest(0, nbrIP(nbrBound4)))
	badHW := append([]byte(nil), good...)
	badHW[15] = 6 // hardware type 6 (IEEE 802)
	tests := []struct {
		name  string
		frame []byte
		l3Off uint16
	}{
		{"truncated", good[:14+20], 14},
		{"bad hardware type", badHW, 14},
		{"offset past end", good, 200},
		{"offset inside ethernet", good, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewARPStage(nbrTable(t))
			var b pipeline.Batch
			b.Len = 1
			p := &b.Pkts[0]
			p.Reset()
			p.Data = append([]byte(nil), tc.frame...)
			p.EtherType, p.L3Off, p.L3Len = pipeline.EtherTypeARP, tc.l3Off, pipeline.ARPLen
			s.Process(&b)
			if p.Verdict != pipeline.VerdictNone || !bytes.Equal(p.Data, tc.frame) {
				t.Fatalf("verdict %v, frame changed %v", p.Verdict, !bytes.Equal(p.Data, tc.frame))
			}
			if st := s.Stats(); st != (ARPStats{Malformed: 1}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestARPStageSkipsDecided(t *testing.T) {
	s := NewARPStage(nbrTable(t))
	in := arpFrame(t, arpRequest(0, nbrIP(nbrBound4)))
	var b pipeline.Batch
	b.Len = 2
	for i := range 2 {
		p := &b.Pkts[i]
		p.Data = append([]byte(nil), in...)
		p.Reset()
		p.Parse()
	}
	b.Pkts[0].Drop(pipeline.DropNoVerdict)
	s.Process(&b)
	if b.Pkts[0].Verdict != pipeline.VerdictDrop || !bytes.Equal(b.Pkts[0].Data, in) {
		t.Errorf("decided packet touched")
	}
	if b.Pkts[1].Verdict != pipeline.VerdictReply {
		t.Errorf("second packet verdict %v", b.Pkts[1].Verdict)
	}
	if st := s.Stats(); st != (ARPStats{Answered: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// TestARPStageAccessVLAN checks that bindings are looked up in the VLAN the
// switch classified the frame into, not in the tag on the wire: an
// untagged request on an access port of VLAN 42 is answered from VLAN 42.
func TestARPStageAccessVLAN(t *testing.T) {
	tests := []struct {
		name   string
		access uint16
		target net.IP
		want   ARPStats
	}{
		{"bound in access vlan", nbrVLAN, nbrIP(nbrBound4), ARPStats{Answered: 1}},
		{"bound only in vlan 0", 7, nbrIP(nbrBound4), ARPStats{UnknownTarget: 1}},
		{"untagged native vlan 0", 0, nbrIP(nbrBound4), ARPStats{Answered: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewARPStage(nbrTable(t))
			p := nbrRunOn(t, s, arpFrame(t, arpRequest(0, tc.target)), 0, 3, tc.access)
			if st := s.Stats(); st != tc.want {
				t.Fatalf("stats %+v, want %+v", st, tc.want)
			}
			if tc.want.Answered == 1 && (p.Verdict != pipeline.VerdictReply || pipeline.Ethernet(p.Data).Src() != nbrBoundMAC) {
				t.Fatalf("verdict %v src %v", p.Verdict, pipeline.Ethernet(p.Data).Src())
			}
		})
	}
}
