package xsk

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/asavie/xdp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestVethRxTxSharedUmem runs the socket layer against the kernel: two
// veth pairs whose far ends are in a namespace of the test's own, the
// XSKMAP program on both root-side ends, one UMEM and two sockets on it
// (the second bound with XDP_SHARED_UMEM). Frames sent into the first pair
// come out of the first socket byte for byte; one of them is transmitted
// from the second socket without a copy and arrives at the far end of the
// second pair; its frame comes back through the completion ring; Close
// returns every frame still in the fill and RX rings.
func TestVethRxTxSharedUmem(t *testing.T) {
	netnstest.RequirePriv(t)
	ns := netnstest.NewNS(t)
	in := netnstest.NewVeth(t, ns)  // frames enter the switch here
	out := netnstest.NewVeth(t, ns) // and leave here
	inIdx, outIdx := ifindex(t, in.Host), ifindex(t, out.Host)
	inProg := attachXSKProgram(t, inIdx)
	outProg := attachXSKProgram(t, outIdx)

	const frames = 256
	u, err := NewUmem(UmemConfig{NumFrames: frames, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("Umem.Close: %v", err)
		}
	})
	rings := SocketConfig{QueueID: 0, RxSize: 64, TxSize: 64, FillSize: 64, CompSize: 64}
	rxCfg, txCfg := rings, rings
	rxCfg.Ifindex, txCfg.Ifindex = inIdx, outIdx
	rx := newSocket(t, u, rxCfg)
	tx := newSocket(t, u, txCfg)
	if u.owner != rx {
		t.Fatalf("the first socket does not own the UMEM")
	}
	if tx.ZeroCopy != rx.ZeroCopy || tx.NeedWakeup != rx.NeedWakeup {
		t.Errorf("shared socket: ZeroCopy %v NeedWakeup %v, owner %v %v", tx.ZeroCopy, tx.NeedWakeup, rx.ZeroCopy, rx.NeedWakeup)
	}
	t.Logf("zerocopy=%v need_wakeup=%v", rx.ZeroCopy, rx.NeedWakeup)
	// Each socket filled its fill ring from the one free stack.
	if got, want := u.Free(), frames-2*64; got != want {
		t.Fatalf("Free = %d after two sockets filled 64 each, want %d", got, want)
	}
	if err := inProg.Register(0, rx.FD()); err != nil {
		t.Fatal(err)
	}
	if err := outProg.Register(0, tx.FD()); err != nil {
		t.Fatal(err)
	}

	sender, err := netnstest.NewRawSender(ns, in.Peer)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	sniffer := newPacketSniffer(t, ns, out.Peer)

	// Receive: three frames, exactly as sent, in order.
	sent := make([][]byte, 3)
	for i := range sent {
		sent[i] = udpFrame(t, in.MAC, i, 60+i*400)
		if err := sender.Send(sent[i]); err != nil {
			t.Fatalf("send frame %d: %v", i, err)
		}
	}
	got := receiveN(t, rx, len(sent), 5*time.Second)
	for i, d := range got {
		if f := u.Frame(d.Addr, d.Len); !bytes.Equal(f, sent[i]) {
			t.Errorf("frame %d received as\n%x\nwant\n%x", i, f, sent[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Transmit the first one from the other socket, no copy.
	free := u.Free()
	if !tx.Enqueue(got[0].Addr, got[0].Len) {
		t.Fatal("Enqueue on an empty TX ring refused")
	}
	tx.Flush()
	if f, err := sniffer.waitFor(sent[0], 5*time.Second); err != nil {
		t.Fatalf("transmitted frame did not arrive at %s: %v (last seen %x)", out.Peer, err, f)
	}
	netnstest.Eventually(t, 5*time.Second, time.Millisecond, "TX completion", func() (bool, string) {
		tx.Complete()
		return u.Free() == free+1 && tx.txOutstanding == 0 && tx.TxPending() == 0,
			fmt.Sprintf("free %d (want %d), outstanding %d, pending %d", u.Free(), free+1, tx.txOutstanding, tx.TxPending())
	})
	// The completed frame is back on the free stack as its chunk base.
	if a, _ := u.Get(); a != got[0].Addr&^2047 {
		t.Errorf("top of the free stack = %#x, want the completed chunk %#x", a, got[0].Addr&^2047)
	} else {
		u.Put(a)
	}
	u.Put(got[1].Addr)
	u.Put(got[2].Addr)

	for _, s := range []*Socket{rx, tx} {
		st, err := s.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Rx_dropped != 0 || st.Rx_invalid_descs != 0 || st.Tx_invalid_descs != 0 || st.Rx_ring_full != 0 {
			t.Errorf("socket %d: unexpected error counters %+v", s.FD(), st)
		}
	}

	// Close with frames in the RX ring (two delivered, never received) and
	// in the fill ring (the rest): all come back.
	for i := 0; i < 2; i++ {
		if err := sender.Send(udpFrame(t, in.MAC, 10+i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	netnstest.Eventually(t, 5*time.Second, time.Millisecond, "two frames in the RX ring", func() (bool, string) {
		n := atomicLoad(rx.rx.producer) - rx.rx.cachedCons
		return n == 2, fmt.Sprintf("%d in the RX ring", n)
	})
	lost := tx.Close() + rx.Close()
	if lost != 0 {
		t.Errorf("Close reported %d frames lost with nothing in flight", lost)
	}
	if u.Free() != frames-lost {
		t.Errorf("Free = %d after closing both sockets, want NumFrames-lost = %d", u.Free(), frames-lost)
	}
	if u.socks != 0 || u.owner != nil {
		t.Errorf("after Close: socks %d owner %p", u.socks, u.owner)
	}
}

func ifindex(t *testing.T, name string) int {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifc.Index
}

// attachXSKProgram attaches asavie/xdp's XSKMAP redirect program in
// native mode (veth has a driver XDP hook) and detaches it at cleanup,
// before the veth pair is deleted.
func attachXSKProgram(t *testing.T, ifindex int) *xdp.Program {
	t.Helper()
	prog, err := xdp.NewProgram(1)
	if err != nil {
		t.Fatalf("load xdp program: %v", err)
	}
	xdp.DefaultXdpFlags = unix.XDP_FLAGS_DRV_MODE
	if err := prog.Attach(ifindex); err != nil {
		prog.Close()
		t.Fatalf("attach xdp program to ifindex %d: %v", ifindex, err)
	}
	t.Cleanup(func() {
		link, err := netlink.LinkByIndex(ifindex)
		if err == nil {
			err = netlink.LinkSetXdpFdWithFlags(link, -1, unix.XDP_FLAGS_DRV_MODE)
		}
		if err != nil {
			t.Errorf("detach xdp program from ifindex %d: %v", ifindex, err)
		}
		prog.Close()
	})
	return prog
}

// newSocket creates a socket and closes it at cleanup unless the test did.
func newSocket(t *testing.T, u *Umem, cfg SocketConfig) *Socket {
	t.Helper()
	s, err := NewSocket(u, cfg)
	if err != nil {
		t.Fatalf("NewSocket(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// receiveN polls s until n frames have arrived, waiting in poll(2) as the
// worker does, and fails t at the deadline.
func receiveN(t *testing.T, s *Socket, n int, timeout time.Duration) []unix.XDPDesc {
	t.Helper()
	var got []unix.XDPDesc
	buf := make([]unix.XDPDesc, 64)
	deadline := time.Now().Add(timeout)
	for len(got) < n {
		k, bad := s.Receive(buf)
		if bad != 0 {
			t.Fatalf("%d descriptors outside the UMEM", bad)
		}
		got = append(got, buf[:k]...)
		if k > 0 {
			continue
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("received %d of %d frames before the deadline", len(got), n)
		}
		s.WakeRx()
		fds := []unix.PollFd{{Fd: int32(s.FD()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		}
	}
	if len(got) > n {
		t.Fatalf("received %d frames, sent %d", len(got), n)
	}
	return got
}

// udpFrame builds an Ethernet/IPv4/UDP frame of size bytes from src,
// numbered i in its payload. Addresses are from the benchmarking range
// (RFC 2544) and never configured anywhere: the frames are only looked at.
func udpFrame(t *testing.T, src net.HardwareAddr, i, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0xee, byte(i)}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(198, 18, 0, 1), DstIP: net.IPv4(198, 18, 0, 2)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(50000 + i)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size-14-20-8)
	for j := range payload {
		payload[j] = byte(i + j)
	}
	copy(payload, fmt.Sprintf("xsk test frame %d", i))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != size {
		t.Fatalf("built a %d-byte frame, want %d", len(buf.Bytes()), size)
	}
	return buf.Bytes()
}

// packetSniffer reads every frame arriving on one interface of a
// namespace through an AF_PACKET socket opened inside it.
type packetSniffer struct{ fd int }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func newPacketSniffer(t *testing.T, ns *netnstest.NS, ifname string) *packetSniffer {
	t.Helper()
	p := &packetSniffer{fd: -1}
	err := netnstest.InNS(ns.Name, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("socket(AF_PACKET): %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to %s: %w", ifname, err)
		}
		p.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.Name, err)
	}
	t.Cleanup(func() { unix.Close(p.fd) })
	return p
}

// waitFor reads frames until one equal to want arrives or timeout passes;
// it returns the last frame seen for the failure message.
func (p *packetSniffer) waitFor(want []byte, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	var last []byte
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return last, errors.New("timed out")
		}
		tv := unix.NsecToTimeval(min(left, 100*time.Millisecond).Nanoseconds() + 1000)
		if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return last, err
		}
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return last, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		last = append(last[:0], buf[:n]...)
		if bytes.Equal(last, want) {
			return last, nil
		}
	}
}

// TestVethTxBudget: in copy mode the kernel sends 32 frames per sendto
// unless the socket raised XDP_MAX_TX_SKB_BUDGET (Linux 6.17+). A flush of
// 64 frames is then one kick instead of two or more; either way every frame
// completes.
func TestVethTxBudget(t *testing.T) {
	netnstest.RequirePriv(t)
	ns := netnstest.NewNS(t)
	for _, budget := range []int{0, 64} {
		// A veth each: the kernel frees a queue some time after its
		// socket closed, and a bind meanwhile fails with EBUSY.
		out := netnstest.NewVeth(t, ns)
		idx := ifindex(t, out.Host)
		u, err := NewUmem(UmemConfig{NumFrames: 256, FrameSize: 2048})
		if err != nil {
			t.Fatal(err)
		}
		s := newSocket(t, u, SocketConfig{Ifindex: idx, RxSize: 64, TxSize: 64, FillSize: 64, CompSize: 64,
			Bind: BindCopy, TxBudget: budget})
		if budget > 0 && s.TxBudget != budget {
			if s.TxBudget != 0 {
				t.Fatalf("TxBudget = %d, want %d", s.TxBudget, budget)
			}
			t.Logf("kernel lacks XDP_MAX_TX_SKB_BUDGET; the default of 32 applies")
		}
		free := u.Free()
		for i := 0; i < 64; i++ {
			a, ok := u.Get()
			if !ok {
				t.Fatal("UMEM empty")
			}
			f := udpFrame(t, out.MAC, i, 64)
			copy(u.Frame(a, uint32(len(f))), f)
			if !s.Enqueue(a, uint32(len(f))) {
				t.Fatalf("Enqueue %d refused", i)
			}
		}
		s.Flush()
		netnstest.Eventually(t, 5*time.Second, time.Millisecond, "64 TX completions", func() (bool, string) {
			s.Complete()
			return u.Free() == free, fmt.Sprintf("free %d, want %d; pending %d", u.Free(), free, s.TxPending())
		})
		switch {
		case s.TxBudget >= 64 && s.Kicks != 1:
			t.Errorf("budget %d: %d kicks for 64 frames, want 1", s.TxBudget, s.Kicks)
		case s.TxBudget == 0 && s.Kicks < 2:
			t.Errorf("default budget: %d kicks for 64 frames, want >= 2", s.Kicks)
		}
		t.Logf("budget %d (asked %d): %d kicks for 64 frames", s.TxBudget, budget, s.Kicks)
		s.Close()
		if err := u.Close(); err != nil {
			t.Errorf("Umem.Close: %v", err)
		}
	}
}
