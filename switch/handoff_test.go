package vswitch

import (
	"encoding/binary"
	"runtime"
	"testing"
	"unsafe"
)

func TestHandoffLayout(t *testing.T) {
	var h handoff
	head, tail := unsafe.Offsetof(h.head), unsafe.Offsetof(h.tail)
	ct, ch := unsafe.Offsetof(h.cachedTail), unsafe.Offsetof(h.cachedHead)
	// Producer- and consumer-written words must not share a cache line.
	for _, pair := range [][2]uintptr{{head, tail}, {head, ch}, {tail, ct}, {ct, ch}} {
		d := pair[1] - pair[0]
		if pair[0] > pair[1] {
			d = pair[0] - pair[1]
		}
		if d < 64 {
			t.Errorf("fields at offsets %d and %d share a cache line", pair[0], pair[1])
		}
	}
}

func TestHandoffEmptyFull(t *testing.T) {
	h := newHandoff(4)
	if h.peek() != nil {
		t.Fatal("peek on an empty ring returned a slot")
	}
	for i := 0; i < 4; i++ {
		s := h.reserve()
		if s == nil {
			t.Fatalf("reserve %d on a ring of 4 failed", i)
		}
		s.n = uint16(i)
		h.push()
	}
	if h.reserve() != nil {
		t.Fatal("reserve on a full ring returned a slot")
	}
	// Reserve without push does not take the slot.
	s := h.peek()
	if s == nil || s.n != 0 {
		t.Fatalf("peek = %v", s)
	}
	if again := h.peek(); again != s {
		t.Fatal("peek without release moved on")
	}
	h.release()
	if h.reserve() == nil {
		t.Fatal("reserve after a release failed")
	}
	for i := 1; i < 4; i++ {
		s := h.peek()
		if s == nil || s.n != uint16(i) {
			t.Fatalf("peek %d = %+v", i, s)
		}
		h.release()
	}
	if h.peek() != nil {
		t.Fatal("peek on a drained ring returned a slot")
	}
}

func TestHandoffWrapAround(t *testing.T) {
	h := newHandoff(8)
	next, want := 0, 0
	// Uneven push and pop counts walk the indices across many wraps.
	for round := 0; round < 1000; round++ {
		for i := 0; i < round%7+1; i++ {
			s := h.reserve()
			if s == nil {
				break
			}
			s.n = uint16(next)
			s.out = uint16(next >> 16)
			next++
			h.push()
		}
		for i := 0; i < round%5+1; i++ {
			s := h.peek()
			if s == nil {
				break
			}
			if got := int(s.n) | int(s.out)<<16; got != want {
				t.Fatalf("round %d: got slot %d, want %d", round, got, want)
			}
			want++
			h.release()
		}
		if n := next - want; n < 0 || n > 8 {
			t.Fatalf("round %d: %d slots in flight in a ring of 8", round, n)
		}
	}
	if next < 1000 {
		t.Fatalf("only %d slots passed", next)
	}
}

// TestHandoffIndexOverflow starts the indices just below 2^32 so that they
// wrap in the middle of the test.
func TestHandoffIndexOverflow(t *testing.T) {
	h := newHandoff(4)
	start := ^uint32(0) - 5
	h.head.Store(start)
	h.tail.Store(start)
	h.cachedHead, h.cachedTail = start, start
	for i := 0; i < 20; i++ {
		for j := 0; j < 3; j++ {
			s := h.reserve()
			if s == nil {
				t.Fatalf("iteration %d: reserve failed with %d in flight", i, j)
			}
			s.n = uint16(i*3 + j)
			h.push()
		}
		for j := 0; j < 3; j++ {
			s := h.peek()
			if s == nil || s.n != uint16(i*3+j) {
				t.Fatalf("iteration %d: peek %d = %+v", i, j, s)
			}
			h.release()
		}
	}
	for i := 0; i < 4; i++ {
		h.reserve()
		h.push()
	}
	if h.reserve() != nil {
		t.Fatal("full ring across the index wrap accepted a fifth slot")
	}
}

// TestHandoffConcurrent passes sequence-numbered frames from a producer to a
// consumer goroutine; run with -race. Order and contents must survive and
// nothing may be lost.
func TestHandoffConcurrent(t *testing.T) {
	total := uint32(100_000)
	if testing.Short() {
		total = 10_000
	}
	h := newHandoff(256) // the size Switch uses
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint32(0); seq < total; {
			s := h.reserve()
			if s == nil {
				runtime.Gosched()
				continue
			}
			// The sequence number at both ends of a frame of varying
			// length: the consumer must see all of what was written.
			n := 8 + int(seq%1500)
			binary.LittleEndian.PutUint32(s.data[0:], seq)
			binary.LittleEndian.PutUint32(s.data[n-4:], ^seq)
			s.n = uint16(n)
			s.out = uint16(seq)
			s.vlan = uint16(seq >> 16)
			h.push()
			seq++
		}
	}()
	for want := uint32(0); want < total; {
		s := h.peek()
		if s == nil {
			runtime.Gosched()
			continue
		}
		seq := binary.LittleEndian.Uint32(s.data[0:])
		if seq != want || uint32(s.out)|uint32(s.vlan)<<16 != want {
			t.Fatalf("got slot %d (out %d vlan %d), want %d", seq, s.out, s.vlan, want)
		}
		n := int(s.n)
		if n != 8+int(seq%1500) {
			t.Fatalf("slot %d: length %d", seq, n)
		}
		if end := binary.LittleEndian.Uint32(s.data[n-4:]); end != ^seq {
			t.Fatalf("slot %d: trailer %#x, want %#x", seq, end, ^seq)
		}
		h.release()
		want++
	}
	<-done
	if h.peek() != nil {
		t.Fatal("ring not empty after the last slot")
	}
}
