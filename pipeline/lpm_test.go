package pipeline

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// refTable is the brute-force reference: a linear scan for the longest
// canonical prefix that contains the address.
type refTable map[netip.Prefix]uint32

func (r refTable) lookup(a netip.Addr) (uint32, bool) {
	best, nh, ok := -1, uint32(0), false
	for p, v := range r {
		if p.Addr().BitLen() == a.BitLen() && p.Contains(a) && p.Bits() > best {
			best, nh, ok = p.Bits(), v, true
		}
	}
	return nh, ok
}

func lookupAddr(t *RouteTable, a netip.Addr) (uint32, bool) {
	if a.Is4() {
		return t.Lookup4(a.As4())
	}
	return t.Lookup6(a.As16())
}

func TestRouteTableGolden(t *testing.T) {
	pp := netip.MustParsePrefix
	ap := netip.MustParseAddr
	type want struct {
		addr string
		nh   uint32
		ok   bool
	}
	tests := []struct {
		name  string
		add   map[string]uint32
		del   []string
		wants []want
	}{
		{"empty", nil, nil, []want{{"10.0.0.1", 0, false}, {"2001:db8::1", 0, false}}},
		{"default v4", map[string]uint32{"0.0.0.0/0": 7}, nil,
			[]want{{"1.2.3.4", 7, true}, {"255.255.255.255", 7, true}, {"::1", 0, false}}},
		{"default v6", map[string]uint32{"::/0": 9}, nil,
			[]want{{"2001:db8::1", 9, true}, {"1.2.3.4", 0, false}}},
		{"host routes", map[string]uint32{"192.0.2.1/32": 1, "2001:db8::1/128": 2}, nil,
			[]want{{"192.0.2.1", 1, true}, {"192.0.2.2", 0, false}, {"2001:db8::1", 2, true}, {"2001:db8::2", 0, false}}},
		{"overlapping", map[string]uint32{"0.0.0.0/0": 1, "10.0.0.0/8": 2, "10.1.0.0/16": 3, "10.1.2.0/24": 4, "10.1.2.128/25": 5, "10.1.2.129/32": 6}, nil,
			[]want{{"11.0.0.1", 1, true}, {"10.9.9.9", 2, true}, {"10.1.9.9", 3, true}, {"10.1.2.3", 4, true}, {"10.1.2.200", 5, true}, {"10.1.2.129", 6, true}}},
		{"odd lengths", map[string]uint32{"10.0.0.0/7": 1, "10.0.0.0/9": 2, "10.64.0.0/10": 3, "10.0.0.0/31": 4}, nil,
			[]want{{"11.0.0.0", 1, true}, {"10.63.0.0", 2, true}, {"10.127.0.0", 3, true}, {"10.64.0.1", 3, true}, {"10.128.0.0", 1, true}, {"10.0.0.1", 4, true}, {"10.0.0.2", 2, true}}},
		{"delete restores shorter", map[string]uint32{"0.0.0.0/0": 1, "10.0.0.0/8": 2, "10.1.0.0/16": 3, "2001:db8::/32": 4, "2001:db8:1::/48": 5},
			[]string{"10.1.0.0/16", "2001:db8:1::/48"},
			[]want{{"10.1.2.3", 2, true}, {"2001:db8:1::1", 4, true}}},
		{"delete default", map[string]uint32{"0.0.0.0/0": 1, "10.0.0.0/8": 2}, []string{"0.0.0.0/0"},
			[]want{{"10.1.2.3", 2, true}, {"11.0.0.1", 0, false}}},
		{"delete everything", map[string]uint32{"10.1.2.3/32": 1, "2001:db8::1/128": 2}, []string{"10.1.2.3/32", "2001:db8::1/128"},
			[]want{{"10.1.2.3", 0, false}, {"2001:db8::1", 0, false}}},
		{"mapped stored as v4", map[string]uint32{"::ffff:10.0.0.0/104": 3}, nil,
			[]want{{"10.1.1.1", 3, true}, {"::ffff:10.1.1.1", 0, false}}},
		{"unmasked prefix", map[string]uint32{"10.1.2.3/8": 5}, nil, []want{{"10.200.0.1", 5, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := NewRouteTable()
			for p, nh := range tt.add {
				if err := rt.Add(pp(p), nh); err != nil {
					t.Fatalf("Add(%s): %v", p, err)
				}
			}
			for _, p := range tt.del {
				if err := rt.Del(pp(p)); err != nil {
					t.Fatalf("Del(%s): %v", p, err)
				}
			}
			for _, w := range tt.wants {
				nh, ok := lookupAddr(rt, ap(w.addr))
				if nh != w.nh || ok != w.ok {
					t.Errorf("lookup %s = %d, %v; want %d, %v", w.addr, nh, ok, w.nh, w.ok)
				}
			}
		})
	}
}

func TestRouteTableErrorsAndRoutes(t *testing.T) {
	rt := NewRouteTable()
	if err := rt.Add(netip.Prefix{}, 1); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("Add(zero prefix) = %v; want ErrInvalidPrefix", err)
	}
	if err := rt.Add(netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), 33), 1); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("Add(/33) = %v; want ErrInvalidPrefix", err)
	}
	if err := rt.Del(netip.MustParsePrefix("10.0.0.0/8")); !errors.Is(err, ErrRouteNotFound) {
		t.Errorf("Del(absent) = %v; want ErrRouteNotFound", err)
	}
	for _, s := range []string{"2001:db8::/32", "10.1.2.3/8", "10.0.0.0/16", "0.0.0.0/0", "::ffff:192.0.2.0/120"} {
		if err := rt.Add(netip.MustParsePrefix(s), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Add(netip.MustParsePrefix("10.0.0.0/8"), 2); err != nil { // replaces
		t.Fatal(err)
	}
	want := []Route{
		{netip.MustParsePrefix("0.0.0.0/0"), 1},
		{netip.MustParsePrefix("10.0.0.0/8"), 2},
		{netip.MustParsePrefix("10.0.0.0/16"), 1},
		{netip.MustParsePrefix("192.0.2.0/24"), 1},
		{netip.MustParsePrefix("2001:db8::/32"), 1},
	}
	got := rt.Routes()
	if len(got) != len(want) {
		t.Fatalf("Routes() = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Routes()[%d] = %v; want %v", i, got[i], want[i])
		}
	}
	if err := rt.Del(netip.MustParsePrefix("10.9.9.9/8")); err != nil { // masked like Add
		t.Errorf("Del(unmasked) = %v", err)
	}
}

