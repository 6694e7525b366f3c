package e2e

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bpffsPath is where libxdp (used by DPDK's net_af_xdp and by OVS's afxdp
// ports) pins its XDP dispatcher.
const bpffsPath = "/sys/fs/bpf"

// bpffsMount is the bpffs a reference switch built on libxdp needs. Mount
// mounts one on bpffsPath unless one is there; Unmount removes only what
// Mount mounted, so a system's own bpffs is never touched.
type bpffsMount struct{ mounted bool }

// Mount makes sure a bpffs is mounted on bpffsPath.
func (m *bpffsMount) Mount() error {
	var st unix.Statfs_t
	if err := unix.Statfs(bpffsPath, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", bpffsPath, "bpf", 0, ""); err != nil {
		return fmt.Errorf("mount bpffs on %s (libxdp needs it): %w", bpffsPath, err)
	}
	m.mounted = true
	return nil
}

// Unmount undoes Mount; a no-op if Mount found a bpffs already there.
func (m *bpffsMount) Unmount() error {
	if !m.mounted {
		return nil
	}
	if err := unix.Unmount(bpffsPath, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", bpffsPath, err)
	}
	m.mounted = false
	return nil
}

// detachLeftXDP removes an XDP program still attached to p0 or p1 once the
// libxdp user who (a name for messages) is gone. libxdp attaches through
// netlink, not a bpf_link, so a killed process leaves its program behind
// and the next case could not attach its own; a cleanly exited one
// detaches it itself. A program found is reported as an error even when
// detached, so the run shows that the switch did not stop cleanly.
func detachLeftXDP(t *Topology, who string) error {
	h := t.RootHandle()
	if h == nil {
		return nil
	}
	var errs []error
	for _, name := range []string{t.P0, t.P1} {
		l, err := h.LinkByName(name)
		if err != nil {
			continue // topology already gone
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			if err := netlink.LinkSetXdpFd(l, -1); err != nil { // root netns, as h
				errs = append(errs, fmt.Errorf("detach XDP program %d %s left on %s: %w", x.ProgId, who, name, err))
			} else {
				errs = append(errs, fmt.Errorf("%s left XDP program %d on %s (detached)", who, x.ProgId, name))
			}
		}
	}
	return errors.Join(errs...)
}
