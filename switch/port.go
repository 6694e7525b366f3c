package vswitch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/asavie/xdp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/xsk"
)

// afxdpPort is a live AF_XDP port: the XSKMAP redirect program attached to
// the interface and one socket per queue, each owned by a worker.
type afxdpPort struct {
	spec    PortSpec
	index   uint16
	ifindex int
	mac     net.HardwareAddr
	prog    *xdp.Program
	queues  []portQueue
	xdpMode string
	// mem is set for a memring port (no interface, program or sockets).
	mem *memPort
}

type portQueue struct {
	id     int
	worker int
	sock   *xsk.Socket
}

// linkQueues counts an interface's RX queues from sysfs.
func linkQueues(ifname string) (int, error) {
	m, err := filepath.Glob(filepath.Join("/sys/class/net", ifname, "queues", "rx-*"))
	if err != nil {
		return 0, err
	}
	if len(m) == 0 {
		return 1, nil
	}
	return len(m), nil
}

// detachXDP removes any XDP program from the interface in both native and
// generic mode. A removal without mode flags only reaches the native slot
// of a driver that has one, which would leave a generic program behind.
func detachXDP(ifindex int) error {
	link, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("detach xdp: %w", err)
	}
	var errs []error
	for _, flags := range []int{unix.XDP_FLAGS_DRV_MODE, unix.XDP_FLAGS_SKB_MODE} {
		if err := netlink.LinkSetXdpFdWithFlags(link, -1, flags); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach xdp: %w", err)
	}
	return nil
}

// attachProgram loads the XSKMAP redirect program and attaches it,
// replacing any program a previous (killed) daemon left on the interface.
func attachProgram(ifindex, queues int, mode string) (*xdp.Program, error) {
	// Clear both modes first: the kernel refuses a native program while a
	// generic one is attached (and the other way round), and asavie/xdp's
	// own removal only clears the native slot.
	if err := detachXDP(ifindex); err != nil {
		return nil, err
	}
	prog, err := xdp.NewProgram(queues)
	if err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	// asavie/xdp reads the attach flags from a package variable; the
	// control plane is single-threaded (Switch.mu), so setting it here is safe.
	if mode == "skb" {
		xdp.DefaultXdpFlags = unix.XDP_FLAGS_SKB_MODE
	} else {
		xdp.DefaultXdpFlags = unix.XDP_FLAGS_DRV_MODE
	}
	if err := prog.Attach(ifindex); err != nil {
		prog.Close()
		return nil, fmt.Errorf("attach xdp program (%s mode): %w", mode, err)
	}
	return prog, nil
}

// info renders the port for the API.
func (p *afxdpPort) info() PortInfo {
	if p.mem != nil {
		pi := PortInfo{PortSpec: p.spec, Index: int(p.index)}
		p.memInfo(&pi)
		return pi
	}
	pi := PortInfo{PortSpec: p.spec, Index: int(p.index), Ifindex: p.ifindex, XDPMode: p.xdpMode, State: "up"}
	if p.mac != nil {
		pi.MAC = p.mac.String()
	}
	pi.BindMode = "copy"
	for _, q := range p.queues {
		pi.Queues = append(pi.Queues, q.id)
		pi.Worker = append(pi.Worker, q.worker)
		if q.sock != nil && q.sock.ZeroCopy {
			pi.BindMode = "zerocopy"
		}
	}
	if fi, err := os.Stat(filepath.Join("/sys/class/net", p.spec.Interface)); err != nil || !fi.IsDir() {
		pi.State = "down"
	}
	return pi
}

func sortedPortInfos(m map[string]*afxdpPort) []PortInfo {
	out := make([]PortInfo, 0, len(m))
	for _, p := range m {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
