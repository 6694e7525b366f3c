package peephole

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/vswitch/vswitch/pipeline"
)

var (
	testClientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	testSwitchMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	testClient4   = net.IP{10, 0, 0, 1}
	testServer4   = net.IP{10, 0, 0, 53}
	testClient6   = net.ParseIP("fd00::1")
	testServer6   = net.ParseIP("fd00::53")
)

const testFrameCap = 2048

// testZones is the store every test answers from.
func testZones(t testing.TB) *DNSZones {
	t.Helper()
	z := NewDNSZones()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	soa := DNSSOA{MName: "ns.vs.local", RName: "hostmaster.vs.local", Serial: 7, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 30}
	must(z.AddZone("vs.local", soa))
	must(z.AddZone("0.10.in-addr.arpa", soa))
	must(z.AddRecord("web.vs.local", DNSTypeA, "10.0.0.80", 60))
	must(z.AddRecord("web.vs.local", DNSTypeA, "10.0.0.81", 60))
	must(z.AddRecord("web.vs.local", DNSTypeAAAA, "fd00::80", 60))
	must(z.AddRecord("80.0.0.10.in-addr.arpa.", DNSTypePTR, "web.vs.local", 60))
	must(z.AddRecord("www.vs.local", DNSTypeCNAME, "alias.vs.local", 120))
	must(z.AddRecord("alias.vs.local", DNSTypeCNAME, "web.vs.local", 120))
	must(z.AddRecord("out.vs.local", DNSTypeCNAME, "example.org", 120))
	must(z.AddRecord("a.b.deep.vs.local", DNSTypeA, "10.0.0.9", 60))
	for i := 0; i < 40; i++ {
		must(z.AddRecord("many.vs.local", DNSTypeAAAA, net.IP{0xfd, 0, 15: byte(i)}.String(), 60))
	}
	return z
}

// testFrame wraps a DNS payload in Ethernet/IP/UDP to port 53 inside a
// buffer of capacity testFrameCap.
func testFrame(t testing.TB, v6 bool, payload []byte, fragment bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: testClientMAC, DstMAC: testSwitchMAC}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	var ls []gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: testClient6, DstIP: testServer6}
		udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, udp, gopacket.Payload(payload)}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 1, Protocol: layers.IPProtocolUDP, SrcIP: testClient4, DstIP: testServer4}
		if fragment {
			ip.Flags = layers.IPv4MoreFragments
		}
		udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, udp, gopacket.Payload(payload)}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	f := make([]byte, len(buf.Bytes()), testFrameCap)
	copy(f, buf.Bytes())
	return f
}

func packMsg(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	m.Compress = false
	return m
}

// runOne parses frame into a one-packet batch and runs the stage over it.
func runOne(s *DNSStage, b *pipeline.Batch, frame []byte) *pipeline.Packet {
	b.Len = 1
	p := &b.Pkts[0]
	p.Data = frame
	p.Reset()
	if p.Parse() {
		s.Process(b)
	}
	return p
}

// checkReply verifies the reply's L2-L4 headers and checksums and returns
// the unpacked DNS message.
func checkReply(t *testing.T, p *pipeline.Packet, v6 bool) *dns.Msg {
	t.Helper()
	if p.Verdict != pipeline.VerdictReply {
		t.Fatalf("verdict %v, want reply", p.Verdict)
	}
	r := pipeline.Packet{Data: p.Data}
	r.Reset()
	if !r.Parse() {
		t.Fatalf("reply does not parse: %v", r.Reason)
	}
	e := r.Ethernet()
	if !bytes.Equal(e[0:6], testClientMAC) || !bytes.Equal(e[6:12], testSwitchMAC) {
		t.Errorf("MACs not swapped: %x", e[:12])
	}
	if v6 {
		ip := r.IPv6()
		if s, d := ip.Src(), ip.Dst(); !net.IP(s[:]).Equal(testServer6) || !net.IP(d[:]).Equal(testClient6) {
			t.Errorf("IPv6 addresses not swapped")
		}
	} else {
		ip := r.IPv4()
		if !ip.IsChecksumValid() {
			t.Errorf("bad IPv4 header checksum")
		}
		if s, d := ip.Src(), ip.Dst(); !net.IP(s[:]).Equal(testServer4) || !net.IP(d[:]).Equal(testClient4) {
			t.Errorf("IPv4 addresses not swapped")
		}
	}
	u := r.UDP()
	if u.SrcPort() != 53 || u.DstPort() != 40000 {
		t.Errorf("ports %d->%d", u.SrcPort(), u.DstPort())
	}
	if u.Checksum() == 0 || !r.L4ChecksumValid() {
		t.Errorf("bad UDP checksum %#04x", u.Checksum())
	}
	m := new(dns.Msg)
	if err := m.Unpack(u.Payload()); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	if !m.Response || !m.Authoritative || m.RecursionAvailable || m.Truncated || m.Opcode != dns.OpcodeQuery {
		t.Errorf("flags: %+v", m.MsgHdr)
	}
	return m
}

