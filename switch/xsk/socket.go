package xsk

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bind modes.
const (
	BindAuto     = "auto"     // zero-copy if the driver supports it, else copy
	BindCopy     = "copy"     // always copy mode
	BindZeroCopy = "zerocopy" // zero-copy or fail
)

// SocketConfig sizes one socket's rings (each a power of two).
type SocketConfig struct {
	Ifindex  int
	QueueID  int
	RxSize   uint32
	TxSize   uint32
	FillSize uint32
	CompSize uint32
	Bind     string
	// TxBudget raises the copy-mode frames sent per sendto (XDP_MAX_TX_SKB_BUDGET)
	// where the kernel supports it; 0 keeps the kernel default (32).
	TxBudget int
}

// DefaultRingSize is used for any ring size left zero.
const DefaultRingSize = 2048

// Socket is one AF_XDP socket bound to one queue of one interface.
type Socket struct {
	fd       int
	umem     *Umem
	rx       descRing
	tx       descRing
	fill     addrRing
	comp     addrRing
	ZeroCopy bool
	// NeedWakeup says the kernel accepted XDP_USE_NEED_WAKEUP.
	NeedWakeup bool
	// TxBudget is the copy-mode frames per sendto the kernel accepted
	// (XDP_MAX_TX_SKB_BUDGET); 0: the kernel's default of 32.
	TxBudget int

	touch uint32 // keeps Receive's prefetching loads alive

	// txOutstanding counts frames given to the TX ring and not yet completed.
	txOutstanding int
	// fillOutstanding counts frames given to the fill ring and not yet
	// back through the RX ring: in the fill ring, or taken by the kernel
	// (a zero-copy driver's RX ring, the copy-mode pool's free list).
	fillOutstanding int

	// Counters kept by the owning worker (single writer).
	Kicks      uint64
	KickErrors uint64
}

// ErrZeroCopyUnsupported is returned for BindZeroCopy on a driver without it.
var ErrZeroCopyUnsupported = errors.New("zero-copy not supported by the driver")

// NewSocket creates a socket on u and binds it. The first socket of a UMEM
// registers it; later ones share it (XDP_SHARED_UMEM) with their own fill and
// completion rings, which the kernel requires when device or queue differ.
func NewSocket(u *Umem, cfg SocketConfig) (*Socket, error) {
	for _, p := range []*uint32{&cfg.RxSize, &cfg.TxSize, &cfg.FillSize, &cfg.CompSize} {
		if *p == 0 {
			*p = DefaultRingSize
		}
		if *p&(*p-1) != 0 {
			return nil, fmt.Errorf("new xsk: ring size %d is not a power of two", *p)
		}
	}
	if cfg.Bind == "" {
		cfg.Bind = BindAuto
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("new xsk: socket: %w", err)
	}
	s := &Socket{fd: fd, umem: u}
	ok := false
	defer func() {
		if !ok {
			s.unmapAll()
			unix.Close(fd)
		}
	}()

	shared := u.owner != nil
	if !shared {
		reg := unix.XDPUmemReg{
			Addr: uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
			Len:  uint64(len(u.mem)),
			Size: uint32(u.frameSize),
		}
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, fmt.Errorf("new xsk: register umem: %w", err)
		}
	}
	for _, o := range []struct {
		opt  int
		size uint32
	}{
		{unix.XDP_UMEM_FILL_RING, cfg.FillSize},
		{unix.XDP_UMEM_COMPLETION_RING, cfg.CompSize},
		{unix.XDP_RX_RING, cfg.RxSize},
		{unix.XDP_TX_RING, cfg.TxSize},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, int(o.size)); err != nil {
			return nil, fmt.Errorf("new xsk: ring option %d size %d: %w", o.opt, o.size, err)
		}
	}
	if cfg.TxBudget > 0 {
		// Kernels before 6.17 lack the option (ENOPROTOOPT) and keep
		// their 32 frames per sendto; the kernel bounds it by the TX ring.
		budget := min(cfg.TxBudget, int(cfg.TxSize))
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, budget); err == nil {
			s.TxBudget = budget
		} else if !errors.Is(err, unix.ENOPROTOOPT) {
			return nil, fmt.Errorf("new xsk: tx budget %d: %w", budget, err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("new xsk: mmap offsets: %w", err)
	}
	if s.fill, err = mapAddrRing(fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, cfg.FillSize); err != nil {
		return nil, fmt.Errorf("new xsk: map fill ring: %w", err)
	}
	if s.comp, err = mapAddrRing(fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, cfg.CompSize); err != nil {
		return nil, fmt.Errorf("new xsk: map completion ring: %w", err)
	}
	if s.rx, err = mapDescRing(fd, off.Rx, unix.XDP_PGOFF_RX_RING, cfg.RxSize); err != nil {
		return nil, fmt.Errorf("new xsk: map rx ring: %w", err)
	}
	if s.tx, err = mapDescRing(fd, off.Tx, unix.XDP_PGOFF_TX_RING, cfg.TxSize); err != nil {
		return nil, fmt.Errorf("new xsk: map tx ring: %w", err)
	}

	if err := s.bind(cfg, shared); err != nil {
		return nil, err
	}
	// Give the kernel a full fill ring of frames to receive into.
	s.Refill(int(cfg.FillSize))
	if !shared {
		u.owner = s
	}
	u.socks++
	ok = true
	return s, nil
}

