package pipeline

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func parse(frame []byte) *Packet {
	p := &Packet{Data: frame}
	p.Reset()
	p.Parse()
	return p
}

func TestParseGolden(t *testing.T) {
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			p := &Packet{Data: g.frame}
			p.Reset()
			if !p.Parse() {
				t.Fatalf("Parse = false, reason %v", p.Reason)
			}
			if p.Verdict != VerdictNone || p.Reason != DropNone {
				t.Errorf("verdict %v reason %v after a good parse", p.Verdict, p.Reason)
			}
			if p.Flags != g.flags {
				t.Errorf("Flags = %#x, want %#x", p.Flags, g.flags)
			}
			if p.VLAN != g.vlan || p.EtherType != g.et {
				t.Errorf("VLAN, EtherType = %d, %#x, want %d, %#x", p.VLAN, p.EtherType, g.vlan, g.et)
			}
			if p.L3Off != g.l3off || p.L4Off != g.l4off || p.L4Proto != g.proto || p.L3Len != g.l3len {
				t.Errorf("L3Off, L4Off, L4Proto, L3Len = %d, %d, %d, %d, want %d, %d, %d, %d",
					p.L3Off, p.L4Off, p.L4Proto, p.L3Len, g.l3off, g.l4off, g.proto, g.l3len)
			}
			checkAgainstGopacket(t, g.frame, p)
			checkInvariants(t, p, true)
		})
	}
}

// checkAgainstGopacket compares the parsed offsets with where gopacket's
// decoder found the network and transport layers.
func checkAgainstGopacket(t *testing.T, frame []byte, p *Packet) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	off := func(l gopacket.Layer) int { return cap(frame) - cap(l.LayerContents()) }
	if nl := pkt.NetworkLayer(); nl != nil && p.Flags&(FlagIPv4|FlagIPv6) != 0 {
		if got := off(nl); got != int(p.L3Off) {
			t.Errorf("gopacket network layer at %d, L3Off %d", got, p.L3Off)
		}
	}
	if arp := pkt.Layer(layers.LayerTypeARP); arp != nil && p.Flags&FlagARP != 0 {
		if got := off(arp); got != int(p.L3Off) {
			t.Errorf("gopacket ARP at %d, L3Off %d", got, p.L3Off)
		}
	}
	if p.Flags&FlagL4 == 0 {
		return
	}
	var l4 gopacket.Layer
	switch p.L4Proto {
	case ProtoTCP:
		l4 = pkt.Layer(layers.LayerTypeTCP)
	case ProtoUDP:
		l4 = pkt.Layer(layers.LayerTypeUDP)
	case ProtoICMP:
		l4 = pkt.Layer(layers.LayerTypeICMPv4)
	case ProtoICMPv6:
		l4 = pkt.Layer(layers.LayerTypeICMPv6)
	}
	if l4 == nil {
		// gopacket does not decode L4 in fragments, nor past an IPv6
		// fragment header, even an atomic one.
		if p.Flags&FlagFragment == 0 && pkt.Layer(layers.LayerTypeIPv6Fragment) == nil {
			t.Errorf("gopacket found no L4 layer for proto %d", p.L4Proto)
		}
		return
	}
	if got := off(l4); got != int(p.L4Off) {
		t.Errorf("gopacket L4 at %d, L4Off %d", got, p.L4Off)
	}
}