// randPrefix draws from a small set of base addresses so prefixes overlap.
func randPrefix(r *rand.Rand, v6 bool, bases []netip.Addr) netip.Prefix {
	a := bases[r.IntN(len(bases))]
	if v6 != a.Is6() {
		a = bases[0]
	}
	p, _ := a.Prefix(r.IntN(a.BitLen() + 1))
	return p
}

func randAddrNear(r *rand.Rand, a netip.Addr) netip.Addr {
	b := a.AsSlice()
	if r.IntN(4) == 0 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	} else {
		i := r.IntN(len(b) * 8)
		b[i/8] ^= 0x80 >> (i % 8)
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func randBases(r *rand.Rand, n int, v6 bool) []netip.Addr {
	var bs []netip.Addr
	for range n {
		var a netip.Addr
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[0] = 0x20 // share a first byte so nodes are shared
			a = netip.AddrFrom16(b)
		} else {
			a = netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		bs = append(bs, a)
	}
	return bs
}

func TestRouteTableMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v6 := range []bool{false, true} {
		bases := randBases(r, 16, v6)
		rt := NewRouteTable()
		ref := refTable{}
		for step := range 1200 {
			p := randPrefix(r, v6, bases)
			if _, ok := ref[p]; ok && r.IntN(2) == 0 {
				if err := rt.Del(p); err != nil {
					t.Fatalf("Del(%v): %v", p, err)
				}
				delete(ref, p)
			} else {
				nh := r.Uint32()
				if err := rt.Add(p, nh); err != nil {
					t.Fatalf("Add(%v): %v", p, err)
				}
				ref[p] = nh
			}
			for range 8 {
				a := randAddrNear(r, bases[r.IntN(len(bases))])
				gnh, gok := lookupAddr(rt, a)
				wnh, wok := ref.lookup(a)
				if gnh != wnh || gok != wok {
					t.Fatalf("step %d v6=%v: lookup %v = %d, %v; want %d, %v", step, v6, a, gnh, gok, wnh, wok)
				}
			}
		}
		if got := len(rt.Routes()); got != len(ref) {
			t.Errorf("v6=%v: %d routes; want %d", v6, got, len(ref))
		}
	}
}

