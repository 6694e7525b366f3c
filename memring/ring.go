package memring

import (
	"errors"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Side says which end of the region a process is: the switch or the client.
type Side uint8

const (
	// SideSwitch consumes the to-switch rings and produces the to-client rings.
	SideSwitch Side = iota
	// SideClient produces the to-switch rings and consumes the to-client rings.
	SideClient
)

var (
	// ErrFrameLen: Submit got a length outside MinFrameLen..frame_size.
	// Nothing was published; the reservation stands.
	ErrFrameLen = errors.New("memring: frame length out of range")
	// ErrNotReserved: Submit got more lengths than slots were reserved.
	ErrNotReserved = errors.New("memring: submit of more slots than reserved")
)

// desc is one ring descriptor as laid out in the region.
type desc struct {
	off   uint64
	len   uint32
	flags uint32
}

// The region layout fixes the descriptor at 16 bytes.
var _ [descSize]byte = [unsafe.Sizeof(desc{})]byte{}

// ring is the geometry of one ring of a mapped region: pointers into shared
// memory plus this side's private copy of the sizes. Nothing here is read
// from the shared header.
type ring struct {
	prod      *atomic.Uint32
	cons      *atomic.Uint32
	flags     *atomic.Uint32
	descs     unsafe.Pointer // slot 0
	part      unsafe.Pointer // first byte of the ring's buffer partition
	partStart uint64         // partition offset from the region start
	partLen   uint64
	mask      uint32
	size      uint32
	frameSize uint32
	shift     uint8 // log2(frameSize)
}

func (r *Region) ring(i int) ring {
	base := r.l.ringOff(i)
	u32 := func(off uint64) *atomic.Uint32 {
		// Every ring word is 64-byte aligned from a page-aligned mapping.
		return (*atomic.Uint32)(unsafe.Pointer(&r.mem[base+off]))
	}
	ps := r.l.partOff(i)
	return ring{
		prod:      u32(offProducer),
		cons:      u32(offConsumer),
		flags:     u32(offFlags),
		descs:     unsafe.Pointer(&r.mem[base+offDescs]),
		part:      unsafe.Pointer(&r.mem[ps]),
		partStart: ps,
		partLen:   r.l.partLen(),
		mask:      r.l.ringSize - 1,
		size:      r.l.ringSize,
		frameSize: r.l.frameSize,
		shift:     uint8(bits.TrailingZeros32(r.l.frameSize)),
	}
}

// desc returns the descriptor of slot (already masked).
func (g *ring) desc(slot uint32) *desc {
	return (*desc)(unsafe.Add(g.descs, uintptr(slot)*descSize))
}

// buf returns frameSize bytes of buffer at partition-relative offset rel;
// the caller has checked rel+n against the partition.
func (g *ring) bytes(rel uint64, n uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(g.part, uintptr(rel))), n)
}

// Queue returns the two ring ends this side owns of queue pair q: tx
// produces into the ring towards the peer and rx consumes the ring from it.
// Each call makes fresh ends with their own cached indices, so call it once
// per queue pair and side and give each end to one goroutine. It returns
// nil, nil for a q out of range or a closed region. The ends point into r's
// mapping: stop using them before r.Close.
func (r *Region) Queue(q int, side Side) (tx *Tx, rx *Rx) {
	if r.mem == nil || q < 0 || q >= int(r.l.queuePairs) || side > SideClient {
		return nil, nil
	}
	toSwitch, toClient := 2*q, 2*q+1
	if side == SideSwitch {
		return newTx(r.ring(toClient)), newRx(r.ring(toSwitch))
	}
	return newTx(r.ring(toSwitch)), newRx(r.ring(toClient))
}

