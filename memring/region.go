package memring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Layout constants of version 1 (see the package doc).
const (
	Version = 1

	// FeatureEventfd in the header's features word: the switch signals
	// NEED_WAKEUP through eventfds passed over the control socket.
	FeatureEventfd uint32 = 1 << 0

	// FlagNeedWakeup is bit 0 of a ring's flags word.
	FlagNeedWakeup uint32 = 1 << 0

	// MinFrameLen is the shortest frame a ring carries (an Ethernet header).
	MinFrameLen = 14

	headerSize  = 4096
	ringsOffset = headerSize
	offProducer = 0
	offConsumer = 64
	offFlags    = 128
	offDescs    = 192
	descSize    = 16
	hugePage    = 2 << 20

	maxQueuePairs = 16
	minRingSize   = 64
	maxRingSize   = 32768
	minFrameSize  = 2048
	maxFrameSize  = 16384
)

var magic = [8]byte{'V', 'S', 'M', 'R', 'I', 'N', 'G', 0}

var (
	// ErrCorrupt: the peer wrote an index that no correct producer or
	// consumer can write. The ring end stays broken; the switch drops the
	// client.
	ErrCorrupt = errors.New("memring: ring corrupt")
	// ErrBadHeader: OpenRegion refused a region header. The wrapping error
	// names the field.
	ErrBadHeader = errors.New("memring: bad region header")
)

// Config sizes a region. The zero value of a field means its default.
type Config struct {
	// QueuePairs is the number of to-switch/to-client ring pairs, 1..16.
	QueuePairs int
	// RingSize is descriptors per ring, a power of two 64..32768.
	RingSize int
	// FrameSize is bytes per buffer, a power of two 2048..16384.
	FrameSize int
}

// SetDefaults fills zero fields: 1 queue pair, 1024 descriptors, 2048 bytes.
func (c *Config) SetDefaults() {
	if c.QueuePairs == 0 {
		c.QueuePairs = 1
	}
	if c.RingSize == 0 {
		c.RingSize = 1024
	}
	if c.FrameSize == 0 {
		c.FrameSize = 2048
	}
}

// Validate reports the first field out of range; the error names the field
// as the header does (queue_pairs, ring_size, frame_size).
func (c Config) Validate() error {
	if c.QueuePairs < 1 || c.QueuePairs > maxQueuePairs {
		return fmt.Errorf("memring config: queue_pairs %d is not in 1..%d", c.QueuePairs, maxQueuePairs)
	}
	if c.RingSize < 0 || !pow2In(uint64(c.RingSize), minRingSize, maxRingSize) {
		return fmt.Errorf("memring config: ring_size %d is not a power of two in %d..%d", c.RingSize, minRingSize, maxRingSize)
	}
	if c.FrameSize < 0 || !pow2In(uint64(c.FrameSize), minFrameSize, maxFrameSize) {
		return fmt.Errorf("memring config: frame_size %d is not a power of two in %d..%d", c.FrameSize, minFrameSize, maxFrameSize)
	}
	return nil
}

func pow2In(v, lo, hi uint64) bool { return v >= lo && v <= hi && v&(v-1) == 0 }

// RegionSize is the number of bytes the layout of a valid c needs (before
// any rounding up to the hugepage size).
func (c Config) RegionSize() int64 {
	return int64(layoutOf(c).size)
}

// layout is the geometry of a region, computed from a Config or read from a
// validated header. It is the private copy everybody uses after OpenRegion.
type layout struct {
	queuePairs uint32
	ringSize   uint32
	frameSize  uint32
	features   uint32
	size       uint64 // region_size
	ringsOff   uint64
	buffersOff uint64
	stride     uint64
}

func layoutOf(c Config) layout {
	stride := uint64(offDescs + descSize*c.RingSize)
	stride = (stride + 63) &^ 63
	rings := uint64(2 * c.QueuePairs)
	bufOff := (ringsOffset + rings*stride + headerSize - 1) &^ (headerSize - 1)
	return layout{
		queuePairs: uint32(c.QueuePairs),
		ringSize:   uint32(c.RingSize),
		frameSize:  uint32(c.FrameSize),
		features:   FeatureEventfd,
		size:       bufOff + rings*uint64(c.RingSize)*uint64(c.FrameSize),
		ringsOff:   ringsOffset,
		buffersOff: bufOff,
		stride:     stride,
	}
}

