//go:build integration

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// memringDaemon starts vswitchd with the given ports and its memring socket
// in a short temp dir, and returns the daemon and the socket path.
func memringDaemon(t *testing.T, ports ...portConf) (*daemon, string) {
	t.Helper()
	sock := filepath.Join(netnstest.ShortTempDir(t), "memring.sock")
	d := startDaemon(t, daemonConf{ports: ports, extra: "memring_socket: " + strconv.Quote(sock) + "\n"})
	return d, sock
}

// dialMem attaches to a memring port and detaches when the test ends.
func dialMem(t *testing.T, sock, port string) *memring.Conn {
	t.Helper()
	c, err := memring.Dial(sock, port)
	if err != nil {
		t.Fatalf("attach to memring port %s: %v", port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// memSend sends frames on queue pair 0 and wakes the switch if it sleeps.
func memSend(t *testing.T, c *memring.Conn, frames ...[]byte) {
	t.Helper()
	tx, _ := c.Queue(0)
	n, err := tx.Send(frames)
	if err != nil || n != len(frames) {
		t.Fatalf("memring send: %d of %d, %v", n, len(frames), err)
	}
	c.Notify(0)
}

// memRecvMatch waits for a frame on queue pair 0 that match accepts and
// returns a copy of it; frames that do not match are skipped.
func memRecvMatch(t *testing.T, c *memring.Conn, timeout time.Duration, what string, match func([]byte) bool) []byte {
	t.Helper()
	_, rx := c.Queue(0)
	var views [1][]byte // one at a time: frames after a match stay queued
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := rx.Recv(views[:])
		if err != nil {
			t.Fatalf("memring recv: %v", err)
		}
		for _, v := range views[:n] {
			if match(v) {
				out := append([]byte(nil), v...)
				rx.Release()
				return out
			}
		}
		rx.Release()
		if n == 0 {
			if err := c.Wait(0, time.Until(deadline)); err != nil && !errors.Is(err, memring.ErrTimeout) {
				t.Fatalf("memring wait: %v", err)
			}
		}
	}
	t.Fatalf("no %s within %s", what, timeout)
	return nil
}

// rawFrame is an Ethernet frame of a local experimental ethertype carrying tag.
func rawFrame(src, dst net.HardwareAddr, tag string) []byte {
	f := make([]byte, 60)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], 0x88b5)
	copy(f[14:], tag)
	return f
}

var (
	memMacA = net.HardwareAddr{0x02, 0x6d, 0, 0, 0, 0x0a}
	memMacB = net.HardwareAddr{0x02, 0x6d, 0, 0, 0, 0x0b}
)

