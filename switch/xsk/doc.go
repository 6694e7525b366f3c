// Package xsk is the AF_XDP socket layer of the switch, written directly on
// golang.org/x/sys/unix: UMEM registration, the four mmap'ed rings with
// atomic producer/consumer indices cached locally and published once per
// batch, a per-UMEM free stack fed by completion addresses, need_wakeup, and
// XDP_SHARED_UMEM so that every socket of one worker shares one UMEM and a
// frame can move from one port's RX ring to another port's TX ring without a
// copy.
//
// Ownership: a Umem and all Sockets bound to it belong to one worker
// goroutine. Nothing here locks; calling into one Umem from two goroutines is
// a bug. Kicks use RawSyscall so that a busy-polling worker never enters the
// scheduler's syscall path (which would hand its P away).
//
// The XDP program that steers frames into the sockets (an XSKMAP redirect) is
// not here: the switch loads it through github.com/asavie/xdp.
package xsk
