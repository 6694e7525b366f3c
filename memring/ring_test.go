package memring

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"
)

// mrRegion makes a region with the small geometry most ring tests use and
// closes it at the end of the test.
func mrRegion(tb testing.TB, cfg Config) *Region {
	tb.Helper()
	r, _, err := NewRegion("memring-test", cfg)
	if err != nil {
		tb.Fatalf("NewRegion(%+v): %v", cfg, err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

var mrSmall = Config{QueuePairs: 2, RingSize: 64, FrameSize: 2048}

// mrSetIndex puts both indices of ring i at v, as if that many frames had
// already gone through; ends made afterwards start there.
func mrSetIndex(r *Region, i int, v uint32) {
	g := r.ring(i)
	g.prod.Store(v)
	g.cons.Store(v)
}

// mrFrame fills a frame of n bytes whose first 8 bytes are seq.
func mrFrame(buf []byte, n int, seq uint64) []byte {
	f := buf[:n]
	for i := range f {
		f[i] = byte(seq) ^ byte(i)
	}
	if n >= 8 {
		binary.LittleEndian.PutUint64(f, seq)
	}
	return f
}

func mrCheckFrame(t *testing.T, f []byte, n int, seq uint64) {
	t.Helper()
	if len(f) != n {
		t.Fatalf("frame %d: len %d, want %d", seq, len(f), n)
	}
	if got := binary.LittleEndian.Uint64(f); got != seq {
		t.Fatalf("frame: seq %d, want %d", got, seq)
	}
	for i := 8; i < n; i++ {
		if f[i] != byte(seq)^byte(i) {
			t.Fatalf("frame %d: byte %d = %#x, want %#x", seq, i, f[i], byte(seq)^byte(i))
		}
	}
}

// mrInPart reports whether f lies inside the partition of ring i of r.
func mrInPart(r *Region, i int, f []byte) bool {
	base := uintptr(unsafe.Pointer(&r.mem[0]))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(f)))
	start := base + uintptr(r.l.partOff(i))
	end := start + uintptr(r.l.partLen())
	return p >= start && p+uintptr(len(f)) <= end && p+uintptr(cap(f)) <= end
}

// TestQueueEnds: each side gets the producer end of its outgoing ring and
// the consumer end of its incoming ring, for every queue pair.
func TestQueueEnds(t *testing.T) {
	r := mrRegion(t, mrSmall)
	for q := 0; q < mrSmall.QueuePairs; q++ {
		stx, srx := r.Queue(q, SideSwitch)
		ctx, crx := r.Queue(q, SideClient)
		if stx.g.partStart != r.l.partOff(2*q+1) || srx.g.partStart != r.l.partOff(2*q) {
			t.Fatalf("q%d switch ends on the wrong rings", q)
		}
		if ctx.g.partStart != r.l.partOff(2*q) || crx.g.partStart != r.l.partOff(2*q+1) {
			t.Fatalf("q%d client ends on the wrong rings", q)
		}
		buf := make([]byte, 64)
		if n, err := ctx.Send([][]byte{mrFrame(buf, 64, uint64(q))}); n != 1 || err != nil {
			t.Fatalf("client send: %d, %v", n, err)
		}
		out := make([][]byte, 4)
		if n, err := srx.Recv(out); n != 1 || err != nil {
			t.Fatalf("switch recv: %d, %v", n, err)
		}
		mrCheckFrame(t, out[0], 64, uint64(q))
		srx.Release()
		if n, _ := stx.Send([][]byte{mrFrame(buf, 60, uint64(q+100))}); n != 1 {
			t.Fatal("switch send failed")
		}
		if n, _ := crx.Recv(out); n != 1 {
			t.Fatal("client recv failed")
		}
		mrCheckFrame(t, out[0], 60, uint64(q+100))
	}
	for _, q := range []int{-1, mrSmall.QueuePairs} {
		if tx, rx := r.Queue(q, SideClient); tx != nil || rx != nil {
			t.Fatalf("Queue(%d) gave ends", q)
		}
	}
	if tx, rx := r.Queue(0, Side(2)); tx != nil || rx != nil {
		t.Fatal("Queue with an unknown side gave ends")
	}
}

// TestRingWrap moves frames in every batch size across the 2^32 wrap of
// the free-running indices.
func TestRingWrap(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 5, math.MaxUint32 - 63, math.MaxUint32} {
		r := mrRegion(t, mrSmall)
		mrSetIndex(r, 0, start)
		tx, _ := r.Queue(0, SideClient)
		_, rx := r.Queue(0, SideSwitch)
		buf := make([]byte, 64*2048)
		frames := make([][]byte, 64)
		out := make([][]byte, 64)
		seq := uint64(0)
		for round := 0; round < 3; round++ {
			for b := 1; b <= 64; b++ {
				for i := 0; i < b; i++ {
					frames[i] = mrFrame(buf[i*2048:], mrWrapLen(seq+uint64(i)), seq+uint64(i))
				}
				if n, err := tx.Send(frames[:b]); n != b || err != nil {
					t.Fatalf("start %#x batch %d: Send = %d, %v", start, b, n, err)
				}
				if p := rx.Pending(); p != b {
					t.Fatalf("start %#x batch %d: Pending = %d", start, b, p)
				}
				n, err := rx.Recv(out)
				if n != b || err != nil {
					t.Fatalf("start %#x batch %d: Recv = %d, %v", start, b, n, err)
				}
				for i := 0; i < n; i++ {
					mrCheckFrame(t, out[i], mrWrapLen(seq+uint64(i)), seq+uint64(i))
					if !mrInPart(r, 0, out[i]) {
						t.Fatalf("frame outside ring 0's partition")
					}
				}
				rx.Release()
				seq += uint64(b)
			}
		}
		want := start + uint32(seq)
		if got := r.ring(0).prod.Load(); got != want {
			t.Fatalf("start %#x: producer %#x, want %#x", start, got, want)
		}
		if got := r.ring(0).cons.Load(); got != want {
			t.Fatalf("start %#x: consumer %#x, want %#x", start, got, want)
		}
		if s := rx.Stats(); s.Received != seq || s.BadLen+s.BadOffset+s.Corrupt != 0 {
			t.Fatalf("rx stats %+v", s)
		}
	}
}