// TestMemringForwarding: two clients attached to two memring ports reach
// each other through the switch (flooded, then learned unicast), and the
// switch counts the frames on both ports.
func TestMemringForwarding(t *testing.T) {
	netnstest.RequirePriv(t)
	reserveHugepages(t, 16)
	d, sock := memringDaemon(t,
		portConf{name: "m1", memring: "{ring_size: 256}"},
		portConf{name: "m2", memring: "{ring_size: 256}"})
	a := dialMem(t, sock, "m1")
	b := dialMem(t, sock, "m2")

	memSend(t, a, rawFrame(memMacA, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "hello-broadcast"))
	got := memRecvMatch(t, b, 10*time.Second, "broadcast from A at B", func(f []byte) bool {
		return bytes.Contains(f, []byte("hello-broadcast"))
	})
	if !bytes.Equal(got[6:12], memMacA) {
		t.Fatalf("B got source %x, want A's", got[6:12])
	}
	// B answers A by unicast: the switch learned A's MAC on m1.
	for i := range 100 {
		memSend(t, b, rawFrame(memMacB, memMacA, "unicast-"+strconv.Itoa(i)))
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 100 && time.Now().Before(deadline) {
		f := memRecvMatchSoft(a, time.Until(deadline), func(f []byte) bool { return bytes.HasPrefix(f[14:], []byte("unicast-")) })
		if f == nil {
			break
		}
		if !bytes.Equal(f[0:6], memMacA) || !bytes.Equal(f[6:12], memMacB) {
			t.Fatalf("A got %x -> %x, want B -> A", f[6:12], f[0:6])
		}
		seen[string(bytes.TrimRight(f[14:], "\x00"))] = true
	}
	if len(seen) != 100 {
		t.Fatalf("A got %d of 100 unicast frames from B", len(seen))
	}
	// Large TCP and UDP frames from A cross with their payload copied once
	// (head from the switch's own copy, tail straight from A's buffer):
	// unicast to B and flooded, every byte arrives as sent.
	for i, f := range bigFrames(t, memMacA, memMacB) {
		memSend(t, a, f)
		got := memRecvMatch(t, b, 10*time.Second, "large frame "+strconv.Itoa(i)+" at B", func(g []byte) bool {
			return len(g) == len(f) && bytes.Equal(g[len(g)-16:], f[len(f)-16:])
		})
		if !bytes.Equal(got, f) {
			t.Fatalf("large frame %d (%d bytes) changed on the way", i, len(f))
		}
	}
	st := d.stats(t)
	if p := portStats(t, st, "m2"); p.RxPackets < 100 {
		t.Errorf("m2 rx_packets %d, want >= 100", p.RxPackets)
	}
	if p := portStats(t, st, "m1"); p.TxPackets < 100 {
		t.Errorf("m1 tx_packets %d, want >= 100", p.TxPackets)
	}
	for _, p := range d.ports(t) {
		if p.State != "attached" || p.PeerPID == 0 || !p.Hugepages {
			t.Errorf("port %s: state %q peer pid %d hugepages %v, want attached on huge pages", p.Name, p.State, p.PeerPID, p.Hugepages)
		}
	}
}

// bigFrames are 1400-1500 byte TCP and UDP frames from src to dst (over
// IPv4 and IPv6) and one UDP broadcast, each with a payload pattern of its
// own.
func bigFrames(t *testing.T, src, dst net.HardwareAddr) [][]byte {
	t.Helper()
	pay := func(seed, n int) gopacket.Payload {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*seed + seed)
		}
		return b
	}
	s4, d4 := net.IPv4(10, 78, 0, 1).To4(), net.IPv4(10, 78, 0, 2).To4()
	s6, d6 := net.ParseIP("fd78::1"), net.ParseIP("fd78::2")
	var out [][]byte
	for k, v6 := range []bool{false, true} {
		var ip gopacket.NetworkLayer
		et := layers.EthernetTypeIPv4
		ip4 := &layers.IPv4{Version: 4, TTL: 64, SrcIP: s4, DstIP: d4}
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: s6, DstIP: d6}
		if v6 {
			ip, et = ip6, layers.EthernetTypeIPv6
		} else {
			ip = ip4
		}
		for j, proto := range []layers.IPProtocol{layers.IPProtocolUDP, layers.IPProtocolTCP} {
			ip4.Protocol, ip6.NextHeader = proto, proto
			var l4 interface {
				gopacket.SerializableLayer
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}
			if proto == layers.IPProtocolUDP {
				l4 = &layers.UDP{SrcPort: 4000, DstPort: 9}
			} else {
				l4 = &layers.TCP{SrcPort: 4000, DstPort: 80, ACK: true, Window: 1000,
					Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
			}
			if err := l4.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			n := 1400 + 30*(2*k+j)
			out = append(out, serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et},
				ip.(gopacket.SerializableLayer), l4, pay(3+2*k+j, n)))
		}
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: s4, DstIP: net.IPv4bcast.To4()}
	u := &layers.UDP{SrcPort: 4000, DstPort: 9}
	_ = u.SetNetworkLayerForChecksum(ip)
	out = append(out, serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeIPv4},
		ip, u, pay(11, 1450)))
	return out
}

