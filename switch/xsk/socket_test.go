package xsk

import (
	"math"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// headroom is where the kernel puts a received frame inside its chunk in
// copy mode (XDP_PACKET_HEADROOM); RX and completion addresses carry it.
const headroom = 256

// startIndices are the ring positions the socket tests start from: a fresh
// ring, and one whose 32-bit indices wrap during the test.
var startIndices = []uint32{0, math.MaxUint32 - 3}

func TestRefill(t *testing.T) {
	for _, start := range startIndices {
		u := newTestUmem(t, 64, 2048)
		s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
		setRingIndex(&s.fill.ring, start)

		if got := s.Refill(5); got != 5 {
			t.Fatalf("start %#x: Refill(5) = %d", start, got)
		}
		if got := s.Refill(10); got != 3 {
			t.Fatalf("start %#x: Refill(10) into 3 free slots = %d", start, got)
		}
		if got := s.Refill(1); got != 0 {
			t.Fatalf("start %#x: Refill into a full ring = %d", start, got)
		}
		if got := s.FillLevel(); got != 8 {
			t.Fatalf("start %#x: FillLevel = %d, want 8", start, got)
		}
		if u.Free() != 56 {
			t.Fatalf("start %#x: Free = %d, want 56", start, u.Free())
		}
		// The kernel sees what was published, in the free stack's order.
		got := kernelConsume(&s.fill.ring, s.fill.addrs, 4)
		if want := []uint64{0, 2048, 2 * 2048, 3 * 2048}; !slices.Equal(got, want) {
			t.Fatalf("start %#x: kernel consumed %v, want %v", start, got, want)
		}
		if got := s.Refill(10); got != 4 {
			t.Fatalf("start %#x: Refill(10) after the kernel consumed 4 = %d", start, got)
		}
		got = kernelConsume(&s.fill.ring, s.fill.addrs, 100)
		want := []uint64{4 * 2048, 5 * 2048, 6 * 2048, 7 * 2048, 8 * 2048, 9 * 2048, 10 * 2048, 11 * 2048}
		if !slices.Equal(got, want) {
			t.Fatalf("start %#x: kernel consumed %v, want %v", start, got, want)
		}
		if got := s.Refill(0); got != 0 {
			t.Fatalf("Refill(0) = %d", got)
		}
		if got := s.Refill(-1); got != 0 {
			t.Fatalf("Refill(-1) = %d", got)
		}
		if kernelPending(&s.fill.ring) != 0 || u.Free() != 52 {
			t.Fatalf("start %#x: after no-op Refills: %d pending, %d free; want 0, 52", start, kernelPending(&s.fill.ring), u.Free())
		}
	}
}

// TestFillLevelFollowsKernel: FillLevel is documented as how many frames
// the kernel holds in the fill ring, so it must drop when the kernel
// consumes, not only when a later Refill happens to refresh the cache.
func TestFillLevelFollowsKernel(t *testing.T) {
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
	s.Refill(8)
	kernelConsume(&s.fill.ring, s.fill.addrs, 6)
	if got := s.FillLevel(); got != 2 {
		t.Fatalf("FillLevel = %d after the kernel consumed 6 of 8, want 2", got)
	}
}

func TestRefillLimitedByFreeFrames(t *testing.T) {
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 128, comp: 8})
	if got := s.Refill(100); got != 64 {
		t.Fatalf("Refill(100) with 64 free frames = %d", got)
	}
	if u.Free() != 0 {
		t.Fatalf("Free = %d, want 0", u.Free())
	}
	if got := s.Refill(1); got != 0 {
		t.Fatalf("Refill with no free frames = %d", got)
	}
	got := kernelConsume(&s.fill.ring, s.fill.addrs, 1000)
	if len(got) != 64 {
		t.Fatalf("kernel consumed %d addresses, want 64", len(got))
	}
	slices.Sort(got)
	for i, a := range got {
		if a != uint64(i)*2048 {
			t.Fatalf("fill ring address %d = %#x, want every chunk exactly once", i, a)
		}
	}
}

func rxDesc(chunk int, n uint32) unix.XDPDesc {
	return unix.XDPDesc{Addr: uint64(chunk)*2048 + headroom, Len: n}
}

