package peephole

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/vswitch/vswitch/pipeline"
)

var (
	glMAC1 = pipeline.MAC{0x02, 0, 0, 0, 0x11, 0x01}
	glMAC2 = pipeline.MAC{0x02, 0, 0, 0, 0x11, 0x02}
)

func glAddr(ip netip.Addr) [16]byte { return ip.As16() }

// glLearn learns through the datapath entry point and returns the counts.
func glLearn(g *GleanTable, vlan uint16, ip netip.Addr, mac pipeline.MAC, now uint32) gleanCounts {
	var c gleanCounts
	g.learn(vlan, glAddr(ip), mac, now, &c)
	return c
}

func glLookup(g *GleanTable, vlan uint16, ip netip.Addr) (pipeline.MAC, bool) {
	if ip.Is4() {
		return g.lookup4(vlan, ip.As4())
	}
	return g.lookup6(vlan, ip.As16())
}

func TestGleanTableLearnLookup(t *testing.T) {
	var clock atomic.Uint32
	g := NewGleanTable(64, &clock)
	if g.Size() != 64 || g.Len() != 0 {
		t.Fatalf("size %d len %d", g.Size(), g.Len())
	}
	steps := []struct {
		name string
		vlan uint16
		ip   netip.Addr
		mac  pipeline.MAC
		now  uint32
		want gleanCounts
	}{
		{"new v4", 0, nbrHost4, glMAC1, 10, gleanCounts{learned: 1}},
		{"refresh v4", 0, nbrHost4, glMAC1, 11, gleanCounts{refreshed: 1}},
		{"same v4 other vlan", nbrVLAN, nbrHost4, glMAC2, 11, gleanCounts{learned: 1}},
		{"new v6", 0, nbrHost6, glMAC2, 12, gleanCounts{learned: 1}},
		{"moved v6", 0, nbrHost6, glMAC1, 13, gleanCounts{learned: 1}},
	}
	for _, st := range steps {
		if got := glLearn(g, st.vlan, st.ip, st.mac, st.now); got != st.want {
			t.Errorf("%s: counts %+v, want %+v", st.name, got, st.want)
		}
	}
	for _, tc := range []struct {
		vlan uint16
		ip   netip.Addr
		mac  pipeline.MAC
		ok   bool
	}{
		{0, nbrHost4, glMAC1, true},
		{nbrVLAN, nbrHost4, glMAC2, true},
		{7, nbrHost4, pipeline.MAC{}, false},
		{0, nbrHost6, glMAC1, true},
		{nbrVLAN, nbrHost6, pipeline.MAC{}, false},
		{0, nbrOther4, pipeline.MAC{}, false},
		// The v4-mapped form of an IPv4 key is not an IPv6 key.
		{0, netip.AddrFrom16(nbrHost4.As16()), pipeline.MAC{}, false},
	} {
		if mac, ok := glLookup(g, tc.vlan, tc.ip); ok != tc.ok || mac != tc.mac {
			t.Errorf("lookup %d %v = %v %v, want %v %v", tc.vlan, tc.ip, mac, ok, tc.mac, tc.ok)
		}
	}
	if g.Len() != 3 {
		t.Errorf("Len %d, want 3", g.Len())
	}
	// A VLAN beyond 802.1Q's range is neither learned nor found.
	if glLearn(g, 4095, nbrOther4, glMAC1, 1) != (gleanCounts{}) {
		t.Error("learned in VLAN 4095")
	}
	if _, ok := glLookup(g, 4095, nbrOther4); ok {
		t.Error("found in VLAN 4095")
	}
}

