package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Addresses. The namespaces, MACs and IPv4 addresses are the e2e
// harness's (e2e.NewNames, e2e.SrcIP...), so "vsbench cleanup" recognises
// what a killed run left. The client is e2e's source side, the server its
// destination side.
var (
	clientIP  = e2e.SrcIP
	serverIP  = e2e.DstIP
	clientMAC = e2e.SrcMAC
	serverMAC = e2e.DstMAC
)

// Names and answers of the DNS data. The switch's record and dnsmasq's
// answer for the same zone differ, so an answer says who gave it.
const (
	zone          = "vs.test"
	switchName    = "bench.vs.test" // in the switch's zone (case switch)
	switchAnswer  = "10.201.1.80"   // the switch's A record
	dnsmasqShadow = "10.201.1.66"   // what dnsmasq would say for vs.test
	outsideName   = "bench.example" // outside the switch's zones
	outsideAnswer = "10.201.1.77"   // dnsmasq's answer for it
	prefixLen     = 24
	dnsPort       = 53
)

// topology is the two namespaces and veth pairs of one run.
type topology struct {
	e2e.Names
	made     []func() error // undo steps, run in reverse by close
	bridgeUp bool
}

// run runs a command and returns its error with the command's output.
func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// nsRun runs a command inside netns ns.
func nsRun(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// setupTopology makes client and server namespaces, each joined to the root
// namespace by a single-queue veth pair, with addresses, permanent
// neighbours (no ARP in the measurement), IPv6 off and TX checksum offload
// off on the namespace side (an AF_XDP switch forwards the bytes it gets,
// and a veth with offload on hands it UDP frames with only the
// pseudo-header checksum; see README). The caller must close it.
func setupTopology(ctx context.Context) (t *topology, err error) {
	t = &topology{Names: e2e.NewNames(os.Getpid())}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
			t = nil
		}
	}()
	for _, ns := range []string{t.SrcNS, t.DstNS} {
		if err = run(ctx, "ip", "netns", "add", ns); err != nil {
			return t, err
		}
		t.made = append(t.made, func() error { return run(context.Background(), "ip", "netns", "del", ns) })
	}
	type end struct {
		ns, host, peer string
		mac            net.HardwareAddr
		ip, otherIP    net.IP
		otherMAC       net.HardwareAddr
	}
	for _, e := range []end{
		{t.SrcNS, t.P0, t.S0, clientMAC, clientIP, serverIP, serverMAC},
		{t.DstNS, t.P1, t.D1, serverMAC, serverIP, clientIP, clientMAC},
	} {
		steps := [][]string{
			{"ip", "link", "add", e.host, "numtxqueues", "1", "numrxqueues", "1", "type", "veth",
				"peer", "name", e.peer, "address", e.mac.String(), "netns", e.ns, "numtxqueues", "1", "numrxqueues", "1"},
			{"sysctl", "-qw", "net.ipv6.conf." + e.host + ".disable_ipv6=1"},
			{"ip", "link", "set", e.host, "up"},
		}
		for i, s := range steps {
			if err = run(ctx, s[0], s[1:]...); err != nil {
				return t, err
			}
			if i == 0 {
				host := e.host
				t.made = append(t.made, func() error {
					// Gone already when its namespace was deleted first.
					if _, err := net.InterfaceByName(host); err != nil {
						return nil
					}
					return run(context.Background(), "ip", "link", "del", host)
				})
			}
		}
		for _, s := range [][]string{
			{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
			{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
			{"ip", "link", "set", "lo", "up"},
			{"ethtool", "-K", e.peer, "tx", "off"},
			{"ip", "addr", "add", e.ip.String() + "/" + strconv.Itoa(prefixLen), "dev", e.peer},
			{"ip", "link", "set", e.peer, "up"},
			{"ip", "neigh", "replace", e.otherIP.String(), "lladdr", e.otherMAC.String(), "dev", e.peer, "nud", "permanent"},
		} {
			if err = nsRun(ctx, e.ns, s...); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// bridgeUp joins both root-side ends to a Linux bridge.
func (t *topology) bridge(ctx context.Context) error {
	steps := [][]string{
		{"ip", "link", "add", t.Bridge, "type", "bridge"},
		{"sysctl", "-qw", "net.ipv6.conf." + t.Bridge + ".disable_ipv6=1"},
		{"ip", "link", "set", t.P0, "master", t.Bridge},
		{"ip", "link", "set", t.P1, "master", t.Bridge},
		{"ip", "link", "set", t.Bridge, "up"},
	}
	for i, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
		if i == 0 {
			t.bridgeUp = true
		}
	}
	return nil
}

// unbridge deletes the bridge (its ports stay).
func (t *topology) unbridge() error {
	if !t.bridgeUp {
		return nil
	}
	t.bridgeUp = false
	return run(context.Background(), "ip", "link", "del", t.Bridge)
}

// close undoes everything in reverse order and keeps going past errors.
func (t *topology) close() error {
	errs := []error{t.unbridge()}
	for i := len(t.made) - 1; i >= 0; i-- {
		errs = append(errs, t.made[i]())
	}
	t.made = nil
	return errors.Join(errs...)
}

// inNetns runs fn on a fresh OS thread that has joined the named netns,
// then moves the thread back; if that fails the thread stays locked and
// the runtime retires it. Sockets fn opens stay in the namespace.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w (fn: %v)", name, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