func TestDNSStageAnswers(t *testing.T) {
	zones := testZones(t)
	edns := func(m *dns.Msg, size uint16) *dns.Msg { m.SetEdns0(size, false); return m }
	tests := []struct {
		name    string
		q       *dns.Msg
		rcode   int
		answers []string // RR strings, TTL and class included
		soa     bool
		opt     bool
	}{
		{name: "A", q: query("web.vs.local.", dns.TypeA), answers: []string{
			"web.vs.local.\t60\tIN\tA\t10.0.0.80", "web.vs.local.\t60\tIN\tA\t10.0.0.81"}},
		{name: "AAAA", q: query("web.vs.local.", dns.TypeAAAA), answers: []string{"web.vs.local.\t60\tIN\tAAAA\tfd00::80"}},
		{name: "PTR", q: query("80.0.0.10.in-addr.arpa.", dns.TypePTR), answers: []string{"80.0.0.10.in-addr.arpa.\t60\tIN\tPTR\tweb.vs.local."}},
		{name: "CNAME chain", q: query("www.vs.local.", dns.TypeA), answers: []string{
			"www.vs.local.\t120\tIN\tCNAME\talias.vs.local.",
			"alias.vs.local.\t120\tIN\tCNAME\tweb.vs.local.",
			"web.vs.local.\t60\tIN\tA\t10.0.0.80", "web.vs.local.\t60\tIN\tA\t10.0.0.81"}},
		{name: "CNAME out of zone", q: query("out.vs.local.", dns.TypeA), answers: []string{"out.vs.local.\t120\tIN\tCNAME\texample.org."}},
		{name: "NXDOMAIN", q: query("nope.vs.local.", dns.TypeA), rcode: dns.RcodeNameError, soa: true},
		{name: "NODATA", q: query("web.vs.local.", dns.TypePTR), soa: true},
		{name: "NODATA MX", q: query("web.vs.local.", dns.TypeMX), soa: true},
		{name: "NXDOMAIN TXT", q: query("nope.vs.local.", dns.TypeTXT), rcode: dns.RcodeNameError, soa: true},
		{name: "NODATA empty non-terminal", q: query("deep.vs.local.", dns.TypeA), soa: true},
		{name: "case-insensitive", q: query("WeB.Vs.LoCaL.", dns.TypeA), answers: []string{
			"WeB.Vs.LoCaL.\t60\tIN\tA\t10.0.0.80", "WeB.Vs.LoCaL.\t60\tIN\tA\t10.0.0.81"}},
		{name: "EDNS0 fits", q: edns(query("many.vs.local.", dns.TypeAAAA), 1400), opt: true},
		{name: "EDNS0 small", q: edns(query("web.vs.local.", dns.TypeA), 512), opt: true, answers: []string{
			"web.vs.local.\t60\tIN\tA\t10.0.0.80", "web.vs.local.\t60\tIN\tA\t10.0.0.81"}},
	}
	for _, v6 := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{false: "/ipv4", true: "/ipv6"}[v6], func(t *testing.T) {
				s := NewDNSStage(zones)
				var b pipeline.Batch
				p := runOne(s, &b, testFrame(t, v6, packMsg(t, tc.q), false))
				m := checkReply(t, p, v6)
				if m.Id != tc.q.Id || len(m.Question) != 1 || m.Question[0] != tc.q.Question[0] {
					t.Errorf("id/question: %v %v", m.Id, m.Question)
				}
				if m.Rcode != tc.rcode {
					t.Errorf("rcode %d, want %d", m.Rcode, tc.rcode)
				}
				if tc.answers != nil {
					var got []string
					for _, rr := range m.Answer {
						got = append(got, rr.String())
					}
					if len(got) != len(tc.answers) {
						t.Fatalf("answers %q, want %q", got, tc.answers)
					}
					for i := range got {
						if got[i] != tc.answers[i] {
							t.Errorf("answer %d: %q, want %q", i, got[i], tc.answers[i])
						}
					}
				}
				if tc.name == "EDNS0 fits" && len(m.Answer) != 40 {
					t.Errorf("%d answers, want 40", len(m.Answer))
				}
				if tc.soa {
					if len(m.Answer) != 0 || len(m.Ns) != 1 {
						t.Fatalf("answer %v ns %v", m.Answer, m.Ns)
					}
					soa, ok := m.Ns[0].(*dns.SOA)
					if !ok || soa.Hdr.Name != "vs.local." || soa.Ns != "ns.vs.local." || soa.Mbox != "hostmaster.vs.local." ||
						soa.Serial != 7 || soa.Minttl != 30 || soa.Hdr.Ttl != 30 {
						t.Errorf("authority %v", m.Ns[0])
					}
				} else if len(m.Ns) != 0 {
					t.Errorf("unexpected authority %v", m.Ns)
				}
				if opt := m.IsEdns0(); (opt != nil) != tc.opt {
					t.Errorf("OPT %v, want %v", opt, tc.opt)
				}
				st := s.Stats()
				if st.Answered != 1 {
					t.Errorf("stats %+v", st)
				}
				if tc.rcode == dns.RcodeNameError && st.NXDomain != 1 || tc.soa && tc.rcode == 0 && st.NoData != 1 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

// TestDNSStageTailedQuery: a large query whose end is still in the
// sender's buffer (pipeline.Packet.Tail) is answered from the whole query.
func TestDNSStageTailedQuery(t *testing.T) {
	q := query("web.vs.local.", dns.TypeA)
	q.SetEdns0(1400, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 600)})
	frame := testFrame(t, false, packMsg(t, q), false)
	if len(frame) < 600 {
		t.Fatalf("query frame only %d bytes", len(frame))
	}
	s := NewDNSStage(testZones(t))
	var b pipeline.Batch
	b.Len = 1
	p := &b.Pkts[0]
	buf := make([]byte, 2048)
	copy(buf, frame[:192])
	p.Data = buf[:len(frame)]
	p.Reset()
	p.Tail = frame[192:]
	if !p.Parse() {
		t.Fatalf("parse: %v", p.Reason)
	}
	s.Process(&b)
	m := checkReply(t, p, false)
	if len(m.Answer) != 2 || m.Id != q.Id {
		t.Fatalf("reply %v", m)
	}
}