// Tx is the producer end of one ring. It belongs to one goroutine.
type Tx struct {
	_ [64]byte // no false sharing with whatever was allocated before
	g ring
	// cachedProd is ours (the shared producer word is never read back);
	// cachedCons is the peer's consumer index as last loaded and checked.
	cachedProd uint32
	cachedCons uint32
	reserved   uint32
	broken     bool
	// ntPending: Write stored a line non-temporally since the last
	// Submit or Send, which must fence before publishing. writes: the
	// producer fills its slots through Write, which needs no buffer line
	// in the cache, so Reserve prefetches only the descriptors.
	ntPending bool
	writes    bool
	// Buffers are recycled most recently freed first, so a consumer that
	// keeps up leaves the producer writing a few cache-warm buffers instead
	// of walking the whole partition. slotBuf[slot] is the buffer number
	// (in the ring's partition) an in-flight slot carries; freeBufs[:nFree]
	// is the stack of the others, its top the last one the consumer gave
	// back. Both are private: nothing in the region decides which buffer
	// is written. nFree == size - (cachedProd - cachedCons) always.
	slotBuf  []uint32
	freeBufs []uint32
	nFree    uint32
	_        [64]byte // keep the counters off the hot line
	sent     atomic.Uint64
	badLen   atomic.Uint64
	full     atomic.Uint64
	corrupt  atomic.Uint64
	_        [64]byte
}

// TxStats counts what one Tx did.
type TxStats struct {
	Sent    uint64 // frames published
	BadLen  uint64 // frames Send dropped, or Submit calls refused, for a length outside MinFrameLen..frame_size
	Full    uint64 // frames Send did not queue for lack of a free slot
	Corrupt uint64 // times the peer's consumer index was found invalid
}

func newTx(g ring) *Tx {
	t := &Tx{g: g, slotBuf: make([]uint32, g.size), freeBufs: make([]uint32, g.size)}
	t.cachedProd = g.prod.Load()
	// Consider the ring full until the first refresh checks the consumer
	// index: whatever was in the region before we came is not trusted.
	// Every slot is taken to carry its own buffer, so the refresh frees
	// each buffer exactly once.
	t.cachedCons = t.cachedProd - g.size
	for slot := range t.slotBuf {
		t.slotBuf[slot] = uint32(slot)
	}
	return t
}

// free returns how many slots can be produced. It loads the peer's
// consumer index whenever a slot is in flight, not only when the cached
// view runs short: the buffers of consumed slots go back on the stack at
// once, so the next frames reuse the warmest ones. One load per call, and
// a call moves a batch.
func (t *Tx) free() (uint32, error) {
	inFlight := t.cachedProd - t.cachedCons
	if inFlight == 0 {
		return t.nFree, nil
	}
	c := t.g.cons.Load()
	// The consumer moves forward, and never past what was produced.
	if done := c - t.cachedCons; done > inFlight {
		t.broken = true
		t.corrupt.Add(1)
		return 0, ErrCorrupt
	}
	mask, slotBuf, freeBufs, n := t.g.mask, t.slotBuf, t.freeBufs, t.nFree
	for s := t.cachedCons; s != c; s++ {
		freeBufs[n&mask] = slotBuf[s&mask] // n < size: a slot was in flight
		n++
	}
	t.nFree, t.cachedCons = n, c
	return n, nil
}

// take pops the warmest free buffer for slot and returns its offset in the
// partition. The caller has checked that one is free.
func (t *Tx) take(slot uint32) uint64 {
	t.nFree--
	b := t.freeBufs[t.nFree&t.g.mask]
	t.slotBuf[slot] = b
	return uint64(b) << t.g.shift
}

func clampU32(n int, max uint32) uint32 {
	if n <= 0 {
		return 0
	}
	if uint(n) > uint(max) {
		return max
	}
	return uint32(n)
}