// TestGleanTableReplacement fills one bucket and checks that the binding
// seen longest ago makes room, counted.
func TestGleanTableReplacement(t *testing.T) {
	var clock atomic.Uint32
	g := NewGleanTable(1, &clock) // rounds up to one bucket
	if g.Size() != gleanWays {
		t.Fatalf("size %d", g.Size())
	}
	ips := make([]netip.Addr, gleanWays+2)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)})
	}
	for i := range gleanWays {
		glLearn(g, 1, ips[i], glMAC1, uint32(100+i))
	}
	// Refresh the first one: now the second is the oldest.
	glLearn(g, 1, ips[0], glMAC1, 200)
	if c := glLearn(g, 1, ips[gleanWays], glMAC2, 201); c != (gleanCounts{learned: 1, replaced: 1}) {
		t.Fatalf("counts %+v", c)
	}
	if _, ok := glLookup(g, 1, ips[1]); ok {
		t.Error("oldest binding survived")
	}
	for _, i := range []int{0, 2, 3, gleanWays} {
		if _, ok := glLookup(g, 1, ips[i]); !ok {
			t.Errorf("binding %d lost", i)
		}
	}
	if g.Len() != gleanWays {
		t.Errorf("Len %d", g.Len())
	}
	// Published stats add up what the stages handed in.
	c := gleanCounts{learned: 2, refreshed: 3, replaced: 1, busy: 4}
	g.publish(&c)
	if st := g.Stats(); st != (GleanStats{Learned: 2, Refreshed: 3, Replaced: 1, Busy: 4}) || c != (gleanCounts{}) {
		t.Errorf("stats %+v, counts left %+v", st, c)
	}
}

func TestGleanTableExpireFlushDelList(t *testing.T) {
	var clock atomic.Uint32
	clock.Store(1000)
	g := NewGleanTable(256, &clock)
	glLearn(g, 0, nbrHost4, glMAC1, 100)
	glLearn(g, 0, nbrOther4, glMAC2, 200)
	glLearn(g, 3, nbrHost6, glMAC1, 300)
	glLearn(g, 0, nbrHost6, glMAC2, 400)

	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	toTime := func(s uint32) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	l := g.List(toTime)
	want := []Binding{
		{VLAN: 0, IP: nbrHost4, MAC: glMAC1, Kind: KindGleaned, LastSeen: toTime(100)},
		{VLAN: 0, IP: nbrOther4, MAC: glMAC2, Kind: KindGleaned, LastSeen: toTime(200)},
		{VLAN: 0, IP: nbrHost6, MAC: glMAC2, Kind: KindGleaned, LastSeen: toTime(400)},
		{VLAN: 3, IP: nbrHost6, MAC: glMAC1, Kind: KindGleaned, LastSeen: toTime(300)},
	}
	if len(l) != len(want) {
		t.Fatalf("List %v", l)
	}
	for i := range want {
		if l[i] != want[i] {
			t.Errorf("List[%d] = %+v, want %+v", i, l[i], want[i])
		}
	}
	if l := g.List(nil); len(l) != 4 || !l[0].LastSeen.IsZero() {
		t.Errorf("List(nil) %v", l)
	}

	if n := g.Expire(200); n != 1 {
		t.Errorf("Expire(200) = %d, want 1 (only the one seen at 100)", n)
	}
	if _, ok := glLookup(g, 0, nbrHost4); ok {
		t.Error("expired binding found")
	}
	if _, ok := glLookup(g, 0, nbrOther4); !ok {
		t.Error("binding seen at 200 expired by Expire(200)")
	}
	if g.Expire(200) != 0 || g.Len() != 3 {
		t.Errorf("second Expire removed something; Len %d", g.Len())
	}
	// The clock is at 1000: idle for more than 999 s is nothing; a clock
	// younger than the idle time expires nothing rather than wrapping.
	if n := g.ExpireIdle(999); n != 0 {
		t.Errorf("ExpireIdle(999) = %d", n)
	}
	if n := g.ExpireIdle(5000); n != 0 {
		t.Errorf("ExpireIdle(5000) with the clock at 1000 = %d", n)
	}

	if g.Del(0, nbrHost4) {
		t.Error("Del of an expired binding reported true")
	}
	if !g.Del(3, nbrHost6) {
		t.Error("Del(3, host6) = false")
	}
	if g.Del(3, nbrHost6) || g.Del(0, netip.Addr{}) || g.Del(5000, nbrHost6) {
		t.Error("Del of nothing reported true")
	}
	if _, ok := glLookup(g, 0, nbrHost6); !ok {
		t.Error("Del removed the same address in another VLAN")
	}
	// Del takes the v4-mapped form of an IPv4 address too.
	if !g.Del(0, netip.AddrFrom16(nbrOther4.As16())) {
		t.Error("Del(v4-mapped) = false")
	}
	glLearn(g, 9, nbrBound4, glMAC1, 850)
	if n := g.ExpireIdle(150); n != 1 {
		t.Errorf("ExpireIdle(150) at 1000 = %d, want 1 (seen at 400)", n)
	}
	if n := g.Flush(); n != 1 || g.Len() != 0 || len(g.List(nil)) != 0 {
		t.Errorf("Flush = %d, Len %d", n, g.Len())
	}
	// A flushed slot is reused.
	glLearn(g, 0, nbrHost4, glMAC1, 500)
	if mac, ok := glLookup(g, 0, nbrHost4); !ok || mac != glMAC1 {
		t.Errorf("relearn: %v %v", mac, ok)
	}
	if g.Now() != 1000 {
		t.Errorf("Now %d", g.Now())
	}
}

