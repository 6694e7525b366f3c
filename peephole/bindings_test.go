package peephole

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

func TestBindingValidation(t *testing.T) {
	ok := Binding{VLAN: 1, IP: nbrBound4, MAC: nbrBoundMAC, Kind: KindStatic}
	with := func(f func(*Binding)) Binding { b := ok; f(&b); return b }
	tests := []struct {
		name string
		b    Binding
		err  error
	}{
		{"vlan 4095", with(func(b *Binding) { b.VLAN = 4095 }), ErrBadVLAN},
		{"no address", with(func(b *Binding) { b.IP = netip.Addr{} }), ErrBadIP},
		{"0.0.0.0", with(func(b *Binding) { b.IP = netip.IPv4Unspecified() }), ErrBadIP},
		{"::", with(func(b *Binding) { b.IP = netip.IPv6Unspecified() }), ErrBadIP},
		{"v4 multicast", with(func(b *Binding) { b.IP = netip.MustParseAddr("224.0.0.1") }), ErrBadIP},
		{"v6 multicast", with(func(b *Binding) { b.IP = netip.MustParseAddr("ff02::1") }), ErrBadIP},
		{"loopback", with(func(b *Binding) { b.IP = netip.MustParseAddr("127.0.0.1") }), ErrBadIP},
		{"broadcast", with(func(b *Binding) { b.IP = netip.MustParseAddr("255.255.255.255") }), ErrBadIP},
		{"zone", with(func(b *Binding) { b.IP = netip.MustParseAddr("fe80::1%eth0") }), ErrBadIP},
		{"zero MAC", with(func(b *Binding) { b.MAC = pipeline.MAC{} }), ErrBadMAC},
		{"multicast MAC", with(func(b *Binding) { b.MAC = pipeline.MAC{0x01, 0, 0x5e, 0, 0, 1} }), ErrBadMAC},
		{"broadcast MAC", with(func(b *Binding) { b.MAC = pipeline.BroadcastMAC }), ErrBadMAC},
		{"no kind", with(func(b *Binding) { b.Kind = 0 }), ErrBadKind},
		{"gleaned", with(func(b *Binding) { b.Kind = KindGleaned }), ErrBadKind},
		{"valid v4", ok, nil},
		{"valid v6 link-local", with(func(b *Binding) { b.IP = netip.MustParseAddr("fe80::1") }), nil},
		{"valid gateway vlan 4094", with(func(b *Binding) { b.VLAN, b.Kind = 4094, KindGateway }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewBindingTable().Add(tc.b)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Add: %v, want %v", err, tc.err)
			}
		})
	}
}

