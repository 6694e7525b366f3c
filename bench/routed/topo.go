package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"

	"github.com/vswitch/vswitch/bench/e2e"
)

// namePrefix starts every namespace and interface this harness creates;
// bench/e2e uses "vsb", bench/dnsperf and bench/memringe2e their own.
const namePrefix = "vsr"

// Fixed addresses. Subnets 10.78.1.0/24 and 10.78.2.0/24 are this
// harness's own (bench/e2e uses 10.201.1.0/24, the anchors 10.77.x.0/24).
// Both router-side veth ends carry RouterMAC, which is also the vswitchd
// router's MAC: the generator and the sink address the same gateway MAC in
// every case, so their permanent neighbour entries never change.
var (
	GenMAC    = net.HardwareAddr{0x02, 0x76, 0x73, 0x72, 0x00, 0x01}
	SinkMAC   = net.HardwareAddr{0x02, 0x76, 0x73, 0x72, 0x00, 0x02}
	RouterMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	GenIP     = net.IPv4(10, 78, 1, 1).To4()
	SinkIP    = net.IPv4(10, 78, 2, 2).To4()
	GenGW     = net.IPv4(10, 78, 1, 254).To4()
	SinkGW    = net.IPv4(10, 78, 2, 254).To4()
)

const prefixLen = 24

// genTTL is the generator's IPv4 TTL; a routed frame arrives with genTTL-1.
const genTTL = 64

// Names are the object names of one run, derived from the PID so that
// parallel runs do not collide and a killed run's leftovers name their
// owner (cleanup subcommand).
type Names struct {
	ID                  string
	GenNS, RtrNS, SnkNS string
	G0                  string // generator end, in GenNS
	P0, P1              string // router ends (the DUT's ports), in RtrNS
	S1                  string // sink end, in SnkNS
}

// NewNames derives the names; interface names stay within 15 bytes.
func NewNames(pid int) Names {
	id := strconv.FormatInt(int64(pid), 36)
	p := namePrefix + id
	return Names{ID: id, GenNS: p + "-gen", RtrNS: p + "-rtr", SnkNS: p + "-snk",
		G0: p + "g0", P0: p + "p0", P1: p + "p1", S1: p + "s1"}
}

// Topology is the live three-namespace setup:
//
//	GenNS: G0 10.78.1.1 --veth-- P0 [RtrNS: Linux or vswitchd] P1 --veth-- S1 10.78.2.2 :SnkNS
//
// The DUT lives in its own namespace (not the root namespace) so that
// ip_forward, the nft table and the neighbour entries of the Linux cases
// touch nothing on the host. The sink (XDP, counts and drops UDP, routed
// frames apart from others) is on S1; an XDP_PASS program on G0 gives it veth NAPI, as in bench/e2e.
type Topology struct {
	Names
	genNS, rtrNS, snkNS netns.NsHandle
	sink                *e2e.RoutedSinkProgram
	pass                *ebpf.Program
	links               []link.Link
	madeNS              []string
	// Commands lists every command the setup ran, for the report.
	Commands []string
	log      io.Writer
}