// TestGleanTableConcurrent has several workers learn and look up while the
// control path expires, deletes, flushes and lists. Each IP is only ever
// learned with MACs that name it (bytes 1-2 of the MAC are its index), so
// a torn read would show up as a MAC of another IP. Run it with -race.
func TestGleanTableConcurrent(t *testing.T) {
	var clock atomic.Uint32
	g := NewGleanTable(64, &clock) // far fewer slots than IPs: constant replacement
	const (
		nIPs     = 512
		writers  = 4
		rounds   = 3000
		vlanMask = 3
	)
	ipOf := func(i int) netip.Addr {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	macOf := func(i, w, r int) pipeline.MAC {
		return pipeline.MAC{0x02, byte(i >> 8), byte(i), byte(w), byte(r >> 8), byte(r)}
	}
	check := func(i int, vlan uint16, mac pipeline.MAC) bool {
		return mac[0] == 0x02 && int(mac[1])<<8|int(mac[2]) == i && int(mac[3]) < writers && vlan == uint16(i&vlanMask)
	}
	var stop atomic.Bool
	var wg, ctl sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c gleanCounts
			for r := range rounds {
				i := (r*7 + w*131) % nIPs
				vlan := uint16(i & vlanMask)
				g.learn(vlan, ipOf(i).As16(), macOf(i, w, r), clock.Load(), &c)
				j := (r*13 + w) % nIPs
				if mac, ok := glLookup(g, uint16(j&vlanMask), ipOf(j)); ok && !check(j, uint16(j&vlanMask), mac) {
					t.Errorf("lookup of IP %d returned %v", j, mac)
					return
				}
				if r%64 == 0 {
					g.publish(&c)
				}
			}
			g.publish(&c)
		}()
	}
	ctl.Add(1)
	go func() {
		defer ctl.Done()
		for k := 0; !stop.Load(); k++ {
			clock.Add(1)
			switch k % 4 {
			case 0:
				g.Expire(clock.Load() - 2)
			case 1:
				g.Del(uint16(k&vlanMask), ipOf(k%nIPs))
			case 2:
				for _, b := range g.List(nil) {
					a := b.IP.As16()
					i := int(a[14])<<8 | int(a[15])
					if !check(i, b.VLAN, b.MAC) || b.Kind != KindGleaned || ipOf(i) != b.IP {
						t.Errorf("List returned a torn binding %+v", b)
						return
					}
				}
			case 3:
				if k%64 == 3 {
					g.Flush()
				}
				_ = g.Len()
			}
		}
	}()
	wg.Wait()
	stop.Store(true)
	ctl.Wait()
	st := g.Stats()
	if st.Learned+st.Refreshed+st.Busy != writers*rounds {
		t.Errorf("stats %+v do not add up to %d learns", st, writers*rounds)
	}
	if st.Replaced == 0 {
		t.Errorf("no replacement in a table far smaller than its keys: %+v", st)
	}
}

func TestGleanable(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"10.0.0.1", true}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"127.0.0.1", false},
		{"224.0.0.1", false}, {"240.0.0.1", false}, {"255.255.255.255", false},
		{"2001:db8::1", true}, {"fe80::1", true}, {"::", false}, {"::1", false},
		{"ff02::1", false}, {"::ffff:10.0.0.1", false}, {"::2", true},
	} {
		a := netip.MustParseAddr(tc.ip)
		var got bool
		if a.Is4() {
			got = gleanable4(a.As4())
		} else {
			got = gleanable6(a.As16())
		}
		if got != tc.want {
			t.Errorf("%s: gleanable %v, want %v", tc.ip, got, tc.want)
		}
	}
}