func mrWrapLen(seq uint64) int { return 14 + int(seq*37%2035) }

// TestRingFullEmpty: a ring takes exactly ring_size frames, refuses the
// next one (counted Full), and takes more once the consumer releases.
func TestRingFullEmpty(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 10} {
		r := mrRegion(t, mrSmall)
		mrSetIndex(r, 1, start)
		tx, _ := r.Queue(0, SideSwitch)
		_, rx := r.Queue(0, SideClient)
		out := make([][]byte, 128)
		if n, err := rx.Recv(out); n != 0 || err != nil {
			t.Fatalf("empty Recv = %d, %v", n, err)
		}
		frames := make([][]byte, 100)
		for i := range frames {
			frames[i] = mrFrame(make([]byte, 64), 64, uint64(i))
		}
		if n, err := tx.Send(frames); n != 64 || err != nil {
			t.Fatalf("Send 100 into 64 = %d, %v", n, err)
		}
		if n, _ := tx.Send(frames[:1]); n != 0 {
			t.Fatalf("Send into a full ring = %d", n)
		}
		if got := tx.Reserve(1); got != 0 {
			t.Fatalf("Reserve on a full ring = %d", got)
		}
		if s := tx.Stats(); s.Sent != 64 || s.Full != 37 {
			t.Fatalf("tx stats %+v, want Sent 64 Full 37", s)
		}
		if p := rx.Pending(); p != 64 {
			t.Fatalf("Pending = %d", p)
		}
		// Recv without Release keeps the slots: still full.
		n, _ := rx.Recv(out[:10])
		if n != 10 {
			t.Fatalf("Recv 10 = %d", n)
		}
		if n, _ := tx.Send(frames[:1]); n != 0 {
			t.Fatal("Send succeeded before Release")
		}
		n2, _ := rx.Recv(out[10:])
		if n2 != 54 {
			t.Fatalf("second Recv = %d, want 54", n2)
		}
		for i := 0; i < 64; i++ {
			mrCheckFrame(t, out[i], 64, uint64(i))
		}
		rx.Release()
		if n, _ := rx.Recv(out); n != 0 {
			t.Fatalf("Recv on an empty ring = %d", n)
		}
		if n, _ := tx.Send(frames[64:]); n != 36 {
			t.Fatalf("Send after Release = %d", n)
		}
	}
}

