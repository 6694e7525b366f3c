package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
)

// inNetns runs fn on a fresh OS thread that has joined ns, then moves the
// thread back. If moving back fails the thread is left locked, so the Go
// runtime retires it instead of reusing a thread in the wrong namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return // thread retired: it is locked
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave netns: %w (fn: %v)", err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// attachXDP attaches prog in native (driver) mode to ifname in ns (root
// netns if ns is closed/-1). The returned bpf_link detaches when closed or
// when this process dies, so a killed harness leaves no program behind.
func attachXDP(ns netns.NsHandle, ifname string, prog *ebpf.Program) (link.Link, error) {
	var l link.Link
	attach := func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("attach xdp: %w", err)
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("attach xdp to %s: %w", ifname, err)
		}
		return nil
	}
	var err error
	if ns.IsOpen() {
		err = inNetns(ns, attach)
	} else {
		err = attach()
	}
	return l, err
}

// writeSysctlIn writes a /proc/sys value as seen from ns: sysctls under
// net/ resolve against the writing thread's network namespace.
func writeSysctlIn(ns netns.NsHandle, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	write := func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	}
	if ns.IsOpen() {
		return inNetns(ns, write)
	}
	return write()
}

// run runs a command and returns its error with the command's output, so a
// failed "ip" or "ethtool" explains itself.
func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