func TestRouteTableConcurrent(t *testing.T) {
	rt := NewRouteTable()
	stable := netip.MustParsePrefix("10.0.0.0/8")
	rt.Add(stable, 1)
	rt.Add(netip.MustParsePrefix("2001:db8::/32"), 2)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// 10.0.0.0/8 is never removed and nothing added under it
				// goes anywhere but 100+, so 10.x must always resolve.
				if nh, ok := rt.Lookup4([4]byte{10, 1, 2, 3}); !ok || (nh != 1 && nh < 100) {
					t.Errorf("Lookup4 = %d, %v", nh, ok)
					return
				}
				if nh, ok := rt.Lookup6([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}); !ok || (nh != 2 && nh < 100) {
					t.Errorf("Lookup6 = %d, %v", nh, ok)
					return
				}
			}
		}()
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		p4, _ := netip.AddrFrom4([4]byte{10, 1, byte(r.IntN(4)), 0}).Prefix(16 + r.IntN(17))
		p6, _ := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(r.IntN(2)), 15: 1}).Prefix(32 + r.IntN(97))
		if i%3 == 2 {
			rt.Del(p4)
			rt.Del(p6)
		} else {
			rt.Add(p4, 100+uint32(i))
			rt.Add(p6, 100+uint32(i))
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestRouteTableLookupAllocs(t *testing.T) {
	rt := NewRouteTable()
	rt.Add(netip.MustParsePrefix("10.1.0.0/16"), 1)
	rt.Add(netip.MustParsePrefix("2001:db8::/32"), 2)
	ip4 := [4]byte{10, 1, 2, 3}
	ip6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	if n := testing.AllocsPerRun(1000, func() {
		rt.Lookup4(ip4)
		rt.Lookup6(ip6)
	}); n != 0 {
		t.Errorf("lookups allocate %v times a run", n)
	}
}

// FuzzRouteTable runs a random sequence of adds, deletes and lookups against
// the brute-force reference. Each op is 4 bytes: kind and family, prefix
// length, base address, and a lookup perturbation.
func FuzzRouteTable(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 200, 1, 3, 2, 8, 0, 9})
	f.Add([]byte{0, 24, 1, 0, 4, 100, 2, 7, 5, 64, 3, 1, 3, 24, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := rand.New(rand.NewPCG(7, 7))
		bases4 := randBases(r, 8, false)
		bases6 := randBases(r, 8, true)
		rt := NewRouteTable()
		ref := refTable{}
		for i := 0; i+4 <= len(data) && i < 4*64; i += 4 {
			op, plen, base, pert := data[i], int(data[i+1]), int(data[i+2]), data[i+3]
			bases := bases4
			if op&1 != 0 {
				bases = bases6
			}
			a := bases[base%len(bases)]
			p, _ := a.Prefix(plen % (a.BitLen() + 1))
			switch op >> 1 % 3 {
			case 0:
				nh := uint32(pert)
				if err := rt.Add(p, nh); err != nil {
					t.Fatalf("Add(%v): %v", p, err)
				}
				ref[p] = nh
			case 1:
				err := rt.Del(p)
				if _, ok := ref[p]; ok != (err == nil) {
					t.Fatalf("Del(%v) = %v; present %v", p, err, ok)
				}
				delete(ref, p)
			}
			b := a.AsSlice()
			bit := int(pert) % (len(b) * 8)
			b[bit/8] ^= 0x80 >> (bit % 8)
			near, _ := netip.AddrFromSlice(b)
			for _, q := range []netip.Addr{a, near} {
				gnh, gok := lookupAddr(rt, q)
				wnh, wok := ref.lookup(q)
				if gnh != wnh || gok != wok {
					t.Fatalf("lookup %v = %d, %v; want %d, %v (routes %v)", q, gnh, gok, wnh, wok, rt.Routes())
				}
			}
		}
		if got := len(rt.Routes()); got != len(ref) {
			t.Fatalf("%d routes; want %d", got, len(ref))
		}
	})
}