// Send copies frames, in order, into free slots (each into the free buffer
// the consumer gave back last) and publishes them with one atomic store.
// It returns how many were queued. A frame shorter than MinFrameLen or
// longer than frame_size is dropped and counted (TxStats.BadLen) and does
// not count in n; Send stops at the first frame without a free slot
// (TxStats.Full), so a caller that passes only valid lengths can retry
// frames[n:]. Send cancels any reservation. The caller keeps frames.
// ErrCorrupt: the peer's consumer index is invalid.
func (t *Tx) Send(frames [][]byte) (int, error) {
	t.reserved = 0
	// Lines Write stored into an unsubmitted reservation: Send may reuse
	// those buffers, and its stores must land after them.
	t.fenceWrites()
	if t.broken {
		return 0, ErrCorrupt
	}
	free, err := t.free()
	if err != nil {
		return 0, err
	}
	g := &t.g
	// Locals: the stores into the region could alias g's fields as far as
	// the compiler knows, which would reload them every frame.
	prod, mask, shift, fs := t.cachedProd, g.mask, g.shift, g.frameSize
	descs, part, partStart := g.descs, g.part, g.partStart
	slotBuf, freeBufs, nFree := t.slotBuf, t.freeBufs, t.nFree
	t.prefetchBatch(min(free, uint32(len(frames))))
	queued, bad := uint32(0), uint64(0)
	i := 0
	for ; i < len(frames) && queued < free; i++ {
		f := frames[i]
		n := len(f)
		if uint(n)-MinFrameLen > uint(fs)-MinFrameLen {
			bad++
			continue
		}
		slot := prod & mask
		nFree--
		b := freeBufs[nFree&mask]
		slotBuf[slot] = b
		rel := uint64(b) << shift
		dst := unsafe.Slice((*byte)(unsafe.Add(part, uintptr(rel))), n)
		copy(dst, f)
		d := (*desc)(unsafe.Add(descs, uintptr(slot)*descSize))
		d.off = partStart + rel
		d.len = uint32(n)
		d.flags = 0
		prod++
		queued++
	}
	if queued > 0 {
		t.cachedProd, t.nFree = prod, nFree
		g.prod.Store(prod) // orders the descriptor and buffer writes before it
		t.sent.Add(uint64(queued))
	}
	if bad > 0 {
		t.badLen.Add(bad)
	}
	if i < len(frames) {
		t.full.Add(uint64(len(frames) - i))
	}
	return int(queued), nil
}

// Reserve reserves up to n free slots for zero-copy production and returns
// how many it got (0 when the ring is full or the peer corrupt). Fill them
// through Buffer and publish them with Submit. A new Reserve or a Send
// replaces the reservation.
func (t *Tx) Reserve(n int) int {
	t.reserved = 0
	if t.broken {
		return 0
	}
	want := clampU32(n, t.g.size)
	if want == 0 {
		return 0
	}
	free, err := t.free()
	if err != nil {
		return 0
	}
	t.reserved = min(want, free)
	t.prefetchBatch(t.reserved)
	return int(t.reserved)
}

// Buffer is the i-th reserved slot's buffer, frame_size bytes of shared
// memory; the caller may write it until Submit. nil for i outside the
// reservation. A reservation of every slot of an empty ring covers every
// buffer of the partition once; a later one may hand out the same buffers
// in another order.
func (t *Tx) Buffer(i int) []byte {
	if i < 0 || uint(i) >= uint(t.reserved) {
		return nil
	}
	b := t.freeBufs[(t.nFree-1-uint32(i))&t.g.mask]
	return t.g.bytes(uint64(b)<<t.g.shift, t.g.frameSize)
}