// TestRingFrameLens: 14 and frame_size bytes go through; shorter and
// longer frames are dropped by Send and counted, the rest still sent.
func TestRingFrameLens(t *testing.T) {
	for _, fs := range []int{2048, 16384} {
		r := mrRegion(t, Config{RingSize: 64, FrameSize: fs})
		tx, _ := r.Queue(0, SideClient)
		_, rx := r.Queue(0, SideSwitch)
		frames := [][]byte{
			make([]byte, 0), mrFrame(make([]byte, 14), 14, 1), make([]byte, 13),
			mrFrame(make([]byte, fs), fs, 2), make([]byte, fs+1), nil,
		}
		n, err := tx.Send(frames)
		if n != 2 || err != nil {
			t.Fatalf("fs %d: Send = %d, %v", fs, n, err)
		}
		if s := tx.Stats(); s.BadLen != 4 || s.Sent != 2 {
			t.Fatalf("fs %d: tx stats %+v", fs, s)
		}
		out := make([][]byte, 8)
		if n, _ := rx.Recv(out); n != 2 {
			t.Fatalf("fs %d: Recv = %d", fs, n)
		}
		mrCheckFrame(t, out[0], 14, 1)
		mrCheckFrame(t, out[1], fs, 2)
		if cap(out[0]) != 14 {
			t.Fatalf("view capacity %d reaches past the frame", cap(out[0]))
		}
	}
}

// TestRingZeroCopy: Reserve/Buffer/Submit publish in place; Submit refuses
// too many slots and bad lengths without publishing.
func TestRingZeroCopy(t *testing.T) {
	r := mrRegion(t, mrSmall)
	mrSetIndex(r, 1, math.MaxUint32-2)
	tx, _ := r.Queue(0, SideSwitch)
	_, rx := r.Queue(0, SideClient)
	if got := tx.Reserve(0); got != 0 {
		t.Fatalf("Reserve(0) = %d", got)
	}
	if got := tx.Reserve(100); got != 64 {
		t.Fatalf("Reserve(100) = %d", got)
	}
	if got := tx.Reserve(8); got != 8 {
		t.Fatalf("Reserve(8) = %d", got)
	}
	if tx.Buffer(-1) != nil || tx.Buffer(8) != nil {
		t.Fatal("Buffer outside the reservation")
	}
	for i := 0; i < 8; i++ {
		b := tx.Buffer(i)
		if len(b) != 2048 || cap(b) != 2048 || !mrInPart(r, 1, b) {
			t.Fatalf("Buffer(%d): len %d cap %d", i, len(b), cap(b))
		}
		mrFrame(b, 100+i, uint64(i))
	}
	if err := tx.Submit(make([]int, 9)); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("Submit 9 of 8: %v", err)
	}
	if err := tx.Submit([]int{100, 13}); !errors.Is(err, ErrFrameLen) {
		t.Fatalf("Submit len 13: %v", err)
	}
	if err := tx.Submit([]int{100, 2049}); !errors.Is(err, ErrFrameLen) {
		t.Fatalf("Submit len 2049: %v", err)
	}
	if rx.Pending() != 0 {
		t.Fatal("a refused Submit published")
	}
	// Submit 5 of 8: the other 3 go back.
	if err := tx.Submit([]int{100, 101, 102, 103, 104}); err != nil {
		t.Fatal(err)
	}
	if tx.Buffer(0) != nil {
		t.Fatal("reservation survived Submit")
	}
	out := make([][]byte, 16)
	n, _ := rx.Recv(out)
	if n != 5 {
		t.Fatalf("Recv = %d, want 5", n)
	}
	for i := 0; i < n; i++ {
		mrCheckFrame(t, out[i], 100+i, uint64(i))
	}
	rx.Release()
	if got := tx.Reserve(64); got != 64 {
		t.Fatalf("Reserve after release = %d", got)
	}
	if err := tx.Submit(nil); err != nil {
		t.Fatal(err)
	}
	if s := tx.Stats(); s.Sent != 5 {
		t.Fatalf("tx stats %+v", s)
	}
}

