package vswitch

import (
	"sync/atomic"
)

// handoff is a single-producer single-consumer ring that carries frame copies
// from one worker to another, for output ports the sending worker has no
// queue on. Head and tail live on their own cache lines.
type handoff struct {
	_    [64]byte
	head atomic.Uint32 // next slot the producer writes
	_    [60]byte
	tail atomic.Uint32 // next slot the consumer reads
	_    [60]byte
	// producer-local cache of tail, consumer-local cache of head
	cachedTail uint32
	_          [60]byte
	cachedHead uint32
	_          [60]byte
	slots      []handoffSlot
	mask       uint32
}

const handoffFrame = 2048

type handoffSlot struct {
	out  uint16
	vlan uint16
	n    uint16
	data [handoffFrame]byte
}

func newHandoff(size uint32) *handoff {
	return &handoff{slots: make([]handoffSlot, size), mask: size - 1}
}

// reserve returns the next free slot or nil when the ring is full.
func (h *handoff) reserve() *handoffSlot {
	head := h.head.Load()
	if head-h.cachedTail > h.mask {
		h.cachedTail = h.tail.Load()
		if head-h.cachedTail > h.mask {
			return nil
		}
	}
	return &h.slots[head&h.mask]
}

// push publishes the slot returned by reserve.
func (h *handoff) push() { h.head.Add(1) }

// peek returns the next filled slot or nil.
func (h *handoff) peek() *handoffSlot {
	tail := h.tail.Load()
	if tail == h.cachedHead {
		h.cachedHead = h.head.Load()
		if tail == h.cachedHead {
			return nil
		}
	}
	return &h.slots[tail&h.mask]
}

// release frees the slot returned by peek.
func (h *handoff) release() { h.tail.Add(1) }
