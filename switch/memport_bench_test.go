package vswitch

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
	"github.com/vswitch/vswitch/switch/affinity"
)

// memBench drives one worker of a real Switch by hand (its goroutine is
// stopped): a client end sends into memring port 0, pollMem forwards to
// port 1 through the whole pipeline, a client end drains port 1. Both
// regions are plain memfd regions, so it runs unprivileged.
type memBench struct {
	w       *Worker
	in      *memQueue
	sendTx  *memring.Tx // client end into port 0
	backRx  *memring.Rx // client end out of port 0 (replies, hairpins)
	drainRx *memring.Rx // client end out of port 1
	frame   []byte
	lens    []int
	views   [][]byte
}

const memBenchRing = 256

func newMemBench(tb testing.TB, size int) *memBench { return newMemBenchRing(tb, size, memBenchRing) }

func newMemBenchRing(tb testing.TB, size, ring int) *memBench {
	tb.Helper()
	cfg, err := ParseConfig([]byte("workers: {count: 1, poll_mode: interrupt}\n"))
	if err != nil {
		tb.Fatal(err)
	}
	sw, err := New(cfg, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sw.Stop)
	w := sw.workers[0]
	w.stop.Store(true) // the benchmark is the worker from here on
	w.wake()
	<-w.done

	mb := &memBench{w: w, views: make([][]byte, pipeline.MaxBatch), lens: make([]int, pipeline.MaxBatch)}
	for i := uint16(0); i < 2; i++ {
		r, _, err := memring.NewRegion(fmt.Sprintf("membench-%d", i),
			memring.Config{QueuePairs: 1, RingSize: ring, FrameSize: 2048})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { r.Close() })
		stx, srx := r.Queue(0, memring.SideSwitch)
		ctx, crx := r.Queue(0, memring.SideClient)
		q := &memQueue{port: i, mp: &memPort{}, tx: stx, rx: srx, maxLen: 2048, wakeFD: -1, notifyFD: -1}
		w.memTx[i] = q
		if i == 0 {
			mb.in, mb.sendTx, mb.backRx = q, ctx, crx
		} else {
			mb.drainRx = crx
		}
		sw.publish(func(t *portTable) {
			e := &portEntry{index: i, name: fmt.Sprintf("m%d", i), vlan: compileVLAN(nil)}
			t.byIndex[i] = e
			t.list = append(t.list, e)
		})
	}
	sw.fdb.Learn(macA, 0, 0, sw.clock.Load())
	sw.fdb.Learn(macB, 0, 1, sw.clock.Load())
	mb.frame = udpFrame(tb, macA, macB, untagged, size-42, 1024)
	for i := range mb.lens {
		mb.lens[i] = size
	}
	// Every buffer gets the whole frame once (a reservation of the whole
	// empty ring covers them all); afterwards the sender rewrites nothing,
	// like the e2e generator beyond its header line.
	if n := mb.sendTx.Reserve(ring); n != ring {
		tb.Fatalf("warm-up: reserved %d of %d slots", n, ring)
	}
	for i := range ring {
		copy(mb.sendTx.Buffer(i), mb.frame)
	}
	if got := mb.round(); got != pipeline.MaxBatch {
		tb.Fatalf("warm-up: %d of %d frames forwarded", got, pipeline.MaxBatch)
	}
	return mb
}

// round sends one batch into port 0, runs the worker once and drains port
// 1, returning how many frames came out.
func (mb *memBench) round() int {
	n := mb.sendTx.Reserve(pipeline.MaxBatch)
	if mb.sendTx.Submit(mb.lens[:n]) != nil {
		return -1
	}
	mb.w.pollMem(mb.in)
	got, _ := mb.drainRx.Recv(mb.views)
	for _, v := range mb.views[:got] {
		if len(v) != len(mb.frame) {
			return -1
		}
	}
	mb.drainRx.Release()
	return got
}

// BenchmarkMemringForward is the switch's cost of moving a frame between
// two memring ports: Recv, the head (or whole-frame) copy, parse, ingress,
// peephole guard, L2, the copy into the receiver's ring, counters. The
// client ends' work is a Reserve/Submit and a Recv/Release per batch.
func BenchmarkMemringForward(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			mb := newMemBench(b, size)
			b.ReportAllocs()
			b.SetBytes(int64(size * pipeline.MaxBatch))
			for b.Loop() {
				if got := mb.round(); got != pipeline.MaxBatch {
					b.Fatalf("%d of %d frames forwarded", got, pipeline.MaxBatch)
				}
			}
			reportPerPacket(b)
		})
	}
}

// fill tops the sender's ring up, writing the first 64 bytes of each frame
// like the e2e generator, which keeps the ring full when it outruns the
// switch.
func (mb *memBench) fill() {
	n := mb.sendTx.Reserve(1 << 16)
	for i := range n {
		copy(mb.sendTx.Buffer(i), mb.frame[:64])
	}
	for len(mb.lens) < n {
		mb.lens = append(mb.lens, mb.lens[0])
	}
	if mb.sendTx.Submit(mb.lens[:n]) != nil {
		panic("memBench: submit refused")
	}
}

