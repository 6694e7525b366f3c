package memring

import (
	"fmt"
	"runtime"
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
