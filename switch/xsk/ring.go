package xsk

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one mmap'ed AF_XDP ring. The producer and consumer words are
// shared with the kernel; this side keeps cached copies and publishes its own
// index once per batch.
type ring struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32
	// cachedProd/cachedCons are this side's view. For a ring we produce into
	// (fill, tx) cachedProd is ours and cachedCons is the kernel's last seen
	// value; for a ring we consume (rx, completion) the other way round.
	cachedProd uint32
	cachedCons uint32
}

func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, size uint32, descSize uintptr) (ring, error) {
	length := int(off.Desc) + int(size)*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	r := ring{
		mem:      mem,
		producer: (*uint32)(unsafe.Pointer(&mem[off.Producer])),
		consumer: (*uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags:    (*uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:     size - 1,
		size:     size,
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// freeProd returns how many slots this side can produce, refreshing the
// kernel's consumer index only when the cached view is not enough.
func (r *ring) freeProd(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free >= want {
		return free
	}
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r.size - (r.cachedProd - r.cachedCons)
}

// availCons returns how many entries this side can consume, refreshing the
// kernel's producer index only when the cached view is empty.
func (r *ring) availCons() uint32 {
	n := r.cachedProd - r.cachedCons
	if n == 0 {
		r.cachedProd = atomic.LoadUint32(r.producer)
		n = r.cachedProd - r.cachedCons
	}
	return n
}

// publishProd makes produced entries visible to the kernel. The atomic store
// orders the descriptor writes before the index.
func (r *ring) publishProd() { atomic.StoreUint32(r.producer, r.cachedProd) }

// publishCons hands consumed slots back to the kernel.
func (r *ring) publishCons() { atomic.StoreUint32(r.consumer, r.cachedCons) }

// addrRing is a fill or completion ring: entries are 8-byte UMEM addresses.
type addrRing struct {
	ring
	addrs []uint64
}

func mapAddrRing(fd int, off unix.XDPRingOffset, pgoff int64, size uint32) (addrRing, error) {
	r, err := mapRing(fd, off, pgoff, size, 8)
	if err != nil {
		return addrRing{}, err
	}
	return addrRing{ring: r, addrs: unsafe.Slice((*uint64)(unsafe.Pointer(&r.mem[off.Desc])), size)}, nil
}

// descRing is an RX or TX ring: entries are 16-byte descriptors.
type descRing struct {
	ring
	descs []unix.XDPDesc
}

func mapDescRing(fd int, off unix.XDPRingOffset, pgoff int64, size uint32) (descRing, error) {
	r, err := mapRing(fd, off, pgoff, size, unsafe.Sizeof(unix.XDPDesc{}))
	if err != nil {
		return descRing{}, err
	}
	return descRing{ring: r, descs: unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&r.mem[off.Desc])), size)}, nil
}

// The kernel's descriptor layout is fixed ABI.
var _ [16]byte = [unsafe.Sizeof(unix.XDPDesc{})]byte{}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