// glTables returns nbrTable with an empty GleanTable attached and the
// clock it reads.
func glTables(tb testing.TB) (*BindingTable, *GleanTable, *atomic.Uint32) {
	tb.Helper()
	t := nbrTable(tb)
	clock := new(atomic.Uint32)
	clock.Store(77)
	g := NewGleanTable(256, clock)
	t.SetGlean(g)
	return t, g, clock
}

func TestBindingTableGlean(t *testing.T) {
	tb := NewBindingTable()
	if tb.Gleaned() != nil {
		t.Fatal("gleaning on by default")
	}
	g := NewGleanTable(64, new(atomic.Uint32))
	tb.SetGlean(g)
	if tb.Gleaned() != g {
		t.Fatal("Gleaned does not return the attached table")
	}
	glLearn(g, 0, nbrHost4, glMAC1, 1)
	if _, ok := tb.Lookup(0, nbrHost4); ok || tb.Len() != 0 || len(tb.List()) != 0 {
		t.Fatal("Lookup/List/Len see gleaned bindings")
	}
	tb.SetGlean(nil)
	if tb.Gleaned() != nil {
		t.Fatal("SetGlean(nil) kept the table")
	}
}

func TestARPStageGleans(t *testing.T) {
	zero := net.IPv4zero.To4()
	otherMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	mcast := net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}
	tests := []struct {
		name   string
		spec   arpSpec
		ethSrc net.HardwareAddr // Ethernet source when it differs from the sender MAC
		vlan   uint16
		learn  netip.Addr // what must be gleaned; invalid for nothing
		want   ARPStats
	}{
		{"request", arpRequest(0, nbrIP(nbrOther4)), nil, 0, nbrHost4, ARPStats{UnknownTarget: 1, Gleaned: 1}},
		{"request tagged", arpRequest(nbrVLAN, nbrIP(nbrOther4)), nil, nbrVLAN, nbrHost4, ARPStats{UnknownTarget: 1, Gleaned: 1}},
		{"request answered", arpRequest(0, nbrIP(nbrBound4)), nil, 0, nbrHost4, ARPStats{Answered: 1, Gleaned: 1}},
		{"reply", arpSpec{op: layers.ARPReply, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrOther4)}, nil, 0, nbrHost4, ARPStats{NotRequest: 1, Gleaned: 1}},
		{"gratuitous request", arpSpec{op: layers.ARPRequest, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrHost4)}, nil, 0, nbrHost4, ARPStats{Gratuitous: 1, Gleaned: 1}},
		{"gratuitous reply", arpSpec{op: layers.ARPReply, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrHost4)}, nil, 0, nbrHost4, ARPStats{NotRequest: 1, Gleaned: 1}},
		{"probe", arpSpec{op: layers.ARPRequest, srcMAC: nbrHostMAC, senderIP: zero, targetIP: nbrIP(nbrHost4)}, nil, 0, netip.Addr{}, ARPStats{Probe: 1}},
		{"other op", arpSpec{op: 3, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrOther4)}, nil, 0, netip.Addr{}, ARPStats{NotRequest: 1}},
		{"multicast sender", arpSpec{op: layers.ARPReply, srcMAC: mcast, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrOther4)}, nil, 0, netip.Addr{}, ARPStats{NotRequest: 1}},
		{"sender is not the ethernet source", arpRequest(0, nbrIP(nbrOther4)), otherMAC, 0, netip.Addr{}, ARPStats{UnknownTarget: 1}},
		{"static sender", arpSpec{op: layers.ARPReply, srcMAC: otherMAC, senderIP: nbrIP(nbrBound4), targetIP: nbrIP(nbrHost4)}, nil, 0, netip.Addr{}, ARPStats{NotRequest: 1}},
		{"static sender tagged", arpSpec{vlan: nbrVLAN, op: layers.ARPReply, srcMAC: otherMAC, senderIP: nbrIP(nbrBound4), targetIP: nbrIP(nbrHost4)}, nil, nbrVLAN, netip.Addr{}, ARPStats{NotRequest: 1}},
		{"static in another vlan only", arpSpec{vlan: 7, op: layers.ARPReply, srcMAC: otherMAC, senderIP: nbrIP(nbrBound4), targetIP: nbrIP(nbrHost4)}, nil, 7, nbrBound4, ARPStats{NotRequest: 1, Gleaned: 1}},
		{"loopback sender", arpSpec{op: layers.ARPReply, srcMAC: nbrHostMAC, senderIP: net.IP{127, 0, 0, 1}, targetIP: nbrIP(nbrHost4)}, nil, 0, netip.Addr{}, ARPStats{NotRequest: 1}},
		{"broadcast sender IP", arpSpec{op: layers.ARPReply, srcMAC: nbrHostMAC, senderIP: net.IP{255, 255, 255, 255}, targetIP: nbrIP(nbrHost4)}, nil, 0, netip.Addr{}, ARPStats{NotRequest: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bt, g, _ := glTables(t)
			s := NewARPStage(bt)
			f := arpFrame(t, tc.spec)
			if tc.ethSrc != nil {
				copy(f[6:12], tc.ethSrc)
			}
			nbrRun(t, s, f, 0)
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			l := g.List(nil)
			if !tc.learn.IsValid() {
				if len(l) != 0 {
					t.Fatalf("gleaned %v", l)
				}
				return
			}
			want := Binding{VLAN: tc.vlan, IP: tc.learn, MAC: pipeline.MAC(tc.spec.srcMAC), Kind: KindGleaned}
			if len(l) != 1 || l[0] != want {
				t.Fatalf("gleaned %v, want %v", l, want)
			}
			if st := g.Stats(); st.Learned != 1 {
				t.Errorf("glean stats %+v", st)
			}
			if b, _ := bt.Lookup(tc.vlan, nbrBound4); b.Kind != KindStatic && tc.vlan != 7 {
				t.Errorf("static binding disturbed: %+v", b)
			}
		})
	}
	t.Run("no glean table", func(t *testing.T) {
		s := NewARPStage(nbrTable(t))
		nbrRun(t, s, arpFrame(t, arpRequest(0, nbrIP(nbrOther4))), 0)
		if st := s.Stats(); st != (ARPStats{UnknownTarget: 1}) {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		bt, g, clock := glTables(t)
		s := NewARPStage(bt)
		f := arpFrame(t, arpRequest(0, nbrIP(nbrOther4)))
		nbrRun(t, s, f, 0)
		clock.Store(90)
		nbrRun(t, s, f, 0)
		if st := s.Stats(); st.Gleaned != 2 {
			t.Errorf("stats %+v", st)
		}
		if st := g.Stats(); st != (GleanStats{Learned: 1, Refreshed: 1}) {
			t.Errorf("glean stats %+v", st)
		}
		if l := g.List(func(s uint32) time.Time { return time.Unix(int64(s), 0) }); len(l) != 1 || l[0].LastSeen.Unix() != 90 {
			t.Errorf("LastSeen not refreshed: %v", l)
		}
	})
}

