package memring

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mrThreadCPU is the CPU time of the calling (locked) OS thread. On a
// shared, loaded machine wall-clock rates measure the scheduler as much as
// the ring; CPU time per frame shows what the ring code itself costs.
func mrThreadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const mrBenchBatch = 32

// BenchmarkProcToProc: one producer and one consumer goroutine, each on its
// own locked OS thread, move b.N frames through one ring in batches of 32,
// the shape of a container talking to the switch (the two sides share
// nothing but the region, as two processes would). The consumer reads the
// first byte of every frame. Mpps is frames per second over both ends.
//
// copy: Tx.Send copies each frame into its slot; zerocopy: the producer
// writes the frame header in place through Reserve/Buffer/Submit.
func BenchmarkProcToProc(b *testing.B) {
	for _, mode := range []string{"copy", "zerocopy"} {
		for _, size := range []int{64, 1500} {
			b.Run(fmt.Sprintf("%s/%dB", mode, size), func(b *testing.B) {
				mrBenchPair(b, size, mode == "zerocopy")
			})
		}
	}
}

func mrBenchPair(b *testing.B, size int, zeroCopy bool) {
	r := mrRegion(b, Config{RingSize: 1024, FrameSize: 2048})
	tx, _ := r.Queue(0, SideClient)
	_, rx := r.Queue(0, SideSwitch)
	frames := make([][]byte, mrBenchBatch)
	for i := range frames {
		frames[i] = mrFrame(make([]byte, size), size, uint64(i))
	}
	lens := make([]int, mrBenchBatch)
	for i := range lens {
		lens[i] = size
	}
	total := b.N
	var sum byte
	var consCPU time.Duration
	done := make(chan struct{})
	b.ReportAllocs()
	b.SetBytes(int64(size))
	start := time.Now()
	b.ResetTimer()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		out := make([][]byte, mrBenchBatch)
		s := byte(0)
		c0 := mrThreadCPU()
		for got := 0; got < total; {
			n, err := rx.Recv(out)
			if err != nil {
				panic(err)
			}
			for _, f := range out[:n] {
				s += f[0]
			}
			rx.Release()
			got += n
		}
		sum = s
		consCPU = mrThreadCPU() - c0
		close(done)
	}()
	runtime.LockOSThread()
	p0 := mrThreadCPU()
	for sent := 0; sent < total; {
		k := min(mrBenchBatch, total-sent)
		if zeroCopy {
			k = tx.Reserve(k)
			for i := 0; i < k; i++ {
				buf := tx.Buffer(i)
				copy(buf[:14], frames[i]) // an Ethernet header written in place
			}
			if err := tx.Submit(lens[:k]); err != nil {
				b.Fatal(err)
			}
			sent += k
			continue
		}
		n, err := tx.Send(frames[:k])
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	prodCPU := mrThreadCPU() - p0
	<-done
	runtime.UnlockOSThread()
	b.StopTimer()
	el := time.Since(start)
	b.ReportMetric(float64(total)/el.Seconds()/1e6, "Mpps")
	// Busy-polling threads: CPU time includes spinning while the peer was
	// descheduled, so these are upper bounds of the per-frame cost.
	b.ReportMetric(float64(prodCPU.Nanoseconds())/float64(total), "prod-cpu-ns/frame")
	b.ReportMetric(float64(consCPU.Nanoseconds())/float64(total), "cons-cpu-ns/frame")
	_ = sum
}

// BenchmarkSendRecv: the cost of one batch of 32 64-byte frames through
// both ends in one goroutine (no cache-line transfers): the ring code's
// own overhead per frame.
func BenchmarkSendRecv(b *testing.B) {
	r := mrRegion(b, Config{RingSize: 1024, FrameSize: 2048})
	tx, _ := r.Queue(0, SideClient)
	_, rx := r.Queue(0, SideSwitch)
	frames := make([][]byte, mrBenchBatch)
	for i := range frames {
		frames[i] = make([]byte, 64)
	}
	out := make([][]byte, mrBenchBatch)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	c0 := mrThreadCPU()
	for i := 0; i < b.N; i++ {
		tx.Send(frames)
		n, _ := rx.Recv(out)
		if n != mrBenchBatch {
			b.Fatalf("Recv = %d", n)
		}
		rx.Release()
	}
	cpu := mrThreadCPU() - c0
	b.ReportMetric(float64(b.N*mrBenchBatch)/b.Elapsed().Seconds()/1e6, "Mpps")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*mrBenchBatch), "cpu-ns/frame")
}

// BenchmarkFillCrossCore compares the two ways a producer that copies
// whole frames can fill its slots, in one run so that both see the same
// host: Reserve/Write (the first line stored non-temporally, what the
// switch does towards its clients) on queue pair 0, Reserve/Buffer and a
// plain copy on queue pair 1, alternating batch by batch. The producer is
// pinned to cpu 1; a consumer pinned to cpu 0 drains both rings and reads
// each frame's first byte, as a client does. Reported: the producer's
// time per frame for each way, Reserve to Submit. Write trades the
// cross-core wait of a plain store into a line the consumer read for an
// SFENCE per batch that waits for its lines to reach memory, so it costs
// more than the copy while the host keeps the two cores close and less
// when it puts them far apart; this benchmark shows which, on the host of
// the moment. (The switch gains more than the producer here: its stalled
// stores also held up the parsing and lookups behind them.)
func BenchmarkFillCrossCore(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two cpus")
	}
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			mrBenchFill(b, size)
		})
	}
}

func mrPin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

func mrBenchFill(b *testing.B, size int) {
	r := mrRegion(b, Config{QueuePairs: 2, RingSize: 1024, FrameSize: 2048})
	var txs [2]*Tx
	var rxs [2]*Rx
	for q := range 2 {
		txs[q], _ = r.Queue(q, SideSwitch)
		_, rxs[q] = r.Queue(q, SideClient)
	}
	frame := mrFrame(make([]byte, size), size, 7)
	lens := make([]int, mrBenchBatch)
	for i := range lens {
		lens[i] = size
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	out := make([][]byte, mrBenchBatch)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := mrPin(0); err != nil {
			done <- err
			return
		}
		var s byte
		for !stop.Load() {
			for _, rx := range rxs {
				n, err := rx.Recv(out)
				if err != nil {
					done <- err
					return
				}
				for _, f := range out[:n] {
					s += f[0]
				}
				rx.Release()
			}
		}
		mrBenchSink = s
		done <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := mrPin(1); err != nil {
		b.Fatal(err)
	}
	var ns, frames [2]int64
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for sent, batch := 0, 0; sent < b.N; batch++ {
		q := batch & 1
		tx := txs[q]
		t0 := time.Now()
		k := tx.Reserve(min(mrBenchBatch, b.N-sent))
		if k == 0 {
			continue
		}
		for i := range k {
			if q == 0 {
				tx.Write(i, frame, nil)
			} else {
				copy(tx.Buffer(i), frame)
			}
		}
		if err := tx.Submit(lens[:k]); err != nil {
			b.Fatal(err)
		}
		ns[q] += int64(time.Since(t0))
		frames[q] += int64(k)
		sent += k
	}
	b.StopTimer()
	stop.Store(true)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if frames[0] == 0 || frames[1] == 0 {
		return // too few frames for both ways (b.N of 1)
	}
	b.ReportMetric(float64(ns[0])/float64(frames[0]), "write-ns/frame")
	b.ReportMetric(float64(ns[1])/float64(frames[1]), "copy-ns/frame")
}

// mrBenchSink keeps the consumer's reads.
var mrBenchSink byte
