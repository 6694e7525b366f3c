package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Case names, in report order.
const (
	CaseLinux       = "linux-route"
	CaseLinuxNft    = "linux-route-nft1000"
	CaseVswitchd    = "vswitchd-route"
	CaseVswitchdACL = "vswitchd-route-acl1000"
)

// AllCases is every case in the order a run measures them.
var AllCases = []string{CaseLinux, CaseLinuxNft, CaseVswitchd, CaseVswitchdACL}

// Firewall rules of the *-1000 cases: "udp dport P drop/deny" for P in
// denyFirst..denyFirst+denyCount-1. The generator's destination ports are
// outside this range, so every packet walks every rule and is accepted.
const (
	denyFirst = 10000
	denyCount = 1000
)

// nftTable is the table of the nft1000 case, in the router namespace.
const nftTable = "inet vsr_rt"

// dut is a device under test in the router namespace, set up per case.
type dut interface {
	Note() string
	// Start sets the DUT up on t; on error the caller still calls Stop.
	Start(ctx context.Context, t *Topology) error
	// Alive reports an error once a daemon DUT has died.
	Alive() error
	// Diagnose returns the DUT's counters ("" if it has none).
	Diagnose(ctx context.Context) string
	// Stop undoes Start (also a partial one) and reports what failed.
	Stop() error
	// Config is the DUT's configuration text for the report.
	Config() string
}

// linuxRouter is the kernel as the router: addresses on P0 and P1,
// ip_forward=1, permanent neighbours for both hosts, GRO on P0 (veth NAPI
// for the generator's XDP frames, as the anchors), and for the nft case a
// forward chain of 1000 non-matching rules then accept (no conntrack).
type linuxRouter struct {
	nft bool

	t        *Topology
	ns       netns.NsHandle
	prevFwd  string
	addrs    []string // "ADDR dev IF" added
	neighs   []string // "IP dev IF" added
	groOn    bool
	tableOn  bool
	commands []string
}

func (l *linuxRouter) Note() string {
	n := "Linux router in its own netns: ip_forward=1, permanent neighbours, GRO on p0, forwarding inline in softirq on the generator core"
	if l.nft {
		n += fmt.Sprintf("; nft %s forward chain: %d rules `udp dport %d..%d drop` then accept", nftTable, denyCount, denyFirst, denyFirst+denyCount-1)
	} else {
		n += "; no nft tables"
	}
	return n
}

func (l *linuxRouter) Config() string { return strings.Join(l.commands, "\n") }

func (l *linuxRouter) ip(ctx context.Context, args ...string) error {
	full := append([]string{"-n", l.t.RtrNS}, args...)
	l.commands = append(l.commands, "ip "+strings.Join(full, " "))
	return runCmd(ctx, "ip", full...)
}

func (l *linuxRouter) Start(ctx context.Context, t *Topology) error {
	l.t = t
	var err error
	if l.ns, err = netns.GetFromName(t.RtrNS); err != nil {
		return fmt.Errorf("open netns %s: %w", t.RtrNS, err)
	}
	if l.prevFwd, err = e2e.ReadSysctlIn(l.ns, "net.ipv4.ip_forward"); err != nil {
		return err
	}
	for _, a := range []struct {
		ifname       string
		addr, hostIP string
		hostMAC      string
	}{
		{t.P0, fmt.Sprintf("%s/%d", GenGW, prefixLen), GenIP.String(), GenMAC.String()},
		{t.P1, fmt.Sprintf("%s/%d", SinkGW, prefixLen), SinkIP.String(), SinkMAC.String()},
	} {
		if err := l.ip(ctx, "addr", "add", a.addr, "dev", a.ifname); err != nil {
			return err
		}
		l.addrs = append(l.addrs, a.addr+" dev "+a.ifname)
		if err := l.ip(ctx, "neigh", "replace", a.hostIP, "lladdr", a.hostMAC, "dev", a.ifname, "nud", "permanent"); err != nil {
			return err
		}
		l.neighs = append(l.neighs, a.hostIP+" dev "+a.ifname)
	}
	l.commands = append(l.commands, "sysctl -w net.ipv4.ip_forward=1 (in "+t.RtrNS+")")
	if err := e2e.WriteSysctlIn(l.ns, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	l.commands = append(l.commands, "ip netns exec "+t.RtrNS+" ethtool -K "+t.P0+" gro on")
	if err := runCmd(ctx, "ip", "netns", "exec", t.RtrNS, "ethtool", "-K", t.P0, "gro", "on"); err != nil {
		return err
	}
	l.groOn = true
	if l.nft {
		f, err := os.CreateTemp("", "vsr-nft-*.nft")
		if err != nil {
			return fmt.Errorf("nft rules file: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.WriteString(nftRuleset())
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("write nft rules: %w", err)
		}
		l.commands = append(l.commands, "ip netns exec "+t.RtrNS+" nft -f <file>:\n"+abbreviateNft(nftRuleset()))
		if err := runCmd(ctx, "ip", "netns", "exec", t.RtrNS, "nft", "-f", f.Name()); err != nil {
			return err
		}
		l.tableOn = true
	}
	return nil
}

// nftRuleset is the nft1000 case's table: one rule per denied port, as the
// anchors (no sets, so every packet walks all 1000 rules), then accept.
func nftRuleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s {\n\tchain vsr_fwd {\n\t\ttype filter hook forward priority 0; policy accept;\n", nftTable)
	for _, p := range denyPorts(denyFirst, denyCount) {
		fmt.Fprintf(&b, "\t\tudp dport %d drop\n", p)
	}
	b.WriteString("\t\taccept\n\t}\n}\n")
	return b.String()
}

// abbreviateNft keeps the first two and the last rule of the ruleset.
func abbreviateNft(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var out []string
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "udp dport") {
			n++
			if n == 3 {
				out = append(out, fmt.Sprintf("\t\t# ... %d more rules of the same form ...", denyCount-3))
			}
			if n > 2 && n < denyCount {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func (l *linuxRouter) Alive() error                    { return nil }
func (l *linuxRouter) Diagnose(context.Context) string { return "" }

// Stop deletes the table, addresses and neighbours, turns GRO off and
// restores ip_forward to its prior value, whatever Start got to.
func (l *linuxRouter) Stop() error {
	if l.t == nil {
		return nil
	}
	ctx := context.Background()
	var errs []error
	if l.tableOn {
		errs = append(errs, runCmd(ctx, "ip", "netns", "exec", l.t.RtrNS, "nft", "delete", "table", "inet", "vsr_rt"))
		l.tableOn = false
	}
	if l.groOn {
		errs = append(errs, runCmd(ctx, "ip", "netns", "exec", l.t.RtrNS, "ethtool", "-K", l.t.P0, "gro", "off"))
		l.groOn = false
	}
	for _, n := range l.neighs {
		errs = append(errs, runCmd(ctx, "ip", append([]string{"-n", l.t.RtrNS, "neigh", "del"}, strings.Fields(n)...)...))
	}
	l.neighs = nil
	for _, a := range l.addrs {
		errs = append(errs, runCmd(ctx, "ip", append([]string{"-n", l.t.RtrNS, "addr", "del"}, strings.Fields(a)...)...))
	}
	l.addrs = nil
	if l.prevFwd != "" {
		errs = append(errs, e2e.WriteSysctlIn(l.ns, "net.ipv4.ip_forward", l.prevFwd))
		l.prevFwd = ""
	}
	if l.ns.IsOpen() {
		errs = append(errs, l.ns.Close())
	}
	l.ns = -1
	return errors.Join(errs...)
}
