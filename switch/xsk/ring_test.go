package xsk

import (
	"math"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRingFreeProd: a ring we produce into (fill, TX) is full when size
// entries are outstanding, and the kernel's consumer index is read only
// when the cached view does not have room for the request.
func TestRingFreeProd(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 5} {
		r, _ := newFakeRing(t, 8, 8)
		setRingIndex(&r, start)
		if got := r.freeProd(1); got != 8 {
			t.Fatalf("start %#x: empty ring freeProd = %d, want 8", start, got)
		}
		r.cachedProd += 8 // produced a full ring
		r.publishProd()
		if got := r.freeProd(1); got != 0 {
			t.Fatalf("start %#x: full ring freeProd = %d, want 0", start, got)
		}
		// The kernel consumes 3; a request the cache cannot satisfy sees them.
		atomic.StoreUint32(r.consumer, start+3)
		if got := r.freeProd(1); got != 3 {
			t.Fatalf("start %#x: freeProd after kernel consumed 3 = %d, want 3", start, got)
		}
		// The kernel consumes everything, but the cached view satisfies a
		// request for 2, so the consumer word is not read (the point of
		// the cache: no shared cache line touched per entry).
		atomic.StoreUint32(r.consumer, start+8)
		if got := r.freeProd(2); got != 3 {
			t.Fatalf("start %#x: freeProd(2) = %d, want the cached 3", start, got)
		}
		if got := r.freeProd(4); got != 8 {
			t.Fatalf("start %#x: freeProd(4) = %d, want 8 after refresh", start, got)
		}
	}
}

// TestRingAvailCons: a ring we consume (RX, completion) reads the
// kernel's producer only when the cached view is empty.
func TestRingAvailCons(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 2} {
		r, _ := newFakeRing(t, 8, 8)
		setRingIndex(&r, start)
		if got := r.availCons(); got != 0 {
			t.Fatalf("start %#x: empty availCons = %d", start, got)
		}
		atomic.StoreUint32(r.producer, start+5)
		if got := r.availCons(); got != 5 {
			t.Fatalf("start %#x: availCons = %d, want 5", start, got)
		}
		atomic.StoreUint32(r.producer, start+8)
		if got := r.availCons(); got != 5 {
			t.Fatalf("start %#x: availCons = %d, want the cached 5 while not empty", start, got)
		}
		r.cachedCons += 5
		r.publishCons()
		if got := atomic.LoadUint32(r.consumer); got != start+5 {
			t.Fatalf("start %#x: published consumer %#x, want %#x", start, got, start+5)
		}
		if got := r.availCons(); got != 3 {
			t.Fatalf("start %#x: availCons after consuming 5 = %d, want 3", start, got)
		}
	}
}

func TestRingNeedWakeup(t *testing.T) {
	r, _ := newFakeRing(t, 8, 8)
	if r.needWakeup() {
		t.Fatal("needWakeup with flags 0")
	}
	atomic.StoreUint32(r.flags, unix.XDP_RING_NEED_WAKEUP)
	if !r.needWakeup() {
		t.Fatal("needWakeup false with XDP_RING_NEED_WAKEUP set")
	}
}

// TestFakeRingLayout checks the helper against the offsets it claims, so
// that the other tests exercise the same addressing as mapRing.
func TestFakeRingLayout(t *testing.T) {
	r, mem := newFakeRing(t, 4, 16)
	atomic.StoreUint32(r.producer, 0x11111111)
	atomic.StoreUint32(r.consumer, 0x22222222)
	atomic.StoreUint32(r.flags, 0x33333333)
	for off, want := range map[uint64]byte{fakeOffsets.Producer: 0x11, fakeOffsets.Consumer: 0x22, fakeOffsets.Flags: 0x33} {
		if mem[off] != want {
			t.Errorf("byte at offset %d = %#x, want %#x", off, mem[off], want)
		}
	}
}
