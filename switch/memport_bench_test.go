package vswitch

import (
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
)

// memBench drives one worker of a real Switch by hand (its goroutine is
// stopped): a client end sends into memring port 0, pollMem forwards to
// port 1 through the whole pipeline, a client end drains port 1. Both
// regions are plain memfd regions, so it runs unprivileged.
type memBench struct {
	w       *Worker
	in      *memQueue
	sendTx  *memring.Tx // client end into port 0
	drainRx *memring.Rx // client end out of port 1
	frame   []byte
	lens    []int
	views   [][]byte
}

const memBenchRing = 256

func newMemBench(tb testing.TB, size int) *memBench {
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
			memring.Config{QueuePairs: 1, RingSize: memBenchRing, FrameSize: 2048})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { r.Close() })
		stx, srx := r.Queue(0, memring.SideSwitch)
		ctx, crx := r.Queue(0, memring.SideClient)
		q := &memQueue{port: i, mp: &memPort{}, tx: stx, rx: srx, maxLen: 2048, wakeFD: -1, notifyFD: -1}
		w.memTx[i] = q
		if i == 0 {
			mb.in, mb.sendTx = q, ctx
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
	// Every slot gets the whole frame once; afterwards the sender rewrites
	// nothing, like the e2e generator beyond its header line.
	for range memBenchRing / pipeline.MaxBatch {
		if got := mb.round(true); got != pipeline.MaxBatch {
			tb.Fatalf("warm-up: %d of %d frames forwarded", got, pipeline.MaxBatch)
		}
	}
	return mb
}

// round sends one batch into port 0, runs the worker once and drains port
// 1, returning how many frames came out.
func (mb *memBench) round(fill bool) int {
	n := mb.sendTx.Reserve(pipeline.MaxBatch)
	if fill {
		for i := range n {
			copy(mb.sendTx.Buffer(i), mb.frame)
		}
	}
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
				if got := mb.round(false); got != pipeline.MaxBatch {
					b.Fatalf("%d of %d frames forwarded", got, pipeline.MaxBatch)
				}
			}
			reportPerPacket(b)
		})
	}
}

// TestMemringForwardAllocs holds the memring forwarding path to 0
// allocations in every CI run, and checks the frames arrive intact.
func TestMemringForwardAllocs(t *testing.T) {
	for _, size := range []int{64, 1500} {
		mb := newMemBench(t, size)
		if n := testing.AllocsPerRun(200, func() {
			if got := mb.round(false); got != pipeline.MaxBatch {
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
