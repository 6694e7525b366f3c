package e2e

import (
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
)

// AttachXDPIn attaches prog in native (driver) mode to ifname in ns (the
// current netns if ns is -1), for harnesses that build their own topology
// (bench/routed). The bpf_link detaches when closed or when this process
// dies; the caller owns it.
func AttachXDPIn(ns netns.NsHandle, ifname string, prog *ebpf.Program) (link.Link, error) {
	return attachXDP(ns, ifname, prog)
}

// WriteSysctlIn writes a /proc/sys value (dotted key) as seen from ns (the
// current netns if ns is -1): net.* keys are per network namespace.
func WriteSysctlIn(ns netns.NsHandle, key, value string) error {
	return writeSysctlIn(ns, key, value)
}

// ReadSysctlIn reads a /proc/sys value (dotted key) as seen from ns.
func ReadSysctlIn(ns netns.NsHandle, key string) (string, error) {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var v string
	read := func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		v = strings.TrimSpace(string(data))
		return nil
	}
	var err error
	if ns.IsOpen() {
		err = inNetns(ns, read)
	} else {
		err = read()
	}
	return v, err
}