func TestDNSStagePasses(t *testing.T) {
	zones := testZones(t)
	compressed := func() []byte {
		// Question name "web" + pointer to offset 12 is the shape; any
		// pointer in the question must be refused.
		b := packMsg(t, query("web.vs.local.", dns.TypeA))
		q := append([]byte{}, b[:12]...)
		q = append(q, 3, 'w', 'e', 'b', 0xc0, 12, 0, 1, 0, 1)
		return q
	}
	multi := func() []byte {
		m := query("web.vs.local.", dns.TypeA)
		m.Question = append(m.Question, dns.Question{Name: "web.vs.local.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
		return packMsg(t, m)
	}
	opcode := func() []byte {
		m := query("web.vs.local.", dns.TypeA)
		m.Opcode = dns.OpcodeStatus
		return packMsg(t, m)
	}
	small := func() []byte { return packMsg(t, query("many.vs.local.", dns.TypeAAAA)) }
	tests := []struct {
		name     string
		payload  []byte
		fragment bool
		reason   DNSPassReason
	}{
		{"outside zone", packMsg(t, query("example.org.", dns.TypeA)), false, DNSPassOutsideZone},
		{"too big for 512", small(), false, DNSPassTooBig},
		{"compression pointer", compressed(), false, DNSPassCompressedQuestion},
		{"multiple questions", multi(), false, DNSPassMultiQuestion},
		{"opcode STATUS", opcode(), false, DNSPassNotQuery},
		{"fragment", packMsg(t, query("web.vs.local.", dns.TypeA)), true, DNSPassFragment},
		{"type SOA", packMsg(t, query("vs.local.", dns.TypeSOA)), false, DNSPassUnsupportedType},
		{"type NS", packMsg(t, query("vs.local.", dns.TypeNS)), false, DNSPassUnsupportedType},
		{"type CNAME", packMsg(t, query("www.vs.local.", dns.TypeCNAME)), false, DNSPassUnsupportedType},
		{"type AXFR", packMsg(t, query("vs.local.", dns.TypeAXFR)), false, DNSPassUnsupportedType},
		{"type ANY", packMsg(t, query("web.vs.local.", dns.TypeANY)), false, DNSPassUnsupportedType},
	}
	for _, tc := range tests {
		for _, v6 := range []bool{false, true} {
			if tc.fragment && v6 {
				continue
			}
			t.Run(tc.name+map[bool]string{false: "/ipv4", true: "/ipv6"}[v6], func(t *testing.T) {
				s := NewDNSStage(zones)
				f := testFrame(t, v6, tc.payload, tc.fragment)
				orig := append([]byte(nil), f[:cap(f)]...)
				var b pipeline.Batch
				p := runOne(s, &b, f)
				if p.Verdict != pipeline.VerdictNone {
					t.Fatalf("verdict %v (%v), want none", p.Verdict, p.Reason)
				}
				if !bytes.Equal(p.Data, orig[:len(f)]) || !bytes.Equal(f[:cap(f)], orig) {
					t.Fatalf("frame changed")
				}
				if got := s.Stats().Passed[tc.reason]; got != 1 {
					t.Errorf("passed[%v] = %d, want 1 (%+v)", tc.reason, got, s.Stats())
				}
			})
		}
	}
}

// TestDNSStageCapacity checks that the frame's capacity bounds the answer
// even when EDNS0 would allow more.
func TestDNSStageCapacity(t *testing.T) {
	s := NewDNSStage(testZones(t))
	m := query("many.vs.local.", dns.TypeAAAA)
	m.SetEdns0(4096, false)
	f := testFrame(t, false, packMsg(t, m), false)
	f = f[: len(f) : len(f)+100]
	var b pipeline.Batch
	if p := runOne(s, &b, f); p.Verdict != pipeline.VerdictNone || s.Stats().Passed[DNSPassTooBig] != 1 {
		t.Fatalf("verdict %v stats %+v", p.Verdict, s.Stats())
	}
}

func TestDNSZonesControl(t *testing.T) {
	z := testZones(t)
	tests := []struct {
		name  string
		err   error
		field string
		call  func() error
	}{
		{"outside zone", ErrDNSNotInZone, "name", func() error { return z.AddRecord("x.example.org", DNSTypeA, "1.2.3.4", 1) }},
		{"bad A", ErrDNSBadValue, "value", func() error { return z.AddRecord("x.vs.local", DNSTypeA, "fd00::1", 1) }},
		{"bad AAAA", ErrDNSBadValue, "value", func() error { return z.AddRecord("x.vs.local", DNSTypeAAAA, "1.2.3.4", 1) }},
		{"bad type", ErrDNSBadType, "type", func() error { return z.AddRecord("x.vs.local", DNSType(15), "x", 1) }},
		{"bad ttl", ErrDNSBadTTL, "ttl", func() error { return z.AddRecord("x.vs.local", DNSTypeA, "1.2.3.4", 1<<31) }},
		{"bad name", ErrDNSBadName, "name", func() error { return z.AddRecord("a..vs.local", DNSTypeA, "1.2.3.4", 1) }},
		{"cname clash", ErrDNSCNAMEClash, "name", func() error { return z.AddRecord("web.vs.local", DNSTypeCNAME, "x.vs.local", 1) }},
		{"zone exists", ErrDNSZoneExists, "name", func() error { return z.AddZone("VS.local.", DNSSOA{MName: "a", RName: "b"}) }},
		{"bad mname", ErrDNSBadName, "mname", func() error { return z.AddZone("z", DNSSOA{MName: "a..b", RName: "b"}) }},
		{"del missing", ErrDNSNoSuchRecord, "name", func() error { return z.DelRecord("web.vs.local", DNSTypeA, "1.1.1.1") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.err) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
				t.Fatalf("err %v, want %v naming %s", err, tc.err, tc.field)
			}
		})
	}
	if err := z.DelRecord("web.vs.local", DNSTypeA, "10.0.0.80"); err != nil {
		t.Fatal(err)
	}
	s := NewDNSStage(z)
	var b pipeline.Batch
	m := checkReply(t, runOne(s, &b, testFrame(t, false, packMsg(t, query("web.vs.local.", dns.TypeA)), false)), false)
	if len(m.Answer) != 1 {
		t.Fatalf("after delete: %v", m.Answer)
	}
	zs, rs := z.List()
	if len(zs) != 2 || len(rs) == 0 {
		t.Fatalf("list: %v %v", zs, rs)
	}
}

