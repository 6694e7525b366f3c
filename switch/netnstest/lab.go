package netnstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Names. Link names must fit IFNAMSIZ-1 = 15 bytes including a VLAN
// suffix such as ".4094", so a link base name is at most 10 bytes:
// "vn" + the PID in base 36 padded to 5 + a counter in base 36 (1..2
// characters for the first 1295 objects of a test process; AddVLAN checks
// the length of what it builds) + one role letter. Namespaces
// have no such limit and get a more telling name.
const (
	linkPrefix = "vn"
	nsPrefix   = "vnettest-"
)

var (
	counter atomic.Uint64
	// staleNS recognises the namespace names this package makes and
	// captures the PID of the test process that made them.
	staleNS = regexp.MustCompile(`^vnettest-([0-9]+)-[0-9a-z]+$`)
	// staleDir does the same for temp dirs (process output, sockets).
	staleDir = regexp.MustCompile(`^vnettest-(?:proc|tmp)-([0-9]+)-[0-9]+$`)
)

func pid36() string {
	s := strconv.FormatInt(int64(os.Getpid()), 36)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

func next() string { return strconv.FormatUint(counter.Add(1), 36) }

// LinkBase returns a fresh link name base, unique among running test
// processes. Append one role letter ('p' or 'n') to get a link name.
func LinkBase() string { return linkPrefix + pid36() + next() }

// NSName returns a fresh namespace name, unique among running test processes.
func NSName() string { return fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), next()) }

// NS is a network namespace a test created. It is deleted by t.Cleanup.
type NS struct {
	Name string
	t    testing.TB
}

// NewNS creates a network namespace with lo up and IPv6 disabled by default
// for every link later created in it (see Link.EnableIPv6), so that router
// solicitations and MLD reports do not disturb the counters the tests
// read. Cleanup deletes it; register processes that run inside it after
// calling NewNS so that they are stopped first (cleanups run last-in
// first-out).
func NewNS(t testing.TB) *NS {
	t.Helper()
	ns := &NS{Name: NSName(), t: t}
	Run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() {
		if r := Exec(0, "ip", "netns", "del", ns.Name); !r.OK() && !strings.Contains(r.Stderr, "No such file") {
			t.Errorf("cleanup: %s", r)
		}
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	for _, k := range []string{"all", "default"} {
		ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+k+".disable_ipv6=1")
	}
	return ns
}

// Exec runs a command inside the namespace (ip netns exec, which execs the
// command itself, so no extra process is left behind).
func (ns *NS) Exec(timeout time.Duration, args ...string) Result {
	return Exec(timeout, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Run runs a command inside the namespace and fails t unless it exits 0.
// It returns stdout.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	r := ns.Exec(0, args...)
	if !r.OK() {
		t.Fatalf("in netns %s: %s", ns.Name, r)
	}
	return r.Stdout
}

// AddAddr assigns addr (CIDR notation) to ifname inside the namespace.
func (ns *NS) AddAddr(t testing.TB, ifname, cidr string) {
	t.Helper()
	args := []string{"ip", "addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		// No duplicate address detection: the address is usable at once
		// instead of after a DAD round trip.
		args = append(args, "nodad")
	}
	ns.Run(t, args...)
}

// AddVLAN creates the 802.1Q subinterface parent.id inside the namespace,
// IPv6 off, up, and returns its name.
func (ns *NS) AddVLAN(t testing.TB, parent string, id int) string {
	t.Helper()
	name := fmt.Sprintf("%s.%d", parent, id)
	if len(name) > 15 {
		t.Fatalf("vlan link name %q is longer than 15 bytes", name)
	}
	ns.Run(t, "ip", "link", "add", "link", parent, "name", name, "type", "vlan", "id", strconv.Itoa(id))
	ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	ns.Run(t, "ip", "link", "set", name, "up")
	return name
}

// SysfsCounter reads /sys/class/net/IF/statistics/NAME as seen inside the
// namespace (ip netns exec remounts /sys for it).
func (ns *NS) SysfsCounter(t testing.TB, ifname, name string) uint64 {
	t.Helper()
	out := ns.Run(t, "cat", "/sys/class/net/"+ifname+"/statistics/"+name)
	v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("parse %s/%s in %s: %v", ifname, name, ns.Name, err)
	}
	return v
}