func TestReceiveInOrderWithWrap(t *testing.T) {
	for _, start := range startIndices {
		u := newTestUmem(t, 64, 2048)
		s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
		setRingIndex(&s.rx.ring, start)
		var buf [16]unix.XDPDesc
		if n, bad := s.Receive(buf[:]); n != 0 || bad != 0 {
			t.Fatalf("start %#x: Receive on an empty ring = %d, %d", start, n, bad)
		}
		if s.RxAvailable() {
			t.Fatalf("start %#x: RxAvailable on an empty ring", start)
		}
		seq := 0
		next := func(k int) []unix.XDPDesc {
			var ds []unix.XDPDesc
			for i := 0; i < k; i++ {
				ds = append(ds, rxDesc(seq%64, uint32(60+seq)))
				seq++
			}
			return ds
		}
		want := 0
		check := func(got []unix.XDPDesc) {
			t.Helper()
			for _, d := range got {
				if w := rxDesc(want%64, uint32(60+want)); d != w {
					t.Fatalf("start %#x: descriptor %d = %+v, want %+v", start, want, d, w)
				}
				want++
			}
		}
		if n := kernelProduce(&s.rx.ring, s.rx.descs, next(5)...); n != 5 {
			t.Fatalf("kernel produced %d of 5", n)
		}
		if !s.RxAvailable() {
			t.Fatalf("start %#x: RxAvailable false with 5 descriptors", start)
		}
		// A batch smaller than what is available, then the rest.
		n, bad := s.Receive(buf[:3])
		if n != 3 || bad != 0 {
			t.Fatalf("start %#x: Receive(3 of 5) = %d, %d", start, n, bad)
		}
		check(buf[:n])
		if kernelPending(&s.rx.ring) != 2 {
			t.Fatalf("start %#x: consumer not published: kernel sees %d pending, want 2", start, kernelPending(&s.rx.ring))
		}
		n, _ = s.Receive(buf[:])
		if n != 2 {
			t.Fatalf("start %#x: Receive(16 of 2) = %d", start, n)
		}
		check(buf[:n])
		// A full ring: the kernel cannot place a ninth descriptor.
		if n := kernelProduce(&s.rx.ring, s.rx.descs, next(9)...); n != 8 {
			t.Fatalf("start %#x: kernel placed %d descriptors in an 8-entry ring", start, n)
		}
		seq-- // the ninth was not placed
		n, _ = s.Receive(buf[:])
		if n != 8 {
			t.Fatalf("start %#x: Receive of a full ring = %d, want 8", start, n)
		}
		check(buf[:n])
		// Many rounds of odd batch sizes across the wrap.
		for round := 0; round < 50; round++ {
			kernelProduce(&s.rx.ring, s.rx.descs, next(1+round%8)...)
			for kernelPending(&s.rx.ring) > 0 {
				n, bad := s.Receive(buf[:1+round%5])
				if bad != 0 {
					t.Fatalf("bad descriptor")
				}
				check(buf[:n])
			}
		}
		if want != seq {
			t.Fatalf("start %#x: received %d descriptors, kernel produced %d", start, want, seq)
		}
	}
}

func TestReceiveZeroLengthBuffer(t *testing.T) {
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
	kernelProduce(&s.rx.ring, s.rx.descs, rxDesc(0, 60), rxDesc(1, 60))
	if n, bad := s.Receive(nil); n != 0 || bad != 0 {
		t.Fatalf("Receive(nil) = %d, %d", n, bad)
	}
	if kernelPending(&s.rx.ring) != 2 {
		t.Fatalf("Receive(nil) consumed descriptors: %d left, want 2", kernelPending(&s.rx.ring))
	}
}