// checkInvariants checks what every caller of Parse relies on, and that
// taking the views of the packet stays inside the frame.
func checkInvariants(t testing.TB, p *Packet, ok bool) {
	t.Helper()
	if !ok {
		if p.Reason == DropNone || p.Verdict != VerdictDrop {
			t.Fatalf("failed parse left verdict %v reason %v", p.Verdict, p.Reason)
		}
		return
	}
	if p.Reason != DropNone || p.Verdict != VerdictNone {
		t.Fatalf("good parse set verdict %v reason %v", p.Verdict, p.Reason)
	}
	n := len(p.Data)
	l3 := p.Flags & (FlagIPv4 | FlagIPv6 | FlagARP)
	if l3&(l3-1) != 0 {
		t.Fatalf("more than one L3 flag: %#x", p.Flags)
	}
	if int(p.L3Off) > n || int(p.L3Off)+int(p.L3Len) > n {
		t.Fatalf("L3Off %d + L3Len %d past frame of %d", p.L3Off, p.L3Len, n)
	}
	if l3 == 0 && (p.L3Len != 0 || p.Flags&(FlagL4|FlagFragment|FlagIPOptions|FlagIPv6Ext) != 0) {
		t.Fatalf("L3 details without an L3 header: flags %#x L3Len %d", p.Flags, p.L3Len)
	}
	end := int(p.L3Off) + int(p.L3Len)
	if p.L4Off != 0 && (p.L4Off <= p.L3Off || int(p.L4Off) > end) {
		t.Fatalf("L4Off %d outside L3 [%d, %d]", p.L4Off, p.L3Off, end)
	}
	if p.Flags&FlagL4 != 0 {
		var min int
		switch p.L4Proto {
		case ProtoTCP:
			min = TCPMinHeaderLen
		case ProtoUDP:
			min = UDPHeaderLen
		case ProtoICMP, ProtoICMPv6:
			min = ICMPHeaderLen
		}
		if min == 0 || p.L4Off == 0 || int(p.L4Off)+min > end {
			t.Fatalf("FlagL4 with proto %d at %d..%d", p.L4Proto, p.L4Off, end)
		}
	}
	// The views and everything that reads through them must stay in bounds.
	if e := p.Ethernet(); e == nil {
		t.Fatal("no Ethernet view")
	} else {
		_, _, _ = e.Dst(), e.Src(), e.EtherType()
	}
	if a := p.ARP(); a != nil {
		_, _, _, _, _ = a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP()
	}
	if ip := p.IPv4(); ip != nil {
		_, _, _, _ = ip.Src(), ip.Dst(), ip.Options(), ip.Payload()
		_, _ = ip.CalculateChecksum(), ip.IsChecksumValid()
	}
	if ip := p.IPv6(); ip != nil {
		_, _, _ = ip.Src(), ip.Dst(), ip.Payload()
	}
	if u := p.UDP(); u != nil {
		_, _ = u.Length(), u.Payload()
	}
	if tc := p.TCP(); tc != nil {
		_, _ = tc.Options(), tc.Payload()
	}
	if ic := p.ICMP(); ic != nil {
		_, _, _ = ic.Type(), ic.Seq(), ic.Body()
	}
	_ = p.L4Payload()
	_, _ = p.ComputeL4Checksum()
	_ = p.L4ChecksumValid()
}

// frameOf returns a golden frame by name.
func frameOf(t *testing.T, name string) []byte {
	t.Helper()
	for _, g := range goldens(t) {
		if g.name == name {
			return g.frame
		}
	}
	t.Fatalf("no golden frame %q", name)
	return nil
}