// TestMemringToNamespace: a memring client resolves and pings a kernel
// host in a namespace behind a veth port of the same switch.
func TestMemringToNamespace(t *testing.T) {
	netnstest.RequirePriv(t)
	h := newHost(t, "veth1", "10.77.0.1")
	_, sock := memringDaemon(t, h.portConf(""), portConf{name: "m1", memring: "{}"})
	c := dialMem(t, sock, "m1")
	myIP, target := net.IPv4(10, 77, 0, 9).To4(), net.IPv4(10, 77, 0, 1).To4()

	arp := serialize(t,
		&layers.Ethernet{SrcMAC: memMacA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: memMacA, SourceProtAddress: myIP,
			DstHwAddress: make([]byte, 6), DstProtAddress: target})
	var hostMAC net.HardwareAddr
	netnstest.Eventually(t, firstPingTimeout, 100*time.Millisecond, "ARP reply from the namespace", func() (bool, string) {
		memSend(t, c, arp)
		f := memRecvMatchSoft(c, 2*time.Second, func(f []byte) bool {
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			return ok && a.Operation == layers.ARPReply && net.IP(a.SourceProtAddress).Equal(target)
		})
		if f == nil {
			return false, "no reply yet"
		}
		hostMAC = net.HardwareAddr(append([]byte(nil), f[6:12]...))
		return true, ""
	})
	for seq := uint16(1); seq <= 3; seq++ {
		ping := serialize(t,
			&layers.Ethernet{SrcMAC: memMacA, DstMAC: hostMAC, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: myIP, DstIP: target},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x4d52, Seq: seq},
			gopacket.Payload([]byte("memring-ping")))
		memSend(t, c, ping)
		memRecvMatch(t, c, 10*time.Second, "echo reply "+strconv.Itoa(int(seq)), func(f []byte) bool {
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			return ok && ic.TypeCode.Type() == layers.ICMPv4TypeEchoReply && ic.Seq == seq && ic.Id == 0x4d52
		})
	}

	// A 1400-byte UDP datagram leaves its payload in the client's buffer
	// until it goes out of the veth port. The kernel checks its UDP
	// checksum before it answers port unreachable, so the answer proves
	// the whole datagram arrived; its quote is compared byte for byte too.
	udpIP := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: myIP, DstIP: target}
	u := &layers.UDP{SrcPort: 4000, DstPort: 9}
	_ = u.SetNetworkLayerForChecksum(udpIP)
	body := make([]byte, 1400)
	for i := range body {
		body[i] = byte(i*13 + 1)
	}
	big := serialize(t, &layers.Ethernet{SrcMAC: memMacA, DstMAC: hostMAC, EthernetType: layers.EthernetTypeIPv4},
		udpIP, u, gopacket.Payload(body))
	var quote []byte
	netnstest.Eventually(t, 10*time.Second, 200*time.Millisecond, "port unreachable for the large datagram", func() (bool, string) {
		memSend(t, c, big)
		f := memRecvMatchSoft(c, 2*time.Second, func(f []byte) bool {
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ok && ic.TypeCode == layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort) {
				quote = append([]byte(nil), ic.Payload...)
				return true
			}
			return false
		})
		return f != nil, "no ICMP answer yet"
	})
	if len(quote) < 400 || !bytes.Equal(quote, big[14:14+len(quote)]) {
		t.Fatalf("quote of %d bytes does not match the datagram sent (want >= 400 matching bytes)", len(quote))
	}
}

// memRecvMatchSoft is memRecvMatch that returns nil instead of failing on
// a timeout.
func memRecvMatchSoft(c *memring.Conn, timeout time.Duration, match func([]byte) bool) []byte {
	_, rx := c.Queue(0)
	var views [1][]byte // one at a time: frames after a match stay queued
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := rx.Recv(views[:])
		if err != nil {
			return nil
		}
		for _, v := range views[:n] {
			if match(v) {
				out := append([]byte(nil), v...)
				rx.Release()
				return out
			}
		}
		rx.Release()
		if n == 0 {
			_ = c.Wait(0, time.Until(deadline))
		}
	}
	return nil
}

// TestMemringHostileClient: descriptors pointing outside the client's
// buffers are skipped and counted; a producer index running ahead of the
// ring makes the switch drop the session; the client can attach again; a
// client whose uid the port does not list is refused.
func TestMemringHostileClient(t *testing.T) {
	netnstest.RequirePriv(t)
	d, sock := memringDaemon(t,
		portConf{name: "m1", memring: "{ring_size: 64}"},
		portConf{name: "m2", memring: "{}"},
		portConf{name: "m3", memring: "{uids: [4242]}"})
	c := dialMem(t, sock, "m1")
	mem, err := unix.Mmap(int(c.Region().File().Fd()), 0, int(c.Region().Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	// Ring 0 is queue pair 0's to-switch ring (doc.go of memring): its
	// producer index at rings_offset, descriptors 192 bytes further.
	ringOff := binary.LittleEndian.Uint64(mem[40:48])
	prod := binary.LittleEndian.Uint32(mem[ringOff:])
	bad := []struct {
		off uint64
		n   uint32
	}{
		{0, 64},                    // the header
		{ringOff, 64},              // the ring itself
		{uint64(len(mem)) - 8, 64}, // past the end
		{binary.LittleEndian.Uint64(mem[48:56]), 8}, // too short a frame
	}
	for i, b := range bad {
		slot := (prod + uint32(i)) & 63
		desc := mem[ringOff+192+uint64(slot)*16:]
		binary.LittleEndian.PutUint64(desc[0:], b.off)
		binary.LittleEndian.PutUint32(desc[8:], b.n)
	}
	binary.LittleEndian.PutUint32(mem[ringOff:], prod+uint32(len(bad)))
	c.Notify(0)
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "bad descriptors counted", func() (bool, string) {
		p := portStats(t, d.stats(t), "m1")
		return p.MemringBadDesc >= uint64(len(bad)), "memring_bad_desc " + strconv.FormatUint(p.MemringBadDesc, 10)
	})
	// A producer index far ahead of the consumer: the ring is corrupt.
	binary.LittleEndian.PutUint32(mem[ringOff:], prod+100000)
	c.Notify(0)
	select {
	case <-c.Closed():
	case <-time.After(15 * time.Second):
		t.Fatal("switch kept the session of a client that corrupted its ring")
	}
	if p := portStats(t, d.stats(t), "m1"); p.MemringCorrupt != 1 {
		t.Errorf("memring_corrupt %d, want 1", p.MemringCorrupt)
	}
	// The port is free again; another client still forwards.
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "reattach after the corrupt session", func() (bool, string) {
		c2, err := memring.Dial(sock, "m1")
		if err != nil {
			return false, err.Error()
		}
		c2.Close()
		return true, ""
	})
	if _, err := memring.Dial(sock, "m3"); !errors.Is(err, memring.ErrRefused) {
		t.Fatalf("root attaching to a port that lists only uid 4242: %v, want refused", err)
	}
	if _, err := memring.Dial(sock, "nope"); !errors.Is(err, memring.ErrRefused) {
		t.Fatalf("attaching to an unknown port: %v, want refused", err)
	}
}

