package xsk

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// UmemConfig sizes a UMEM.
type UmemConfig struct {
	// NumFrames is the number of frames (chunks) in the UMEM.
	NumFrames int
	// FrameSize is the chunk size: 2048 or 4096.
	FrameSize int
	// Hugepages asks for MAP_HUGETLB backing; the UMEM falls back to normal
	// pages (and says so in HugeBacked) when none are free.
	Hugepages bool
}

// DefaultUmemConfig fits eight ports of 1024-entry rings per worker.
var DefaultUmemConfig = UmemConfig{NumFrames: 32768, FrameSize: 2048}

// Umem is a packet buffer area registered with the kernel, plus the free
// stack of frame addresses that are neither in a kernel ring nor held by the
// worker. A Umem belongs to one worker goroutine.
type Umem struct {
	mem        []byte
	frameSize  uint64
	numFrames  int
	free       []uint64 // stack of free frame base addresses
	HugeBacked bool

	// owner is the socket that registered the UMEM; others bind with
	// XDP_SHARED_UMEM to it.
	owner *Socket
	socks int
}

// NewUmem maps the packet buffer area. It is registered with the kernel by
// the first socket created on it.
func NewUmem(cfg UmemConfig) (*Umem, error) {
	if cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return nil, fmt.Errorf("new umem: frame size %d is not 2048 or 4096", cfg.FrameSize)
	}
	if cfg.NumFrames < 64 || cfg.NumFrames > 1<<22 {
		return nil, fmt.Errorf("new umem: %d frames is not in 64..4194304", cfg.NumFrames)
	}
	size := cfg.NumFrames * cfg.FrameSize
	u := &Umem{frameSize: uint64(cfg.FrameSize), numFrames: cfg.NumFrames}
	var err error
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if cfg.Hugepages {
		u.mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, flags|unix.MAP_HUGETLB)
		u.HugeBacked = err == nil
	}
	if u.mem == nil {
		u.mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, flags)
		if err != nil {
			return nil, fmt.Errorf("new umem: mmap %d bytes: %w", size, err)
		}
	}
	u.free = make([]uint64, 0, cfg.NumFrames)
	for i := cfg.NumFrames - 1; i >= 0; i-- {
		u.free = append(u.free, uint64(i)*u.frameSize)
	}
	return u, nil
}

// FrameSize is the chunk size.
func (u *Umem) FrameSize() int { return int(u.frameSize) }

// NumFrames is the number of chunks.
func (u *Umem) NumFrames() int { return u.numFrames }

// Free returns how many frames are on the free stack.
func (u *Umem) Free() int { return len(u.free) }

// Get pops a free frame address; ok is false when the UMEM is exhausted.
func (u *Umem) Get() (addr uint64, ok bool) {
	n := len(u.free)
	if n == 0 {
		return 0, false
	}
	addr = u.free[n-1]
	u.free = u.free[:n-1]
	return addr, true
}

// Put returns a frame to the free stack. addr may point anywhere inside the
// frame; the chunk base is stored. The caller gives up the frame.
func (u *Umem) Put(addr uint64) {
	u.free = append(u.free, addr&^(u.frameSize-1))
}

// Frame returns the bytes of a frame: length n from addr, capacity up to the
// end of its chunk. The slice aliases the UMEM and is valid until the frame
// is handed back to the kernel or Put.
func (u *Umem) Frame(addr uint64, n uint32) []byte {
	end := (addr | (u.frameSize - 1)) + 1
	return u.mem[addr : addr+uint64(n) : end]
}

// Chunk returns the whole chunk of a free frame, for building a frame into.
func (u *Umem) Chunk(addr uint64) []byte {
	base := addr &^ (u.frameSize - 1)
	return u.mem[base : base+u.frameSize : base+u.frameSize]
}

// Contains reports whether addr/len describe bytes inside the UMEM and inside
// one chunk.
func (u *Umem) Contains(addr uint64, n uint32) bool {
	if addr >= uint64(len(u.mem)) {
		return false
	}
	end := (addr | (u.frameSize - 1)) + 1
	return addr+uint64(n) <= end
}

// Close unmaps the area. Every socket on it must be closed first.
func (u *Umem) Close() error {
	if u.socks != 0 {
		return errors.New("close umem: sockets still bound")
	}
	if u.mem == nil {
		return nil
	}
	err := unix.Munmap(u.mem)
	u.mem = nil
	return err
}
