package pipeline

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestViewsMatchGopacket reads every golden frame through the typed views
// and compares each field with gopacket's decoding of the same bytes.
func TestViewsMatchGopacket(t *testing.T) {
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			p := parse(g.frame)
			pkt := gopacket.NewPacket(g.frame, layers.LayerTypeEthernet, gopacket.Default)

			e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if v := p.Ethernet(); !bytes.Equal(v.Dst().hw(), e.DstMAC) || !bytes.Equal(v.Src().hw(), e.SrcMAC) ||
				v.EtherType() != uint16(e.EthernetType) {
				t.Errorf("Ethernet view %v %v %#x, gopacket %v %v %v", v.Dst(), v.Src(), v.EtherType(), e.DstMAC, e.SrcMAC, e.EthernetType)
			}
			if l, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
				a := p.ARP()
				if a.Op() != l.Operation || !bytes.Equal(a.SenderMAC().hw(), l.SourceHwAddress) ||
					!bytes.Equal(ip4(a.SenderIP()), l.SourceProtAddress) || !bytes.Equal(a.TargetMAC().hw(), l.DstHwAddress) ||
					!bytes.Equal(ip4(a.TargetIP()), l.DstProtAddress) {
					t.Errorf("ARP view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
				ip := p.IPv4()
				if ip.Version() != l.Version || ip.HeaderLen() != int(l.IHL)*4 || ip.TOS() != l.TOS ||
					ip.TotalLen() != l.Length || ip.ID() != l.Id || ip.TTL() != l.TTL ||
					ip.Protocol() != uint8(l.Protocol) || ip.Checksum() != l.Checksum ||
					!bytes.Equal(ip4(ip.Src()), l.SrcIP.To4()) || !bytes.Equal(ip4(ip.Dst()), l.DstIP.To4()) ||
					ip.FragmentOffset() != l.FragOffset*8 || ip.MoreFragments() != (l.Flags&layers.IPv4MoreFragments != 0) ||
					ip.DontFragment() != (l.Flags&layers.IPv4DontFragment != 0) || !bytes.Equal(ip.Payload(), l.Payload) {
					t.Errorf("IPv4 view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
				ip := p.IPv6()
				if ip.Version() != l.Version || ip.TrafficClass() != l.TrafficClass || ip.FlowLabel() != l.FlowLabel ||
					ip.PayloadLen() != l.Length || ip.NextHeader() != uint8(l.NextHeader) || ip.HopLimit() != l.HopLimit ||
					!bytes.Equal(ip6(ip.Src()), l.SrcIP) || !bytes.Equal(ip6(ip.Dst()), l.DstIP) {
					t.Errorf("IPv6 view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && p.Flags&FlagL4 != 0 {
				u := p.UDP()
				if u.SrcPort() != uint16(l.SrcPort) || u.DstPort() != uint16(l.DstPort) || u.Length() != l.Length ||
					u.Checksum() != l.Checksum || (p.Flags&FlagFragment == 0 && !bytes.Equal(u.Payload(), l.Payload)) {
					t.Errorf("UDP view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
				tc := p.TCP()
				if tc.SrcPort() != uint16(l.SrcPort) || tc.DstPort() != uint16(l.DstPort) || tc.Seq() != l.Seq ||
					tc.Ack() != l.Ack || tc.HeaderLen() != int(l.DataOffset)*4 || tc.Window() != l.Window ||
					tc.Checksum() != l.Checksum || tc.UrgentPtr() != l.Urgent || tc.Flags()&TCPAck == 0 ||
					tc.Flags()&TCPPsh == 0 || tc.Flags()&TCPSyn != 0 || !bytes.Equal(tc.Payload(), l.Payload) ||
					!bytes.Equal(p.L4Payload(), l.Payload) || len(tc.Options()) != 4 {
					t.Errorf("TCP view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
				ic := p.ICMP()
				if ic.Type() != l.TypeCode.Type() || ic.Code() != l.TypeCode.Code() || ic.Checksum() != l.Checksum ||
					ic.Ident() != l.Id || ic.Seq() != l.Seq || !bytes.Equal(p.L4Payload(), l.Payload) {
					t.Errorf("ICMPv4 view differs from gopacket")
				}
			}
			if l, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
				ic := p.ICMP()
				if ic.Type() != l.TypeCode.Type() || ic.Code() != l.TypeCode.Code() || ic.Checksum() != l.Checksum {
					t.Errorf("ICMPv6 view differs from gopacket")
				}
			}
		})
	}
}

func (m MAC) hw() net.HardwareAddr { return m[:] }
func ip4(a [4]byte) []byte         { return a[:] }
func ip6(a [16]byte) []byte        { return a[:] }

func TestViewsNilForOtherKinds(t *testing.T) {
	p := parse(frameOf(t, "arp_request"))
	if p.IPv4() != nil || p.IPv6() != nil || p.UDP() != nil || p.TCP() != nil || p.ICMP() != nil || p.L4Payload() != nil {
		t.Error("ARP packet returned an IP or L4 view")
	}
	q := parse(frameOf(t, "ipv4_later_fragment"))
	if q.IPv4() == nil || q.UDP() != nil || q.ARP() != nil {
		t.Error("non-first fragment: want IPv4 view only")
	}
	if (&Packet{Data: make([]byte, 5)}).Ethernet() != nil {
		t.Error("Ethernet view of a 5-byte frame")
	}
}

// TestViewsEndAtDatagram checks that Ethernet padding never shows up in a
// view.
func TestViewsEndAtDatagram(t *testing.T) {
	p := parse(frameOf(t, "ipv4_udp_padded"))
	if len(p.Data) != 60 {
		t.Fatalf("golden frame is %d bytes, want a padded 60", len(p.Data))
	}
	if n := len(p.IPv4()); n != 30 {
		t.Errorf("IPv4 view %d bytes, want 30", n)
	}
	if n := len(p.UDP().Payload()); n != 2 {
		t.Errorf("UDP payload %d bytes, want 2", n)
	}
}

func TestSetters(t *testing.T) {
	t.Run("ethernet", func(t *testing.T) {
		e := parse(frameOf(t, "ipv4_udp")).Ethernet()
		m1, m2 := MAC{1, 2, 3, 4, 5, 6}, MAC{7, 8, 9, 10, 11, 12}
		e.SetDst(m1)
		e.SetSrc(m2)
		e.SetEtherType(0x1234)
		if e.Dst() != m1 || e.Src() != m2 || e.EtherType() != 0x1234 {
			t.Errorf("got %v %v %#x", e.Dst(), e.Src(), e.EtherType())
		}
	})
	t.Run("arp_reply_in_place", func(t *testing.T) {
		a := parse(frameOf(t, "arp_request")).ARP()
		me := MAC{2, 0, 0, 0, 0, 0x99}
		a.SetOp(ARPReply)
		a.SetTargetMAC(a.SenderMAC())
		a.SetTargetIP(a.SenderIP())
		a.SetSenderMAC(me)
		a.SetSenderIP([4]byte{10, 0, 0, 2})
		if a.Op() != ARPReply || a.SenderMAC() != me || a.TargetMAC() != MAC(macA) ||
			a.TargetIP() != [4]byte{10, 0, 0, 1} || a.SenderIP() != [4]byte{10, 0, 0, 2} {
			t.Error("ARP setters")
		}
	})
	t.Run("ipv6", func(t *testing.T) {
		ip := parse(frameOf(t, "ipv6_udp")).IPv6()
		ip.SetHopLimit(1)
		ip.SetSrc([16]byte{0xfe, 0x80, 15: 1})
		ip.SetDst([16]byte{0xff, 0x02, 15: 2})
		if ip.HopLimit() != 1 || ip.Src()[0] != 0xfe || ip.Dst()[15] != 2 {
			t.Error("IPv6 setters")
		}
	})
	t.Run("icmp_echo_to_reply", func(t *testing.T) {
		p := parse(frameOf(t, "ipv4_icmp_echo"))
		p.ICMP().SetTypeCode(ICMPv4EchoReply, 0)
		if p.ICMP().Type() != ICMPv4EchoReply || !p.L4ChecksumValid() {
			t.Error("echo reply rewrite")
		}
	})
}

func TestMAC(t *testing.T) {
	cases := []struct {
		in      string
		want    MAC
		wantErr bool
	}{
		{"02:00:5e:10:00:ff", MAC{2, 0, 0x5e, 0x10, 0, 0xff}, false},
		{"02-00-5E-10-00-FF", MAC{2, 0, 0x5e, 0x10, 0, 0xff}, false},
		{"0200.5e10.00ff", MAC{2, 0, 0x5e, 0x10, 0, 0xff}, false},
		{"02:00:5e:10:00", MAC{}, true},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", MAC{}, true}, // 20-byte IPoIB
		{"zz:00:5e:10:00:ff", MAC{}, true},
		{"", MAC{}, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseMAC(c.in)
			if c.wantErr {
				if !errors.Is(err, ErrBadMAC) {
					t.Errorf("err %v, want ErrBadMAC", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseMAC = %v, %v", got, err)
			}
			if s := got.String(); s != "02:00:5e:10:00:ff" {
				t.Errorf("String = %q", s)
			}
		})
	}
	t.Run("kinds", func(t *testing.T) {
		if !BroadcastMAC.IsBroadcast() || !BroadcastMAC.IsMulticast() || BroadcastMAC.IsZero() {
			t.Error("broadcast")
		}
		if m := (MAC{0x01, 0x00, 0x5e, 0, 0, 1}); !m.IsMulticast() || m.IsBroadcast() {
			t.Error("multicast")
		}
		if m := (MAC{0x02}); m.IsMulticast() || m.IsZero() || !(MAC{}).IsZero() {
			t.Error("unicast/zero")
		}
	})
}