func (s *Socket) bind(cfg SocketConfig, shared bool) error {
	sa := &unix.SockaddrXDP{Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.QueueID)}
	if shared {
		// Shared sockets inherit copy/zero-copy and need_wakeup from the
		// UMEM's owner; the kernel rejects those flags here.
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(s.umem.owner.fd)
		if err := unix.Bind(s.fd, sa); err != nil {
			return fmt.Errorf("new xsk: bind ifindex %d queue %d (shared umem): %w", cfg.Ifindex, cfg.QueueID, err)
		}
		s.ZeroCopy = s.umem.owner.ZeroCopy
		s.NeedWakeup = s.umem.owner.NeedWakeup
		return nil
	}
	try := func(flags uint16) error {
		sa.Flags = flags
		return unix.Bind(s.fd, sa)
	}
	var err error
	switch cfg.Bind {
	case BindZeroCopy:
		err = try(unix.XDP_ZEROCOPY | unix.XDP_USE_NEED_WAKEUP)
		if err != nil {
			return fmt.Errorf("new xsk: bind ifindex %d queue %d zero-copy: %w (%w)", cfg.Ifindex, cfg.QueueID, ErrZeroCopyUnsupported, err)
		}
		s.ZeroCopy = true
	case BindCopy:
		err = try(unix.XDP_COPY | unix.XDP_USE_NEED_WAKEUP)
	default:
		if err = try(unix.XDP_ZEROCOPY | unix.XDP_USE_NEED_WAKEUP); err == nil {
			s.ZeroCopy = true
		} else {
			err = try(unix.XDP_COPY | unix.XDP_USE_NEED_WAKEUP)
		}
	}
	if err != nil {
		return fmt.Errorf("new xsk: bind ifindex %d queue %d: %w", cfg.Ifindex, cfg.QueueID, err)
	}
	s.NeedWakeup = true
	return nil
}

// FD is the socket's descriptor, for the XSKMAP and poll(2).
func (s *Socket) FD() int { return s.fd }

// Umem returns the UMEM the socket's frames live in.
func (s *Socket) Umem() *Umem { return s.umem }

// FillSize is the number of descriptors of the socket's fill ring.
func (s *Socket) FillSize() int { return int(s.fill.size) }

// Refill moves up to n frames from the UMEM's free stack to the fill ring.
func (s *Socket) Refill(n int) int {
	free := int(s.fill.freeProd(uint32(n)))
	if n > free {
		n = free
	}
	if n > len(s.umem.free) {
		n = len(s.umem.free)
	}
	if n <= 0 {
		return 0
	}
	prod := s.fill.cachedProd
	for i := 0; i < n; i++ {
		addr, _ := s.umem.Get()
		s.fill.addrs[prod&s.fill.mask] = addr
		prod++
	}
	s.fill.cachedProd = prod
	s.fill.publishProd()
	s.fillOutstanding += n
	return n
}

// FillLevel is how many frames the kernel holds in the fill ring. It reads
// the kernel's consumer index: the cached one lags until a Refill runs short.
func (s *Socket) FillLevel() int { return int(s.fill.cachedProd - loadCons(&s.fill.ring)) }

// Receive peeks up to len(descs) received descriptors into descs and
// consumes them. The frames now belong to the caller, who must give each
// back by Transmit (any socket of the same UMEM) or Umem.Put. Descriptors
// that do not lie inside the UMEM are dropped and counted in bad.
func (s *Socket) Receive(descs []unix.XDPDesc) (n int, bad int) {
	avail := s.rx.availCons()
	if avail == 0 {
		return 0, 0
	}
	if avail > uint32(len(descs)) {
		avail = uint32(len(descs))
	}
	cons := s.rx.cachedCons
	// Touch one descriptor per cache line first, so the misses on lines
	// the kernel just wrote on another core overlap.
	var touch uint32
	for i := uint32(0); i < avail; i += 4 {
		touch ^= s.rx.descs[(cons+i)&s.rx.mask].Len
	}
	s.touch = touch
	for i := uint32(0); i < avail; i++ {
		d := s.rx.descs[cons&s.rx.mask]
		cons++
		if !s.umem.Contains(d.Addr, d.Len) {
			bad++
			continue
		}
		descs[n] = d
		n++
	}
	s.rx.cachedCons = cons
	s.rx.publishCons()
	// A bad descriptor's frame stays counted: its true address is unknown.
	s.fillOutstanding -= n
	return n, bad
}

