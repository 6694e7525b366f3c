package xsk

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestMain removes what a dead earlier run of a privileged test left behind
// and checks that the tests leak neither goroutines nor file descriptors
// (sockets, program fds, eventfds standing in for sockets).
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		for _, s := range netnstest.Sweep() {
			fmt.Fprintf(os.Stderr, "removed stale %s left by a dead test process\n", s)
		}
	}
	// The runtime opens its poller's fds on first use; do that now so they
	// are not counted as a leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	goroutines, fds := runtime.NumGoroutine(), countFDs()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), countFDs()
			if g <= goroutines && f <= fds {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "leak check: %d goroutines and %d fds after the tests, %d and %d before\n", g, f, goroutines, fds)
				code = 1
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// fakeOffsets lays a fake ring out the way XDP_MMAP_OFFSETS describes the
// kernel's struct xdp_ring on x86-64: producer, consumer and flags each on
// their own cache line, the descriptor array after them.
var fakeOffsets = unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}

// newFakeRing builds a ring over ordinary memory laid out like the
// kernel's, exactly as mapRing does over the mmap'ed one. mem is nil so
// that unmap (from Socket.Close) is a no-op; the index pointers and the
// descriptor slice keep the memory alive.
func newFakeRing(t testing.TB, size uint32, descSize uintptr) (ring, []byte) {
	t.Helper()
	if size == 0 || size&(size-1) != 0 {
		t.Fatalf("fake ring size %d is not a power of two", size)
	}
	mem := make([]byte, int(fakeOffsets.Desc)+int(size)*int(descSize))
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		t.Fatalf("fake ring memory is not 8-byte aligned")
	}
	r := ring{
		producer: (*uint32)(unsafe.Pointer(&mem[fakeOffsets.Producer])),
		consumer: (*uint32)(unsafe.Pointer(&mem[fakeOffsets.Consumer])),
		flags:    (*uint32)(unsafe.Pointer(&mem[fakeOffsets.Flags])),
		mask:     size - 1,
		size:     size,
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r, mem
}

func newFakeAddrRing(t testing.TB, size uint32) addrRing {
	t.Helper()
	r, mem := newFakeRing(t, size, 8)
	return addrRing{ring: r, addrs: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[fakeOffsets.Desc])), size)}
}

func newFakeDescRing(t testing.TB, size uint32) descRing {
	t.Helper()
	r, mem := newFakeRing(t, size, unsafe.Sizeof(unix.XDPDesc{}))
	return descRing{ring: r, descs: unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&mem[fakeOffsets.Desc])), size)}
}

// ringSizes sizes the four rings of a fake socket.
type ringSizes struct{ rx, tx, fill, comp uint32 }

// newFakeSocket returns a socket on u whose rings are fake and whose fd is
// -1: Refill, Receive, Enqueue and Complete work, Flush and Stats must not
// be called. Like NewSocket it counts itself on u and becomes u's owner if
// u has none; the cleanup undoes that so that the UMEM can be closed.
func newFakeSocket(t testing.TB, u *Umem, sz ringSizes) *Socket {
	t.Helper()
	s := &Socket{
		fd:   -1,
		umem: u,
		rx:   newFakeDescRing(t, sz.rx),
		tx:   newFakeDescRing(t, sz.tx),
		fill: newFakeAddrRing(t, sz.fill),
		comp: newFakeAddrRing(t, sz.comp),
	}
	if u.owner == nil {
		u.owner = s
	}
	u.socks++
	t.Cleanup(func() {
		if s.fd < 0 && s.umem.socks > 0 {
			// Never "closed" (fd -1): Close would return early.
			s.umem.socks--
		}
		if s.umem.owner == s {
			s.umem.owner = nil
		}
	})
	return s
}

// newTestUmem maps a UMEM and closes it when the test ends (after the
// fake sockets' cleanups, which run first).
func newTestUmem(t testing.TB, frames, frameSize int) *Umem {
	t.Helper()
	u, err := NewUmem(UmemConfig{NumFrames: frames, FrameSize: frameSize})
	if err != nil {
		t.Fatalf("NewUmem(%d, %d): %v", frames, frameSize, err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("Umem.Close: %v", err)
		}
	})
	return u
}

// The fake kernel's side of a ring. Like the kernel (smp_load_acquire /
// smp_store_release) it reads the other side's index and publishes its own
// only with atomics, and it keeps its own index in the shared word, so it
// needs no state of its own.

// kernelProduce writes up to len(items) entries into the slots the user
// side has freed and publishes them; it returns how many it wrote.
func kernelProduce[T any](r *ring, slots []T, items ...T) int {
	prod := atomic.LoadUint32(r.producer)
	cons := atomic.LoadUint32(r.consumer)
	free := int(r.size - (prod - cons))
	n := min(free, len(items))
	for i := 0; i < n; i++ {
		slots[prod&r.mask] = items[i]
		prod++
	}
	atomic.StoreUint32(r.producer, prod)
	return n
}

// kernelConsume takes up to max published entries and hands the slots
// back.
func kernelConsume[T any](r *ring, slots []T, max int) []T {
	prod := atomic.LoadUint32(r.producer)
	cons := atomic.LoadUint32(r.consumer)
	n := min(int(prod-cons), max)
	out := make([]T, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, slots[cons&r.mask])
		cons++
	}
	atomic.StoreUint32(r.consumer, cons)
	return out
}

// kernelPending is how many published entries the kernel has not consumed.
func kernelPending(r *ring) int {
	return int(atomic.LoadUint32(r.producer) - atomic.LoadUint32(r.consumer))
}

// setRingIndex starts a fake ring at an arbitrary index on both sides, as
// if it had been running for a while; used to test index wrap-around at
// 2^32.
func setRingIndex(r *ring, idx uint32) {
	atomic.StoreUint32(r.producer, idx)
	atomic.StoreUint32(r.consumer, idx)
	r.cachedProd, r.cachedCons = idx, idx
}
