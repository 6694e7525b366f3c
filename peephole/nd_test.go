package peephole

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vswitch/vswitch/pipeline"
)

type nsSpec struct {
	vlan     uint16
	typ      uint8 // ICMPv6 type; 0 means Neighbor Solicitation
	code     uint8
	hopLimit uint8 // 0 means 255
	src      netip.Addr
	target   netip.Addr
	noSLL    bool // leave out the source link-layer option
}

func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

func nsFrame(tb testing.TB, s nsSpec) []byte {
	tb.Helper()
	if s.typ == 0 {
		s.typ = layers.ICMPv6TypeNeighborSolicitation
	}
	if s.hopLimit == 0 {
		s.hopLimit = 255
	}
	dst := solicitedNode(s.target)
	d := dst.As16()
	ls := nbrL2(nbrHostMAC, net.HardwareAddr{0x33, 0x33, d[12], d[13], d[14], d[15]}, s.vlan, layers.EthernetTypeIPv6)
	ip := &layers.IPv6{Version: 6, HopLimit: s.hopLimit, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: nbrIP(s.src), DstIP: nbrIP(dst)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.typ, s.code)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: nbrIP(s.target)}
	if !s.noSLL && !s.src.IsUnspecified() {
		ns.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: nbrHostMAC}}
	}
	ls = append(ls, ip, icmp, ns)
	return nbrSerialize(tb, ls...)
}

func nsRequest(vlan uint16, target netip.Addr) nsSpec {
	return nsSpec{vlan: vlan, src: nbrHost6, target: target}
}

// naFrame is the advertisement gopacket builds for the answer.
func naFrame(tb testing.TB, vlan uint16, mac pipeline.MAC, target netip.Addr, flags uint8) []byte {
	tb.Helper()
	ls := nbrL2(nbrHW(mac), nbrHostMAC, vlan, layers.EthernetTypeIPv6)
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: nbrIP(target), DstIP: nbrIP(nbrHost6)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{Flags: flags, TargetAddress: nbrIP(target),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: nbrHW(mac)}}}
	ls = append(ls, ip, icmp, na)
	return nbrSerialize(tb, ls...)
}

