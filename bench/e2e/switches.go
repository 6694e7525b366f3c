package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Switch is one way of forwarding between p0 and p1: a reference or the
// switch under test. Start makes it forward, Alive reports whether it still
// can (a daemon may die mid-run), Stop undoes Start and must be safe to call
// after a failed Start.
type Switch interface {
	Start(ctx context.Context, t *Topology) error
	Alive() error
	Stop() error
	// Note describes how it forwards, for the report.
	Note() string
}

// Case names accepted by -cases, in report order.
const (
	CaseBridge      = "bridge"
	CaseRedirect    = "redirect"
	CaseRedirectMap = "redirect-map"
	CaseTestpmd     = "testpmd"
	CaseOVS         = "ovs"
	CaseVswitchd    = "vswitchd"
)

// AllCases lists every case; DefaultCases is what a full run measures;
// CICases is the lean set of the ci mode (no DPDK or OVS needed on CI
// machines).
var (
	AllCases     = []string{CaseBridge, CaseRedirect, CaseRedirectMap, CaseTestpmd, CaseOVS, CaseVswitchd}
	DefaultCases = []string{CaseBridge, CaseRedirect, CaseTestpmd, CaseOVS, CaseVswitchd}
	CICases      = []string{CaseBridge, CaseRedirect, CaseVswitchd}
)

// CaseLabel is the name a case has in tables (anchor naming).
func CaseLabel(c string) string {
	switch c {
	case CaseBridge:
		return "linux-bridge"
	case CaseRedirect:
		return "xdp-redirect"
	case CaseRedirectMap:
		return "xdp-redirect-map"
	case CaseTestpmd:
		return "dpdk-testpmd-io"
	case CaseOVS:
		return "ovs-netdev-afxdp"
	}
	return c
}

// ErrUnknownCase is returned for a case name not in AllCases.
var ErrUnknownCase = errors.New("unknown case")

func newSwitch(name string, o *Options) (Switch, error) {
	switch name {
	case CaseBridge:
		return &bridgeSwitch{}, nil
	case CaseRedirect:
		return &redirectSwitch{}, nil
	case CaseRedirectMap:
		return &redirectSwitch{devmap: true}, nil
	case CaseTestpmd:
		return &testpmdSwitch{genCPU: o.GenCPU, cpu: o.SwCPU, ring: o.TestpmdRing, readyTimeout: o.ReadyTimeout, log: o.Log}, nil
	case CaseOVS:
		return &ovsSwitch{cpu: o.SwCPU, readyTimeout: o.ReadyTimeout, pingTimeout: o.PingTimeout, log: o.Log}, nil
	case CaseVswitchd:
		return &vswitchdSwitch{bin: o.Bin, cpu: o.SwCPU, controlCPU: o.GenCPU, pinAll: o.PinSwitch,
			ring: o.RingSize, readyTimeout: o.ReadyTimeout, log: o.Log}, nil
	}
	return nil, fmt.Errorf("%w %q (have %v)", ErrUnknownCase, name, AllCases)
}

// bridgeSwitch is the kernel bridge with static FDB entries.
type bridgeSwitch struct {
	t       *Topology
	br      netlink.Link
	groP0On bool
}

func (b *bridgeSwitch) Note() string { return "static fdb, GRO on p0 (veth NAPI), inline softirq" }

func (b *bridgeSwitch) Start(ctx context.Context, t *Topology) error {
	b.t = t
	h := t.RootHandle()
	// iproute2 for creation: netlink.Bridge cannot set forward_delay, and
	// with the default 15 s the ports would sit in learning state.
	if err := run(ctx, "ip", "link", "add", t.Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return err
	}
	br, err := h.LinkByName(t.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge: %w", err)
	}
	b.br = br
	if err := writeSysctlIn(-1, "net.ipv6.conf."+t.Bridge+".disable_ipv6", "1"); err != nil {
		return err
	}
	for _, p := range []struct {
		port string
		mac  []byte
	}{{t.P0, SrcMAC}, {t.P1, DstMAC}} {
		l, err := h.LinkByName(p.port)
		if err != nil {
			return fmt.Errorf("find %s: %w", p.port, err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("enslave %s: %w", p.port, err)
		}
		// NUD_NOARP is "static" (bridge fdb ... static); NUD_PERMANENT
		// would mean "local": delivered to the bridge, not forwarded.
		n := &netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP, HardwareAddr: p.mac,
		}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("static fdb %s on %s: %w", p.mac, p.port, err)
		}
	}
	// A veth takes the generator's XDP frames (ndo_xdp_xmit) only while its
	// NAPI is on; without an XDP program that needs GRO on (anchors).
	if err := run(ctx, "ethtool", "-K", t.P0, "gro", "on"); err != nil {
		return err
	}
	b.groP0On = true
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("set bridge up: %w", err)
	}
	return nil
}

func (b *bridgeSwitch) Alive() error { return nil }

func (b *bridgeSwitch) Stop() error {
	var errs []error
	if b.groP0On {
		errs = append(errs, run(context.Background(), "ethtool", "-K", b.t.P0, "gro", "off"))
		b.groP0On = false
	}
	if b.br != nil {
		errs = append(errs, b.t.RootHandle().LinkDel(b.br)) // releases p0 and p1
		b.br = nil
	}
	return errors.Join(errs...)
}

// redirectSwitch is native XDP redirect p0<->p1, the ceiling of this path.
type redirectSwitch struct {
	devmap  bool
	closers []interface{ Close() error }
}

func (r *redirectSwitch) Note() string {
	if r.devmap {
		return "native XDP bpf_redirect_map (DEVMAP), inline softirq"
	}
	return "native XDP bpf_redirect, inline softirq"
}

func (r *redirectSwitch) Start(ctx context.Context, t *Topology) error {
	for _, dir := range []struct {
		in  string
		out int
	}{{t.P0, t.P1Index}, {t.P1, t.P0Index}} {
		var prog *ebpf.Program
		if r.devmap {
			rm, err := NewRedirectMapProgram(dir.out)
			if err != nil {
				return err
			}
			r.closers = append(r.closers, rm)
			prog = rm.Prog
		} else {
			p, err := NewRedirectProgram(dir.out)
			if err != nil {
				return err
			}
			r.closers = append(r.closers, p)
			prog = p
		}
		l, err := attachXDP(-1, dir.in, prog)
		if err != nil {
			return err
		}
		r.closers = append(r.closers, l)
	}
	return nil
}

func (r *redirectSwitch) Alive() error { return nil }

func (r *redirectSwitch) Stop() error {
	var errs []error
	// Links before programs: detach, then free.
	for i := len(r.closers) - 1; i >= 0; i-- {
		if _, ok := r.closers[i].(link.Link); ok {
			errs = append(errs, r.closers[i].Close())
		}
	}
	for _, c := range r.closers {
		if _, ok := c.(link.Link); !ok {
			errs = append(errs, c.Close())
		}
	}
	r.closers = nil
	return errors.Join(errs...)
}

// binPath returns dir/name if it is an executable file.
func binPath(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w (build it with make build)", name, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s binary %s is not executable", name, p)
	}
	return p, nil
}
