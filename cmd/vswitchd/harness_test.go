//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// The privileged integration tests: real vswitchd and vswitchctl binaries
// ($VSWITCH_BIN), veth pairs whose root-side ends are the switch ports and
// whose other ends sit in throwaway network namespaces acting as hosts.
// Run with: make test-priv.

// Deadlines. The machines running these are shared and their latency is
// spiky, so they are generous; every wait polls and returns as soon as the
// condition holds.
const (
	firstPingTimeout = 20 * time.Second // ARP + learning after the daemon comes up
	exitTimeout      = 15 * time.Second // SIGTERM to exit
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		for _, s := range netnstest.Sweep() {
			fmt.Fprintf(os.Stderr, "removed stale %s left by a dead test process\n", s)
		}
	}
	os.Exit(m.Run())
}

// host is a simulated machine: a namespace with one veth whose root-side
// end is a switch port.
type host struct {
	ns   *netnstest.NS
	link *netnstest.Link
	port string // switch port name
	ip   string // address without prefix length
}

// newHost makes a namespace and veth and gives the namespace side ip/24
// (ip may be "" for none).
func newHost(t *testing.T, port, ip string) *host {
	t.Helper()
	ns := netnstest.NewNS(t)
	h := &host{ns: ns, link: netnstest.NewVeth(t, ns), port: port, ip: ip}
	if ip != "" {
		ns.AddAddr(t, h.link.Peer, ip+"/24")
	}
	return h
}

// portConf is one port of a rendered config.
type portConf struct {
	name, iface string
	vlan        string // YAML flow mapping for vlan:, e.g. "{mode: access, tag: 10}"
	xdpMode     string // native (default) or skb
	memring     string // YAML flow mapping for memring: (a memring port; iface unused)
	ringSize    int    // ring_size (0: the default)
}

func (h *host) portConf(vlan string) portConf {
	return portConf{name: h.port, iface: h.link.Host, vlan: vlan}
}

// daemonConf is what a test varies in the daemon config; paths live in
// the test's temp dir.
type daemonConf struct {
	pollMode string
	workers  int    // 0 means 1
	cpus     string // workers.cpus as YAML, e.g. "[1]"; empty: unpinned
	ports    []portConf
	extra    string // appended verbatim
}

// daemon is one vswitchd of a test with its files.
type daemon struct {
	*netnstest.Vswitchd
	bin, dir, socket, state, config string
	// owner is the test that made the daemon: its cleanup stops every
	// process of the daemon, also one a subtest restarted.
	owner *testing.T
}

// newDaemonFiles picks the socket, state and config paths in a fresh temp
// dir and writes the config. The socket path must fit sun_path (108
// bytes), which a deep t.TempDir may not, so it lives in a
// netnstest.ShortTempDir of its own.
func newDaemonFiles(t *testing.T, c daemonConf) *daemon {
	t.Helper()
	dir := t.TempDir()
	sockDir := netnstest.ShortTempDir(t)
	d := &daemon{
		bin:    netnstest.BinDir(t),
		dir:    dir,
		socket: filepath.Join(sockDir, "api.sock"),
		state:  filepath.Join(dir, "state.json"),
		config: filepath.Join(dir, "vswitchd.yaml"),
		owner:  t,
	}
	d.writeConfig(t, c)
	return d
}