func TestNDStageAnswers(t *testing.T) {
	tests := []struct {
		name   string
		ns     nsSpec
		mac    pipeline.MAC
		flags  uint8
		router bool
	}{
		{"static untagged", nsRequest(0, nbrBound6), nbrBoundMAC, 0x60, false},
		{"static vlan", nsRequest(nbrVLAN, nbrBound6), nbrBoundMAC, 0x60, false},
		{"gateway", nsRequest(0, nbrGw6), nbrGwMAC, 0xe0, true},
		{"no source LL option", nsSpec{src: nbrHost6, target: nbrBound6, noSLL: true}, nbrBoundMAC, 0x60, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewNDStage(nbrTable(t))
			in := nsFrame(t, tc.ns)
			// A UMEM frame is much bigger than the packet; give it room.
			p := nbrRun(t, s, in, 2048)
			if p.Verdict != pipeline.VerdictReply {
				t.Fatalf("verdict %v, want reply (stats %+v)", p.Verdict, s.Stats())
			}
			want := naFrame(t, tc.ns.vlan, tc.mac, tc.ns.target, tc.flags)
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("advertisement\n got %x\nwant %x", p.Data, want)
			}
			wantLen := 86
			if tc.ns.vlan != 0 {
				wantLen += 4
			}
			if len(p.Data) != wantLen {
				t.Errorf("length %d, want %d", len(p.Data), wantLen)
			}

			// Field by field, decoded by gopacket.
			pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("decode: %v", el.Error())
			}
			e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(e.DstMAC, nbrHostMAC) || !bytes.Equal(e.SrcMAC, tc.mac[:]) {
				t.Errorf("ethernet %v -> %v", e.SrcMAC, e.DstMAC)
			}
			ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ip.HopLimit != 255 || ip.NextHeader != layers.IPProtocolICMPv6 || ip.Length != 32 ||
				!ip.SrcIP.Equal(nbrIP(tc.ns.target)) || !ip.DstIP.Equal(nbrIP(nbrHost6)) ||
				ip.TrafficClass != 0 || ip.FlowLabel != 0 {
				t.Errorf("IPv6 header %+v", ip)
			}
			icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if icmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0) {
				t.Errorf("type/code %v", icmp.TypeCode)
			}
			na := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			if na.Router() != tc.router || !na.Solicited() || !na.Override() || !na.TargetAddress.Equal(nbrIP(tc.ns.target)) {
				t.Errorf("NA %+v", na)
			}
			if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, tc.mac[:]) {
				t.Errorf("NA options %v", na.Options)
			}
			// Checksum: valid by our own helpers after a fresh parse, and
			// equal to gopacket's (the byte-exact compare above).
			q := pipeline.Packet{Data: p.Data}
			q.Reset()
			if !q.Parse() || !q.L4ChecksumValid() {
				t.Errorf("ICMPv6 checksum %#04x invalid", icmp.Checksum)
			}
			if st := s.Stats(); st != (NDStats{Answered: 1}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestNDStagePassesThrough(t *testing.T) {
	badSum := nsFrame(t, nsRequest(0, nbrBound6))
	badSum[14+40+2] ^= 0xff
	tests := []struct {
		name     string
		frame    []byte
		capacity int
		want     NDStats
	}{
		{"DAD probe", nsFrame(t, nsSpec{src: netip.IPv6Unspecified(), target: nbrBound6}), 0, NDStats{Probe: 1}},
		{"unknown target", nsFrame(t, nsRequest(0, nbrOther6)), 0, NDStats{UnknownTarget: 1}},
		{"other vlan", nsFrame(t, nsRequest(7, nbrBound6)), 0, NDStats{UnknownTarget: 1}},
		{"gateway of vlan 0 in vlan 42", nsFrame(t, nsRequest(nbrVLAN, nbrGw6)), 0, NDStats{UnknownTarget: 1}},
		{"v4-mapped target of an IPv4 binding", nsFrame(t, nsRequest(0, netip.AddrFrom16(nbrBound4.As16()))), 0, NDStats{UnknownTarget: 1}},
		{"echo request", nsFrame(t, nsSpec{typ: layers.ICMPv6TypeEchoRequest, src: nbrHost6, target: nbrBound6}), 0, NDStats{NotRequest: 1}},
		{"advertisement", nsFrame(t, nsSpec{typ: layers.ICMPv6TypeNeighborAdvertisement, src: nbrHost6, target: nbrBound6}), 0, NDStats{NotRequest: 1}},
		{"hop limit 64", nsFrame(t, nsSpec{hopLimit: 64, src: nbrHost6, target: nbrBound6}), 0, NDStats{Malformed: 1}},
		{"code 1", nsFrame(t, nsSpec{code: 1, src: nbrHost6, target: nbrBound6}), 0, NDStats{Malformed: 1}},
		{"bad checksum", badSum, 0, NDStats{Malformed: 1}},
		{"multicast target", nsFrame(t, nsRequest(0, netip.MustParseAddr("ff02::1"))), 0, NDStats{Malformed: 1}},
		{"too big", nsFrame(t, nsSpec{src: nbrHost6, target: nbrBound6, noSLL: true}), 0, NDStats{TooBig: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewNDStage(nbrTable(t))
			p := nbrRun(t, s, tc.frame, tc.capacity)
			if p.Verdict != pipeline.VerdictNone {
				t.Fatalf("verdict %v, want none", p.Verdict)
			}
			if !bytes.Equal(p.Data, tc.frame) {
				t.Fatalf("frame changed\n got %x\nwant %x", p.Data, tc.frame)
			}
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
		})
	}
}

// TestNDStageBadOptions checks option validation: a zero-length option
// (RFC 4861 7.1.1) and one running past the message.
func TestNDStageBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  [2]byte
	}{{"zero length", [2]byte{1, 0}}, {"past end", [2]byte{1, 2}}} {
		t.Run(tc.name, func(t *testing.T) {
			f := nsFrame(t, nsRequest(0, nbrBound6))
			o := 14 + 40 + 24
			f[o], f[o+1] = tc.opt[0], tc.opt[1]
			// Fix the checksum so that only the option is wrong.
			var q pipeline.Packet
			q.Data = f
			q.Reset()
			q.Parse()
			q.SetL4Checksum()
			s := NewNDStage(nbrTable(t))
			p := nbrRun(t, s, f, 2048)
			if p.Verdict != pipeline.VerdictNone {
				t.Fatalf("verdict %v", p.Verdict)
			}
			if st := s.Stats(); st != (NDStats{Malformed: 1}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestNDStageInconsistentOffsets hands the stage parse fields that do not
// fit the frame; it must pass the packet, not read out of bounds.
func TestNDStageInconsistentOffsets(t *testing.T) {
	f := nsFrame(t, nsRequest(0, nbrBound6))
	for i, off := range [][3]uint16{{14, 54, 500}, {14, 10, 72}, {0, 40, 72}, {14, 54, 44}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := NewNDStage(nbrTable(t))
			var b pipeline.Batch
			b.Len = 1
			p := &b.Pkts[0]
			p.Reset()
			p.Data = append([]byte(nil), f...)
			p.Flags = pipeline.FlagIPv6 | pipeline.FlagL4
			p.L4Proto = pipeline.ProtoICMPv6
			p.L3Off, p.L4Off, p.L3Len = off[0], off[1], off[2]
			s.Process(&b)
			if p.Verdict != pipeline.VerdictNone {
				t.Fatalf("verdict %v", p.Verdict)
			}
		})
	}
}

func TestNDChecksumMatchesIndependentSum(t *testing.T) {
	// Recompute the advertisement's checksum by hand (RFC 8200 8.1) as a
	// third opinion next to gopacket's and pipeline's.
	s := NewNDStage(nbrTable(t))
	p := nbrRun(t, s, nsFrame(t, nsRequest(0, nbrBound6)), 2048)
	d := p.Data
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	add(d[14+8 : 14+40]) // source and destination
	sum += 32 + 58
	add(d[14+40:])
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	if sum != 0xffff {
		t.Fatalf("checksum sum %#x, want 0xffff", sum)
	}
}

// TestNDStageAccessVLAN: an untagged solicitation on an access port is
// answered from the access VLAN's bindings, byte for byte like an
// untagged answer.
func TestNDStageAccessVLAN(t *testing.T) {
	s := NewNDStage(nbrTable(t))
	p := nbrRunOn(t, s, nsFrame(t, nsRequest(0, nbrBound6)), 2048, 3, nbrVLAN)
	if want := naFrame(t, 0, nbrBoundMAC, nbrBound6, 0x60); p.Verdict != pipeline.VerdictReply || !bytes.Equal(p.Data, want) {
		t.Fatalf("verdict %v\n got %x\nwant %x", p.Verdict, p.Data, want)
	}
	s = NewNDStage(nbrTable(t))
	if p := nbrRunOn(t, s, nsFrame(t, nsRequest(0, nbrGw6)), 2048, 3, nbrVLAN); p.Verdict != pipeline.VerdictNone ||
		s.Stats() != (NDStats{UnknownTarget: 1}) {
		t.Fatalf("gateway of vlan 0 answered in access vlan %d: %v %+v", nbrVLAN, p.Verdict, s.Stats())
	}
}
