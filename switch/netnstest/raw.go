package netnstest

import (
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InNS runs fn on an OS thread that has joined the namespace, then moves
// the thread back. If moving back fails, the thread stays locked so the Go
// runtime retires it instead of reusing a thread in the wrong namespace.
func InNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", name, err)
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w (fn: %v)", name, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// RawSender writes whole Ethernet frames, exactly as given, out of one
// interface of a namespace through an AF_PACKET socket. The socket is
// created inside the namespace and stays bound to it, so it can be used
// from any goroutine afterwards.
type RawSender struct {
	fd      int
	ifindex int
}

// NewRawSender opens an AF_PACKET raw socket on ifname inside ns.
func NewRawSender(ns *NS, ifname string) (*RawSender, error) {
	s := &RawSender{fd: -1}
	err := InNS(ns.Name, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		// Protocol 0: send only, nothing is queued for reading.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket(AF_PACKET): %w", err)
		}
		s.fd, s.ifindex = fd, ifc.Index
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raw socket on %s in %s: %w", ifname, ns.Name, err)
	}
	return s, nil
}

// Send writes one frame. The kernel refuses frames shorter than an
// Ethernet header (EINVAL); everything else goes out byte for byte (veth
// does not pad to 60 bytes).
func (s *RawSender) Send(frame []byte) error {
	sa := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6}
	if len(frame) >= 6 {
		copy(sa.Addr[:], frame[:6])
	}
	return unix.Sendto(s.fd, frame, 0, sa)
}

// Close closes the socket.
func (s *RawSender) Close() error { return unix.Close(s.fd) }
