package bench

import (
	"fmt"
	"testing"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// FDB benchmarks through the exported API, as a stage outside package
// vswitch would use the table. Lookup and refresh are on the per-packet
// path: each must report 0 allocs/op. The L2 stage and whole-pipeline
// benchmarks need the switch's unexported port table and live in
// switch/bench_test.go.

// fdbMAC returns a locally administered unicast MAC that encodes i.
func fdbMAC(i int) pipeline.MAC {
	return pipeline.MAC{0x02, 0x42, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// fdbFilled returns a table of twice n slots with n MACs learned on 16
// ports, and the MACs the table holds (an 8-way bucket that overflowed
// replaced some).
func fdbFilled(b *testing.B, n int) (*vswitch.FDB, []pipeline.MAC) {
	b.Helper()
	f := vswitch.NewFDB(2 * n)
	for i := 0; i < n; i++ {
		f.Learn(fdbMAC(i), uint16(i%4), uint16(i%16), 1)
	}
	var macs []pipeline.MAC
	for i := 0; i < n; i++ {
		if _, ok := f.Lookup(fdbMAC(i), uint16(i%4)); ok {
			macs = append(macs, fdbMAC(i))
		}
	}
	if len(macs) < n*9/10 {
		b.Fatalf("only %d of %d entries fit", len(macs), n)
	}
	return f, macs
}

// BenchmarkFDBLookup is a hit in a table of 1k and 64k entries, walking
// the entries in learning order (random buckets).
func BenchmarkFDBLookup(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 16} {
		b.Run(fmt.Sprintf("entries=%dk", n>>10), func(b *testing.B) {
			f, macs := fdbFilled(b, n)
			n := len(macs)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := macs[i]
				if _, ok := f.Lookup(m, uint16(int(m[5])%4)); !ok {
					b.Fatal("miss")
				}
				if i++; i == n {
					i = 0
				}
			}
		})
	}
}

// BenchmarkFDBLookupMiss is the unknown-unicast case: a full scan of one
// bucket.
func BenchmarkFDBLookupMiss(b *testing.B) {
	f, _ := fdbFilled(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := f.Lookup(fdbMAC(1<<20+(i&0xffff)), 1); ok {
			b.Fatal("hit")
		}
		i++
	}
}

// BenchmarkFDBLearnRefresh re-learns known MACs on their own port: within
// the same second (the common case: nothing to write) and with a new time
// on every call (an entry refreshed once a second; the write path).
func BenchmarkFDBLearnRefresh(b *testing.B) {
	for _, mode := range []string{"same_second", "new_second"} {
		b.Run(mode, func(b *testing.B) {
			const n = 1 << 10
			f, macs := fdbFilled(b, n)
			b.ReportAllocs()
			i, now := 0, uint32(1)
			for b.Loop() {
				m := macs[i]
				idx := int(m[2])<<24 | int(m[3])<<16 | int(m[4])<<8 | int(m[5])
				if mode == "new_second" {
					now++
				}
				if f.Learn(m, uint16(idx%4), uint16(idx%16), now) {
					b.Fatal("a refresh reported a move")
				}
				if i++; i == len(macs) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkFDBLearnChurn learns a new MAC on every call into a full table,
// so every call replaces the least recently seen entry of its bucket.
func BenchmarkFDBLearnChurn(b *testing.B) {
	f, _ := fdbFilled(b, 1<<12)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f.Learn(fdbMAC(1<<20+i), 0, uint16(i%16), uint32(2+i))
		i++
	}
}
