package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// memProbes sends probes into m1 and receives them from m2 (busy-polled).
type memProbes struct{ p *ringPair }

var _ probeEndpoints = memProbes{}

func (m memProbes) Send(frame []byte) error {
	n, err := m.p.genTx.Send([][]byte{frame})
	if err != nil {
		return err
	}
	if n != 1 {
		return errors.New("m1 ring full")
	}
	m.p.gen.Notify(0)
	return nil
}

func (m memProbes) Poll(got func([]byte, int64)) error {
	n, err := m.p.sinkRx.Recv(m.p.views)
	if err != nil || n == 0 {
		return err
	}
	now := monoNs()
	for _, f := range m.p.views[:n] {
		got(f, now)
	}
	m.p.sinkRx.Release()
	// Frames the switch floods or reflects to m1 would pile up there.
	if k, _ := m.p.genRx.Recv(m.p.views); k > 0 {
		m.p.genRx.Release()
	}
	return nil
}

// packetProbes sends probes with an AF_PACKET socket on s0 in the source
// namespace and receives them with a non-blocking AF_PACKET socket on d1 in
// the destination namespace, polled with recvfrom(MSG_DONTWAIT) like a
// busy-polling application. The sockets are made inside their namespaces
// and then used from the harness thread (a socket keeps its namespace).
type packetProbes struct {
	txFD, rxFD int
	txAddr     unix.SockaddrLinklayer
	rxIfindex  int
	buf        []byte
}

var _ probeEndpoints = (*packetProbes)(nil)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openPacketProbes opens the two sockets. dst is the probes' destination
// MAC (the sender's sockaddr needs it, though the frame carries it too).
func openPacketProbes(srcNS, s0, dstNS, d1 string, dst net.HardwareAddr) (*packetProbes, error) {
	p := &packetProbes{txFD: -1, rxFD: -1, buf: make([]byte, 2048)}
	var err error
	// Protocol 0: the sending socket receives nothing.
	if p.txFD, p.txAddr, err = packetSocketIn(srcNS, s0, 0); err != nil {
		return nil, err
	}
	var rxAddr unix.SockaddrLinklayer
	if p.rxFD, rxAddr, err = packetSocketIn(dstNS, d1, unix.ETH_P_IP); err != nil {
		p.Close()
		return nil, err
	}
	p.rxIfindex = rxAddr.Ifindex
	p.txAddr.Halen = 6
	copy(p.txAddr.Addr[:], dst)
	return p, nil
}

// packetSocketIn opens a non-blocking AF_PACKET raw socket bound to ifname
// in the named netns, on a thread that enters the namespace and leaves it
// again (if leaving fails the thread stays locked and is retired).
func packetSocketIn(nsName, ifname string, proto uint16) (int, unix.SockaddrLinklayer, error) {
	type result struct {
		fd   int
		addr unix.SockaddrLinklayer
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r := result{fd: -1}
		orig, err := netns.Get()
		if err != nil {
			r.err = fmt.Errorf("get netns: %w", err)
			ch <- r
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromName(nsName)
		if err != nil {
			r.err = fmt.Errorf("open netns %s: %w", nsName, err)
			ch <- r
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			r.err = fmt.Errorf("enter netns %s: %w", nsName, err)
			ch <- r
			return
		}
		r.fd, r.addr, r.err = packetSocket(ifname, proto)
		if err := netns.Set(orig); err != nil {
			if r.fd >= 0 {
				unix.Close(r.fd)
			}
			ch <- result{fd: -1, err: fmt.Errorf("leave netns %s: %w", nsName, err)}
			return // thread retired: still locked
		}
		runtime.UnlockOSThread()
		ch <- r
	}()
	r := <-ch
	return r.fd, r.addr, r.err
}

func packetSocket(ifname string, proto uint16) (int, unix.SockaddrLinklayer, error) {
	var addr unix.SockaddrLinklayer
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, addr, fmt.Errorf("find %s: %w", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		return -1, addr, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	addr = unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifc.Index}
	if err := unix.Bind(fd, &addr); err != nil {
		unix.Close(fd)
		return -1, addr, fmt.Errorf("bind AF_PACKET to %s: %w", ifname, err)
	}
	return fd, addr, nil
}

func (p *packetProbes) Send(frame []byte) error {
	for {
		err := unix.Sendto(p.txFD, frame, 0, &p.txAddr)
		if err != unix.EINTR {
			return err
		}
	}
}

func (p *packetProbes) Poll(got func([]byte, int64)) error {
	for {
		n, _, err := unix.Recvfrom(p.rxFD, p.buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return nil
		case err != nil:
			return err
		}
		got(p.buf[:n], monoNs())
	}
}

// sendFromReceiver sends frame out of d1 (the receiving socket): the
// priming frame that makes the switch learn the destination's MAC.
func (p *packetProbes) sendFromReceiver(frame []byte, dst net.HardwareAddr) error {
	addr := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: p.rxIfindex, Halen: 6}
	copy(addr.Addr[:], dst)
	return unix.Sendto(p.rxFD, frame, 0, &addr)
}

func (p *packetProbes) Close() error {
	var errs []error
	for _, fd := range []*int{&p.txFD, &p.rxFD} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	return errors.Join(errs...)
}