// TestRingWrite: Write puts head and then tail into a reserved slot's
// buffer, whichever way the frame is split around the non-temporal first
// line, refuses slots outside the reservation and frames longer than a
// buffer, and Submit publishes exactly what was written. A Send after an
// unsubmitted Write reuses those buffers and its frames arrive intact.
func TestRingWrite(t *testing.T) {
	r := mrRegion(t, mrSmall)
	tx, _ := r.Queue(0, SideSwitch)
	_, rx := r.Queue(0, SideClient)
	src := make([]byte, 2048)
	cases := []struct{ n, head int }{
		{14, 14}, {63, 63}, {64, 64}, {64, 0}, {65, 64}, {100, 10}, {100, 100},
		{200, 64}, {200, 70}, {1500, 192}, {1500, 1500}, {2048, 128}, {2048, 0},
	}
	if got := tx.Reserve(len(cases)); got != len(cases) {
		t.Fatalf("Reserve = %d", got)
	}
	if tx.Write(-1, src[:64], nil) != 0 || tx.Write(len(cases), src[:64], nil) != 0 {
		t.Fatal("Write outside the reservation")
	}
	if tx.Write(0, src[:2000], src[:49]) != 0 {
		t.Fatal("Write of 2049 bytes")
	}
	lens := make([]int, len(cases))
	for i, c := range cases {
		f := mrFrame(src, c.n, uint64(i)+1)
		if got := tx.Write(i, f[:c.head], f[c.head:]); got != c.n {
			t.Fatalf("Write(%d, %d+%d bytes) = %d", i, c.head, c.n-c.head, got)
		}
		lens[i] = c.n
	}
	if err := tx.Submit(lens); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 64)
	n, _ := rx.Recv(out)
	if n != len(cases) {
		t.Fatalf("Recv = %d, want %d", n, len(cases))
	}
	for i, c := range cases {
		mrCheckFrame(t, out[i], c.n, uint64(i)+1)
	}
	rx.Release()

	// Write into every slot, submit nothing, then Send: Send takes the
	// same buffers (the reservation is gone) and its stores must win.
	if got := tx.Reserve(64); got != 64 {
		t.Fatalf("Reserve = %d", got)
	}
	for i := range 64 {
		tx.Write(i, mrFrame(src, 128, 1000), nil)
	}
	bufs := make([]byte, 64*300)
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = mrFrame(bufs[i*300:], 300, uint64(2000+i))
	}
	if sent, err := tx.Send(frames); sent != 64 || err != nil {
		t.Fatalf("Send = %d, %v", sent, err)
	}
	if n, _ = rx.Recv(out); n != 64 {
		t.Fatalf("Recv = %d, want 64", n)
	}
	for i := range n {
		mrCheckFrame(t, out[i], 300, uint64(2000+i))
	}
	rx.Release()
}

func TestRingNeedWakeup(t *testing.T) {
	r := mrRegion(t, mrSmall)
	tx, _ := r.Queue(1, SideClient)
	_, rx := r.Queue(1, SideSwitch)
	if tx.NeedWakeup() {
		t.Fatal("NEED_WAKEUP set in a new region")
	}
	rx.SetNeedWakeup(true)
	if !tx.NeedWakeup() {
		t.Fatal("NEED_WAKEUP not seen by the producer")
	}
	if got := r.ring(2).flags.Load(); got != FlagNeedWakeup {
		t.Fatalf("flags word %#x", got)
	}
	rx.SetNeedWakeup(false)
	if tx.NeedWakeup() {
		t.Fatal("NEED_WAKEUP still set")
	}
}

// TestRingAllocs: the data path allocates nothing.
func TestRingAllocs(t *testing.T) {
	r := mrRegion(t, mrSmall)
	tx, _ := r.Queue(0, SideClient)
	_, rx := r.Queue(0, SideSwitch)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = make([]byte, 64)
	}
	out := make([][]byte, 32)
	lens := make([]int, 32)
	for i := range lens {
		lens[i] = 64
	}
	check := func(name string, f func()) {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs per run", name, a)
		}
	}
	check("Send/Recv/Release", func() {
		tx.Send(frames)
		rx.Recv(out)
		rx.Release()
	})
	check("Reserve/Buffer/Submit/Recv/Release", func() {
		n := tx.Reserve(32)
		for i := 0; i < n; i++ {
			tx.Buffer(i)[0] = 1
		}
		tx.Submit(lens[:n])
		rx.Recv(out)
		rx.Release()
	})
	check("Stats/Pending/NeedWakeup", func() {
		_ = tx.Stats()
		_ = rx.Stats()
		_ = rx.Pending()
		_ = tx.NeedWakeup()
	})
}