// Write copies head and then tail, back to back, into the i-th reserved
// slot's buffer and returns the frame's length, or 0 (nothing written)
// for an i outside the reservation or a frame longer than frame_size.
// Submit still publishes it, with that length.
//
// It is the copy for a producer whose consumer reads each frame's first
// bytes, as the switch's clients and the switch itself do. Those lines
// sit in the consumer's cache, and a plain store into one first waits for
// the consumer's core to give it up: a cross-core round trip per frame,
// which no prefetch hid on the host measured (a 2-core KVM guest on AMD
// EPYC, 2026-12-04, where the round trip moved between 150 and 600 ns;
// with the cores far apart, writing one line of each frame cost the switch
// 60 to 90 ns per frame). So on amd64 Write stores the first 64 bytes
// non-temporally: the consumer's copy is invalidated without the line
// being fetched, and the consumer reads it from memory. The rest of the
// frame is copied through the cache.
func (t *Tx) Write(i int, head, tail []byte) int {
	n := len(head) + len(tail)
	if i < 0 || uint(i) >= uint(t.reserved) || uint(n) > uint(t.g.frameSize) {
		return 0
	}
	t.writes = true
	b := t.freeBufs[(t.nFree-1-uint32(i))&t.g.mask]
	dst := t.g.bytes(uint64(b)<<t.g.shift, t.g.frameSize) // 64-byte aligned
	from := 0
	if len(head) >= 64 {
		storeLineNT(unsafe.Pointer(&dst[0]), unsafe.Pointer(&head[0]))
		t.ntPending = true
		from = 64
	}
	copy(dst[from:], head[from:])
	copy(dst[len(head):], tail)
	return n
}

// fenceWrites orders the lines Write stored non-temporally before every
// later store; those stores are not ordered with other stores.
func (t *Tx) fenceWrites() {
	if t.ntPending {
		storeFence()
		t.ntPending = false
	}
}

// Submit publishes the first len(lens) reserved slots, slot i carrying
// lens[i] bytes from the start of Buffer(i), with one atomic store, and
// ends the reservation (unsubmitted slots go back). ErrNotReserved when
// len(lens) exceeds the reservation and ErrFrameLen for a length outside
// MinFrameLen..frame_size: then nothing is published and the reservation
// stands.
func (t *Tx) Submit(lens []int) error {
	if t.broken {
		t.reserved = 0
		return ErrCorrupt
	}
	if len(lens) > int(t.reserved) {
		return ErrNotReserved
	}
	g := &t.g
	fs := g.frameSize
	for _, n := range lens {
		if uint(n)-MinFrameLen > uint(fs)-MinFrameLen {
			t.badLen.Add(1)
			return ErrFrameLen
		}
	}
	t.fenceWrites() // the frames are in memory before the descriptors say so
	prod, mask := t.cachedProd, g.mask
	for _, n := range lens {
		slot := prod & mask
		d := g.desc(slot)
		d.off = g.partStart + t.take(slot) // Buffer(i) was the i-th from the top
		d.len = uint32(n)
		d.flags = 0
		prod++
	}
	t.reserved = 0
	if len(lens) > 0 {
		t.cachedProd = prod
		g.prod.Store(prod)
		t.sent.Add(uint64(len(lens)))
	}
	return nil
}

// Err is ErrCorrupt once the peer's consumer index was found invalid (the
// end stays broken; Reserve then returns 0), else nil.
func (t *Tx) Err() error {
	if t.broken {
		return ErrCorrupt
	}
	return nil
}

// NeedWakeup reports whether the consumer set NEED_WAKEUP: it is about to
// sleep and wants a signal after the next publish.
func (t *Tx) NeedWakeup() bool { return t.g.flags.Load()&FlagNeedWakeup != 0 }

// Stats returns the counters; safe from any goroutine.
func (t *Tx) Stats() TxStats {
	return TxStats{Sent: t.sent.Load(), BadLen: t.badLen.Load(), Full: t.full.Load(), Corrupt: t.corrupt.Load()}
}

// Rx is the consumer end of one ring. It belongs to one goroutine.
type Rx struct {
	_ [64]byte // no false sharing with whatever was allocated before
	g ring
	// cons is our published consumer index (never read back from the
	// region); next is the next index Recv reads; cachedProd the producer
	// index as last loaded and checked. cons <= next <= cachedProd.
	cons       uint32
	next       uint32
	cachedProd uint32
	broken     bool
	_          [64]byte // keep the counters off the hot line
	received   atomic.Uint64
	badOffset  atomic.Uint64
	badLen     atomic.Uint64
	corrupt    atomic.Uint64
	_          [64]byte
}