func (d *daemon) writeConfig(t *testing.T, c daemonConf) {
	t.Helper()
	if c.pollMode == "" {
		c.pollMode = vswitch.PollAdaptive
	}
	var b strings.Builder
	fmt.Fprintf(&b, "api_socket: %s\n", strconv.Quote(d.socket))
	fmt.Fprintf(&b, "state_file: %s\n", strconv.Quote(d.state))
	fmt.Fprintf(&b, "log_level: info\n")
	fmt.Fprintf(&b, "workers:\n  count: %d\n  poll_mode: %s\n", max(c.workers, 1), c.pollMode)
	if c.cpus != "" {
		fmt.Fprintf(&b, "  cpus: %s\n", c.cpus)
	}
	if len(c.ports) > 0 {
		b.WriteString("ports:\n")
	}
	for _, p := range c.ports {
		if p.memring != "" {
			fmt.Fprintf(&b, "  - name: %s\n    type: memring\n    memring: %s\n", p.name, p.memring)
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    interface: %s\n", p.name, p.iface)
		if p.xdpMode != "" {
			fmt.Fprintf(&b, "    xdp_mode: %s\n", p.xdpMode)
		}
		if p.ringSize != 0 {
			fmt.Fprintf(&b, "    ring_size: %d\n", p.ringSize)
		}
		if p.vlan != "" {
			fmt.Fprintf(&b, "    vlan: %s\n", p.vlan)
		}
	}
	b.WriteString(c.extra)
	if err := os.WriteFile(d.config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start starts the daemon on its config and waits until it answers. t may
// be a subtest of the daemon's owner; the process outlives it.
func (d *daemon) start(t *testing.T, args ...string) {
	t.Helper()
	v := netnstest.StartVswitchd(t, netnstest.VswitchdOptions{
		Bin: d.bin, Config: d.config, Socket: d.socket, Args: args, Owner: d.owner,
	})
	d.Vswitchd = v
	// Runs before the daemon is stopped (cleanups are last in, first out):
	// when the test failed, its counters (drops by reason, AF_XDP ring
	// counters) usually say why.
	d.owner.Cleanup(func() {
		if d.owner.Failed() && !v.Exited() {
			r := v.Exec("stats")
			d.owner.Logf("vswitchd pid %d: vswitchctl stats at the end of the test:\n%s", v.PID, r.Output())
		}
	})
}

// errBusyRebind is how a daemon fails when it binds an AF_XDP socket to a
// queue whose previous socket the kernel is still releasing (see
// TestRebindAfterRelease, which fails on that bug).
const errBusyRebind = "device or resource busy"

// startTolerant starts the daemon like start, but retries while it exits
// with errBusyRebind, so that tests about something else are not failed
// by that known bug. It logs every such retry.
func (d *daemon) startTolerant(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(netnstest.ReadyTimeout)
	for {
		v := netnstest.LaunchVswitchd(t, netnstest.VswitchdOptions{
			Bin: d.bin, Config: d.config, Socket: d.socket, Args: args, Owner: d.owner,
		})
		err := v.WaitReady(netnstest.ReadyTimeout)
		if err == nil {
			d.Vswitchd = v
			return
		}
		if !v.Exited() || !strings.Contains(v.Stderr(), errBusyRebind) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		t.Logf("vswitchd pid %d hit the AF_XDP rebind bug (%s); starting again", v.PID, lastLine(v.Stderr()))
	}
}

// startDaemon writes a config for c and starts vswitchd on it.
func startDaemon(t *testing.T, c daemonConf, args ...string) *daemon {
	t.Helper()
	d := newDaemonFiles(t, c)
	d.start(t, args...)
	return d
}

// stats returns `vswitchctl -o json stats`.
func (d *daemon) stats(t *testing.T) vswitch.Stats {
	t.Helper()
	var st vswitch.Stats
	d.JSON(t, &st, "stats")
	return st
}

// ports returns `vswitchctl -o json port list`.
func (d *daemon) ports(t *testing.T) []vswitch.PortInfo {
	t.Helper()
	var ps []vswitch.PortInfo
	d.JSON(t, &ps, "port", "list")
	return ps
}

// fdb returns `vswitchctl -o json fdb show`.
func (d *daemon) fdb(t *testing.T) []vswitch.FDBEntry {
	t.Helper()
	var es []vswitch.FDBEntry
	d.JSON(t, &es, "fdb", "show")
	return es
}

// portStats finds a port's counters; it fails t if the port is missing.
func portStats(t *testing.T, st vswitch.Stats, name string) vswitch.PortStats {
	t.Helper()
	for _, p := range st.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("stats have no port %q: %+v", name, st.Ports)
	return vswitch.PortStats{}
}

// sumWorkers adds up one counter over all workers.
func sumWorkers(st vswitch.Stats, f func(vswitch.WorkerStats) uint64) uint64 {
	var n uint64
	for _, w := range st.Workers {
		n += f(w)
	}
	return n
}

// portNames lists the names in a port list.
func portNames(ps []vswitch.PortInfo) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func itoa(i int) string { return strconv.Itoa(i) }

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
