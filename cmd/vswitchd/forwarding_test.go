//go:build integration

package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestForwarding: two hosts on two ports talk ICMP, ARP and TCP through
// the switch, and the counters and port list say so.
func TestForwarding(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping", "arping", "iperf3", "ss")
	a := newHost(t, "p0", "10.210.1.1")
	b := newHost(t, "p1", "10.210.1.2")
	// p0 on the smallest rings: everything below, iperf3 included, must
	// still cross it.
	pa := a.portConf("")
	pa.ringSize = 64
	d := startDaemon(t, daemonConf{ports: []portConf{pa, b.portConf("")}})
	ports := d.ports(t)
	if len(ports) != 2 {
		t.Fatalf("%d ports, want 2", len(ports))
	}
	for _, p := range ports {
		if want := map[string]int{a.port: 64, b.port: vswitch.DefaultRingSize}[p.Name]; p.RingSize != want {
			t.Errorf("port %s ring_size %d, want %d", p.Name, p.RingSize, want)
		}
	}

	a.ns.WaitPing(t, b.ip, firstPingTimeout)
	before := d.stats(t)
	const pings = 3

	t.Run("ping", func(t *testing.T) {
		a.ns.PingOK(t, pings, b.ip)
		b.ns.PingOK(t, pings, a.ip)
	})
	t.Run("ping6", func(t *testing.T) {
		// IPv6 is off on test links to keep them quiet; this one turns it
		// on for both hosts: neighbour discovery (multicast, flooded)
		// and ICMPv6 through the switch.
		for i, h := range []*host{a, b} {
			h.link.EnableIPv6(t)
			h.ns.AddAddr(t, h.link.Peer, fmt.Sprintf("fd00:210::%d/64", i+1))
		}
		a.ns.WaitPing(t, "fd00:210::2", firstPingTimeout)
		a.ns.PingOK(t, pings, "fd00:210::2")
		b.ns.PingOK(t, pings, "fd00:210::1")
	})
	t.Run("arping", func(t *testing.T) {
		r := a.ns.Exec(20*time.Second, "arping", "-c", "2", "-w", "10", "-I", a.link.Peer, b.ip)
		if !r.OK() || !regexp.MustCompile(`(?i)received [12] response|[12] packets received|Unicast reply`).MatchString(r.Output()) {
			t.Fatalf("arping %s through the switch: %s", b.ip, r)
		}
	})
	t.Run("iperf3-tcp", func(t *testing.T) {
		const port = 5201
		srv := netnstest.Start(t, b.ns, "iperf3", "-s", "-1", "-p", strconv.Itoa(port), "-B", b.ip)
		b.ns.WaitListen(t, port, 10*time.Second)
		r := a.ns.Exec(30*time.Second, "iperf3", "-c", b.ip, "-p", strconv.Itoa(port), "-t", "2", "-J", "--connect-timeout", "5000")
		if !r.OK() {
			t.Fatalf("iperf3 client: %s\nserver: %s %s", r, srv.Stdout(), srv.Stderr())
		}
		m := regexp.MustCompile(`"sum_received":\s*\{[^}]*?"bytes":\s*([0-9]+)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("iperf3 -J output has no sum_received.bytes: %s", r)
		}
		if n, _ := strconv.ParseUint(m[1], 10, 64); n == 0 {
			t.Fatalf("iperf3 moved 0 bytes over TCP: %s", r)
		} else {
			t.Logf("iperf3: %d bytes received in 2 s", n)
		}
		if ok, err := srv.Wait(15 * time.Second); !ok || err != nil {
			t.Errorf("iperf3 -s -1 did not exit cleanly after one test (exited %v, %v): %s %s", ok, err, srv.Stdout(), srv.Stderr())
		}
	})
	t.Run("stats", func(t *testing.T) {
		after := d.stats(t)
		for _, h := range []*host{a, b} {
			p0, p1 := portStats(t, before, h.port), portStats(t, after, h.port)
			// Each port received pings echo requests and pings replies
			// and transmitted as many.
			if got := p1.RxPackets - p0.RxPackets; got < 2*pings {
				t.Errorf("port %s rx_packets grew by %d, want >= %d (before %+v after %+v)", h.port, got, 2*pings, p0, p1)
			}
			if got := p1.TxPackets - p0.TxPackets; got < 2*pings {
				t.Errorf("port %s tx_packets grew by %d, want >= %d (before %+v after %+v)", h.port, got, 2*pings, p0, p1)
			}
		}
	})
	t.Run("port-list", func(t *testing.T) {
		ps := d.ports(t)
		names := portNames(ps)
		for _, h := range []*host{a, b} {
			i := slices.Index(names, h.port)
			if i < 0 {
				t.Fatalf("port list %v lacks %s", names, h.port)
			}
			if ps[i].Interface != h.link.Host {
				t.Errorf("port %s interface = %q, want %q", h.port, ps[i].Interface, h.link.Host)
			}
		}
		if len(ps) != 2 {
			t.Errorf("port list has %d ports, want 2: %v", len(ps), names)
		}
	})
}