// TestRingConcurrent: a producer and a consumer goroutine move 1M frames
// carrying sequence numbers (fewer with -short); every frame arrives once
// and in order, in mixed batch sizes and both send styles.
func TestRingConcurrent(t *testing.T) {
	total := uint64(1 << 20)
	if testing.Short() {
		total = 1 << 16
	}
	r := mrRegion(t, Config{RingSize: 256, FrameSize: 2048})
	mrSetIndex(r, 0, math.MaxUint32-1000)
	tx, _ := r.Queue(0, SideClient)
	_, rx := r.Queue(0, SideSwitch)
	done := make(chan error, 1)
	go func() {
		frames := make([][]byte, 64)
		bufs := make([]byte, 64*128)
		lens := make([]int, 64)
		seq := uint64(0)
		for seq < total {
			b := int(seq%61) + 1
			if rem := total - seq; uint64(b) > rem {
				b = int(rem)
			}
			if seq%3 == 0 {
				n := tx.Reserve(b)
				for i := 0; i < n; i++ {
					ln := 14 + int((seq+uint64(i))%100)
					if i%2 == 0 {
						mrFrame(tx.Buffer(i), ln, seq+uint64(i))
					} else {
						// Write: split anywhere, so some first lines
						// go out non-temporally and some do not.
						f := mrFrame(bufs, ln, seq+uint64(i))
						h := min(ln, 60+int(seq+uint64(i))%12)
						tx.Write(i, f[:h], f[h:])
					}
					lens[i] = ln
				}
				if err := tx.Submit(lens[:n]); err != nil {
					done <- err
					return
				}
				seq += uint64(n)
			} else {
				for i := 0; i < b; i++ {
					ln := 14 + int((seq+uint64(i))%100)
					frames[i] = mrFrame(bufs[i*128:], ln, seq+uint64(i))
				}
				n, err := tx.Send(frames[:b])
				if err != nil {
					done <- err
					return
				}
				seq += uint64(n)
			}
			if seq%1024 == 0 {
				runtime.Gosched()
			}
		}
		done <- nil
	}()
	out := make([][]byte, 48)
	next := uint64(0)
	for next < total {
		n, err := rx.Recv(out[:int(next%47)+1])
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			f := out[i]
			ln := 14 + int(next%100)
			if len(f) != ln {
				t.Fatalf("frame %d: len %d, want %d", next, len(f), ln)
			}
			if got := binary.LittleEndian.Uint64(f); got != next {
				t.Fatalf("got frame %d, want %d", got, next)
			}
			if f[ln-1] != byte(next)^byte(ln-1) {
				t.Fatalf("frame %d: last byte %#x", next, f[ln-1])
			}
			next++
		}
		rx.Release()
		if n == 0 {
			runtime.Gosched()
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := rx.Stats(); s.Received != total || s.BadLen+s.BadOffset+s.Corrupt != 0 {
		t.Fatalf("rx stats %+v", s)
	}
}

// mrHostile writes descriptors into ring i and publishes them the way a
// hostile producer would: raw stores, any values.
func mrHostile(r *Region, i int, start uint32, ds ...desc) {
	g := r.ring(i)
	for k, d := range ds {
		*g.desc((start + uint32(k)) & g.mask) = d
	}
	g.prod.Store(start + uint32(len(ds)))
}

// TestRxValidation: a consumer skips and counts every descriptor that
// points outside its ring's partition, straddles two buffers or has a bad
// length, and returns the valid ones around them.
func TestRxValidation(t *testing.T) {
	r := mrRegion(t, mrSmall)
	l := r.l
	ps := l.partOff(0) // ring 0: to-switch of queue pair 0
	pe := ps + l.partLen()
	fs := uint64(l.frameSize)
	cases := []struct {
		name   string
		d      desc
		reason string
	}{
		{"header", desc{off: 0, len: 64}, "offset"},
		{"magic+8", desc{off: 8, len: 14}, "offset"},
		{"rings", desc{off: ringsOffset, len: 64}, "offset"},
		{"descriptors", desc{off: ringsOffset + offDescs, len: 64}, "offset"},
		{"just before partition", desc{off: ps - 1, len: 14}, "offset"},
		{"another ring's partition", desc{off: l.partOff(1), len: 64}, "offset"},
		{"queue pair 1's partition", desc{off: l.partOff(2), len: 64}, "offset"},
		{"end of partition", desc{off: pe, len: 14}, "offset"},
		{"past the region", desc{off: uint64(l.size), len: 14}, "offset"},
		{"max offset", desc{off: math.MaxUint64, len: 14}, "offset"},
		{"offset wraps to partition", desc{off: ps + 1<<63, len: 14}, "offset"},
		{"straddles two buffers", desc{off: ps + fs - 7, len: 14}, "offset"},
		{"straddles by one byte", desc{off: ps + 5*fs + 1, len: uint32(fs)}, "offset"},
		{"straddles partition end", desc{off: pe - 10, len: 14}, "offset"},
		{"len 0", desc{off: ps, len: 0}, "len"},
		{"len 13", desc{off: ps, len: 13}, "len"},
		{"len frame_size+1", desc{off: ps, len: uint32(fs) + 1}, "len"},
		{"len max", desc{off: ps, len: math.MaxUint32}, "len"},
	}
	valid := []desc{
		{off: ps, len: 14},
		{off: ps + fs - 14, len: 14},       // ends exactly at the buffer end
		{off: ps + 63*fs, len: uint32(fs)}, // the last whole buffer
		{off: ps + 3*fs + 100, len: 200, flags: 0xffffffff},
	}
	for _, start := range []uint32{0, math.MaxUint32 - 1} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				mrSetIndex(r, 0, start)
				_, rx := r.Queue(0, SideSwitch)
				// valid, bad, valid: the good ones around it still arrive.
				mrHostile(r, 0, start, valid[0], c.d, valid[1])
				out := make([][]byte, 8)
				n, err := rx.Recv(out)
				if err != nil || n != 2 {
					t.Fatalf("Recv = %d, %v; want the 2 valid frames", n, err)
				}
				for _, f := range out[:n] {
					if !mrInPart(r, 0, f) {
						t.Fatal("returned frame outside the partition")
					}
				}
				rx.Release()
				s := rx.Stats()
				want := RxStats{Received: 2}
				if c.reason == "offset" {
					want.BadOffset = 1
				} else {
					want.BadLen = 1
				}
				if s != want {
					t.Fatalf("stats %+v, want %+v", s, want)
				}
				// Only the bad one: nothing returned, and the slot is given
				// back without a Release.
				mrHostile(r, 0, start+3, c.d)
				if n, err := rx.Recv(out); n != 0 || err != nil {
					t.Fatalf("Recv of only a bad descriptor = %d, %v", n, err)
				}
				if got := r.ring(0).cons.Load(); got != start+4 {
					t.Fatalf("consumer %#x, want %#x: skipped slot not given back", got, start+4)
				}
			})
		}
		t.Run("valid edges", func(t *testing.T) {
			mrSetIndex(r, 0, start)
			_, rx := r.Queue(0, SideSwitch)
			mrHostile(r, 0, start, valid...)
			out := make([][]byte, 8)
			n, err := rx.Recv(out)
			if err != nil || n != len(valid) {
				t.Fatalf("Recv = %d, %v", n, err)
			}
			for i, f := range out[:n] {
				if len(f) != int(valid[i].len) || uintptr(unsafe.Pointer(&f[0])) != uintptr(unsafe.Pointer(&r.mem[valid[i].off])) {
					t.Fatalf("frame %d: wrong view", i)
				}
			}
		})
	}
}

