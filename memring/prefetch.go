package memring

import "unsafe"

// A producer's stores into lines its consumer read last (the first line of
// each buffer it takes back, the descriptors) wait for the consumer's core
// to give those lines up. One at a time, that is a cross-core round trip
// per frame, and on a virtual machine whose cores the host moves apart it
// measured 150 to 600 ns (2026-12-04). Tx asks for all of a batch's lines
// with intent to write before it writes any, so their transfers overlap.
// For the buffers' first lines that hid little of the cost when the cores
// were far apart; Write stores those lines non-temporally instead.

// prefetchBatch asks for the lines of the n descriptors from prod on and,
// unless the producer fills its slots through Write, for the first line of
// the n buffers the next n frames will take (freeBufs[nFree-n:nFree], top
// first).
func (t *Tx) prefetchBatch(n uint32) {
	if n == 0 {
		return
	}
	g := &t.g
	if !t.writes {
		prefetchBuffers(g.part, &t.freeBufs[t.nFree-n], int(n), uint(g.shift))
	}
	first := t.cachedProd & g.mask
	k := min(n, g.size-first) // up to the end of the ring, then from slot 0
	prefetchRange(unsafe.Pointer(g.desc(first)), uintptr(k)*descSize)
	if k < n {
		prefetchRange(g.descs, uintptr(n-k)*descSize)
	}
}
