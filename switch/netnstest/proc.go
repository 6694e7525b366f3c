package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is how long Proc cleanup waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// outFile is where a Proc's stdout or stderr goes: a file, not a pipe, so
// that a process that outlives the test binary (killed by a -timeout
// panic) can still write its shutdown logs instead of dying of SIGPIPE
// half-way through detaching its XDP programs.
type outFile struct {
	path string
}

// String returns what the process wrote so far.
func (o outFile) String() string {
	data, _ := os.ReadFile(o.path)
	return string(data)
}

// procDirPrefix names the temp dirs of process output; Sweep removes those
// of dead test processes.
func procDirPrefix() string { return fmt.Sprintf("%sproc-%d-", nsPrefix, os.Getpid()) }

// Proc is a background process a test started. Only its own PID is ever
// signalled.
type Proc struct {
	// PID is the process ID; with ns set it is the command itself, since
	// ip netns exec execs it.
	PID  int
	Cmd  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done is closed

	dir            string
	stdout, stderr outFile
}

// Start starts a background process, inside ns unless ns is nil. Cleanup
// stops it by PID (SIGTERM, then SIGKILL after StopTimeout) if it is
// still running. It gets SIGTERM too if the test binary dies first.
func Start(t testing.TB, ns *NS, name string, args ...string) *Proc {
	t.Helper()
	p, err := StartProc(ns, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			p.Stop(StopTimeout)
		}
		p.Close()
	})
	return p
}

// Close removes the files holding the process's output; call it after the
// process has exited and its output was read.
func (p *Proc) Close() { os.RemoveAll(p.dir) }

// StartProc is Start without a test: the caller must Stop the process.
func StartProc(ns *NS, name string, args ...string) (*Proc, error) {
	if ns != nil {
		args = append([]string{"netns", "exec", ns.Name, name}, args...)
		name = "ip"
	}
	p := &Proc{Cmd: strings.Join(append([]string{name}, args...), " "), done: make(chan struct{})}
	dir, err := os.MkdirTemp("", procDirPrefix())
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Cmd, err)
	}
	p.dir = dir
	p.stdout.path, p.stderr.path = filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	var files []*os.File
	for _, path := range []string{p.stdout.path, p.stderr.path} {
		f, err := os.Create(path)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("start %s: %w", p.Cmd, err)
		}
		defer f.Close() // the child has its own copy
		files = append(files, f)
	}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = files[0], files[1]
	// Own process group, so a ^C on the terminal reaches only the test
	// binary, which then stops its processes itself. Parent-death signal:
	// if the test binary dies without running its cleanups, the process
	// still gets a SIGTERM (a daemon then detaches its XDP programs).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		p.Close()
		return nil, fmt.Errorf("start %s: %w", p.Cmd, err)
	}
	p.PID = p.cmd.Process.Pid
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Signal sends sig to the process by PID, unless it has already been
// reaped (after which the PID may belong to someone else).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return errors.New("process already exited")
	}
	return p.cmd.Process.Signal(sig)
}

// Exited reports whether the process has exited (and was reaped).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit. It returns whether it
// exited in time and, if so, its exit error (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		return false, nil
	}
}

// ExitCode is the exit status after the process exited; -1 if it was
// killed by a signal or has not exited.
func (p *Proc) ExitCode() int {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs and waits. It
// returns whether SIGKILL was needed and the exit error.
func (p *Proc) Stop(timeout time.Duration) (killed bool, err error) {
	_ = p.Signal(syscall.SIGTERM)
	if ok, err := p.Wait(timeout); ok {
		return false, err
	}
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
	return true, p.err
}

// Stdout and Stderr return what the process wrote so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr returns what the process wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// WaitOutput polls until stdout or stderr contains substr; it fails early
// if the process exits without printing it, or when timeout passes.
func (p *Proc) WaitOutput(substr string, timeout time.Duration) error {
	has := func() bool {
		return strings.Contains(p.Stdout(), substr) || strings.Contains(p.Stderr(), substr)
	}
	deadline := time.Now().Add(timeout)
	for !has() {
		if p.Exited() {
			if has() { // output may have landed just before exit
				return nil
			}
			return fmt.Errorf("%s exited (%v) without printing %q; stdout: %q stderr: %q", p.Cmd, p.err, substr, p.Stdout(), p.Stderr())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %s; stdout: %q stderr: %q", p.Cmd, substr, timeout, p.Stdout(), p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