// TestRxCorrupt: a producer index more than ring_size ahead of the
// consumer, or moving back behind what was read, breaks the ring end for
// good; nothing is read.
func TestRxCorrupt(t *testing.T) {
	r := mrRegion(t, mrSmall)
	ps := r.l.partOff(0)
	for _, start := range []uint32{0, math.MaxUint32 - 3} {
		for _, c := range []struct {
			name string
			prod func(cons uint32) uint32
		}{
			{"size+1 ahead", func(c uint32) uint32 { return c + 65 }},
			{"far ahead", func(c uint32) uint32 { return c + 1<<31 }},
			{"behind", func(c uint32) uint32 { return c - 1 }},
		} {
			mrSetIndex(r, 0, start)
			_, rx := r.Queue(0, SideSwitch)
			r.ring(0).prod.Store(c.prod(start))
			out := make([][]byte, 4)
			if n, err := rx.Recv(out); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: Recv = %d, %v; want ErrCorrupt", c.name, n, err)
			}
			if p := rx.Pending(); p < 0 || p > 64 {
				t.Fatalf("%s: Pending %d not clamped", c.name, p)
			}
			// Sticky: a now-valid producer index does not revive it.
			mrHostile(r, 0, start, desc{off: ps, len: 64})
			if _, err := rx.Recv(out); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: ring end revived: %v", c.name, err)
			}
			if s := rx.Stats(); s.Corrupt != 1 || s.Received != 0 {
				t.Fatalf("%s: stats %+v", c.name, s)
			}
		}
		// Exactly ring_size ahead is a full ring, not corruption.
		mrSetIndex(r, 0, start)
		_, rx := r.Queue(0, SideSwitch)
		ds := make([]desc, 64)
		for i := range ds {
			ds[i] = desc{off: ps + uint64(i)*2048, len: 60}
		}
		mrHostile(r, 0, start, ds...)
		out := make([][]byte, 100)
		if n, err := rx.Recv(out[:10]); n != 10 || err != nil {
			t.Fatalf("full ring: Recv = %d, %v", n, err)
		}
		// The producer moving back behind what was read is corruption.
		r.ring(0).prod.Store(start + 5)
		if _, err := rx.Recv(out); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("producer moved back: %v", err)
		}
	}
}