func TestParseMalformed(t *testing.T) {
	be := binary.BigEndian
	type mutate func(f []byte) []byte
	cases := []struct {
		name   string
		base   string // golden frame to start from
		mutate mutate
		want   DropReason
	}{
		{"empty", "ipv4_udp", func(f []byte) []byte { return f[:0] }, DropTruncated},
		{"short_ethernet", "ipv4_udp", func(f []byte) []byte { return f[:13] }, DropTruncated},
		{"vlan_tag_cut", "vlan_ipv4_udp", func(f []byte) []byte { return f[:16] }, DropTruncated},
		{"double_vlan", "vlan_ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], 0x8100); return f }, DropBadVLAN},
		{"vlan_then_qinq", "vlan_ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], 0x88a8); return f }, DropBadVLAN},
		{"qinq_outer", "vlan_ipv4_udp", func(f []byte) []byte { be.PutUint16(f[12:], 0x88a8); return f }, DropBadVLAN},
		{"old_qinq_outer", "vlan_ipv4_udp", func(f []byte) []byte { be.PutUint16(f[12:], 0x9100); return f }, DropBadVLAN},
		{"arp_truncated", "arp_request", func(f []byte) []byte { return f[:14+27] }, DropBadARP},
		{"arp_not_ethernet", "arp_request", func(f []byte) []byte { be.PutUint16(f[14:], 6); return f }, DropBadARP},
		{"arp_not_ipv4", "arp_request", func(f []byte) []byte { be.PutUint16(f[16:], 0x86dd); return f }, DropBadARP},
		{"arp_hlen", "arp_request", func(f []byte) []byte { f[18] = 8; return f }, DropBadARP},
		{"arp_plen", "arp_request", func(f []byte) []byte { f[19] = 16; return f }, DropBadARP},
		{"ipv4_cut_in_header", "ipv4_udp", func(f []byte) []byte { return f[:14+19] }, DropTruncated},
		{"ipv4_version", "ipv4_udp", func(f []byte) []byte { f[14] = 0x65; return f }, DropBadIPv4Header},
		{"ipv4_ihl_0", "ipv4_udp", func(f []byte) []byte { f[14] = 0x40; return f }, DropBadIPv4Header},
		{"ipv4_ihl_4", "ipv4_udp", func(f []byte) []byte { f[14] = 0x44; return f }, DropBadIPv4Header},
		{"ipv4_ihl_past_frame", "ipv4_udp_padded", func(f []byte) []byte { f[14] = 0x4f; return f }, DropTruncated},
		{"ipv4_ihl_past_total_len", "ipv4_tcp", func(f []byte) []byte { f[14] = 0x4f; be.PutUint16(f[16:], 50); return f }, DropBadIPv4Len},
		{"ipv4_total_len_below_header", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], 19); return f }, DropBadIPv4Len},
		{"ipv4_total_len_below_options", "ipv4_options_udp", func(f []byte) []byte { be.PutUint16(f[16:], 20); return f }, DropBadIPv4Len},
		{"ipv4_total_len_past_frame", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], uint16(len(f)-14+1)); return f }, DropBadIPv4Len},
		{"ipv4_total_len_max", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], 0xffff); return f }, DropBadIPv4Len},
		{"ipv4_total_len_cuts_udp", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[16:], 24); return f }, DropBadL4},
		{"ipv4_total_len_cuts_tcp", "ipv4_tcp", func(f []byte) []byte { be.PutUint16(f[16:], 20+19); return f }, DropBadL4},
		{"ipv4_total_len_cuts_icmp", "ipv4_icmp_echo", func(f []byte) []byte { be.PutUint16(f[16:], 20+4); return f }, DropBadL4},
		{"ipv4_first_fragment_tiny_tcp", "ipv4_tcp", func(f []byte) []byte {
			f[14+6] = 0x20 // MF, offset 0
			be.PutUint16(f[16:], 20+16)
			return f
		}, DropBadL4},
		{"udp_len_below_8", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[34+4:], 7); return f }, DropBadL4},
		{"udp_len_0", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[34+4:], 0); return f }, DropBadL4},
		{"udp_len_past_ip_payload", "ipv4_udp_padded", func(f []byte) []byte { be.PutUint16(f[34+4:], 11); return f }, DropBadL4},
		{"udp6_len_past_ip_payload", "ipv6_udp", func(f []byte) []byte { be.PutUint16(f[54+4:], 8+21); return f }, DropBadL4},
		{"first_fragment_udp_len_below_8", "ipv4_first_fragment", func(f []byte) []byte { be.PutUint16(f[34+4:], 4); return f }, DropBadL4},
		{"tcp_doff_0", "ipv4_tcp", func(f []byte) []byte { f[34+12] = 0x00; return f }, DropBadL4},
		{"tcp_doff_4", "ipv4_tcp", func(f []byte) []byte { f[34+12] = 0x40; return f }, DropBadL4},
		{"tcp_doff_past_payload", "ipv4_tcp", func(f []byte) []byte { be.PutUint16(f[16:], 20+30); f[34+12] = 0xf0; return f }, DropBadL4},
		{"tcp6_doff_past_payload", "ipv6_tcp", func(f []byte) []byte { be.PutUint16(f[18:], 40); f[54+12] = 0xb0; return f }, DropBadL4},
		{"ipv6_cut_in_header", "ipv6_udp", func(f []byte) []byte { return f[:14+39] }, DropTruncated},
		{"ipv6_version", "ipv6_udp", func(f []byte) []byte { f[14] = 0x40; return f }, DropBadIPv6Header},
		{"ipv6_payload_len_past_frame", "ipv6_udp", func(f []byte) []byte { be.PutUint16(f[18:], uint16(len(f)-54+1)); return f }, DropBadIPv6Len},
		{"ipv6_payload_len_max", "ipv6_udp", func(f []byte) []byte { be.PutUint16(f[18:], 0xffff); return f }, DropBadIPv6Len},
		{"ipv6_payload_len_cuts_udp", "ipv6_udp", func(f []byte) []byte { be.PutUint16(f[18:], 7); return f }, DropBadL4},
		{"ipv6_payload_len_cuts_icmpv6", "ipv6_icmpv6_echo", func(f []byte) []byte { be.PutUint16(f[18:], 4); return f }, DropBadL4},
		{"ipv6_ext_len_past_end", "ipv6_ext_chain_udp", func(f []byte) []byte { f[54+1] = 200; return f }, DropBadIPv6Ext},
		{"ipv6_ext_routing_past_end", "ipv6_ext_chain_udp", func(f []byte) []byte { f[54+16+1] = 50; return f }, DropBadIPv6Ext},
		{"ipv6_ah_len_past_end", "ipv6_ah_tcp", func(f []byte) []byte { f[54+1] = 100; return f }, DropBadIPv6Ext},
		{"ipv6_ext_chain_past_payload_len", "ipv6_ext_chain_udp", func(f []byte) []byte { be.PutUint16(f[18:], 8+8+20); return f }, DropBadIPv6Ext},
		{"ipv6_ext_header_cut", "ipv6_ext_chain_udp", func(f []byte) []byte { be.PutUint16(f[18:], 8+4); return f }, DropBadIPv6Ext},
		{"ipv6_ext_chain_ends_in_ext", "ipv6_udp", func(f []byte) []byte {
			f[14+6] = ProtoDstOpts // claims a header where the UDP header is; its length byte is the port's low byte
			f[54+1] = 0xff
			return f
		}, DropBadIPv6Ext},
		{"ipv6_hop_by_hop_not_first", "ipv6_ext_chain_udp", func(f []byte) []byte { f[54] = ProtoHopByHop; return f }, DropBadIPv6Ext},
		{"ipv6_ext_chain_too_long", "ipv6_udp", func(f []byte) []byte {
			// Nine 8-byte destination options headers, all inside the payload.
			f = append(f[:54:54], make([]byte, 9*8+8)...)
			f[14+6] = ProtoDstOpts
			be.PutUint16(f[18:], 9*8+8)
			for i := 0; i < 9; i++ {
				f[54+8*i] = ProtoDstOpts
			}
			f[54+8*8] = ProtoUDP
			be.PutUint16(f[54+9*8+4:], 8)
			return f
		}, DropBadIPv6Ext},
		{"ipv6_tcp_header_cut", "ipv6_ah_tcp", func(f []byte) []byte { be.PutUint16(f[18:], 24+19); return f }, DropBadL4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &Packet{Data: c.mutate(frameOf(t, c.base))}
			p.Reset()
			ok := p.Parse()
			if ok {
				t.Fatalf("Parse = true, want drop %v (flags %#x)", c.want, p.Flags)
			}
			if p.Reason != c.want {
				t.Errorf("reason %v, want %v", p.Reason, c.want)
			}
			checkInvariants(t, p, ok)
		})
	}
}