func (l *layout) config() Config {
	return Config{QueuePairs: int(l.queuePairs), RingSize: int(l.ringSize), FrameSize: int(l.frameSize)}
}

func (l *layout) ringOff(i int) uint64 { return l.ringsOff + uint64(i)*l.stride }

func (l *layout) partOff(i int) uint64 {
	return l.buffersOff + uint64(i)*uint64(l.ringSize)*uint64(l.frameSize)
}

func (l *layout) partLen() uint64 { return uint64(l.ringSize) * uint64(l.frameSize) }

// encode writes the header into the first 64 bytes of b.
func (l *layout) encode(b []byte) {
	le := binary.LittleEndian
	copy(b[0:8], magic[:])
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], l.features)
	le.PutUint64(b[16:], l.size)
	le.PutUint32(b[24:], l.queuePairs)
	le.PutUint32(b[28:], l.ringSize)
	le.PutUint32(b[32:], l.frameSize)
	le.PutUint32(b[36:], 0)
	le.PutUint64(b[40:], l.ringsOff)
	le.PutUint64(b[48:], l.buffersOff)
	le.PutUint64(b[56:], l.stride)
}

func badHeader(field string, format string, args ...any) error {
	return fmt.Errorf("%w: %s "+format, append([]any{ErrBadHeader, field}, args...)...)
}

// decodeHeader validates a private copy of a header against the size of the
// file it came from. Every field is checked; sums are checked for overflow.
func decodeHeader(h *[64]byte, fileSize uint64) (layout, error) {
	le := binary.LittleEndian
	var l layout
	if [8]byte(h[0:8]) != magic {
		return l, badHeader("magic", "%q is not %q", h[0:8], magic[:])
	}
	if v := le.Uint32(h[8:]); v != Version {
		return l, badHeader("version", "%d is not %d", v, Version)
	}
	l.features = le.Uint32(h[12:])
	l.size = le.Uint64(h[16:])
	l.queuePairs = le.Uint32(h[24:])
	l.ringSize = le.Uint32(h[28:])
	l.frameSize = le.Uint32(h[32:])
	reserved := le.Uint32(h[36:])
	l.ringsOff = le.Uint64(h[40:])
	l.buffersOff = le.Uint64(h[48:])
	l.stride = le.Uint64(h[56:])

	if l.queuePairs < 1 || l.queuePairs > maxQueuePairs {
		return l, badHeader("queue_pairs", "%d is not in 1..%d", l.queuePairs, maxQueuePairs)
	}
	if !pow2In(uint64(l.ringSize), minRingSize, maxRingSize) {
		return l, badHeader("ring_size", "%d is not a power of two in %d..%d", l.ringSize, minRingSize, maxRingSize)
	}
	if !pow2In(uint64(l.frameSize), minFrameSize, maxFrameSize) {
		return l, badHeader("frame_size", "%d is not a power of two in %d..%d", l.frameSize, minFrameSize, maxFrameSize)
	}
	if reserved != 0 {
		return l, badHeader("reserved", "%d is not 0", reserved)
	}
	if l.ringsOff != ringsOffset {
		return l, badHeader("rings_offset", "%d is not %d", l.ringsOff, ringsOffset)
	}
	minStride := uint64(offDescs) + descSize*uint64(l.ringSize)
	// The stride bound keeps every product below small enough not to
	// overflow: 32 rings * 2^32 is far below 2^64.
	if l.stride < minStride || l.stride%64 != 0 || l.stride > 1<<32 {
		return l, badHeader("ring_stride", "%d is not a multiple of 64 in %d..%d", l.stride, minStride, uint64(1)<<32)
	}
	ringsEnd := l.ringsOff + 2*uint64(l.queuePairs)*l.stride
	if l.buffersOff < ringsEnd || l.buffersOff%64 != 0 || l.buffersOff > 1<<48 {
		return l, badHeader("buffers_offset", "%d is not a multiple of 64 in %d..%d", l.buffersOff, ringsEnd, uint64(1)<<48)
	}
	// At most 32 * 32768 * 16384 = 2^34 bytes of buffers: no overflow.
	need := l.buffersOff + 2*uint64(l.queuePairs)*l.partLen()
	if l.size != fileSize {
		return l, badHeader("region_size", "%d is not the file size %d", l.size, fileSize)
	}
	if l.size < need {
		return l, badHeader("region_size", "%d is less than the %d bytes the layout needs", l.size, need)
	}
	return l, nil
}