// arpReplyFrame is the reply gopacket builds for an answer from mac for
// target to nbrHost.
func arpReplyFrame(tb testing.TB, vlan uint16, mac pipeline.MAC, target netip.Addr) []byte {
	ls := nbrL2(nbrHW(mac), nbrHostMAC, vlan, layers.EthernetTypeARP)
	ls = append(ls, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
		SourceHwAddress: nbrHW(mac), SourceProtAddress: nbrIP(target),
		DstHwAddress: nbrHostMAC, DstProtAddress: nbrIP(nbrHost4),
	})
	return nbrSerialize(tb, ls...)
}

func TestARPStageAnswersGleaned(t *testing.T) {
	tests := []struct {
		name    string
		vlan    uint16
		learnAt uint16 // VLAN the binding was gleaned in
		target  netip.Addr
		mac     pipeline.MAC // gleaned MAC
		static  bool         // also bind target statically (to nbrBoundMAC)
		want    ARPStats
		answer  pipeline.MAC
	}{
		{"gleaned", 0, 0, nbrOther4, glMAC1, false, ARPStats{Answered: 1, Gleaned: 1}, glMAC1},
		{"gleaned tagged", nbrVLAN, nbrVLAN, nbrOther4, glMAC1, false, ARPStats{Answered: 1, Gleaned: 1}, glMAC1},
		{"gleaned in another vlan", 0, nbrVLAN, nbrOther4, glMAC1, false, ARPStats{UnknownTarget: 1, Gleaned: 1}, pipeline.MAC{}},
		{"static wins", 0, 0, netip.MustParseAddr("10.0.0.30"), glMAC1, true, ARPStats{Answered: 1, Gleaned: 1}, nbrBoundMAC},
		{"asker's own MAC", 0, 0, nbrOther4, pipeline.MAC(nbrHostMAC), false, ARPStats{SelfTarget: 1, Gleaned: 1}, pipeline.MAC{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bt, g, _ := glTables(t)
			glLearn(g, tc.learnAt, tc.target, tc.mac, 1)
			if tc.static {
				// Added after gleaning (the ARP stage would not have
				// gleaned it): the static binding answers.
				if err := bt.Add(Binding{VLAN: tc.vlan, IP: tc.target, MAC: nbrBoundMAC, Kind: KindStatic}); err != nil {
					t.Fatal(err)
				}
			}
			s := NewARPStage(bt)
			in := arpFrame(t, arpRequest(tc.vlan, nbrIP(tc.target)))
			p := nbrRun(t, s, in, 0)
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			if tc.answer.IsZero() {
				if p.Verdict != pipeline.VerdictNone || !bytes.Equal(p.Data, in) {
					t.Fatalf("verdict %v, frame changed %v", p.Verdict, !bytes.Equal(p.Data, in))
				}
				return
			}
			if want := arpReplyFrame(t, tc.vlan, tc.answer, tc.target); p.Verdict != pipeline.VerdictReply || !bytes.Equal(p.Data, want) {
				t.Fatalf("verdict %v\n got %x\nwant %x", p.Verdict, p.Data, want)
			}
		})
	}
}