// TestReceiveRejectsOutsideUmem: RX descriptors come from memory shared
// with the kernel; one that does not lie inside one chunk of the UMEM must
// never reach the caller (Umem.Frame would slice past the chunk, into
// another frame, or panic), but it must be consumed and counted.
func TestReceiveRejectsOutsideUmem(t *testing.T) {
	const fs, frames = 2048, 64
	const total = fs * frames
	for _, tc := range []struct {
		name string
		d    unix.XDPDesc
		ok   bool
	}{
		{"headroom, full MTU", unix.XDPDesc{Addr: fs + headroom, Len: 1514}, true},
		{"to the chunk end", unix.XDPDesc{Addr: fs + headroom, Len: fs - headroom}, true},
		{"last chunk to the UMEM end", unix.XDPDesc{Addr: total - fs, Len: fs}, true},
		{"crosses chunk end", unix.XDPDesc{Addr: fs + headroom, Len: fs - headroom + 1}, false},
		{"crosses into next chunk", unix.XDPDesc{Addr: 2*fs - 1, Len: 2}, false},
		{"longer than a chunk", unix.XDPDesc{Addr: 0, Len: fs + 1}, false},
		{"at the UMEM end", unix.XDPDesc{Addr: total, Len: 0}, false},
		{"past the UMEM end", unix.XDPDesc{Addr: total + headroom, Len: 60}, false},
		{"last chunk past the end", unix.XDPDesc{Addr: total - 1, Len: 2}, false},
		{"huge address", unix.XDPDesc{Addr: 1 << 62, Len: 60}, false},
		{"address that wraps with len", unix.XDPDesc{Addr: math.MaxUint64 - 10, Len: 64}, false},
		{"max length", unix.XDPDesc{Addr: headroom, Len: math.MaxUint32}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newTestUmem(t, frames, fs)
			s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
			good1 := rxDesc(3, 100)
			good2 := rxDesc(4, 200)
			kernelProduce(&s.rx.ring, s.rx.descs, good1, tc.d, good2)
			var buf [8]unix.XDPDesc
			n, bad := s.Receive(buf[:])
			want := []unix.XDPDesc{good1, good2}
			wantBad := 1
			if tc.ok {
				want = []unix.XDPDesc{good1, tc.d, good2}
				wantBad = 0
			}
			if !slices.Equal(buf[:n], want) || bad != wantBad {
				t.Fatalf("Receive = %+v, bad %d; want %+v, bad %d", buf[:n], bad, want, wantBad)
			}
			if kernelPending(&s.rx.ring) != 0 {
				t.Fatalf("%d descriptors left in the ring; rejected ones must be consumed too", kernelPending(&s.rx.ring))
			}
		})
	}
}

// TestReceiveAllBad: a batch of nothing but bad descriptors returns n = 0
// with bad set, and the caller must not mistake it for an empty ring that
// leaves them there.
func TestReceiveAllBad(t *testing.T) {
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
	for i := 0; i < 8; i++ {
		kernelProduce(&s.rx.ring, s.rx.descs, unix.XDPDesc{Addr: 1 << 40, Len: 60})
	}
	var buf [4]unix.XDPDesc
	if n, bad := s.Receive(buf[:]); n != 0 || bad != 4 {
		t.Fatalf("Receive = %d, %d; want 0, 4", n, bad)
	}
	if n, bad := s.Receive(buf[:]); n != 0 || bad != 4 {
		t.Fatalf("second Receive = %d, %d; want 0, 4", n, bad)
	}
	if kernelPending(&s.rx.ring) != 0 {
		t.Fatalf("%d bad descriptors left", kernelPending(&s.rx.ring))
	}
}

