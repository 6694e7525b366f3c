package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NamePrefix starts every namespace and interface the harness creates.
const NamePrefix = "vsb"

// Fixed addresses. MACs are fixed so the generator can address d1 directly
// and the bridge can have static FDB entries; IPv4 lives in the namespaces
// only, so test traffic never reaches a real network.
var (
	SrcMAC = net.HardwareAddr{0x02, 0x76, 0x73, 0x62, 0x00, 0x01} // s0
	DstMAC = net.HardwareAddr{0x02, 0x76, 0x73, 0x62, 0x00, 0x02} // d1
	P0MAC  = net.HardwareAddr{0x02, 0x76, 0x73, 0x62, 0x01, 0x00}
	P1MAC  = net.HardwareAddr{0x02, 0x76, 0x73, 0x62, 0x01, 0x01}
	SrcIP  = net.IPv4(10, 201, 1, 1).To4()
	DstIP  = net.IPv4(10, 201, 1, 2).To4()
)

const prefixLen = 24

// Names are the object names of one harness run. The ID is derived from the
// process ID, so parallel runs do not collide and leftovers of a killed run
// name their owner (see Leftovers).
type Names struct {
	ID     string
	SrcNS  string // netns holding s0 and the generator
	DstNS  string // netns holding d1 and the sink
	P0, P1 string // root-netns veth ends, the switch's ports
	S0, D1 string // namespace veth ends
	Bridge string
}

// NewNames derives the names from pid. Interface names stay within the
// kernel's 15 bytes: "vsb" + at most 5 base-36 digits + 2.
func NewNames(pid int) Names {
	id := strconv.FormatInt(int64(pid), 36)
	p := NamePrefix + id
	return Names{
		ID: id, SrcNS: p + "-src", DstNS: p + "-dst",
		P0: p + "p0", P1: p + "p1", S0: p + "s0", D1: p + "d1", Bridge: p + "br",
	}
}

// Topology is the live two-namespace setup with its fixture programs: the
// sink on d1 and an XDP_PASS program on s0 (veth NAPI on s0, so replies that
// a switch redirects as XDP frames towards the source are accepted).
type Topology struct {
	Names
	SrcIfindex int // s0 in the source netns
	P0Index    int
	P1Index    int

	root          *netlink.Handle
	srcNS, dstNS  netns.NsHandle
	sink          *SinkProgram
	pass          *ebpf.Program
	links         []link.Link
	madeNS        []string
	madeRootLinks []string
}

// SetupTopology creates namespaces, veths, addresses and neighbours and
// attaches the fixture programs. On error everything made so far is removed.
// The caller must Close the topology.
func SetupTopology(ctx context.Context, names Names) (t *Topology, err error) {
	t = &Topology{Names: names, srcNS: -1, dstNS: -1}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
			t = nil
		}
	}()
	if t.root, err = netlink.NewHandle(); err != nil {
		return t, fmt.Errorf("netlink: %w", err)
	}
	for _, ns := range []string{names.SrcNS, names.DstNS} {
		if err = run(ctx, "ip", "netns", "add", ns); err != nil {
			return t, err
		}
		t.madeNS = append(t.madeNS, ns)
	}
	if t.srcNS, err = netns.GetFromName(names.SrcNS); err != nil {
		return t, fmt.Errorf("open netns %s: %w", names.SrcNS, err)
	}
	if t.dstNS, err = netns.GetFromName(names.DstNS); err != nil {
		return t, fmt.Errorf("open netns %s: %w", names.DstNS, err)
	}
	type end struct {
		rootName, nsName string
		rootMAC, nsMAC   net.HardwareAddr
		ns               netns.NsHandle
		ip, peerIP       net.IP
		peerMAC          net.HardwareAddr
	}
	ends := []end{
		{names.P0, names.S0, P0MAC, SrcMAC, t.srcNS, SrcIP, DstIP, DstMAC},
		{names.P1, names.D1, P1MAC, DstMAC, t.dstNS, DstIP, SrcIP, SrcMAC},
	}
	for _, e := range ends {
		if err = t.addVethPair(e.rootName, e.nsName, e.rootMAC, e.nsMAC, e.ns); err != nil {
			return t, err
		}
		if err = configureNSEnd(e.ns, e.nsName, e.ip, e.peerIP, e.peerMAC); err != nil {
			return t, err
		}
		rl, lerr := t.root.LinkByName(e.rootName)
		if lerr != nil {
			return t, fmt.Errorf("find %s: %w", e.rootName, lerr)
		}
		if err = writeSysctlIn(-1, "net.ipv6.conf."+e.rootName+".disable_ipv6", "1"); err != nil {
			return t, err
		}
		if err = t.root.LinkSetUp(rl); err != nil {
			return t, fmt.Errorf("set %s up: %w", e.rootName, err)
		}
	}
	if t.P0Index, err = t.ifindex(names.P0); err != nil {
		return t, err
	}
	if t.P1Index, err = t.ifindex(names.P1); err != nil {
		return t, err
	}

	if t.sink, err = NewSinkProgram(); err != nil {
		return t, err
	}
	l, err := attachXDP(t.dstNS, names.D1, t.sink.Prog)
	if err != nil {
		return t, err
	}
	t.links = append(t.links, l)
	if t.pass, err = NewPassProgram(); err != nil {
		return t, err
	}
	if l, err = attachXDP(t.srcNS, names.S0, t.pass); err != nil {
		return t, err
	}
	t.links = append(t.links, l)
	return t, nil
}