// SetupTopology builds the topology. On error everything made so far is
// removed. The caller must Close the topology.
func SetupTopology(ctx context.Context, n Names, log io.Writer) (t *Topology, err error) {
	t = &Topology{Names: n, genNS: -1, rtrNS: -1, snkNS: -1, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
			t = nil
		}
	}()
	for _, ns := range []struct {
		name string
		h    *netns.NsHandle
	}{{n.GenNS, &t.genNS}, {n.RtrNS, &t.rtrNS}, {n.SnkNS, &t.snkNS}} {
		if err = t.run(ctx, "ip", "netns", "add", ns.name); err != nil {
			return t, err
		}
		t.madeNS = append(t.madeNS, ns.name)
		if *ns.h, err = netns.GetFromName(ns.name); err != nil {
			return t, fmt.Errorf("open netns %s: %w", ns.name, err)
		}
		// No IPv6 (no ND/RS chatter in the counters): set before the
		// veths exist so they inherit it.
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err = e2e.WriteSysctlIn(*ns.h, k, "1"); err != nil {
				return t, err
			}
		}
		if err = t.run(ctx, "ip", "-n", ns.name, "link", "set", "lo", "up"); err != nil {
			return t, err
		}
	}
	// One TX and one RX queue per end: one queue = one poll loop to measure.
	q := []string{"numtxqueues", "1", "numrxqueues", "1"}
	veth := func(rtrEnd, peer, peerNS string, peerMAC net.HardwareAddr) error {
		args := []string{"-n", n.RtrNS, "link", "add", rtrEnd, "address", RouterMAC.String()}
		args = append(args, q...)
		args = append(args, "type", "veth", "peer", "name", peer, "address", peerMAC.String(), "netns", peerNS)
		return t.run(ctx, "ip", append(args, q...)...)
	}
	if err = veth(n.P0, n.G0, n.GenNS, GenMAC); err != nil {
		return t, err
	}
	if err = veth(n.P1, n.S1, n.SnkNS, SinkMAC); err != nil {
		return t, err
	}
	hosts := []struct {
		ns, ifname string
		ip, gw     net.IP
	}{{n.GenNS, n.G0, GenIP, GenGW}, {n.SnkNS, n.S1, SinkIP, SinkGW}}
	for _, h := range hosts {
		for _, args := range [][]string{
			{"addr", "add", fmt.Sprintf("%s/%d", h.ip, prefixLen), "dev", h.ifname},
			{"link", "set", h.ifname, "up"},
			{"route", "add", "default", "via", h.gw.String(), "dev", h.ifname},
			{"neigh", "replace", h.gw.String(), "lladdr", RouterMAC.String(), "dev", h.ifname, "nud", "permanent"},
		} {
			if err = t.run(ctx, "ip", append([]string{"-n", h.ns}, args...)...); err != nil {
				return t, err
			}
		}
	}
	for _, ifname := range []string{n.P0, n.P1} {
		if err = t.run(ctx, "ip", "-n", n.RtrNS, "link", "set", ifname, "up"); err != nil {
			return t, err
		}
	}
	if t.sink, err = e2e.NewRoutedSinkProgram(SinkMAC, genTTL-1); err != nil {
		return t, err
	}
	l, err := e2e.AttachXDPIn(t.snkNS, n.S1, t.sink.Prog)
	if err != nil {
		return t, err
	}
	t.links = append(t.links, l)
	if t.pass, err = e2e.NewPassProgram(); err != nil {
		return t, err
	}
	if l, err = e2e.AttachXDPIn(t.genNS, n.G0, t.pass); err != nil {
		return t, err
	}
	t.links = append(t.links, l)
	return t, nil
}

// run runs a command, records it, and returns its error with its output.
func (t *Topology) run(ctx context.Context, name string, args ...string) error {
	t.Commands = append(t.Commands, name+" "+strings.Join(args, " "))
	return runCmd(ctx, name, args...)
}

// runCmd runs a command and returns its error with the command's output.
func runCmd(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// SinkCount reads the number of routed UDP frames (to the sink's MAC, TTL
// decremented once) the sink has dropped so far.
func (t *Topology) SinkCount() (uint64, error) { return t.sink.Routed.Read() }

// UnroutedCount reads the number of other UDP frames the sink has dropped
// (not counted as received: a DUT that floods is no router).
func (t *Topology) UnroutedCount() (uint64, error) { return t.sink.Other.Read() }

// WaitSinkQuiet waits until the sink count stops changing (frames still in
// veth rings or the DUT when the generator ends), at most max.
func (t *Topology) WaitSinkQuiet(ctx context.Context, max time.Duration) (uint64, error) {
	deadline := time.Now().Add(max)
	last, err := t.SinkCount()
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		n, err := t.SinkCount()
		if err != nil {
			return last, err
		}
		if n == last {
			return n, nil
		}
		last = n
	}
	return last, ctx.Err()
}

// Close removes everything SetupTopology made and keeps going past errors.
// Deleting a namespace deletes the veth ends in it, and with them their
// peers.
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
	for _, h := range []*netns.NsHandle{&t.genNS, &t.rtrNS, &t.snkNS} {
		if h.IsOpen() {
			errs = append(errs, h.Close())
		}
		*h = -1
	}
	for _, ns := range t.madeNS {
		errs = append(errs, runCmd(context.Background(), "ip", "netns", "del", ns))
	}
	t.madeNS = nil
	return errors.Join(errs...)
}

// removeLeftovers deletes namespaces "vsr<ID>-gen|-rtr|-snk" of runs whose
// process is gone (a SIGKILLed harness), and returns their names.
func removeLeftovers(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	var errs []error
	for _, e := range ents {
		id, ok := leftoverID(e.Name())
		if !ok {
			continue
		}
		pid, err := strconv.ParseInt(id, 36, 32)
		if err != nil || syscall.Kill(int(pid), 0) != syscall.ESRCH {
			continue // not ours, or its run is still alive
		}
		names = append(names, e.Name())
		errs = append(errs, runCmd(ctx, "ip", "netns", "del", e.Name()))
	}
	return names, errors.Join(errs...)
}

// leftoverID extracts the run ID from a namespace name of this harness.
func leftoverID(name string) (string, bool) {
	if !strings.HasPrefix(name, namePrefix) || len(name) <= len(namePrefix)+4 {
		return "", false
	}
	switch name[len(name)-4:] {
	case "-gen", "-rtr", "-snk":
		return name[len(namePrefix) : len(name)-4], true
	}
	return "", false
}