// Region is one mapped shared-memory region: the header, 2*QueuePairs rings
// and their buffer partitions. The geometry is a private copy; the shared
// header is never read after NewRegion or OpenRegion.
type Region struct {
	f         *os.File
	mem       []byte
	l         layout
	closeOnce sync.Once
	closeErr  error
}

// NewRegion creates the region for one client: a memfd named name (with
// MFD_HUGETLB|MFD_HUGE_2MB, sized up to a 2 MiB multiple, when 2 MiB
// hugepages can be reserved; else a plain memfd; hugepages reports which),
// sealed against shrinking and growing, mapped MAP_SHARED and populated,
// with the header written and every index zero. Zero fields of cfg take
// their defaults. The caller owns r and closes it.
func NewRegion(name string, cfg Config) (r *Region, hugepages bool, err error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, false, fmt.Errorf("new region: %w", err)
	}
	l := layoutOf(cfg)
	if tryHugepages {
		if r, err = createRegion(name, l, true); err == nil {
			return r, true, nil
		}
	}
	if r, err = createRegion(name, l, false); err != nil {
		return nil, false, fmt.Errorf("new region: %w", err)
	}
	return r, false, nil
}

// tryHugepages lets tests take the plain memfd path on a host that has
// hugepages.
var tryHugepages = true

func createRegion(name string, l layout, huge bool) (*Region, error) {
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	if huge {
		flags |= unix.MFD_HUGETLB | unix.MFD_HUGE_2MB
		l.size = (l.size + hugePage - 1) &^ (hugePage - 1)
	}
	if l.size > uint64(maxInt) {
		return nil, fmt.Errorf("region of %d bytes does not fit in memory", l.size)
	}
	fd, err := unix.MemfdCreate(name, flags)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	fail := func(what string, err error) (*Region, error) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.Ftruncate(fd, int64(l.size)); err != nil {
		return fail("ftruncate", err)
	}
	// A client must not be able to truncate the file under the switch's
	// mapping (the switch would die of SIGBUS).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail("seal memfd", err)
	}
	// With hugetlb the pages are reserved here, so a host without free
	// hugepages fails now (ENOMEM) rather than with SIGBUS later.
	mem, err := unix.Mmap(fd, 0, int(l.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap", err)
	}
	l.encode(mem[:64])
	return &Region{f: f, mem: mem, l: l}, nil
}

const maxInt = int(^uint(0) >> 1)

// OpenRegion maps the region in f (the client side: f came over the control
// socket) and validates its header completely. On success r owns f; on
// error f is left open and still the caller's.
func OpenRegion(f *os.File) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("open region: fstat: %w", err)
	}
	if st.Size < headerSize {
		return nil, fmt.Errorf("open region: %w: region_size: file of %d bytes is smaller than the header", ErrBadHeader, st.Size)
	}
	if uint64(st.Size) > uint64(maxInt) {
		return nil, fmt.Errorf("open region: %w: region_size: file of %d bytes does not fit in memory", ErrBadHeader, st.Size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("open region: mmap %d bytes: %w", st.Size, err)
	}
	var h [64]byte
	copy(h[:], mem[:64])
	l, err := decodeHeader(&h, uint64(st.Size))
	if err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("open region: %w", err)
	}
	return &Region{f: f, mem: mem, l: l}, nil
}

// File is the region's memfd, to pass to the client. r owns it: do not close
// it; dup it if it must outlive r.
func (r *Region) File() *os.File { return r.f }

// Config is the region's geometry.
func (r *Region) Config() Config { return r.l.config() }

// Features is the header's features word (FeatureEventfd).
func (r *Region) Features() uint32 { return r.l.features }

// Size is the mapped size in bytes (region_size).
func (r *Region) Size() int64 { return int64(r.l.size) }

// Close unmaps the region and closes its file. Every Tx and Rx of r must be
// out of use first: their memory goes away. Close is idempotent.
func (r *Region) Close() error {
	r.closeOnce.Do(func() {
		if r.mem != nil {
			r.closeErr = unix.Munmap(r.mem)
			r.mem = nil
		}
		if r.f != nil {
			if err := r.f.Close(); r.closeErr == nil {
				r.closeErr = err
			}
		}
	})
	return r.closeErr
}