// TestParseAcceptsOddButLegal covers input that looks wrong but must be
// forwarded.
func TestParseAcceptsOddButLegal(t *testing.T) {
	be := binary.BigEndian
	cases := []struct {
		name   string
		base   string
		mutate func(f []byte) []byte
		check  func(t *testing.T, p *Packet)
	}{
		{"udp_len_shorter_than_ip_payload", "ipv4_udp", func(f []byte) []byte { be.PutUint16(f[34+4:], 10); return f },
			func(t *testing.T, p *Packet) {
				if n := len(p.UDP()); n != 10 {
					t.Errorf("UDP view %d bytes, want the 10 the UDP length says", n)
				}
			}},
		{"ipv6_atomic_fragment", "ipv6_ext_chain_udp", nil, func(t *testing.T, p *Packet) {
			if p.Flags&FlagFragment != 0 {
				t.Error("atomic fragment (offset 0, M clear) flagged as fragment")
			}
		}},
		{"ipv4_df", "ipv4_udp", func(f []byte) []byte { f[14+6] |= 0x40; return f }, func(t *testing.T, p *Packet) {
			if p.Flags&FlagFragment != 0 || !p.IPv4().DontFragment() {
				t.Errorf("DF frame: flags %#x", p.Flags)
			}
		}},
		{"icmp_under_ipv6_is_unknown", "ipv6_udp", func(f []byte) []byte { f[14+6] = ProtoICMP; return f }, func(t *testing.T, p *Packet) {
			if p.Flags&FlagL4 != 0 || p.L4Proto != ProtoICMP {
				t.Errorf("flags %#x proto %d", p.Flags, p.L4Proto)
			}
		}},
		{"ipv6_esp", "ipv6_udp", func(f []byte) []byte { f[14+6] = ProtoESP; return f }, func(t *testing.T, p *Packet) {
			if p.Flags&FlagL4 != 0 || p.L4Off != 54 {
				t.Errorf("flags %#x L4Off %d", p.Flags, p.L4Off)
			}
		}},
		{"llc_length_field", "unknown_ethertype_lldp", func(f []byte) []byte { be.PutUint16(f[12:], 46); return f }, nil},
		{"priority_tag_vlan_0", "vlan_ipv4_udp", func(f []byte) []byte { be.PutUint16(f[14:], 0xe000); return f }, func(t *testing.T, p *Packet) {
			if p.Flags&FlagVLAN == 0 || p.VLAN != 0 {
				t.Errorf("flags %#x VLAN %d", p.Flags, p.VLAN)
			}
		}},
		{"ethernet_only", "unknown_ethertype_lldp", func(f []byte) []byte { return f[:14] }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := frameOf(t, c.base)
			if c.mutate != nil {
				f = c.mutate(f)
			}
			p := &Packet{Data: f}
			p.Reset()
			ok := p.Parse()
			if !ok {
				t.Fatalf("Parse = false, reason %v", p.Reason)
			}
			checkInvariants(t, p, ok)
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

// TestParseTruncatedEverywhere cuts every golden frame at every length:
// anything shorter than the datagram the headers announce must be dropped
// for a length reason, anything longer (Ethernet padding) must parse the
// same as the whole frame.
func TestParseTruncatedEverywhere(t *testing.T) {
	lengthReasons := map[DropReason]bool{DropTruncated: true, DropBadARP: true, DropBadIPv4Len: true, DropBadIPv6Len: true}
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			full := parse(g.frame)
			need := int(full.L3Off) + int(full.L3Len)
			if full.Flags&(FlagIPv4|FlagIPv6|FlagARP) == 0 {
				need = int(full.L3Off)
			}
			for n := 0; n < len(g.frame); n++ {
				p := &Packet{Data: g.frame[:n]}
				p.Reset()
				ok := p.Parse()
				checkInvariants(t, p, ok)
				switch {
				case n < need && ok:
					t.Fatalf("cut at %d of %d (need %d): Parse = true", n, len(g.frame), need)
				case n < need && !lengthReasons[p.Reason]:
					t.Fatalf("cut at %d: reason %v, want a length reason", n, p.Reason)
				case n >= need && !ok:
					t.Fatalf("cut at %d inside padding: dropped %v", n, p.Reason)
				case n >= need && (p.Flags != full.Flags || p.L4Off != full.L4Off || p.L3Len != full.L3Len):
					t.Fatalf("cut at %d inside padding parsed differently", n)
				}
			}
		})
	}
}

func TestParseRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 2048)
	ethertypes := []uint16{0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x1234}
	for _, name := range []string{"raw", "ethertype_forced", "ip_version_forced"} {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 20000; i++ {
				n := rng.Intn(len(buf))
				f := buf[:n]
				rng.Read(f)
				if name != "raw" && n >= 14 {
					binary.BigEndian.PutUint16(f[12:], ethertypes[rng.Intn(len(ethertypes))])
				}
				if name == "ip_version_forced" && n >= 15 {
					f[14] = f[14]&0x0f | []byte{0x40, 0x60}[rng.Intn(2)]
					if n >= 20 { // keep lengths small enough to fit sometimes
						binary.BigEndian.PutUint16(f[16:], uint16(rng.Intn(n)))
						binary.BigEndian.PutUint16(f[18:], uint16(rng.Intn(n)))
					}
				}
				p := &Packet{Data: f}
				p.Reset()
				checkInvariants(t, p, p.Parse())
			}
		})
	}
}

// TestParseResetsFields makes sure nothing of a previous parse survives
// into the next one, since workers reuse Packet values.
func TestParseResetsFields(t *testing.T) {
	p := &Packet{Data: frameOf(t, "vlan_ipv6_neighbor_solicit")}
	p.Reset()
	if !p.Parse() {
		t.Fatal(p.Reason)
	}
	p.Data = frameOf(t, "unknown_ethertype_lldp")
	if !p.Parse() {
		t.Fatal(p.Reason)
	}
	if p.Flags != 0 || p.VLAN != 0 || p.L3Len != 0 || p.L4Off != 0 || p.L4Proto != 0 {
		t.Errorf("stale parse fields: %+v", *p)
	}
}

func TestParseAllocs(t *testing.T) {
	for _, g := range goldens(t) {
		p := &Packet{Data: g.frame}
		if n := testing.AllocsPerRun(100, func() { p.Parse() }); n != 0 {
			t.Errorf("%s: %v allocs per Parse", g.name, n)
		}
	}
}
