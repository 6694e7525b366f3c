package netnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// CmdTimeout bounds every helper command that is not given its own
// deadline; generous because the test machines are shared and latency is
// spiky.
const CmdTimeout = 30 * time.Second

// Result is the outcome of one finished command.
type Result struct {
	// Cmd is the command line, for messages.
	Cmd string
	// Stdout and Stderr are what the command wrote.
	Stdout, Stderr string
	// Err is nil when the command exited 0.
	Err error
	// ExitCode is the exit status, -1 when it did not exit normally.
	ExitCode int
}

// OK reports whether the command exited 0.
func (r Result) OK() bool { return r.Err == nil }

// Output is stdout and stderr together, trimmed.
func (r Result) Output() string {
	return strings.TrimSpace(strings.TrimSpace(r.Stdout) + "\n" + strings.TrimSpace(r.Stderr))
}

// String describes the command and its outcome for a failure message.
func (r Result) String() string {
	status := "ok"
	if r.Err != nil {
		status = r.Err.Error()
	}
	return fmt.Sprintf("`%s`: %s\nstdout:\n%s\nstderr:\n%s", r.Cmd, status, indent(r.Stdout), indent(r.Stderr))
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// Exec runs name with args and waits at most timeout (CmdTimeout if 0).
// It never fails the test; look at the Result.
func Exec(timeout time.Duration, name string, args ...string) Result {
	if timeout <= 0 {
		timeout = CmdTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Kill only this command (by its PID, which is what CommandContext
	// does) and do not wait forever for grandchildren holding the pipes.
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Cmd: strings.Join(append([]string{name}, args...), " "), Stdout: stdout.String(), Stderr: stderr.String(), Err: err, ExitCode: 0}
	if err != nil {
		r.ExitCode = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.ExitCode = ee.ExitCode()
		}
		if ctx.Err() != nil {
			r.Err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
	}
	return r
}

// Run runs name with args and fails t if it does not exit 0. It returns
// stdout.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	r := Exec(0, name, args...)
	if !r.OK() {
		t.Fatalf("command failed: %s", r)
	}
	return r.Stdout
}

// Eventually calls check until it reports true or timeout passes, pausing
// interval between calls; on timeout it fails t with what, and the last
// description check returned. It is polling for a condition, not a sleep:
// it returns as soon as the condition holds.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	if err := Poll(timeout, interval, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll calls check until it reports true or timeout passes. The error
// carries the last description check returned.
func Poll(timeout, interval time.Duration, check func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, desc := check()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %s; last: %s", timeout, desc)
		}
		time.Sleep(interval)
	}
}