// TxFree returns how many descriptors the TX ring can take now.
func (s *Socket) TxFree() int { return int(s.tx.freeProd(s.tx.size)) }

// TxPending is how many descriptors are in the TX ring, not yet taken by the kernel.
func (s *Socket) TxPending() int {
	return int(s.tx.cachedProd - loadCons(&s.tx.ring))
}

// Enqueue places one frame on the TX ring without publishing it; the
// socket takes ownership of the frame. It returns false if the ring is full
// (the caller still owns the frame).
func (s *Socket) Enqueue(addr uint64, n uint32) bool {
	if s.tx.freeProd(1) == 0 {
		return false
	}
	d := &s.tx.descs[s.tx.cachedProd&s.tx.mask]
	d.Addr = addr
	d.Len = n
	d.Options = 0
	s.tx.cachedProd++
	s.txOutstanding++
	return true
}

// Flush publishes enqueued TX descriptors and kicks the kernel until the TX
// ring is drained or the kernel stops making progress. Completions are
// reaped between kicks so that a full completion ring never stalls TX. It
// returns the number of frames that were completed.
func (s *Socket) Flush() int {
	s.tx.publishProd()
	done := s.Complete()
	if s.TxPending() == 0 {
		return done
	}
	if !s.ZeroCopy || s.tx.needWakeup() {
		// Copy mode sends a bounded number of frames per sendto, so keep
		// kicking while the kernel makes progress.
		for tries := 0; tries < 64; tries++ {
			before := loadCons(&s.tx.ring)
			errno := s.kick()
			done += s.Complete()
			after := loadCons(&s.tx.ring)
			if after == s.tx.cachedProd {
				break
			}
			if after == before && errno != 0 && errno != unix.EAGAIN && errno != unix.EBUSY && errno != unix.ENOBUFS {
				break
			}
			if after == before && tries > 4 {
				break
			}
		}
	}
	return done
}

func loadCons(r *ring) uint32 {
	r.cachedCons = atomicLoad(r.consumer)
	return r.cachedCons
}

// kick asks the kernel to transmit with a non-blocking sendto. RawSyscall
// keeps the busy worker thread off the scheduler's syscall hand-off path.
func (s *Socket) kick() unix.Errno {
	s.Kicks++
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		s.KickErrors++
	}
	return errno
}

// Complete reaps the completion ring, returning finished TX frames to the
// UMEM's free stack.
func (s *Socket) Complete() int {
	n := s.comp.availCons()
	if n == 0 {
		return 0
	}
	cons := s.comp.cachedCons
	for i := uint32(0); i < n; i++ {
		s.umem.Put(s.comp.addrs[cons&s.comp.mask])
		cons++
	}
	s.comp.cachedCons = cons
	s.comp.publishCons()
	s.txOutstanding -= int(n)
	return int(n)
}

// WakeRx tells the kernel that the fill ring has frames again, when it asked
// for that (need_wakeup). Copy mode on most drivers never asks.
func (s *Socket) WakeRx() {
	if s.NeedWakeup && s.fill.needWakeup() {
		_, _, _ = unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
}

// RxAvailable reports whether the RX ring holds descriptors, without consuming.
func (s *Socket) RxAvailable() bool { return s.rx.availCons() != 0 }

// Stats returns the kernel's counters for this socket.
func (s *Socket) Stats() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// Close releases the socket. Frames still in its fill and RX rings are
// returned to the UMEM; frames the kernel still holds for TX are reaped
// first where they have completed. It returns how many frames could not be
// accounted for (still in flight in the kernel).
func (s *Socket) Close() (lost int) {
	if s.fd < 0 {
		return 0
	}
	s.Complete()
	// RX ring: frames the kernel filled and we never consumed.
	var d [64]unix.XDPDesc
	for {
		n, _ := s.Receive(d[:])
		if n == 0 {
			break
		}
		for i := 0; i < n; i++ {
			s.umem.Put(d[i].Addr)
		}
	}
	// Fill ring: frames the kernel has not consumed yet.
	cons := atomicLoad(s.fill.consumer)
	for c := cons; c != s.fill.cachedProd; c++ {
		s.umem.Put(s.fill.addrs[c&s.fill.mask])
		s.fillOutstanding--
	}
	// Lost: TX frames never completed, and frames the kernel took from the
	// fill ring and never delivered.
	lost = s.txOutstanding + s.fillOutstanding
	if lost < 0 {
		lost = 0
	}
	s.unmapAll()
	unix.Close(s.fd)
	s.fd = -1
	s.umem.socks--
	if s.umem.owner == s {
		s.umem.owner = nil
	}
	return lost
}

// SetOwner records a live bound socket of the UMEM for later sockets to share
// it, after the previous owner closed.
func (u *Umem) SetOwner(s *Socket) {
	if s.umem == u && s.fd >= 0 {
		u.owner = s
	}
}

func (s *Socket) unmapAll() {
	s.rx.unmap()
	s.tx.unmap()
	s.fill.unmap()
	s.comp.unmap()
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