// RxStats counts what one Rx did.
type RxStats struct {
	Received  uint64 // valid frames returned by Recv
	BadOffset uint64 // descriptors skipped: offset outside the ring's partition or frame straddling two buffers
	BadLen    uint64 // descriptors skipped: len outside MinFrameLen..frame_size
	Corrupt   uint64 // times the producer index was found invalid
}

func newRx(g ring) *Rx {
	c := g.cons.Load()
	return &Rx{g: g, cons: c, next: c, cachedProd: c}
}

// Recv fills out with views of up to len(out) valid frames, in ring order,
// and returns how many. The views point into shared memory and are valid
// until Release; on the switch side the client can still write those bytes,
// so copy a frame before relying on a check of its contents. Invalid
// descriptors are skipped and counted (RxStats.BadOffset, BadLen), never
// followed. Call Release after every Recv that returned frames. ErrCorrupt:
// the producer index is invalid; the ring end stays broken.
func (r *Rx) Recv(out [][]byte) (int, error) {
	if r.broken {
		return 0, ErrCorrupt
	}
	g := &r.g
	want := clampU32(len(out), g.size)
	avail := r.cachedProd - r.next
	if avail < want {
		p := g.prod.Load()
		// The producer may be at most size ahead of what we released and
		// never behind what we have already read.
		if p-r.cons > g.size || p-r.cons < r.next-r.cons {
			r.broken = true
			r.corrupt.Add(1)
			return 0, ErrCorrupt
		}
		r.cachedProd = p
		avail = p - r.next
	}
	if avail == 0 {
		return 0, nil
	}
	mask, fs, partStart, partLen := g.mask, g.frameSize, g.partStart, g.partLen
	descs, part := g.descs, g.part
	held := r.next != r.cons
	idx := r.next
	end := idx + avail
	n := 0
	var badOff, badLen uint64
	for idx != end && n < len(out) {
		d := (*desc)(unsafe.Add(descs, uintptr(idx&mask)*descSize))
		off, ln := d.off, d.len // each read exactly once
		idx++
		if ln-MinFrameLen > fs-MinFrameLen {
			badLen++
			continue
		}
		rel := off - partStart // wraps to huge when off < partStart
		if rel >= partLen || uint32(rel)&(fs-1)+ln > fs {
			badOff++
			continue
		}
		// In bounds: rel < partLen and the frame ends inside rel's buffer.
		out[n] = unsafe.Slice((*byte)(unsafe.Add(part, uintptr(rel))), ln)
		n++
	}
	r.next = idx
	if n > 0 {
		r.received.Add(uint64(n))
	}
	if badOff|badLen != 0 {
		r.badOffset.Add(badOff)
		r.badLen.Add(badLen)
		if n == 0 && !held {
			// Only skipped slots and nothing else held: give them back
			// now, a caller that got nothing need not Release.
			r.Release()
		}
	}
	return n, nil
}

// Release gives back every slot returned (or skipped) by Recv since the
// last Release, with one atomic store. The views are then the producer's.
func (r *Rx) Release() {
	if r.next != r.cons {
		r.cons = r.next
		r.g.cons.Store(r.cons)
	}
}

// SetNeedWakeup sets or clears NEED_WAKEUP. A consumer about to sleep sets
// it, then checks Pending once more before sleeping.
func (r *Rx) SetNeedWakeup(on bool) {
	if on {
		r.g.flags.Store(FlagNeedWakeup)
	} else {
		r.g.flags.Store(0)
	}
}

// Pending is how many frames the producer has published that Recv has not
// returned yet, clamped to 0..ring_size (it trusts nothing it loads).
func (r *Rx) Pending() int {
	d := r.g.prod.Load() - r.next
	if int32(d) < 0 {
		return 0
	}
	return int(min(d, r.g.size))
}

// Stats returns the counters; safe from any goroutine.
func (r *Rx) Stats() RxStats {
	return RxStats{Received: r.received.Load(), BadOffset: r.badOffset.Load(), BadLen: r.badLen.Load(), Corrupt: r.corrupt.Load()}
}