// TestTxCorrupt: a producer checks the consumer index it loads.
func TestTxCorrupt(t *testing.T) {
	for _, c := range []struct {
		name string
		cons func(prod uint32) uint32
	}{
		{"ahead of producer", func(p uint32) uint32 { return p + 1 }},
		{"more than size behind", func(p uint32) uint32 { return p - 65 }},
	} {
		r := mrRegion(t, mrSmall)
		mrSetIndex(r, 1, math.MaxUint32-3)
		tx, _ := r.Queue(0, SideSwitch)
		frames := make([][]byte, 64)
		for i := range frames {
			frames[i] = make([]byte, 64)
		}
		if n, err := tx.Send(frames); n != 64 || err != nil {
			t.Fatalf("%s: Send = %d, %v", c.name, n, err)
		}
		top := uint32(math.MaxUint32 - 3)
		r.ring(1).cons.Store(c.cons(top + 64))
		if n, err := tx.Send(frames[:1]); n != 0 || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: Send = %d, %v; want ErrCorrupt", c.name, n, err)
		}
		if tx.Reserve(1) != 0 {
			t.Fatalf("%s: Reserve on a broken ring", c.name)
		}
		if err := tx.Submit(nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: Submit = %v", c.name, err)
		}
		if s := tx.Stats(); s.Corrupt != 1 || s.Sent != 64 {
			t.Fatalf("%s: stats %+v", c.name, s)
		}
	}
	// A consumer index that moves backwards would hand out buffers still
	// in flight: refused, even within size of the producer.
	{
		r := mrRegion(t, mrSmall)
		tx, _ := r.Queue(0, SideSwitch)
		frames := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64), make([]byte, 64)}
		if n, err := tx.Send(frames); n != 4 || err != nil {
			t.Fatalf("Send = %d, %v", n, err)
		}
		r.ring(1).cons.Store(3)
		if n, err := tx.Send(frames[:1]); n != 1 || err != nil {
			t.Fatalf("Send after 3 consumed = %d, %v", n, err)
		}
		r.ring(1).cons.Store(2)
		if n, err := tx.Send(frames[:1]); n != 0 || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Send after the consumer index went back = %d, %v; want ErrCorrupt", n, err)
		}
	}
	// Garbage left in the region before the end was made: the first
	// refresh catches it rather than trusting it.
	r := mrRegion(t, mrSmall)
	g := r.ring(1)
	g.prod.Store(1000)
	g.cons.Store(5)
	tx, _ := r.Queue(0, SideSwitch)
	if n, err := tx.Send([][]byte{make([]byte, 64)}); n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Send on a pre-corrupted ring = %d, %v", n, err)
	}
}