func TestDNSZonesDelZone(t *testing.T) {
	z := testZones(t)
	soa := DNSSOA{MName: "ns.vs.local", RName: "hostmaster.vs.local", Minimum: 30}
	if err := z.AddZone("sub.vs.local", soa); err != nil {
		t.Fatal(err)
	}
	if err := z.AddRecord("h.sub.vs.local", DNSTypeA, "10.0.0.7", 60); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"missing zone", ErrDNSNoSuchZone, func() error { return z.DelZone("nope.local") }},
		{"record name, not a zone", ErrDNSNoSuchZone, func() error { return z.DelZone("web.vs.local") }},
		{"bad name", ErrDNSBadName, func() error { return z.DelZone("a..b") }},
		{"root", ErrDNSBadName, func() error { return z.DelZone(".") }},
		{"add root", ErrDNSBadName, func() error { return z.AddZone(".", soa) }},
		{"add empty", ErrDNSBadName, func() error { return z.AddZone("", soa) }},
		{"add bad", ErrDNSBadName, func() error { return z.AddZone("a b.local", soa) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.err) || !bytes.Contains([]byte(err.Error()), []byte("name")) {
				t.Fatalf("err %v, want %v naming the name", err, tc.err)
			}
		})
	}
	// Case and the trailing dot do not matter, as for AddZone.
	if err := z.DelZone("VS.Local."); err != nil {
		t.Fatalf("DelZone: %v", err)
	}
	if err := z.DelZone("vs.local"); !errors.Is(err, ErrDNSNoSuchZone) {
		t.Fatalf("second DelZone: %v", err)
	}
	zs, rs := z.List()
	if len(zs) != 2 || zs[0].Name != "0.10.in-addr.arpa" || zs[1].Name != "sub.vs.local" {
		t.Fatalf("zones after delete: %v", zs)
	}
	if len(rs) != 2 || rs[0].Name != "80.0.0.10.in-addr.arpa." || rs[1].Name != "h.sub.vs.local" {
		t.Fatalf("records after delete: %v", rs)
	}
	if err := z.AddRecord("web.vs.local", DNSTypeA, "10.0.0.80", 60); !errors.Is(err, ErrDNSNotInZone) {
		t.Fatalf("AddRecord into deleted zone: %v", err)
	}
	s := NewDNSStage(z)
	var b pipeline.Batch
	if p := runOne(s, &b, testFrame(t, false, packMsg(t, query("web.vs.local.", dns.TypeA)), false)); p.Verdict != pipeline.VerdictNone ||
		s.Stats().Passed[DNSPassOutsideZone] != 1 {
		t.Fatalf("deleted zone still answered: verdict %v stats %+v", p.Verdict, s.Stats())
	}
	m := checkReply(t, runOne(s, &b, testFrame(t, false, packMsg(t, query("h.sub.vs.local.", dns.TypeA)), false)), false)
	if len(m.Answer) != 1 {
		t.Fatalf("nested zone lost its record: %v", m.Answer)
	}
	// The zone can come back, empty.
	if err := z.AddZone("vs.local", soa); err != nil {
		t.Fatal(err)
	}
	m = checkReply(t, runOne(s, &b, testFrame(t, false, packMsg(t, query("web.vs.local.", dns.TypeA)), false)), false)
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("re-added zone: rcode %d, want NXDOMAIN", m.Rcode)
	}
}