func TestEnqueueCompleteWithWrap(t *testing.T) {
	for _, start := range startIndices {
		u := newTestUmem(t, 64, 2048)
		s := newFakeSocket(t, u, ringSizes{rx: 8, tx: 8, fill: 8, comp: 8})
		setRingIndex(&s.tx.ring, start)
		setRingIndex(&s.comp.ring, start)
		// Garbage in the slots: Enqueue must write every field.
		for i := range s.tx.descs {
			s.tx.descs[i] = unix.XDPDesc{Addr: 0xdead, Len: 0xbeef, Options: 0xffffffff}
		}
		if s.TxFree() != 8 || s.TxPending() != 0 {
			t.Fatalf("start %#x: fresh TX ring: TxFree %d TxPending %d", start, s.TxFree(), s.TxPending())
		}
		var sent []unix.XDPDesc
		for i := 0; i < 8; i++ {
			addr, _ := u.Get()
			d := unix.XDPDesc{Addr: addr + headroom, Len: uint32(60 + i)}
			if !s.Enqueue(d.Addr, d.Len) {
				t.Fatalf("start %#x: Enqueue #%d refused with a free ring", start, i)
			}
			sent = append(sent, d)
		}
		if s.Enqueue(40*2048, 60) {
			t.Fatalf("start %#x: Enqueue into a full TX ring succeeded", start)
		}
		if s.TxFree() != 0 || s.TxPending() != 8 || s.txOutstanding != 8 {
			t.Fatalf("start %#x: full ring: TxFree %d TxPending %d outstanding %d", start, s.TxFree(), s.TxPending(), s.txOutstanding)
		}
		if kernelPending(&s.tx.ring) != 0 {
			t.Fatalf("start %#x: Enqueue published before Flush", start)
		}
		s.tx.publishProd() // Flush without the kick
		got := kernelConsume(&s.tx.ring, s.tx.descs, 3)
		if !slices.Equal(got, sent[:3]) {
			t.Fatalf("start %#x: kernel read %+v, want %+v", start, got, sent[:3])
		}
		if s.TxFree() != 3 || s.TxPending() != 5 {
			t.Fatalf("start %#x: after the kernel took 3: TxFree %d TxPending %d", start, s.TxFree(), s.TxPending())
		}
		// The kernel completes them, addresses as sent (inside the chunk).
		free := u.Free()
		if s.Complete() != 0 {
			t.Fatalf("Complete with an empty completion ring returned frames")
		}
		kernelProduce(&s.comp.ring, s.comp.addrs, got[0].Addr, got[1].Addr, got[2].Addr)
		if n := s.Complete(); n != 3 {
			t.Fatalf("start %#x: Complete = %d, want 3", start, n)
		}
		if u.Free() != free+3 || s.txOutstanding != 5 {
			t.Fatalf("start %#x: after Complete: Free %d (want %d) outstanding %d (want 5)", start, u.Free(), free+3, s.txOutstanding)
		}
		if kernelPending(&s.comp.ring) != 0 {
			t.Fatalf("start %#x: Complete did not publish the completion consumer", start)
		}
		// They are back as chunk bases, most recently completed on top.
		var back []uint64
		for i := 2; i >= 0; i-- {
			a, _ := u.Get()
			if want := got[i].Addr &^ 2047; a != want {
				t.Fatalf("start %#x: Get after Complete = %#x, want %#x", start, a, want)
			}
			back = append(back, a)
		}
		for i := len(back) - 1; i >= 0; i-- {
			u.Put(back[i])
		}
		// Three more fit (the producer wraps the ring), then it is full.
		for i := 0; i < 3; i++ {
			addr, _ := u.Get()
			d := unix.XDPDesc{Addr: addr, Len: 1514}
			if !s.Enqueue(d.Addr, d.Len) {
				t.Fatalf("start %#x: Enqueue into a freed slot refused", start)
			}
			sent = append(sent, d)
		}
		if s.Enqueue(40*2048, 60) {
			t.Fatalf("start %#x: Enqueue past the kernel's consumer succeeded", start)
		}
		s.tx.publishProd()
		got = kernelConsume(&s.tx.ring, s.tx.descs, 100)
		if !slices.Equal(got, sent[3:]) {
			t.Fatalf("start %#x: kernel read %+v, want %+v", start, got, sent[3:])
		}
		if s.TxPending() != 0 || s.TxFree() != 8 {
			t.Fatalf("start %#x: drained ring: TxPending %d TxFree %d", start, s.TxPending(), s.TxFree())
		}
		addrs := make([]uint64, len(got))
		for i, d := range got {
			addrs[i] = d.Addr
		}
		kernelProduce(&s.comp.ring, s.comp.addrs, addrs...)
		if n := s.Complete(); n != 8 {
			t.Fatalf("start %#x: Complete = %d, want 8", start, n)
		}
		if u.Free() != 64 || s.txOutstanding != 0 {
			t.Fatalf("start %#x: all completed: Free %d outstanding %d; want 64, 0", start, u.Free(), s.txOutstanding)
		}
	}
}

// closeFixture is a fake socket with a real fd (an eventfd standing in for
// the AF_XDP socket) so that Close runs its whole path.
func closeFixture(t *testing.T) (*Umem, *Socket) {
	t.Helper()
	u := newTestUmem(t, 64, 2048)
	s := newFakeSocket(t, u, ringSizes{rx: 16, tx: 8, fill: 16, comp: 8})
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("eventfd: %v", err)
	}
	s.fd = fd
	t.Cleanup(func() {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
	})
	return u, s
}