// mrInFlightBufs returns the buffer numbers the descriptors of ring i's
// in-flight slots (consumer to producer index) point at, failing the test
// if one is handed out twice.
func mrInFlightBufs(t *testing.T, r *Region, i int) map[uint64]bool {
	t.Helper()
	g := r.ring(i)
	seen := make(map[uint64]bool)
	for s := g.cons.Load(); s != g.prod.Load(); s++ {
		d := g.desc(s & g.mask)
		b := (d.off - g.partStart) >> g.shift
		if seen[b] {
			t.Fatalf("buffer %d carried by two in-flight slots", b)
		}
		seen[b] = true
	}
	return seen
}

// TestTxRecyclesWarmBuffers: a producer whose consumer keeps up writes the
// same few buffers over and over, the one given back last first; across
// random interleavings of Send, Reserve/Submit (whole, partial, replaced),
// Recv and Release, no buffer is carried by two in-flight slots and every
// frame arrives intact.
func TestTxRecyclesWarmBuffers(t *testing.T) {
	r := mrRegion(t, mrSmall)
	tx, _ := r.Queue(0, SideClient)
	_, rx := r.Queue(0, SideSwitch)
	out := make([][]byte, 64)
	bufOf := func(f []byte) uint64 {
		g := r.ring(0)
		return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(f)))-uintptr(g.part)) >> g.shift
	}

	// Lock-step batches of 4: only 4 buffers are ever written, and the
	// frame sent right after a release lands in the buffer released last.
	used := make(map[uint64]bool)
	frames := make([][]byte, 4)
	for i := range frames {
		frames[i] = make([]byte, 100)
	}
	for round := 0; round < 100; round++ {
		if n, err := tx.Send(frames); n != 4 || err != nil {
			t.Fatalf("round %d: Send = %d, %v", round, n, err)
		}
		n, _ := rx.Recv(out)
		if n != 4 {
			t.Fatalf("round %d: Recv = %d", round, n)
		}
		last := bufOf(out[3])
		for _, f := range out[:n] {
			used[bufOf(f)] = true
		}
		rx.Release()
		if tx.Reserve(1) != 1 || bufOf(tx.Buffer(0)) != last {
			t.Fatalf("round %d: next buffer is not the last one given back (%d)", round, last)
		}
	}
	if len(used) != 4 {
		t.Fatalf("lock-step batches of 4 wrote %d distinct buffers, want 4", len(used))
	}

	// Random interleavings, checked against a model of the frames in
	// flight.
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64*2048)
	batch := make([][]byte, 64)
	var sentSeq, recvSeq uint64
	held := 0
	for step := 0; step < 20000; step++ {
		switch rng.IntN(5) {
		case 0: // Send
			k := 1 + rng.IntN(16)
			for i := 0; i < k; i++ {
				batch[i] = mrFrame(buf[i*2048:], mrWrapLen(sentSeq+uint64(i)), sentSeq+uint64(i))
			}
			n, err := tx.Send(batch[:k])
			if err != nil {
				t.Fatal(err)
			}
			sentSeq += uint64(n)
		case 1, 2: // Reserve, write, Submit some
			k := tx.Reserve(1 + rng.IntN(16))
			sub := rng.IntN(k + 1)
			lens := make([]int, sub)
			for i := 0; i < k; i++ {
				if i < sub {
					lens[i] = mrWrapLen(sentSeq + uint64(i))
					mrFrame(tx.Buffer(i), lens[i], sentSeq+uint64(i))
				} else {
					tx.Buffer(i)[0] = 0xee // unsubmitted scribble, never seen
				}
			}
			if err := tx.Submit(lens); err != nil {
				t.Fatal(err)
			}
			sentSeq += uint64(sub)
		case 3: // Recv, check
			n, err := rx.Recv(out[:1+rng.IntN(16)])
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				mrCheckFrame(t, out[i], mrWrapLen(recvSeq), recvSeq)
				recvSeq++
			}
			held += n
		case 4:
			rx.Release()
			held = 0
		}
		if got := len(mrInFlightBufs(t, r, 0)); uint64(got) != sentSeq-recvSeq+uint64(held) {
			t.Fatalf("step %d: %d buffers in flight, want %d", step, got, sentSeq-recvSeq+uint64(held))
		}
	}
	if s := rx.Stats(); s.Received != 400+recvSeq || s.BadLen+s.BadOffset+s.Corrupt != 0 {
		t.Fatalf("rx stats %+v, received 400 + %d", s, recvSeq)
	}
}