func FuzzDNSStage(f *testing.F) {
	f.Add(packMsg(f, query("web.vs.local.", dns.TypeA)), false)
	f.Add(packMsg(f, query("www.vs.local.", dns.TypeAAAA)), true)
	f.Add(packMsg(f, query("example.org.", dns.TypeA)), false)
	e := query("nope.vs.local.", dns.TypeA)
	e.SetEdns0(1232, true)
	f.Add(packMsg(f, e), true)
	zones := testZones(f)
	// Headers are built once; each run appends the payload and fixes the
	// lengths (UDP checksum zero, which IPv4 allows and Parse ignores).
	tmpl := [2][]byte{testFrame(f, false, nil, false), testFrame(f, true, nil, false)}
	f.Fuzz(func(t *testing.T, payload []byte, v6 bool) {
		if len(payload) > 1400 {
			return
		}
		h := tmpl[0]
		if v6 {
			h = tmpl[1]
		}
		frame := make([]byte, len(h), testFrameCap)
		copy(frame, h)
		frame = append(frame, payload...)
		udpOff := 14 + 20
		if v6 {
			udpOff = 14 + 40
			binary.BigEndian.PutUint16(frame[18:], uint16(8+len(payload)))
		} else {
			binary.BigEndian.PutUint16(frame[16:], uint16(28+len(payload)))
			pipeline.IPv4(frame[14:]).UpdateChecksum()
		}
		binary.BigEndian.PutUint16(frame[udpOff+4:], uint16(8+len(payload)))
		binary.BigEndian.PutUint16(frame[udpOff+6:], 0)
		s := NewDNSStage(zones)
		var b pipeline.Batch
		p := runOne(s, &b, frame)
		if p.Verdict != pipeline.VerdictReply {
			return
		}
		m := checkReply(t, p, v6)
		if len(m.Question) != 1 || !dns.IsSubDomain("vs.local.", m.Question[0].Name) && !dns.IsSubDomain("0.10.in-addr.arpa.", m.Question[0].Name) {
			t.Fatalf("answered outside the zones: %v", m.Question)
		}
	})
}