// TestCloseReturnsRingFrames: frames still in the fill ring and in the RX
// ring go back to the free stack; frames on the TX ring that never
// completed are reported lost.
func TestCloseReturnsRingFrames(t *testing.T) {
	u, s := closeFixture(t)
	s.Refill(16)
	// The kernel fills 6 frames and delivers them; 10 stay in the fill ring.
	var ds []unix.XDPDesc
	for _, a := range kernelConsume(&s.fill.ring, s.fill.addrs, 6) {
		ds = append(ds, unix.XDPDesc{Addr: a + headroom, Len: 60})
	}
	kernelProduce(&s.rx.ring, s.rx.descs, ds...)
	// The worker takes 2: it forwards one (TX, never completed) and keeps
	// the other; 4 stay in the RX ring.
	var buf [2]unix.XDPDesc
	if n, _ := s.Receive(buf[:]); n != 2 {
		t.Fatalf("Receive = %d", n)
	}
	s.Enqueue(buf[0].Addr, buf[0].Len)
	s.tx.publishProd()
	if u.Free() != 48 {
		t.Fatalf("Free = %d before Close, want 48", u.Free())
	}
	lost := s.Close()
	if lost != 1 {
		t.Errorf("Close lost = %d, want 1 (the TX frame)", lost)
	}
	// 48 + 10 from the fill ring + 4 from the RX ring.
	if u.Free() != 62 {
		t.Errorf("Free = %d after Close, want 62", u.Free())
	}
	u.Put(buf[1].Addr)
	if u.Free() != u.NumFrames()-lost {
		t.Errorf("Free = %d with every frame returned, want NumFrames-lost = %d", u.Free(), u.NumFrames()-lost)
	}
	if s.fd != -1 || u.socks != 0 || u.owner != nil {
		t.Errorf("after Close: fd %d, umem socks %d, owner %p; want -1, 0, nil", s.fd, u.socks, u.owner)
	}
	if lost := s.Close(); lost != 0 {
		t.Errorf("second Close = %d", lost)
	}
}

// TestCloseReapsCompletions: TX frames that completed before Close are
// returned and not counted as lost.
func TestCloseReapsCompletions(t *testing.T) {
	u, s := closeFixture(t)
	for i := 0; i < 3; i++ {
		a, _ := u.Get()
		s.Enqueue(a+headroom, 60)
	}
	s.tx.publishProd()
	var addrs []uint64
	for _, d := range kernelConsume(&s.tx.ring, s.tx.descs, 2) {
		addrs = append(addrs, d.Addr)
	}
	kernelProduce(&s.comp.ring, s.comp.addrs, addrs...)
	if lost := s.Close(); lost != 1 {
		t.Errorf("Close lost = %d, want 1 (one TX frame never completed)", lost)
	}
	if u.Free() != 63 {
		t.Errorf("Free = %d, want 63", u.Free())
	}
}

// TestCloseCountsFramesHeldByKernel: a frame the kernel took from the fill
// ring and has not delivered to the RX ring (a zero-copy driver holds a
// whole NIC ring of them; copy mode parks one on the pool's free list when
// the RX ring was full) is still in flight in the kernel. Close documents
// that it returns how many frames it could not account for, so such
// frames must be in that number: Free + lost must come back to NumFrames.
func TestCloseCountsFramesHeldByKernel(t *testing.T) {
	u, s := closeFixture(t)
	s.Refill(16)
	var ds []unix.XDPDesc
	for _, a := range kernelConsume(&s.fill.ring, s.fill.addrs, 5) {
		ds = append(ds, unix.XDPDesc{Addr: a + headroom, Len: 60})
	}
	// Three delivered, two still held by the "driver".
	kernelProduce(&s.rx.ring, s.rx.descs, ds[:3]...)
	lost := s.Close()
	if lost != 2 {
		t.Errorf("Close lost = %d, want 2", lost)
	}
	if u.Free()+lost != u.NumFrames() {
		t.Errorf("after Close: Free %d + lost %d = %d, want NumFrames %d (2 frames held by the kernel unaccounted)",
			u.Free(), lost, u.Free()+lost, u.NumFrames())
	}
}