// TestMemringKillAndReconnect: two memring client processes, each in a
// network namespace of its own, ping each other through the switch; the
// responder is SIGKILLed, the switch detaches it and keeps forwarding
// between two veth hosts meanwhile, and a new responder attaches to the
// same port and answers again.
func TestMemringKillAndReconnect(t *testing.T) {
	netnstest.RequirePriv(t)
	h1 := newHost(t, "h1", "10.78.0.1")
	h2 := newHost(t, "h2", "10.78.0.2")
	d, sock := memringDaemon(t, h1.portConf(""), h2.portConf(""),
		portConf{name: "m1", memring: "{}"}, portConf{name: "m2", memring: "{}"})
	tool := filepath.Join(netnstest.BinDir(t), "memring")
	nsA, nsB := netnstest.NewNS(t), netnstest.NewNS(t)
	respond := func() *netnstest.Proc {
		return netnstest.Start(t, nsB, tool, "respond", "--socket", sock, "--port", "m2",
			"--mac", "02:6d:00:00:00:0b", "--ip", "10.79.0.2/24")
	}
	ping := func(what string) {
		t.Helper()
		netnstest.Eventually(t, firstPingTimeout, 200*time.Millisecond, what, func() (bool, string) {
			r := nsA.Exec(30*time.Second, tool, "ping", "--socket", sock, "--port", "m1",
				"--mac", "02:6d:00:00:00:0a", "--ip", "10.79.0.1/24", "--target", "10.79.0.2",
				"-c", "3", "-i", "100ms", "-W", "2s")
			return r.OK(), r.String()
		})
	}
	attached := func(port string, want bool) func() (bool, string) {
		return func() (bool, string) {
			for _, p := range d.ports(t) {
				if p.Name == port {
					return (p.State == "attached") == want, "state " + p.State
				}
			}
			return false, "no port " + port
		}
	}
	r1 := respond()
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "responder attached", attached("m2", true))
	ping("memring ping from namespace A to the responder in namespace B")

	// Kernel traffic between the veth hosts runs across the kill.
	bg := netnstest.Start(t, h1.ns, "ping", "-c", "30", "-i", "0.1", "-W", "5", h2.ip)
	if err := r1.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "killed responder detached", attached("m2", false))
	if r := nsA.Exec(30*time.Second, tool, "ping", "--socket", sock, "--port", "m1", "--mac", "02:6d:00:00:00:0a",
		"--ip", "10.79.0.1/24", "--target", "10.79.0.2", "-c", "1", "-W", "1s"); r.OK() {
		t.Fatalf("ping answered with the responder dead:\n%s", r)
	}
	respond()
	netnstest.Eventually(t, 10*time.Second, 100*time.Millisecond, "new responder attached", attached("m2", true))
	ping("memring ping after the responder reattached")

	if exited, err := bg.Wait(60 * time.Second); !exited || err != nil || bg.ExitCode() != 0 {
		t.Fatalf("ping between the veth hosts across the kill: exit %d, %v\n%s", bg.ExitCode(), err, bg.Stdout())
	}
	if !strings.Contains(bg.Stdout(), " 0% packet loss") {
		t.Fatalf("veth hosts lost packets while a memring client died:\n%s", bg.Stdout())
	}
}

// reserveHugepages makes sure at least n 2 MiB huge pages are free for the
// test, raising vm.nr_hugepages if needed and putting it back afterwards.
func reserveHugepages(t *testing.T, n int) {
	t.Helper()
	restore, err := netnstest.ReserveHugepages(n)
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Errorf("restore vm.nr_hugepages: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
