package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/switch/affinity"
)

// child is a process a case started (a daemon under test or a reference
// switch), watched by a goroutine that records how it exited.
type child struct {
	name    string // for messages: "vswitchd", "testpmd"
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
	// tail turns the log into the last lines quoted in errors.
	tail func(data []byte) string
	// failed keeps the case's temp dir (config, log) for a post-mortem.
	failed bool
}

// start runs cmd as the child: stdin /dev/null, stdout and stderr to
// c.logPath (created), its own process group (a terminal ^C reaches only
// the harness, which stops the child by PID after the current step) and
// SIGTERM if the harness dies, pinned to cpu unless cpu < 0; then watches
// it. On error nothing is left running and c.cmd is nil.
func (c *child) start(cmd *exec.Cmd, cpu int) error {
	logf, err := os.Create(c.logPath)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	c.cmd = cmd
	if err := affinity.StartPinned(cmd, cpu); err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		c.cmd = nil
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.watch()
	return nil
}

// sigtermClean is the clean judgement of terminate for a child that
// exits on SIGTERM.
func sigtermClean(err error) bool { return exitedCleanly(err, syscall.SIGTERM) }

// watch starts waiting for the started cmd in the background.
func (c *child) watch() {
	c.done = make(chan struct{})
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
}

// alive reports an error once the process has exited.
func (c *child) alive() error {
	if c.done == nil {
		return fmt.Errorf("%s not started", c.name)
	}
	select {
	case <-c.done:
		c.failed = true
		return fmt.Errorf("%s exited during the run (%v); log: %s", c.name, c.waitErr, c.logTail())
	default:
		return nil
	}
}

// terminate sends SIGTERM by PID, waits up to 10 s, then SIGKILLs. clean
// judges the exit status after SIGTERM.
func (c *child) terminate(clean func(error) bool) error {
	var err error
	if c.cmd != nil && c.done != nil {
		select {
		case <-c.done:
			err = fmt.Errorf("%s had already exited: %v", c.name, c.waitErr)
		default:
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.done:
				if !clean(c.waitErr) {
					err = fmt.Errorf("%s exit after SIGTERM: %w; log: %s", c.name, c.waitErr, c.logTail())
				}
			case <-time.After(10 * time.Second):
				c.cmd.Process.Kill()
				<-c.done
				err = fmt.Errorf("%s ignored SIGTERM for 10 s, killed; log: %s", c.name, c.logTail())
			}
		}
	}
	c.cmd, c.done = nil, nil
	return err
}

// logTail returns the last lines of the log for error messages.
func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log)"
	}
	if c.tail != nil {
		return c.tail(data)
	}
	return lastLines(string(data))
}

// lastLines joins the last 8 lines of text with " | ".
func lastLines(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	if s := strings.Join(lines, " | "); s != "" {
		return s
	}
	return "(empty)"
}

// exitedCleanly reports whether err is a zero exit or death by sig.
func exitedCleanly(err error, sig syscall.Signal) bool {
	if err == nil {
		return true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
