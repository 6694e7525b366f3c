package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
)

// VswitchdConfig is the daemon config the harness writes: one busy-polling
// worker pinned to the switch core, one port per root-side veth.
type VswitchdConfig struct {
	APISocket string
	StateFile string
	WorkerCPU int
	// ControlCPUs, if set, is where the daemon puts its other threads.
	ControlCPUs []int
	PollMode    string
	// RingSize is each port's AF_XDP ring size (0: the daemon's default).
	RingSize int
	Ports    []VswitchdPort
}

// VswitchdPort is one port line of the config.
type VswitchdPort struct{ Name, Interface string }

// Render returns the YAML text. Strings are quoted with strconv.Quote, which
// is valid YAML double-quoted scalar syntax for the ASCII names used here.
func (c VswitchdConfig) Render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# written by bench/vsbench for one benchmark run\n")
	fmt.Fprintf(&b, "api_socket: %s\n", strconv.Quote(c.APISocket))
	fmt.Fprintf(&b, "state_file: %s\n", strconv.Quote(c.StateFile))
	fmt.Fprintf(&b, "workers:\n  count: 1\n  cpus: [%d]\n  poll_mode: %s\n", c.WorkerCPU, c.PollMode)
	if len(c.ControlCPUs) > 0 {
		// A Go int slice prints as "[0 2]"; YAML's flow sequence wants commas.
		cpus := make([]string, len(c.ControlCPUs))
		for i, cpu := range c.ControlCPUs {
			cpus[i] = strconv.Itoa(cpu)
		}
		fmt.Fprintf(&b, "  control_cpus: [%s]\n", strings.Join(cpus, ", "))
	}
	fmt.Fprintf(&b, "ports:\n")
	for _, p := range c.Ports {
		fmt.Fprintf(&b, "  - name: %s\n    interface: %s\n", strconv.Quote(p.Name), strconv.Quote(p.Interface))
		if c.RingSize > 0 {
			fmt.Fprintf(&b, "    ring_size: %d\n", c.RingSize)
		}
	}
	return b.Bytes()
}

// vswitchdSwitch runs the real daemon as the switch under test.
type vswitchdSwitch struct {
	bin          string
	cpu          int
	controlCPU   int
	pinAll       bool
	ring         int
	readyTimeout time.Duration
	log          io.Writer

	dir  string
	ctl  string
	sock string
	child
}

func (v *vswitchdSwitch) Note() string {
	n := fmt.Sprintf("AF_XDP, 1 busy-poll worker on cpu %d", v.cpu)
	if v.pinAll {
		n += ", whole process pinned"
	} else {
		n += fmt.Sprintf(", control threads on cpu %d", v.controlCPU)
	}
	ring := v.ring
	if ring == 0 {
		ring = vswitch.DefaultRingSize
	}
	return n + fmt.Sprintf(", %d-descriptor rings", ring)
}

func (v *vswitchdSwitch) Start(ctx context.Context, t *Topology) error {
	daemon, err := binPath(v.bin, "vswitchd")
	if err != nil {
		return err
	}
	ctl, err := binPath(v.bin, "vswitchctl")
	if err != nil {
		return err
	}
	if v.dir, err = os.MkdirTemp("", "vsb-"); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	sock := filepath.Join(v.dir, "vswitchd.sock")
	v.ctl, v.sock = ctl, sock
	cfg := VswitchdConfig{
		APISocket: sock,
		StateFile: filepath.Join(v.dir, "state.json"),
		WorkerCPU: v.cpu,
		PollMode:  "busy",
		RingSize:  v.ring,
		Ports:     []VswitchdPort{{"p0", t.P0}, {"p1", t.P1}},
	}
	if !v.pinAll {
		cfg.ControlCPUs = []int{v.controlCPU}
	}
	cfgPath := filepath.Join(v.dir, "vswitchd.yaml")
	if err := os.WriteFile(cfgPath, cfg.Render(), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	v.name = "vswitchd"
	v.logPath = filepath.Join(v.dir, "vswitchd.log")
	cpu := -1
	if v.pinAll {
		cpu = v.cpu
	}
	if err := v.start(exec.Command(daemon, "--config", cfgPath), cpu); err != nil {
		return err
	}
	fmt.Fprintf(v.log, "  vswitchd pid %d, config %s, log %s\n", v.cmd.Process.Pid, cfgPath, v.logPath)
	return v.waitReady(ctx, ctl, sock)
}

// waitReady polls "vswitchctl status" until it succeeds, the daemon exits,
// or the deadline passes.
func (v *vswitchdSwitch) waitReady(ctx context.Context, ctl, sock string) error {
	ctx, cancel := context.WithTimeout(ctx, v.readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := exec.CommandContext(cctx, ctl, "--socket", sock, "status").CombinedOutput()
		ccancel()
		if err == nil {
			return nil
		}
		last = fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		select {
		case <-v.done:
			v.failed = true
			return fmt.Errorf("vswitchd exited before ready (%v); log: %s", v.waitErr, v.logTail())
		case <-ctx.Done():
			v.failed = true
			return fmt.Errorf("vswitchd not ready after %s: last vswitchctl status: %s; log: %s",
				v.readyTimeout, last, v.logTail())
		case <-tick.C:
		}
	}
}

// Diagnose returns "vswitchctl stats": per-port, XSK and worker counters
// show where packets went when rx is low (e.g. fill-ring-empty drops).
func (v *vswitchdSwitch) Diagnose(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, v.ctl, "--socket", v.sock, "stats").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("vswitchctl stats: %v: %s", err, out)
	}
	return string(out)
}

func (v *vswitchdSwitch) Alive() error { return v.alive() }

// Stop sends SIGTERM by PID, waits, and escalates to SIGKILL after 10 s.
// A non-clean exit is an error: the daemon must shut down cleanly.
func (v *vswitchdSwitch) Stop() error {
	err := v.terminate(func(err error) bool { return err == nil })
	if v.dir != "" {
		if err != nil || v.failed {
			fmt.Fprintf(v.log, "  vswitchd config and log kept in %s\n", v.dir)
		} else {
			os.RemoveAll(v.dir)
		}
		v.dir = ""
	}
	return err
}
