package xsk

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run the fake kernel on its own goroutine against the ring
// code, touching the shared indices only through atomics as the kernel
// does. Under -race they check the publish ordering: the race detector
// treats the atomics as the only synchronisation, so a descriptor read
// before the producer index that covers it was loaded, or a slot reused
// before the consumer index that frees it was published, is reported.

const raceTotal = 100_000

// seqDesc encodes sequence number seq in a descriptor that lies inside a
// UMEM of 64 chunks of 2048 bytes: Addr+Len is seq itself (which stays
// below the UMEM's 131072 bytes), Len is seq modulo the chunk size and
// Options repeats it whole.
func seqDesc(seq uint32) unix.XDPDesc {
	return unix.XDPDesc{Addr: uint64(seq &^ 2047), Len: seq & 2047, Options: seq}
}

// raceDeadline bounds a test that would otherwise spin forever on a lost
// descriptor.
const raceDeadline = 20 * time.Second

// TestReceiveConcurrentKernel: 1e5 descriptors through a 64-entry RX ring,
// the kernel producing in batches of 1..23, the worker receiving in
// batches of 1..37: none lost, none duplicated, all in order, none
// mistaken for bad.
func TestReceiveConcurrentKernel(t *testing.T) {
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 64, tx: 8, fill: 8, comp: 8})
	// The kernel goroutine gets its own copies of what it needs, so that
	// it shares nothing with the worker but the ring memory.
	prodp, consp, descs, mask, size := s.rx.producer, s.rx.consumer, s.rx.descs, s.rx.mask, s.rx.size
	stop := make(chan struct{})
	kernelDone := make(chan struct{})
	go func() {
		defer close(kernelDone)
		prod := atomic.LoadUint32(prodp)
		for seq, batch := uint32(0), uint32(1); seq < raceTotal; batch = batch%23 + 1 {
			free := size - (prod - atomic.LoadUint32(consp))
			n := min(free, batch, raceTotal-seq)
			if n == 0 {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
				continue
			}
			for i := uint32(0); i < n; i++ {
				descs[prod&mask] = seqDesc(seq)
				prod++
				seq++
			}
			atomic.StoreUint32(prodp, prod)
		}
	}()
	defer func() {
		close(stop)
		<-kernelDone
	}()

	var buf [37]unix.XDPDesc
	deadline := time.Now().Add(raceDeadline)
	next := uint32(0)
	for size := 1; next < raceTotal; size = size%len(buf) + 1 {
		n, bad := s.Receive(buf[:size])
		if bad != 0 {
			t.Fatalf("after %d descriptors: %d reported bad", next, bad)
		}
		for _, d := range buf[:n] {
			if d != seqDesc(next) {
				t.Fatalf("descriptor %d = %+v, want %+v", next, d, seqDesc(next))
			}
			next++
		}
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("stalled after %d of %d descriptors", next, raceTotal)
			}
			runtime.Gosched()
		}
	}
	<-kernelDone
	if s.RxAvailable() {
		t.Fatal("descriptors left after the last one was received")
	}
}

// TestFillRxLoopConcurrentKernel runs frames round the whole receive loop:
// the worker refills, the kernel takes addresses from the fill ring and
// delivers them on the RX ring, the worker receives and puts them back.
// The kernel checks that every address it is given is a chunk base inside
// the UMEM that it does not already hold (a frame handed to the kernel
// twice would be written by two packets at once); the worker checks the
// order. 64 frames serve 1e5 packets, so each frame goes round ~1500 times.
func TestFillRxLoopConcurrentKernel(t *testing.T) {
	const frames, fs = 64, 2048
	u := newTestUmem(t, frames, fs)
	s := newFakeSocket(t, u, ringSizes{rx: 32, tx: 8, fill: 64, comp: 8})
	type kring struct {
		prod, cons *uint32
		mask, size uint32
	}
	fillK := kring{s.fill.producer, s.fill.consumer, s.fill.mask, s.fill.size}
	rxK := kring{s.rx.producer, s.rx.consumer, s.rx.mask, s.rx.size}
	fillAddrs, rxDescs := s.fill.addrs, s.rx.descs

	stop := make(chan struct{})
	kernelDone := make(chan struct{})
	var kernelErr error // written by the kernel goroutine before kernelDone closes
	go func() {
		defer close(kernelDone)
		// held[addr] is true from the moment the kernel takes a frame from
		// the fill ring until the worker consumes its RX descriptor.
		held := make(map[uint64]bool, frames)
		slotAddr := make([]uint64, rxK.size)
		fillCons := atomic.LoadUint32(fillK.cons)
		rxProd := atomic.LoadUint32(rxK.prod)
		rxSeen := atomic.LoadUint32(rxK.cons)
		for seq, batch := uint32(0), uint32(1); seq < raceTotal; batch = batch%19 + 1 {
			rxCons := atomic.LoadUint32(rxK.cons)
			for ; rxSeen != rxCons; rxSeen++ {
				delete(held, slotAddr[rxSeen&rxK.mask])
			}
			n := min(rxK.size-(rxProd-rxCons), atomic.LoadUint32(fillK.prod)-fillCons, batch, raceTotal-seq)
			if n == 0 {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
				continue
			}
			for i := uint32(0); i < n; i++ {
				addr := fillAddrs[fillCons&fillK.mask]
				fillCons++
				if addr%fs != 0 || addr >= frames*fs || held[addr] {
					kernelErr = fmt.Errorf("packet %d: fill ring gave %#x (held by the kernel: %v)", seq, addr, held[addr])
					return
				}
				held[addr] = true
				slotAddr[rxProd&rxK.mask] = addr
				rxDescs[rxProd&rxK.mask] = unix.XDPDesc{Addr: addr + headroom, Len: 60 + seq%1400, Options: seq}
				rxProd++
				seq++
			}
			// The kernel publishes the fill consumer and the RX producer
			// together at the end of a batch, as xsk_flush does.
			atomic.StoreUint32(fillK.cons, fillCons)
			atomic.StoreUint32(rxK.prod, rxProd)
		}
	}()
	defer func() {
		close(stop)
		<-kernelDone
	}()

	if got := s.Refill(frames); got != frames {
		t.Fatalf("initial Refill = %d", got)
	}
	var buf [13]unix.XDPDesc
	deadline := time.Now().Add(raceDeadline)
	next := uint32(0)
	for size := 1; next < raceTotal; size = size%len(buf) + 1 {
		select {
		case <-kernelDone:
			if kernelErr != nil {
				t.Fatal(kernelErr)
			}
		default:
		}
		n, bad := s.Receive(buf[:size])
		if bad != 0 {
			t.Fatalf("after %d packets: %d bad descriptors", next, bad)
		}
		for _, d := range buf[:n] {
			if d.Options != next || d.Len != 60+next%1400 {
				t.Fatalf("packet %d: got %+v", next, d)
			}
			next++
			u.Put(d.Addr)
		}
		s.Refill(n)
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("stalled after %d of %d packets (free %d, fill level %d)", next, raceTotal, u.Free(), s.FillLevel())
			}
			runtime.Gosched()
		}
	}
	<-kernelDone
	if kernelErr != nil {
		t.Fatal(kernelErr)
	}
	// Every frame is in the fill ring or on the free stack.
	if inFill := kernelPending(&s.fill.ring); u.Free()+inFill != frames {
		t.Fatalf("%d free + %d in the fill ring, want %d frames", u.Free(), inFill, frames)
	}
}