// BenchmarkDNSAnswerA answers one A query per iteration. Each iteration
// first restores the query frame from a template (a copy of about 80
// bytes, included in the time) and parses it.
func BenchmarkDNSAnswerA(b *testing.B) {
	s := NewDNSStage(testZones(b))
	tmpl := testFrame(b, false, packMsg(b, query("web.vs.local.", dns.TypeA)), false)
	frame := make([]byte, len(tmpl), testFrameCap)
	var batch pipeline.Batch
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		frame = frame[:len(tmpl)]
		copy(frame, tmpl)
		if p := runOne(s, &batch, frame); p.Verdict != pipeline.VerdictReply {
			b.Fatal("not answered")
		}
	}
}

// FuzzDNSNotDNSPort: the stage's shortcut agrees with answer. Whenever
// notDNSPort says a parsed frame is not DNS, answer would have passed it
// with reason DNSPassNotDNS and left it untouched.
func FuzzDNSNotDNSPort(f *testing.F) {
	f.Add(testFrame(f, false, packMsg(f, query("web.vs.local.", dns.TypeA)), false))
	f.Add(testFrame(f, true, nil, false))
	other := testFrame(f, false, nil, false)
	other[14+20+3] = 9 // UDP to port 9
	f.Add(other)
	tcp := append([]byte(nil), other...)
	tcp[14+9] = 6 // the same header read as TCP
	f.Add(tcp)
	s := NewDNSStage(testZones(f))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p pipeline.Packet
		p.Data = append([]byte(nil), frame...)
		p.Reset()
		if !p.Parse() || !notDNSPort(&p) {
			return
		}
		before := string(p.Data)
		out, why := s.answer(s.zones.snap.Load(), &p)
		if out != dnsOutPass || why != DNSPassNotDNS {
			t.Fatalf("notDNSPort said not DNS, answer said %v/%v", out, why)
		}
		if string(p.Data) != before || p.Verdict != pipeline.VerdictNone {
			t.Fatal("answer touched a frame it passed")
		}
	})
}