// naSpec describes a Neighbor Advertisement for the gleaning tests.
type naSpec struct {
	hopLimit  uint8 // 0 means 255
	flags     uint8
	dst       netip.Addr // invalid means nbrHost6
	src       netip.Addr // invalid means target
	target    netip.Addr
	tll       net.HardwareAddr // nil: no target link-layer option
	ethSrc    net.HardwareAddr
	badSum    bool
	extraOpts layers.ICMPv6Options
}

func naGleanFrame(tb testing.TB, vlan uint16, s naSpec) []byte {
	tb.Helper()
	if s.hopLimit == 0 {
		s.hopLimit = 255
	}
	if !s.dst.IsValid() {
		s.dst = nbrHost6
	}
	if !s.src.IsValid() {
		s.src = s.target
	}
	ls := nbrL2(s.ethSrc, nbrHostMAC, vlan, layers.EthernetTypeIPv6)
	ip := &layers.IPv6{Version: 6, HopLimit: s.hopLimit, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: nbrIP(s.src), DstIP: nbrIP(s.dst)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{Flags: s.flags, TargetAddress: nbrIP(s.target), Options: s.extraOpts}
	if s.tll != nil {
		na.Options = append(na.Options, layers.ICMPv6Option{Type: layers.ICMPv6OptTargetAddress, Data: s.tll})
	}
	f := nbrSerialize(tb, append(ls, ip, icmp, na)...)
	if s.badSum {
		f[len(f)-len(na.Options)*8-24+2] ^= 0xff
	}
	return f
}

func TestNDStageGleans(t *testing.T) {
	hostMAC := pipeline.MAC(nbrHostMAC)
	otherMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	nonce := layers.ICMPv6Option{Type: 14, Data: []byte{1, 2, 3, 4, 5, 6}}
	na := func(f func(*naSpec)) []byte {
		s := naSpec{target: nbrHost6, tll: nbrHostMAC, ethSrc: nbrHostMAC, flags: 0x60}
		f(&s)
		return naGleanFrame(t, 0, s)
	}
	tests := []struct {
		name  string
		frame []byte
		vlan  uint16
		learn netip.Addr
		mac   pipeline.MAC
		want  NDStats
	}{
		{"NS with SLLAO", nsFrame(t, nsRequest(0, nbrOther6)), 0, nbrHost6, hostMAC, NDStats{UnknownTarget: 1, Gleaned: 1}},
		{"NS tagged, answered", nsFrame(t, nsRequest(nbrVLAN, nbrBound6)), nbrVLAN, nbrHost6, hostMAC, NDStats{Answered: 1, Gleaned: 1}},
		{"NS without SLLAO", nsFrame(t, nsSpec{src: nbrHost6, target: nbrOther6, noSLL: true}), 0, netip.Addr{}, pipeline.MAC{}, NDStats{UnknownTarget: 1}},
		{"DAD", nsFrame(t, nsSpec{src: netip.IPv6Unspecified(), target: nbrOther6}), 0, netip.Addr{}, pipeline.MAC{}, NDStats{Probe: 1}},
		{"NS from a static address", nsFrame(t, nsSpec{src: nbrBound6, target: nbrOther6}), 0, netip.Addr{}, pipeline.MAC{}, NDStats{UnknownTarget: 1}},
		{"NS hop limit 64", nsFrame(t, nsSpec{hopLimit: 64, src: nbrHost6, target: nbrOther6}), 0, netip.Addr{}, pipeline.MAC{}, NDStats{Malformed: 1}},
		{"NA with TLLAO", na(func(*naSpec) {}), 0, nbrHost6, hostMAC, NDStats{NotRequest: 1, Gleaned: 1}},
		{"NA with a nonce option too", na(func(s *naSpec) { s.extraOpts = layers.ICMPv6Options{nonce} }), 0, nbrHost6, hostMAC, NDStats{NotRequest: 1, Gleaned: 1}},
		{"NA unsolicited to all-nodes", na(func(s *naSpec) { s.flags, s.dst = 0x20, netip.MustParseAddr("ff02::1") }), 0, nbrHost6, hostMAC, NDStats{NotRequest: 1, Gleaned: 1}},
		{"NA without TLLAO", na(func(s *naSpec) { s.tll = nil }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA TLLAO not the ethernet source", na(func(s *naSpec) { s.ethSrc = otherMAC }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA multicast TLLAO", na(func(s *naSpec) {
			s.tll, s.ethSrc = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
		}), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA hop limit 64", na(func(s *naSpec) { s.hopLimit = 64 }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA bad checksum", na(func(s *naSpec) { s.badSum = true }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA solicited to multicast", na(func(s *naSpec) { s.dst = netip.MustParseAddr("ff02::1") }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA for a static target", na(func(s *naSpec) { s.target = nbrBound6 }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
		{"NA for a multicast target", na(func(s *naSpec) { s.target = netip.MustParseAddr("ff02::1:2") }), 0, netip.Addr{}, pipeline.MAC{}, NDStats{NotRequest: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bt, g, _ := glTables(t)
			s := NewNDStage(bt)
			nbrRun(t, s, tc.frame, 2048)
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			l := g.List(nil)
			if !tc.learn.IsValid() {
				if len(l) != 0 {
					t.Fatalf("gleaned %v", l)
				}
				return
			}
			want := Binding{VLAN: tc.vlan, IP: tc.learn, MAC: tc.mac, Kind: KindGleaned}
			if len(l) != 1 || l[0] != want {
				t.Fatalf("gleaned %v, want %v", l, want)
			}
		})
	}
}

func TestNDStageAnswersGleaned(t *testing.T) {
	tests := []struct {
		name    string
		vlan    uint16
		learnAt uint16
		target  netip.Addr
		mac     pipeline.MAC
		want    NDStats
		answer  pipeline.MAC
	}{
		{"gleaned", 0, 0, nbrOther6, glMAC1, NDStats{Answered: 1, Gleaned: 1}, glMAC1},
		{"gleaned tagged", nbrVLAN, nbrVLAN, nbrOther6, glMAC1, NDStats{Answered: 1, Gleaned: 1}, glMAC1},
		{"gleaned in another vlan", nbrVLAN, 0, nbrOther6, glMAC1, NDStats{UnknownTarget: 1, Gleaned: 1}, pipeline.MAC{}},
		{"gateway beats gleaned", 0, 0, nbrGw6, glMAC1, NDStats{Answered: 1, Gleaned: 1}, nbrGwMAC},
		{"asker's own MAC", 0, 0, nbrOther6, pipeline.MAC(nbrHostMAC), NDStats{SelfTarget: 1, Gleaned: 1}, pipeline.MAC{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bt, g, _ := glTables(t)
			glLearn(g, tc.learnAt, tc.target, tc.mac, 1)
			s := NewNDStage(bt)
			in := nsFrame(t, nsRequest(tc.vlan, tc.target))
			p := nbrRun(t, s, in, 2048)
			if st := s.Stats(); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			if tc.answer.IsZero() {
				if p.Verdict != pipeline.VerdictNone || !bytes.Equal(p.Data, in) {
					t.Fatalf("verdict %v, frame changed %v", p.Verdict, !bytes.Equal(p.Data, in))
				}
				return
			}
			flags := uint8(0x60) // solicited, override: a gleaned binding is never a router
			if tc.answer == nbrGwMAC {
				flags |= 0x80
			}
			if want := naFrame(t, tc.vlan, tc.answer, tc.target, flags); p.Verdict != pipeline.VerdictReply || !bytes.Equal(p.Data, want) {
				t.Fatalf("verdict %v\n got %x\nwant %x", p.Verdict, p.Data, want)
			}
		})
	}
}

// TestStagesGleanConcurrently runs one ARP and one ND stage per worker over
// a shared GleanTable, as the switch does: hosts announce themselves and
// ask for each other, and every answer must carry the asked host's MAC.
// Run it with -race.
func TestStagesGleanConcurrently(t *testing.T) {
	bt, _, clock := glTables(t)
	const hosts, workers, rounds = 32, 4, 300
	macOf := func(h int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0x20, byte(h)} }
	ip4Of := func(h int) net.IP { return net.IP{10, 4, 0, byte(h + 1)} }
	ip6Of := func(h int) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 4, 15: byte(h + 1)})
	}
	var arpReq, nsReq [hosts][hosts][]byte
	for h := range hosts {
		for q := range hosts {
			arpReq[h][q] = arpFrame(t, arpSpec{op: layers.ARPRequest, srcMAC: macOf(h), senderIP: ip4Of(h), targetIP: ip4Of(q)})
			f := nsFrame(t, nsSpec{src: ip6Of(h), target: ip6Of(q)})
			copy(f[6:12], macOf(h))      // Ethernet source
			copy(f[len(f)-6:], macOf(h)) // source link-layer option
			var p pipeline.Packet
			p.Data = f
			p.Reset()
			p.Parse()
			p.SetL4Checksum()
			nsReq[h][q] = f
		}
	}
	var wg sync.WaitGroup
	var stop atomic.Bool
	var answered atomic.Uint64
	go func() {
		for !stop.Load() {
			clock.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	defer stop.Store(true)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			arp, nd := NewARPStage(bt), NewNDStage(bt)
			var b pipeline.Batch
			buf := make([]byte, 0, 2048)
			for r := range rounds {
				h, q := (r+w*7)%hosts, (r*5+w)%hosts
				for _, st := range []struct {
					s pipeline.Stage
					f []byte
				}{{arp, arpReq[h][q]}, {nd, nsReq[h][q]}} {
					b.Len = 1
					p := &b.Pkts[0]
					p.Data = append(buf[:0], st.f...)
					p.Reset()
					p.Parse()
					st.s.Process(&b)
					if p.Verdict != pipeline.VerdictReply {
						continue // q not gleaned yet, or h == q
					}
					if src := pipeline.Ethernet(p.Data).Src(); !bytes.Equal(src[:], macOf(q)) {
						t.Errorf("worker %d: answer for host %d from %v", w, q, src)
						return
					}
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if answered.Load() < workers*rounds {
		t.Errorf("only %d of %d requests answered from gleaned bindings", answered.Load(), 2*workers*rounds)
	}
}
