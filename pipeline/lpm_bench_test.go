package pipeline

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// benchRouteTable fills a table with n random routes of one family (IPv4
// lengths 8..32, IPv6 lengths 16..64 under 2000::/3) and returns lookup
// addresses, half inside a route and half random. It reports the heap the
// table holds as heapB/route.
func benchRouteTable(b *testing.B, n int, v6 bool) (*RouteTable, [][16]byte) {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	randAddr := func() [16]byte {
		var a [16]byte
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		if v6 {
			a[0] = 0x20 | a[0]&0x1f
		}
		return a
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rt := NewRouteTable()
	var starts [][16]byte
	for range n {
		a := randAddr()
		var p netip.Prefix
		if v6 {
			p, _ = netip.AddrFrom16(a).Prefix(16 + r.IntN(49))
		} else {
			p, _ = netip.AddrFrom4([4]byte(a[:4])).Prefix(8 + r.IntN(25))
		}
		if err := rt.Add(p, uint32(len(starts))); err != nil {
			b.Fatal(err)
		}
		starts = append(starts, a)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	b.Cleanup(func() { b.ReportMetric(heap, "heapB/route") })
	addrs := make([][16]byte, 4096)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = starts[r.IntN(len(starts))]
		} else {
			addrs[i] = randAddr()
		}
	}
	return rt, addrs
}

func BenchmarkRouteTableLookup4(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			rt, addrs := benchRouteTable(b, n, false)
			ips := make([][4]byte, len(addrs))
			for i, a := range addrs {
				ips[i] = [4]byte(a[:4])
			}
			b.ReportAllocs()
			var hits int
			for i := 0; b.Loop(); i++ {
				if _, ok := rt.Lookup4(ips[i&(len(ips)-1)]); ok {
					hits++
				}
			}
			_ = hits
		})
	}
}

func BenchmarkRouteTableLookup6(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			rt, addrs := benchRouteTable(b, n, true)
			b.ReportAllocs()
			var hits int
			for i := 0; b.Loop(); i++ {
				if _, ok := rt.Lookup6(addrs[i&(len(addrs)-1)]); ok {
					hits++
				}
			}
			_ = hits
		})
	}
}