func (t *Topology) ifindex(name string) (int, error) {
	l, err := t.root.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("find %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// addVethPair creates rootName in the root netns with its peer nsName in ns,
// one TX and one RX queue on each end (one queue = one poll loop to measure).
func (t *Topology) addVethPair(rootName, nsName string, rootMAC, nsMAC net.HardwareAddr, ns netns.NsHandle) error {
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name: rootName, HardwareAddr: rootMAC, NumTxQueues: 1, NumRxQueues: 1,
		},
		PeerName:         nsName,
		PeerHardwareAddr: nsMAC,
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerNumTxQueues:  1,
		PeerNumRxQueues:  1,
	}
	if err := t.root.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", rootName, nsName, err)
	}
	t.madeRootLinks = append(t.madeRootLinks, rootName)
	return nil
}

// configureNSEnd sets up the namespace end: IPv6 off (no ND/RS chatter in
// the counters), address, a permanent neighbour for the peer (no ARP), up.
func configureNSEnd(ns netns.NsHandle, ifname string, ip, peerIP net.IP, peerMAC net.HardwareAddr) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns: %w", err)
	}
	defer h.Close()
	if err := writeSysctlIn(ns, "net.ipv6.conf."+ifname+".disable_ipv6", "1"); err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	l, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifname, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(prefixLen, 32)}}
	if err := h.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr, ifname, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", ifname, err)
	}
	n := &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       unix.AF_INET,
		State:        netlink.NUD_PERMANENT,
		IP:           peerIP,
		HardwareAddr: peerMAC,
	}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", peerIP, ifname, err)
	}
	return nil
}

// SinkCount reads the number of UDP frames the sink has dropped so far.
func (t *Topology) SinkCount() (uint64, error) { return t.sink.Recv.Read() }

// RootHandle is the netlink handle of the root namespace (for switches).
func (t *Topology) RootHandle() *netlink.Handle { return t.root }

// WaitSinkQuiet waits until the sink count stops changing (frames still in
// veth rings or the switch when the generator ends), at most max.
func (t *Topology) WaitSinkQuiet(ctx context.Context, max time.Duration) (uint64, error) {
	deadline := time.Now().Add(max)
	last, err := t.SinkCount()
	if err != nil {
		return 0, err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
		}
		n, err := t.SinkCount()
		if err != nil {
			return last, err
		}
		if n == last {
			return n, nil
		}
		last = n
	}
	return last, nil
}

// Close removes everything SetupTopology made, in reverse order, and keeps
// going past errors so one failure does not leak the rest.
func (t *Topology) Close() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	if t.sink != nil {
		errs = append(errs, t.sink.Close())
		t.sink = nil
	}
	if t.pass != nil {
		errs = append(errs, t.pass.Close())
		t.pass = nil
	}
	for _, name := range t.madeRootLinks {
		// Deleting one end of a veth deletes its peer in the namespace.
		if l, err := t.root.LinkByName(name); err == nil {
			errs = append(errs, t.root.LinkDel(l))
		}
	}
	t.madeRootLinks = nil
	for _, ns := range []*netns.NsHandle{&t.srcNS, &t.dstNS} {
		if ns.IsOpen() {
			errs = append(errs, ns.Close())
		}
		*ns = -1
	}
	for _, ns := range t.madeNS {
		errs = append(errs, run(context.Background(), "ip", "netns", "del", ns))
	}
	t.madeNS = nil
	if t.root != nil {
		t.root.Close()
		t.root = nil
	}
	return errors.Join(errs...)
}

// Leftovers lists namespaces under /run/netns that a harness run created
// (prefix "vsb") whose owning process is gone: a run killed with SIGKILL.
func Leftovers() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		id, ok := leftoverID(name)
		if !ok {
			continue
		}
		pid, err := strconv.ParseInt(id, 36, 32)
		if err != nil {
			continue
		}
		if !processAlive(int(pid)) {
			out = append(out, name)
		}
	}
	return out, nil
}

// processAlive reports whether pid exists and is not a zombie (a killed
// harness stays a zombie until its parent reaps it).
func processAlive(pid int) bool {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// leftoverID extracts the run ID from a namespace name "vsb<ID>-src|-dst".
func leftoverID(name string) (string, bool) {
	if len(name) <= len(NamePrefix)+4 || name[:len(NamePrefix)] != NamePrefix {
		return "", false
	}
	suffix := name[len(name)-4:]
	if suffix != "-src" && suffix != "-dst" {
		return "", false
	}
	return name[len(NamePrefix) : len(name)-4], true
}

// RemoveLeftovers deletes the namespaces Leftovers names and the bridge of
// the same run, if any. The veth pairs go with the namespaces (a veth dies
// with either end); BPF programs were bpf_links and died with the process.
func RemoveLeftovers(ctx context.Context) ([]string, error) {
	names, err := Leftovers()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ns := range names {
		errs = append(errs, run(ctx, "ip", "netns", "del", ns))
		if id, ok := leftoverID(ns); ok {
			if l, err := netlink.LinkByName(NamePrefix + id + "br"); err == nil {
				errs = append(errs, netlink.LinkDel(l))
			}
		}
	}
	return names, errors.Join(errs...)
}
