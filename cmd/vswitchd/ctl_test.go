//go:build integration

package main

import (
	"strings"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestVswitchctl: the counters vswitchctl shows move by what was really
// sent, the table output is readable, and bad invocations fail naming
// what was wrong.
func TestVswitchctl(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping")
	a := newHost(t, "left", "10.210.4.1")
	b := newHost(t, "right", "10.210.4.2")
	d := startDaemon(t, daemonConf{ports: []portConf{a.portConf(""), b.portConf("")}})
	a.ns.WaitPing(t, b.ip, firstPingTimeout)

	t.Run("counters", func(t *testing.T) {
		const n = 10
		st0 := d.stats(t)
		a.ns.PingOK(t, n, b.ip, "-i", "0.05")
		b.ns.PingOK(t, n, a.ip, "-i", "0.05")
		st1 := d.stats(t)
		// Each port received n requests and n replies and sent as many.
		for _, h := range []*host{a, b} {
			p0, p1 := portStats(t, st0, h.port), portStats(t, st1, h.port)
			if got := p1.RxPackets - p0.RxPackets; got < 2*n {
				t.Errorf("port %s rx_packets grew by %d, want >= %d", h.port, got, 2*n)
			}
			if got := p1.TxPackets - p0.TxPackets; got < 2*n {
				t.Errorf("port %s tx_packets grew by %d, want >= %d", h.port, got, 2*n)
			}
			if got := p1.RxBytes - p0.RxBytes; got < 2*n*98 { // 98 = 14 + 20 + 8 + 56 bytes per echo
				t.Errorf("port %s rx_bytes grew by %d, want >= %d", h.port, got, 2*n*98)
			}
			if p1.Drops != p0.Drops {
				t.Errorf("port %s dropped during clean pings: %v -> %v", h.port, p0.DropsBy, p1.DropsBy)
			}
		}
		fw := func(w vswitch.WorkerStats) uint64 { return w.Forwarded }
		if got := sumWorkers(st1, fw) - sumWorkers(st0, fw); got < 4*n {
			t.Errorf("workers' forwarded grew by %d, want >= %d", got, 4*n)
		}
	})

	t.Run("table-output", func(t *testing.T) {
		for _, args := range [][]string{{"stats"}, {"port", "list"}, {"-o", "table", "stats"}} {
			out := d.Run(t, args...)
			for _, h := range []*host{a, b} {
				if !strings.Contains(out, h.port) {
					t.Errorf("vswitchctl %s (table) does not show port %s:\n%s", strings.Join(args, " "), h.port, out)
				}
			}
		}
		out := d.Run(t, "fdb", "show")
		if !strings.Contains(out, a.link.MAC.String()) {
			t.Errorf("fdb show (table) lacks %s:\n%s", a.link.MAC, out)
		}
		out = d.Run(t, "status")
		if !strings.Contains(strings.ToLower(out), "adaptive") {
			t.Errorf("status (table) does not show the poll mode:\n%s", out)
		}
	})

	// fails runs vswitchctl, wants a non-zero exit, and returns stderr.
	fails := func(t *testing.T, args ...string) string {
		t.Helper()
		r := d.Exec(args...)
		if r.OK() || r.ExitCode <= 0 {
			t.Fatalf("vswitchctl %s: want a non-zero exit: %s", strings.Join(args, " "), r)
		}
		t.Logf("exit %d: %s", r.ExitCode, strings.TrimSpace(r.Stderr))
		return r.Stderr
	}
	t.Run("bad-output-format", func(t *testing.T) {
		msg := fails(t, "-o", "yaml", "stats")
		if !strings.Contains(msg, "output") || !strings.Contains(msg, "yaml") {
			t.Errorf("error does not name the -o/--output flag and the value: %s", msg)
		}
	})
	t.Run("port-add-bad-vlan-tag", func(t *testing.T) {
		// The interface does not exist, so even if validation let the
		// tag through nothing would be attached anywhere.
		msg := fails(t, "port", "add", "px", "--interface", "vnonexist0", "--vlan-mode", "access", "--vlan-tag", "5000")
		if !strings.Contains(msg, "vlan-tag") && !strings.Contains(msg, "vlan.tag") {
			t.Errorf("error does not name the VLAN tag field: %s", msg)
		}
		if names := portNames(d.ports(t)); len(names) != 2 {
			t.Errorf("port list changed after a rejected add: %v", names)
		}
	})
	t.Run("port-add-missing-interface", func(t *testing.T) {
		msg := fails(t, "port", "add", "py", "--interface", "vnonexist0")
		if !strings.Contains(msg, "vnonexist0") {
			t.Errorf("error does not name the interface: %s", msg)
		}
	})
	t.Run("port-del-unknown", func(t *testing.T) {
		msg := fails(t, "port", "del", "nosuch")
		if !strings.Contains(msg, "nosuch") || !strings.Contains(msg, "not found") {
			t.Errorf("error does not say port nosuch was not found: %s", msg)
		}
	})
	t.Run("port-add-duplicate", func(t *testing.T) {
		msg := fails(t, "port", "add", a.port, "--interface", b.link.Host)
		if !strings.Contains(msg, a.port) {
			t.Errorf("error does not name the port: %s", msg)
		}
		a.ns.PingOK(t, 2, b.ip) // nothing was disturbed
	})
}
