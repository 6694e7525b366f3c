package netnstest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BinEnv names the directory holding the vswitchd and vswitchctl binaries
// under test (make test-priv sets it to bin/).
const BinEnv = "VSWITCH_BIN"

// ReadyTimeout bounds how long a daemon may take to answer its first
// `vswitchctl status`; generous for a shared, busy machine.
const ReadyTimeout = 30 * time.Second

// BinDir returns $VSWITCH_BIN after checking that both binaries are in it.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinEnv)
	if dir == "" {
		t.Fatalf("%s is not set: point it at the directory with vswitchd and vswitchctl (make test-priv does)", BinEnv)
	}
	for _, b := range []string{"vswitchd", "vswitchctl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s=%s: %v (run make build)", BinEnv, dir, err)
		}
	}
	return dir
}

// Ctl runs vswitchctl against one API socket.
type Ctl struct {
	Path   string // the vswitchctl binary
	Socket string
}

// Exec runs vswitchctl --socket Socket args... and never fails the test.
func (c Ctl) Exec(args ...string) Result {
	return Exec(0, c.Path, append([]string{"--socket", c.Socket}, args...)...)
}

// Run runs vswitchctl and fails t unless it exits 0; it returns stdout.
func (c Ctl) Run(t testing.TB, args ...string) string {
	t.Helper()
	r := c.Exec(args...)
	if !r.OK() {
		t.Fatalf("vswitchctl failed: %s", r)
	}
	return r.Stdout
}

// JSON runs vswitchctl -o json args... and decodes stdout into v.
func (c Ctl) JSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := c.Run(t, append([]string{"-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("vswitchctl -o json %s: decode: %v\noutput:\n%s", strings.Join(args, " "), err, out)
	}
}

// Vswitchd is a daemon a test started. It runs in the root namespace,
// where the host ends of the veth pairs are.
type Vswitchd struct {
	*Proc
	Ctl
	Config string
}

// VswitchdOptions says how to start a daemon.
type VswitchdOptions struct {
	// Bin is the directory with both binaries (BinDir).
	Bin string
	// Config is the YAML config file; it must set api_socket to Socket.
	Config string
	// Socket is the API socket that readiness is polled on.
	Socket string
	// Args are extra command-line arguments.
	Args []string
	// Owner is the test whose cleanup stops the daemon; nil means the t
	// passed to StartVswitchd. A subtest that restarts a daemon the rest
	// of its parent test goes on using sets Owner to the parent.
	Owner testing.TB
}

// StartVswitchd starts vswitchd and waits until `vswitchctl status`
// answers, failing t (with the daemon's output) if it exits first or is
// not ready within ReadyTimeout. Cleanup stops it by PID if still running
// and, when the test failed, logs its output.
func StartVswitchd(t testing.TB, o VswitchdOptions) *Vswitchd {
	t.Helper()
	d := LaunchVswitchd(t, o)
	if err := d.WaitReady(ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	return d
}

// LaunchVswitchd starts vswitchd without waiting for it to be ready.
func LaunchVswitchd(t testing.TB, o VswitchdOptions) *Vswitchd {
	t.Helper()
	args := append([]string{"--config", o.Config}, o.Args...)
	d := &Vswitchd{
		Ctl:    Ctl{Path: filepath.Join(o.Bin, "vswitchctl"), Socket: o.Socket},
		Config: o.Config,
	}
	owner := o.Owner
	if owner == nil {
		owner = t
	}
	p, err := StartProc(nil, filepath.Join(o.Bin, "vswitchd"), args...)
	if err != nil {
		t.Fatal(err)
	}
	d.Proc = p
	t.Logf("started vswitchd pid %d: %s", d.PID, d.Cmd)
	owner.Cleanup(func() {
		if !p.Exited() {
			p.Stop(StopTimeout)
		}
		if owner.Failed() {
			owner.Logf("vswitchd pid %d output:\n%s", d.PID, indent(d.Stdout()+d.Stderr()))
		}
		p.Close()
	})
	return d
}

// WaitReady polls `vswitchctl status` until it succeeds, the daemon exits,
// or timeout passes.
func (d *Vswitchd) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last Result
	for {
		if d.Exited() {
			return fmt.Errorf("vswitchd pid %d exited before it was ready (%v)\noutput:\n%s", d.PID, d.err, indent(d.Stderr()))
		}
		last = Exec(5*time.Second, d.Ctl.Path, "--socket", d.Socket, "status")
		if last.OK() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vswitchd pid %d not ready after %s; last status: %s\ndaemon output:\n%s", d.PID, timeout, last, indent(d.Stderr()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Terminate sends SIGTERM (by PID) and fails t unless the daemon exits 0
// within timeout.
func (d *Vswitchd) Terminate(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM vswitchd pid %d: %v\noutput:\n%s", d.PID, err, indent(d.Stderr()))
	}
	ok, err := d.Wait(timeout)
	if !ok {
		// It is stuck; SIGKILL now rather than in cleanup after another
		// StopTimeout, and show where it was stuck if it can tell.
		_ = d.Signal(syscall.SIGQUIT)
		d.Wait(2 * time.Second)
		_ = d.Signal(syscall.SIGKILL)
		<-d.Done()
		t.Fatalf("vswitchd pid %d still running %s after SIGTERM (killed it); its main goroutine (SIGQUIT dump):\n%s", d.PID, timeout, indent(mainGoroutine(d.Stderr())))
	}
	if err != nil {
		t.Fatalf("vswitchd pid %d exited with %v after SIGTERM, want status 0\noutput:\n%s", d.PID, err, indent(d.Stderr()))
	}
}

// Kill sends SIGKILL (by PID) and waits for the process to be reaped.
func (d *Vswitchd) Kill(t testing.TB) {
	t.Helper()
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL vswitchd pid %d: %v", d.PID, err)
	}
	if ok, _ := d.Wait(StopTimeout); !ok {
		t.Fatalf("vswitchd pid %d not reaped %s after SIGKILL", d.PID, StopTimeout)
	}
}

// CPUTicks returns utime+stime of a live process in clock ticks, from
// /proc/PID/stat.
func CPUTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after ") " are
	// state(3) ppid(4) ... utime(14) stime(15).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, s)
	}
	var ut, st uint64
	if _, err := fmt.Sscan(f[11], &ut); err != nil {
		return 0, fmt.Errorf("parse utime of %d: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[12], &st); err != nil {
		return 0, fmt.Errorf("parse stime of %d: %w", pid, err)
	}
	return ut + st, nil
}

// mainGoroutine cuts the stack of goroutine 1 out of a Go traceback dump.
func mainGoroutine(dump string) string {
	i := strings.Index(dump, "goroutine 1 ")
	if i < 0 {
		return "(no goroutine dump)"
	}
	rest := dump[i:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