// Link is a veth pair: Host stays in the root namespace and is what a
// vswitchd port attaches to; Peer is moved into NS and is the "host NIC"
// of the simulated machine there.
type Link struct {
	Host string
	Peer string
	NS   *NS
	// MAC is Peer's address, the source MAC of everything NS sends.
	MAC net.HardwareAddr
}

// NewVeth creates a veth pair between the root namespace and ns, brings
// both ends up with IPv6 disabled, and prepares the namespace side for
// AF_XDP on the far end (see the comments in the body). Cleanup deletes it.
func NewVeth(t testing.TB, ns *NS) *Link {
	t.Helper()
	base := LinkBase()
	l := &Link{Host: base + "p", Peer: base + "n", NS: ns}
	Run(t, "ip", "link", "add", l.Host, "type", "veth", "peer", "name", l.Peer, "netns", ns.Name)
	t.Cleanup(func() {
		// Deleting either end deletes both; the namespace may already be
		// gone, taking the pair with it.
		if r := Exec(0, "ip", "link", "del", l.Host); !r.OK() && !strings.Contains(r.Stderr, "Cannot find device") {
			t.Errorf("cleanup: %s", r)
		}
	})
	Run(t, "sysctl", "-qw", "net.ipv6.conf."+l.Host+".disable_ipv6=1")
	Run(t, "ip", "link", "set", l.Host, "up")

	ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+l.Peer+".disable_ipv6=1")
	// TX checksum offload off: with it on, a veth hands TCP/UDP frames to
	// its peer as CHECKSUM_PARTIAL (only the pseudo-header sum filled in).
	// The kernel stack would finish that, but XDP and AF_XDP see the raw
	// bytes, so vswitchd forwards a frame with a wrong checksum and the
	// receiver drops it: TCP over the switch would silently fail.
	// txvlan off: with VLAN TX offload on, a tag pushed by the stack (a
	// vlan subinterface, or tc's skb_vlan_push) travels in skb metadata
	// (skb->vlan_tci) instead of in the frame, and XDP on the far end
	// sees an untagged frame. Measured on 6.18: with it on, tagged ARP
	// from the namespace reached vswitchd untagged (dropped on a trunk as
	// vlan_not_allowed); with it off the tag is inline and switched.
	ns.Run(t, "ethtool", "-K", l.Peer, "tx", "off", "txvlan", "off")
	ns.Run(t, "ip", "link", "set", l.Peer, "up")
	mac := strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+l.Peer+"/address"))
	var err error
	if l.MAC, err = net.ParseMAC(mac); err != nil {
		t.Fatalf("parse MAC of %s: %v", l.Peer, err)
	}
	return l
}

// EnableIPv6 turns IPv6 back on for the namespace side of the link.
func (l *Link) EnableIPv6(t testing.TB) {
	t.Helper()
	l.NS.Run(t, "sysctl", "-qw", "net.ipv6.conf."+l.Peer+".disable_ipv6=0")
}

// Sweep deletes the namespaces and temp dirs that this package created in
// a test process that no longer exists (one killed by a -timeout panic or
// SIGKILL never ran its cleanups). Deleting a namespace also deletes every veth pair with
// an end inside it, so the root-side links go with it. It touches nothing
// of a live process and never signals any process. It returns what it
// deleted, for the log.
func Sweep() []string {
	var gone []string
	r := Exec(0, "ip", "netns", "list")
	if !r.OK() {
		return nil
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := staleNS.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			continue // that test process still runs (or the PID was reused)
		}
		if Exec(0, "ip", "netns", "del", f[0]).OK() {
			gone = append(gone, "netns "+f[0])
		}
	}
	// Temp dirs: output files of its processes, short socket dirs.
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), nsPrefix+"*-*-*"))
	for _, dir := range dirs {
		m := staleDir.FindStringSubmatch(filepath.Base(dir))
		if m == nil {
			continue
		}
		if pid, err := strconv.Atoi(m[1]); err == nil && pid > 0 && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			if os.RemoveAll(dir) == nil {
				gone = append(gone, "dir "+dir)
			}
		}
	}
	return gone
}

// ShortTempDir makes a temp dir with a short path, for unix sockets: a
// sun_path holds 108 bytes, which a nested t.TempDir may exceed. Cleanup
// removes it; Sweep removes it if the test binary died first.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%stmp-%d-", nsPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