// BenchmarkMemringForwardFull is BenchmarkMemringForward with a sender
// that keeps its ring full, as a generator faster than the switch does:
// the switch then reads frames written a whole ring earlier, so the ring
// size decides whether its working set stays in the core's own cache.
func BenchmarkMemringForwardFull(b *testing.B) {
	for _, ring := range []int{128, 256, 1024} {
		for _, size := range []int{64, 1500} {
			b.Run(fmt.Sprintf("ring=%d/size=%d", ring, size), func(b *testing.B) {
				mb := newMemBenchRing(b, size, ring)
				mb.fill()
				b.ReportAllocs()
				b.SetBytes(int64(size * pipeline.MaxBatch))
				for b.Loop() {
					mb.fill()
					mb.w.pollMem(mb.in)
					got, _ := mb.drainRx.Recv(mb.views)
					if got != pipeline.MaxBatch {
						b.Fatalf("%d of %d frames forwarded", got, pipeline.MaxBatch)
					}
					mb.drainRx.Release()
				}
				reportPerPacket(b)
			})
		}
	}
}

// TestMemringForwardAllocs holds the memring forwarding path to 0
// allocations in every CI run, and checks the frames arrive intact.
func TestMemringForwardAllocs(t *testing.T) {
	for _, size := range []int{64, 1500} {
		mb := newMemBench(t, size)
		if n := testing.AllocsPerRun(200, func() {
			if got := mb.round(); got != pipeline.MaxBatch {
				t.Fatalf("size %d: %d of %d frames forwarded", size, got, pipeline.MaxBatch)
			}
		}); n != 0 {
			t.Fatalf("size %d: memring forwarding allocates %.1f times per batch", size, n)
		}
		// The frames that came out are the frame that went in.
		mb.sendTx.Reserve(1)
		mb.sendTx.Submit(mb.lens[:1])
		mb.w.pollMem(mb.in)
		got, _ := mb.drainRx.Recv(mb.views)
		if got != 1 || string(mb.views[0]) != string(mb.frame) {
			t.Fatalf("size %d: forwarded frame differs from the one sent (%d frames)", size, got)
		}
		mb.drainRx.Release()
	}
}

// FuzzMemringForward sends one arbitrary frame from a memring client
// through a real worker: nothing panics, the frame has exactly one outcome
// (out of a port, or dropped and counted), and an untagged frame that
// comes out is the frame that went in, whether or not its tail stayed in
// the sender's buffer.
func FuzzMemringForward(f *testing.F) {
	mb := newMemBench(f, 64)
	// Payload bytes that differ from whatever a ring slot held before, so
	// a tail that is not copied shows (the UDP checksum is not checked).
	patterned := func(fr []byte) []byte {
		for i := 42; i < len(fr); i++ {
			fr[i] = byte(i*7 + 1)
		}
		return fr
	}
	for _, size := range []int{64, 600, 1500} {
		f.Add(patterned(udpFrame(f, macA, macB, untagged, size-42, 7)))
	}
	f.Add(arpRequest(f, macA, untagged))
	f.Add(patterned(udpFrame(f, macA, macB, 10, 1400, 7)))
	tcp := patterned(udpFrame(f, macA, macB, untagged, 1400, 7))
	tcp[23] = 6 // IPv4 protocol TCP: a UDP header read as a TCP one
	f.Add(tcp)
	var views [pipeline.MaxBatch][]byte
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < memring.MinFrameLen || len(frame) > 2048 {
			return
		}
		dropped := func() (n uint64) {
			for i := range mb.w.ctr.drops {
				n += mb.w.ctr.drops[i].Load()
			}
			return n
		}
		d0 := dropped()
		if mb.sendTx.Reserve(1) != 1 {
			t.Fatal("ring full")
		}
		copy(mb.sendTx.Buffer(0), frame)
		if err := mb.sendTx.Submit([]int{len(frame)}); err != nil {
			t.Fatal(err)
		}
		mb.w.pollMem(mb.in)
		out := 0
		for _, rx := range []*memring.Rx{mb.drainRx, mb.backRx} {
			n, err := rx.Recv(views[:])
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range views[:n] {
				if rx == mb.drainRx && !(frame[12] == 0x81 && frame[13] == 0) && string(v) != string(frame) {
					t.Fatalf("%d-byte frame changed on its way out", len(frame))
				}
			}
			out += n
			rx.Release()
		}
		if lost := uint64(out) + dropped() - d0; lost != 1 {
			t.Fatalf("%d-byte frame: %d out, %d dropped; want exactly one outcome", len(frame), out, dropped()-d0)
		}
	})
}

// BenchmarkMemringForwardCrossCore is the e2e memring path in one process:
// a client goroutine pinned to cpu 0 keeps port 0's ring full (writing each
// frame's first 64 bytes) and drains port 1, while the worker runs on cpu
// 1. Unlike the single-goroutine benchmarks it pays for every line that
// crosses between the two cores: descriptors, indices, headers.
func BenchmarkMemringForwardCrossCore(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two cpus")
	}
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			mb := newMemBenchRing(b, size, 1024)
			var stop atomic.Bool
			done := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				if err := affinity.PinLocked(0); err != nil {
					done <- err
					return
				}
				var sink byte
				for !stop.Load() {
					if n := mb.sendTx.Reserve(pipeline.MaxBatch); n > 0 {
						for i := range n {
							copy(mb.sendTx.Buffer(i), mb.frame[:64])
						}
						if err := mb.sendTx.Submit(mb.lens[:n]); err != nil {
							done <- err
							return
						}
					}
					n, _ := mb.drainRx.Recv(mb.views)
					for _, v := range mb.views[:n] {
						sink ^= v[12] ^ v[23]
					}
					mb.drainRx.Release()
				}
				memBenchSink = sink
				done <- nil
			}()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if err := affinity.PinLocked(1); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size * pipeline.MaxBatch))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for got := 0; got < pipeline.MaxBatch; {
					got += mb.w.pollMem(mb.in)
				}
			}
			b.StopTimer()
			stop.Store(true)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			reportPerPacket(b)
		})
	}
}

// memBenchSink keeps the client goroutine's header reads.
var memBenchSink byte
