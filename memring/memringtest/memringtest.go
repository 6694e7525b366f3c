// Package memringtest is the in-tree fake peer for tests of code that uses
// memring: a region shared by the code under test (the switch side) and a
// fake client in the same process, plus raw access to the region the way a
// hostile client has it, for tests that the code under test survives one.
//
// It needs no privileges: the region is a plain memfd (or a hugepage one
// when the host has free hugepages), mapped three times: the switch's
// Region, the client's Region (OpenRegion of a dup, as if the fd had come
// over the control socket) and a raw mapping for hostile writes.
package memringtest

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/vswitch/vswitch/memring"
	"golang.org/x/sys/unix"
)

// Pair is one region with both ends in this process.
type Pair struct {
	// Switch is the switch's region: give it (or its Queue ends) to the
	// code under test. The Pair closes it at the end of the test.
	Switch *memring.Region
	// Client is the fake client's mapping of the same memory.
	Client *memring.Region
	// Hugepages reports the backing NewRegion chose.
	Hugepages bool

	raw []byte
	tx  []*memring.Tx
	rx  []*memring.Rx
	// geometry, read from the header this package's own NewRegion wrote
	ringsOff, buffersOff, stride uint64
	ringSize, frameSize          uint64
}

// NewPair creates a region with cfg (zero fields default) and the client's
// ends of every queue pair; everything is closed by tb.Cleanup.
func NewPair(tb testing.TB, cfg memring.Config) *Pair {
	tb.Helper()
	sw, huge, err := memring.NewRegion("memringtest", cfg)
	if err != nil {
		tb.Fatalf("memringtest: %v", err)
	}
	tb.Cleanup(func() { sw.Close() })
	fd, err := unix.Dup(int(sw.File().Fd()))
	if err != nil {
		tb.Fatalf("memringtest: dup: %v", err)
	}
	cf := os.NewFile(uintptr(fd), "memringtest-client")
	cl, err := memring.OpenRegion(cf)
	if err != nil {
		cf.Close()
		tb.Fatalf("memringtest: open region: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	raw, err := unix.Mmap(int(sw.File().Fd()), 0, int(sw.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		tb.Fatalf("memringtest: mmap: %v", err)
	}
	tb.Cleanup(func() { unix.Munmap(raw) })
	le := binary.LittleEndian
	p := &Pair{
		Switch: sw, Client: cl, Hugepages: huge, raw: raw,
		ringSize:   uint64(le.Uint32(raw[28:])),
		frameSize:  uint64(le.Uint32(raw[32:])),
		ringsOff:   le.Uint64(raw[40:]),
		buffersOff: le.Uint64(raw[48:]),
		stride:     le.Uint64(raw[56:]),
	}
	for q := 0; q < cl.Config().QueuePairs; q++ {
		tx, rx := cl.Queue(q, memring.SideClient)
		p.tx = append(p.tx, tx)
		p.rx = append(p.rx, rx)
	}
	return p
}

// ClientQueue is the fake client's ends of queue pair q: tx produces into
// the to-switch ring, rx consumes the to-client ring. They belong to the
// test; Send and Recv use the same ends.
func (p *Pair) ClientQueue(q int) (tx *memring.Tx, rx *memring.Rx) { return p.tx[q], p.rx[q] }

// Send has the client send frames (copied) on queue pair q and returns how
// many were queued.
func (p *Pair) Send(q int, frames ...[]byte) int {
	n, _ := p.tx[q].Send(frames)
	return n
}

// Recv has the client take up to max frames from queue pair q; it returns
// copies and releases the slots.
func (p *Pair) Recv(q int, max int) [][]byte {
	out := make([][]byte, max)
	n, _ := p.rx[q].Recv(out)
	res := make([][]byte, n)
	for i := range res {
		res[i] = append([]byte(nil), out[i]...)
	}
	p.rx[q].Release()
	return res
}

// ToSwitch and ToClient are the ring numbers of queue pair q (layout v1).
func ToSwitch(q int) int { return 2 * q }
func ToClient(q int) int { return 2*q + 1 }

// Raw is the whole region as a hostile client sees it.
func (p *Pair) Raw() []byte { return p.raw }

func (p *Pair) word(ring int, off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&p.raw[p.ringsOff+uint64(ring)*p.stride+off]))
}

// Producer and Consumer read ring's index words.
func (p *Pair) Producer(ring int) uint32 { return p.word(ring, 0).Load() }
func (p *Pair) Consumer(ring int) uint32 { return p.word(ring, 64).Load() }

// SetProducer and SetConsumer store any value into ring's index words, as
// a hostile (or buggy) client may.
func (p *Pair) SetProducer(ring int, v uint32) { p.word(ring, 0).Store(v) }
func (p *Pair) SetConsumer(ring int, v uint32) { p.word(ring, 64).Store(v) }

// Flags reads ring's flags word (bit 0: NEED_WAKEUP).
func (p *Pair) Flags(ring int) uint32 { return p.word(ring, 128).Load() }

// WriteDesc writes descriptor slot (taken modulo the ring size) of ring
// with any values. Publish it with SetProducer.
func (p *Pair) WriteDesc(ring int, slot uint32, off uint64, n, flags uint32) {
	d := p.raw[p.ringsOff+uint64(ring)*p.stride+192+(uint64(slot)%p.ringSize)*16:]
	binary.LittleEndian.PutUint64(d, off)
	binary.LittleEndian.PutUint32(d[8:], n)
	binary.LittleEndian.PutUint32(d[12:], flags)
}

// Partition is the offset and length of ring's buffer partition.
func (p *Pair) Partition(ring int) (off, n uint64) {
	n = p.ringSize * p.frameSize
	return p.buffersOff + uint64(ring)*n, n
}