func TestBindingTableAddDelList(t *testing.T) {
	tb := NewBindingTable()
	mapped := netip.AddrFrom16(nbrBound4.As16()) // ::ffff:10.0.0.20
	b := Binding{VLAN: 3, IP: mapped, MAC: nbrBoundMAC, Kind: KindStatic, LastSeen: time.Now()}
	if err := tb.Add(b); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add(b); err != nil {
		t.Fatalf("identical Add: %v", err)
	}
	b2 := b
	b2.MAC = nbrGwMAC
	if err := tb.Add(b2); !errors.Is(err, ErrBindingExists) {
		t.Fatalf("conflicting Add: %v", err)
	}
	got, ok := tb.Lookup(3, nbrBound4)
	if !ok || got.IP != nbrBound4 || got.MAC != nbrBoundMAC || got.Kind != KindStatic || !got.LastSeen.IsZero() {
		t.Fatalf("Lookup: %+v %v", got, ok)
	}
	if _, ok := tb.Lookup(4, nbrBound4); ok {
		t.Fatal("found in another VLAN")
	}
	for _, x := range []Binding{
		{VLAN: 0, IP: nbrGw6, MAC: nbrGwMAC, Kind: KindGateway},
		{VLAN: 3, IP: nbrBound6, MAC: nbrBoundMAC, Kind: KindStatic},
		{VLAN: 0, IP: nbrHost4, MAC: nbrBoundMAC, Kind: KindStatic},
	} {
		if err := tb.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	l := tb.List()
	want := []struct {
		vlan uint16
		ip   netip.Addr
	}{{0, nbrHost4}, {0, nbrGw6}, {3, nbrBound4}, {3, nbrBound6}}
	if len(l) != len(want) || tb.Len() != len(want) {
		t.Fatalf("List %v", l)
	}
	for i, w := range want {
		if l[i].VLAN != w.vlan || l[i].IP != w.ip {
			t.Errorf("List[%d] = %v %v, want %v %v", i, l[i].VLAN, l[i].IP, w.vlan, w.ip)
		}
	}
	if err := tb.Del(3, mapped); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if err := tb.Del(3, nbrBound4); !errors.Is(err, ErrNoSuchBinding) {
		t.Fatalf("second Del: %v", err)
	}
	if _, ok := tb.Lookup(3, nbrBound4); ok {
		t.Fatal("found after Del")
	}
}

// TestBindingTableConcurrent runs datapath reads (Lookup and the ARP stage)
// while the control plane adds and deletes; run it with -race.
func TestBindingTableConcurrent(t *testing.T) {
	tb := nbrTable(t)
	var stop atomic.Bool
	var writer, readers sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; !stop.Load(); i++ {
			ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
			if ip.As4()[3] == 0 {
				continue
			}
			b := Binding{VLAN: uint16(i % 4), IP: ip, MAC: nbrBoundMAC, Kind: KindStatic}
			if err := tb.Add(b); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				if err := tb.Del(b.VLAN, b.IP); err != nil {
					t.Error(err)
					return
				}
			}
			if i%64 == 0 {
				_ = tb.List()
			}
		}
	}()
	frame := arpFrame(t, arpRequest(0, nbrIP(nbrBound4)))
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s := NewARPStage(tb)
			var b pipeline.Batch
			for i := 0; i < 2000; i++ {
				if _, ok := tb.Lookup(0, nbrBound4); !ok {
					t.Errorf("reader %d: static binding vanished", r)
					return
				}
				tb.Lookup(uint16(i%4), netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
				b.Len = 1
				p := &b.Pkts[0]
				p.Data = append(p.Data[:0], frame...)
				p.Reset()
				p.Parse()
				s.Process(&b)
				if p.Verdict != pipeline.VerdictReply {
					t.Errorf("reader %d: verdict %v", r, p.Verdict)
					return
				}
			}
		}()
	}
	readers.Wait()
	stop.Store(true)
	writer.Wait()
}

func TestResolveStaticThenGleanedAndChanges(t *testing.T) {
	var clock atomic.Uint32
	clock.Store(10)
	bt := NewBindingTable()
	g := NewGleanTable(64, &clock)
	bt.SetGlean(g)
	ip := netip.MustParseAddr("10.1.0.7")
	if _, ok := bt.Resolve(3, ip); ok {
		t.Fatal("resolved an unknown address")
	}
	m1 := pipeline.MAC{2, 0, 0, 0, 0, 7}
	m2 := pipeline.MAC{2, 0, 0, 0, 0, 8}
	var c nbrBatch
	c.load(bt)
	if !c.glean4(3, ip.As4(), m1, m1) {
		t.Fatal("glean refused")
	}
	c.done()
	if mac, ok := bt.Resolve(3, ip); !ok || mac != m1 {
		t.Fatalf("Resolve = %s %v, want gleaned %s", mac, ok, m1)
	}
	if _, ok := bt.Resolve(4, ip); ok {
		t.Fatal("resolved in another VLAN")
	}
	if g.Changes() != 0 {
		t.Fatalf("learning a new address counted %d changes, want 0", g.Changes())
	}
	c.load(bt)
	c.glean4(3, ip.As4(), m2, m2)
	c.done()
	if g.Changes() != 1 {
		t.Fatalf("a new MAC for a known address counted %d changes, want 1", g.Changes())
	}
	if err := bt.Add(Binding{VLAN: 3, IP: ip, MAC: m1, Kind: KindStatic}); err != nil {
		t.Fatal(err)
	}
	if mac, _ := bt.Resolve(3, ip); mac != m1 {
		t.Fatalf("Resolve = %s, want the static %s over the gleaned one", mac, m1)
	}
	if g.Flush() != 1 || g.Changes() != 2 {
		t.Fatalf("flush: changes = %d, want 2", g.Changes())
	}
}
