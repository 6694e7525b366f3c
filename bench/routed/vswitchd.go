package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// vswitchdRouter runs vswitchd in the router namespace with the router
// config, every thread bound to the switch core (taskset, as bench/e2e's
// PinSwitch), one busy-polling worker pinned there by the config.
type vswitchdRouter struct {
	bin          string
	cpu          int
	acl          bool
	readyTimeout time.Duration
	log          io.Writer

	dir     string
	cfgText string
	ctl     string
	sock    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	keepDir bool
	command string
}

func (v *vswitchdRouter) Note() string {
	n := fmt.Sprintf("vswitchd router in its own netns: AF_XDP, 1 busy-poll worker, whole process on cpu %d; p0 access VLAN 1, p1 access VLAN 2", v.cpu)
	if v.acl {
		n += fmt.Sprintf("; ACL: %d rules `deny udp dst port %d..%d`, one each, default allow", denyCount, denyFirst, denyFirst+denyCount-1)
	} else {
		n += "; no ACL rules"
	}
	return n
}

// Config returns the rendered config with the ACL abbreviated, and the
// command line.
func (v *vswitchdRouter) Config() string {
	if v.cfgText == "" {
		return ""
	}
	return v.command + "\n\n" + Abbreviated(v.cfgText)
}

// daemonConfig is the router config of this case on topology t.
func (v *vswitchdRouter) daemonConfig(t *Topology, dir string) DaemonConfig {
	c := DaemonConfig{
		APISocket: filepath.Join(dir, "vswitchd.sock"),
		StateFile: filepath.Join(dir, "state.json"),
		WorkerCPU: v.cpu,
		Ports:     []PortConfig{{Name: "p0", Interface: t.P0, VLAN: 1}, {Name: "p1", Interface: t.P1, VLAN: 2}},
		RouterMAC: RouterMAC.String(),
		Ifaces: []RouterIface{
			{Name: "r1", VLAN: 1, Address: fmt.Sprintf("%s/%d", GenGW, prefixLen)},
			{Name: "r2", VLAN: 2, Address: fmt.Sprintf("%s/%d", SinkGW, prefixLen)},
		},
		FlowCacheEntries: 262144,
		FlowIdle:         30 * time.Second,
		// Both hosts are bound: the sink for the measured direction, the
		// generator for the ping replies of the forwarding check.
		Bindings: []Binding{
			{IP: SinkIP.String(), MAC: SinkMAC.String(), VLAN: 2, Port: "p1"},
			{IP: GenIP.String(), MAC: GenMAC.String(), VLAN: 1, Port: "p0"},
		},
	}
	if v.acl {
		c.DenyUDPDstPorts = denyPorts(denyFirst, denyCount)
	}
	return c
}

// Start writes the config into a fresh temp dir and starts
// "ip netns exec RTR taskset -c CPU vswitchd --config FILE" (both exec, so
// the PID held is the daemon's), then waits until "vswitchctl status"
// answers or the daemon exits (e.g. rejecting the config).
func (v *vswitchdRouter) Start(ctx context.Context, t *Topology) error {
	daemon := filepath.Join(v.bin, "vswitchd")
	v.ctl = filepath.Join(v.bin, "vswitchctl")
	for _, p := range []string{daemon, v.ctl} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("find %s (make build): %w", p, err)
		}
	}
	var err error
	if v.dir, err = os.MkdirTemp("", "vsr-"); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	cfg := v.daemonConfig(t, v.dir)
	v.sock = cfg.APISocket
	v.cfgText = cfg.Render()
	cfgPath := filepath.Join(v.dir, "vswitchd.yaml")
	if err := os.WriteFile(cfgPath, []byte(v.cfgText), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	v.logPath = filepath.Join(v.dir, "vswitchd.log")
	logf, err := os.Create(v.logPath)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	args := []string{"netns", "exec", t.RtrNS, "taskset", "-c", strconv.Itoa(v.cpu), daemon, "--config", cfgPath}
	v.command = "ip " + strings.Join(args, " ")
	v.cmd = exec.Command("ip", args...)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	// Own process group: ^C reaches only the harness, which stops the
	// daemon by PID. Parent death (SIGKILL of the harness): SIGTERM.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := v.cmd.Start(); err != nil {
		v.cmd = nil
		return fmt.Errorf("start vswitchd: %w", err)
	}
	v.done = make(chan struct{})
	go func() { v.waitErr = v.cmd.Wait(); close(v.done) }()
	fmt.Fprintf(v.log, "  vswitchd pid %d, config %s, log %s\n", v.cmd.Process.Pid, cfgPath, v.logPath)
	return v.waitReady(ctx)
}

// waitReady polls "vswitchctl status" until it succeeds, the daemon exits,
// or the ready timeout passes.
func (v *vswitchdRouter) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.readyTimeout)
	defer cancel()
	var last string
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := exec.CommandContext(cctx, v.ctl, "--socket", v.sock, "status").CombinedOutput()
		ccancel()
		if err == nil {
			return nil
		}
		last = fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		select {
		case <-v.done:
			v.keepDir = true
			return fmt.Errorf("vswitchd exited before ready (%v); log: %s", v.waitErr, v.logTail())
		case <-ctx.Done():
			v.keepDir = true
			return fmt.Errorf("vswitchd not ready after %s: last vswitchctl status: %s; log: %s", v.readyTimeout, last, v.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Alive reports an error once the daemon has exited.
func (v *vswitchdRouter) Alive() error {
	if v.done == nil {
		return fmt.Errorf("vswitchd not started")
	}
	select {
	case <-v.done:
		v.keepDir = true
		return fmt.Errorf("vswitchd exited during the run (%v); log: %s", v.waitErr, v.logTail())
	default:
		return nil
	}
}

// Diagnose returns "vswitchctl stats" (cumulative since the daemon started).
func (v *vswitchdRouter) Diagnose(ctx context.Context) string {
	if v.Alive() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, v.ctl, "--socket", v.sock, "stats").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("vswitchctl stats: %v: %s", err, out)
	}
	return string(out)
}

// Stop sends SIGTERM by PID, waits, and SIGKILLs after 10 s. A daemon that
// does not exit cleanly on SIGTERM is an error. The temp dir (config, log)
// is kept after any failure.
func (v *vswitchdRouter) Stop() error {
	var err error
	if v.cmd != nil && v.done != nil {
		select {
		case <-v.done:
			if !v.keepDir { // died unnoticed
				err = fmt.Errorf("vswitchd had already exited: %v; log: %s", v.waitErr, v.logTail())
			}
		default:
			v.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-v.done:
				if v.waitErr != nil {
					err = fmt.Errorf("vswitchd exit after SIGTERM: %w; log: %s", v.waitErr, v.logTail())
				}
			case <-time.After(10 * time.Second):
				v.cmd.Process.Kill()
				<-v.done
				err = fmt.Errorf("vswitchd ignored SIGTERM for 10 s, killed; log: %s", v.logTail())
			}
		}
	}
	v.cmd, v.done = nil, nil
	if v.dir != "" {
		if err != nil || v.keepDir {
			fmt.Fprintf(v.log, "  vswitchd config and log kept in %s\n", v.dir)
		} else {
			os.RemoveAll(v.dir)
		}
		v.dir = ""
	}
	return err
}

// logTail returns the last lines of the daemon's log, joined with " | ".
func (v *vswitchdRouter) logTail() string {
	data, err := os.ReadFile(v.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	if s := strings.Join(lines, " | "); s != "" {
		return s
	}
	return "(empty)"
}
