//go:build integration

package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// capture is a tcpdump running on a host's interface.
type capture struct {
	*netnstest.Proc
	h *host
}

// startCapture runs tcpdump on h's interface with filter and waits until it
// is capturing. Immediate mode: every frame is printed as it arrives, so a
// marker frame seen in the output proves every earlier one was seen too.
func startCapture(t *testing.T, h *host, filter string) *capture {
	t.Helper()
	p := netnstest.Start(t, h.ns, "tcpdump", "-i", h.link.Peer, "-n", "-e", "-l", "--immediate-mode", filter)
	if err := p.WaitOutput("listening on", 15*time.Second); err != nil {
		t.Fatalf("tcpdump in %s: %v", h.ns.Name, err)
	}
	return &capture{Proc: p, h: h}
}

// syncTo makes from send a broadcast ARP request for the unused address
// marker and waits until the capture has printed it. The switch floods
// broadcasts in order with everything else it sent to the captured port,
// so afterwards the capture holds every earlier frame.
func (c *capture) syncTo(t *testing.T, from *host, marker string) {
	t.Helper()
	// Fails (nobody answers); the request is what matters.
	from.ns.Exec(10*time.Second, "ping", "-n", "-c", "1", "-W", "1", marker)
	if err := c.WaitOutput("who-has "+marker, 15*time.Second); err != nil {
		t.Fatalf("capture on %s never saw the marker ARP request from %s: %v", c.h.link.Peer, from.ns.Name, err)
	}
}

// waitLine polls until a captured line matches re, failing t after timeout.
func (c *capture) waitLine(t *testing.T, re string, timeout time.Duration) string {
	t.Helper()
	var got string
	err := netnstest.Poll(timeout, 20*time.Millisecond, func() (bool, string) {
		if l := c.lines(re); len(l) > 0 {
			got = l[0]
			return true, ""
		}
		return false, "capture so far:\n" + c.Stdout() + c.Stderr()
	})
	if err != nil {
		t.Fatalf("capture on %s in %s: no line matching %q: %v", c.h.link.Peer, c.h.ns.Name, re, err)
	}
	return got
}

// lines returns the captured lines matching re.
func (c *capture) lines(re string) []string {
	var out []string
	rx := regexp.MustCompile(re)
	for _, l := range strings.Split(c.Stdout(), "\n") {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// TestLearningStopsFlooding: once the switch has learned A's and B's MACs,
// unicast between them no longer reaches a third port.
func TestLearningStopsFlooding(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping", "tcpdump")
	a := newHost(t, "pa", "10.210.2.1")
	b := newHost(t, "pb", "10.210.2.2")
	c := newHost(t, "pc", "10.210.2.3")
	d := startDaemon(t, daemonConf{ports: []portConf{a.portConf(""), b.portConf(""), c.portConf("")}})

	t.Run("initial-arp-flooded", func(t *testing.T) {
		capt := startCapture(t, c, "arp or icmp")
		a.ns.WaitPing(t, b.ip, firstPingTimeout)
		if err := capt.WaitOutput("who-has "+b.ip, 10*time.Second); err != nil {
			t.Fatalf("C did not see A's broadcast ARP request for B: %v", err)
		}
	})

	t.Run("fdb-show", func(t *testing.T) {
		es := d.fdb(t)
		for _, h := range []*host{a, b} {
			e, ok := findFDB(es, h.link.MAC.String())
			if !ok {
				t.Errorf("fdb show lacks %s (%s): %+v", h.link.MAC, h.port, es)
				continue
			}
			if e.Port != h.port || e.Static {
				t.Errorf("fdb entry for %s = %+v, want learned on port %s", h.link.MAC, e, h.port)
			}
		}
		if e, ok := findFDB(es, c.link.MAC.String()); ok {
			t.Errorf("fdb has C's MAC though C never sent: %+v", e)
		}
	})

	t.Run("unicast-not-flooded", func(t *testing.T) {
		capt := startCapture(t, c, "arp or icmp")
		rx0 := c.ns.SysfsCounter(t, c.link.Peer, "rx_packets")
		st0 := d.stats(t)
		a.ns.PingOK(t, 20, b.ip, "-i", "0.02")
		st1 := d.stats(t)
		rx1 := c.ns.SysfsCounter(t, c.link.Peer, "rx_packets")
		f0 := sumWorkers(st0, func(w vswitch.WorkerStats) uint64 { return w.Flooded })
		f1 := sumWorkers(st1, func(w vswitch.WorkerStats) uint64 { return w.Flooded })
		if f1 != f0 {
			t.Errorf("worker flooded went %d -> %d during 20 unicast pings between learned MACs", f0, f1)
		}
		if fw := sumWorkers(st1, func(w vswitch.WorkerStats) uint64 { return w.Forwarded }) -
			sumWorkers(st0, func(w vswitch.WorkerStats) uint64 { return w.Forwarded }); fw < 40 {
			t.Errorf("worker forwarded grew by %d during 20 pings, want >= 40", fw)
		}
		if rx1 != rx0 {
			t.Errorf("C's %s rx_packets went %d -> %d during A<->B unicast pings", c.link.Peer, rx0, rx1)
		}
		if tx := portStats(t, st1, c.port).TxPackets - portStats(t, st0, c.port).TxPackets; tx != 0 {
			t.Errorf("switch sent %d frames out of C's port %s during A<->B unicast pings", tx, c.port)
		}
		capt.syncTo(t, a, "10.210.2.99")
		if l := capt.lines(`ICMP`); len(l) > 0 {
			t.Errorf("C captured %d ICMP frames of A<->B unicast, want 0:\n%s", len(l), strings.Join(l, "\n"))
		}
	})

	t.Run("fdb-flush", func(t *testing.T) {
		out := d.Run(t, "fdb", "flush")
		t.Logf("fdb flush: %s", strings.TrimSpace(out))
		for _, e := range d.fdb(t) {
			if !e.Static {
				t.Errorf("learned entry survived fdb flush: %+v", e)
			}
		}
	})
}

func findFDB(es []vswitch.FDBEntry, mac string) (vswitch.FDBEntry, bool) {
	for _, e := range es {
		if strings.EqualFold(e.MAC, mac) {
			return e, true
		}
	}
	return vswitch.FDBEntry{}, false
}
