package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// daemonSpec is one vswitchd configuration of the run: the e2e harness's
// daemon config (one busy-poll worker pinned to the switch core), plus
// memring ports and the memring control socket when it has any.
type daemonSpec struct {
	Bin      string
	CPU      int
	Veth     []e2e.VswitchdPort // AF_XDP ports on root-namespace veth ends
	Memring  []string           // memring port names
	RingSize int                // memring descriptors per ring
}

// daemon is a running vswitchd started by this harness. It is stopped by
// PID (Stop), and gets SIGTERM if the harness dies (parent-death signal).
type daemon struct {
	dir        string
	cfgPath    string
	cfgText    string
	ctl        string
	apiSock    string
	memSock    string
	cmd        *exec.Cmd
	done       chan struct{}
	waitErr    error
	keepDir    bool
	log        io.Writer
	Command    string // how it was started, for the report
	stopReport string
}

// render writes the config: e2e.VswitchdConfig for the common part (same
// worker settings as bench/vsbench) and the memring lines after it.
func (s daemonSpec) render(dir string) (text, apiSock, memSock string) {
	apiSock = filepath.Join(dir, "vswitchd.sock")
	memSock = filepath.Join(dir, "memring.sock")
	base := e2e.VswitchdConfig{
		APISocket: apiSock,
		StateFile: filepath.Join(dir, "state.json"),
		WorkerCPU: s.CPU,
		PollMode:  "busy",
		Ports:     s.Veth,
	}
	var b strings.Builder
	b.Write(base.Render())
	for _, name := range s.Memring {
		fmt.Fprintf(&b, "  - {name: %s, type: memring, memring: {queue_pairs: 1, ring_size: %d}}\n",
			strconv.Quote(name), s.RingSize)
	}
	if len(s.Memring) > 0 {
		fmt.Fprintf(&b, "memring_socket: %s\n", strconv.Quote(memSock))
	}
	return b.String(), apiSock, memSock
}

// startDaemon writes the config into a fresh temp dir and starts vswitchd
// with every thread bound to s.CPU (taskset execs the daemon, so the PID we
// hold is the daemon's), then waits until "vswitchctl status" answers.
func startDaemon(ctx context.Context, s daemonSpec, log io.Writer) (d *daemon, err error) {
	bin := filepath.Join(s.Bin, "vswitchd")
	ctl := filepath.Join(s.Bin, "vswitchctl")
	for _, p := range []string{bin, ctl} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("find %s (make build): %w", p, err)
		}
	}
	dir, err := os.MkdirTemp("", "vsb-mre2e-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	d = &daemon{dir: dir, ctl: ctl, log: log}
	defer func() {
		if err != nil {
			d.keepDir = true
			err = errors.Join(err, d.Stop())
			d = nil
		}
	}()
	d.cfgText, d.apiSock, d.memSock = s.render(dir)
	d.cfgPath = filepath.Join(dir, "vswitchd.yaml")
	if err := os.WriteFile(d.cfgPath, []byte(d.cfgText), 0o644); err != nil {
		return d, fmt.Errorf("write config: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "vswitchd.log"))
	if err != nil {
		return d, fmt.Errorf("create log: %w", err)
	}
	defer logf.Close()
	args := []string{"-c", strconv.Itoa(s.CPU), bin, "--config", d.cfgPath}
	d.Command = "taskset " + strings.Join(args, " ")
	d.cmd = exec.Command("taskset", args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Own process group: ^C reaches only the harness, which stops the
	// daemon by PID. Parent death (SIGKILL of the harness): SIGTERM.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return d, fmt.Errorf("start vswitchd: %w", err)
	}
	d.done = make(chan struct{})
	go func() { d.waitErr = d.cmd.Wait(); close(d.done) }()
	fmt.Fprintf(log, "  vswitchd pid %d, config %s\n", d.cmd.Process.Pid, d.cfgPath)
	return d, d.waitReady(ctx, 15*time.Second)
}

func (d *daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := exec.CommandContext(cctx, d.ctl, "--socket", d.apiSock, "status").CombinedOutput()
		ccancel()
		if err == nil {
			return nil
		}
		last = fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		select {
		case <-d.done:
			return fmt.Errorf("vswitchd exited before ready (%v); log: %s", d.waitErr, d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("vswitchd not ready after %s: %s; log: %s", timeout, last, d.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Alive reports an error once the daemon has exited.
func (d *daemon) Alive() error {
	select {
	case <-d.done:
		return fmt.Errorf("vswitchd exited during the run (%v); log: %s", d.waitErr, d.logTail())
	default:
		return nil
	}
}

// Stats is "vswitchctl stats" (per-port counters, drops by reason).
func (d *daemon) Stats(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.ctl, "--socket", d.apiSock, "stats").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("vswitchctl stats: %v: %s", err, out)
	}
	return string(out)
}

// Stop sends SIGTERM to the daemon's PID, waits up to 10 s, then SIGKILLs
// it, and removes the temp dir unless something failed.
func (d *daemon) Stop() error {
	var err error
	if d.cmd != nil && d.done != nil {
		select {
		case <-d.done:
			err = fmt.Errorf("vswitchd had already exited: %v", d.waitErr)
		default:
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
				if d.waitErr != nil {
					err = fmt.Errorf("vswitchd exit after SIGTERM: %w; log: %s", d.waitErr, d.logTail())
				}
			case <-time.After(10 * time.Second):
				d.cmd.Process.Kill()
				<-d.done
				err = fmt.Errorf("vswitchd ignored SIGTERM for 10 s, killed")
			}
		}
	}
	d.cmd = nil
	if d.dir != "" {
		if err != nil || d.keepDir {
			fmt.Fprintf(d.log, "  vswitchd config and log kept in %s\n", d.dir)
		} else {
			os.RemoveAll(d.dir)
		}
		d.dir = ""
	}
	return err
}

func (d *daemon) logTail() string {
	data, err := os.ReadFile(filepath.Join(d.dir, "vswitchd.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, " | ")
}
