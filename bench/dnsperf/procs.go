package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// proc is a background process of the run (vswitchd, dnsmasq), signalled
// only by its own PID, with its output in a file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

// startProc starts argv with its output in logPath. Own process group (a
// terminal ^C reaches only the harness, which then stops it) and a
// parent-death SIGTERM (a killed harness does not leave it running).
func startProc(name, logPath string, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	p := &proc{name: name, logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// log returns the last lines of the process's output.
func (p *proc) log() string {
	data, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, " | ")
}

// stop sends SIGTERM, waits 10 s, then SIGKILLs. It returns an error when
// the process did not exit 0 on SIGTERM (or had died before).
func (p *proc) stop() error {
	if p.exited() {
		return fmt.Errorf("%s had exited before the end (%v): %s", p.name, p.waitErr, p.log())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s exit after SIGTERM: %w: %s", p.name, p.waitErr, p.log())
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for 10 s, killed: %s", p.name, p.log())
	}
}

// startDnsmasq runs dnsmasq in the server namespace on serverIP:53,
// pinned to cpu (at the harness's niceness), answering outsideName and
// (never asked, unless the switch fails to answer its own zone) the
// switch's zone. No query logging: it would cost dnsmasq more than the
// answers.
func startDnsmasq(ctx context.Context, t *topology, dir string, cpu int) (*proc, error) {
	argv := append([]string{"ip", "netns", "exec", t.DstNS}, pinned(cpu,
		"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=53", "--listen-address="+serverIP.String(), "--bind-interfaces", "--user=root",
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--log-facility=-",
		"--address=/"+outsideName+"/"+outsideAnswer,
		"--address=/"+zone+"/"+dnsmasqShadow)...)
	p, err := startProc("dnsmasq", filepath.Join(dir, "dnsmasq.log"), argv...)
	if err != nil {
		return nil, err
	}
	// Ready when it answers; the topology is up, so a bridge-less query
	// from the server namespace itself reaches it.
	err = waitFor(ctx, 10*time.Second, func() error {
		if p.exited() {
			return fmt.Errorf("dnsmasq exited (%v): %s", p.waitErr, p.log())
		}
		return nsRun(ctx, t.DstNS, "sh", "-c", "ss -Hlun | grep -q '"+serverIP.String()+":53 '")
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// vswitchd is the daemon under test with its control socket.
type vswitchd struct {
	*proc
	ctl, sock string
}

// vswitchdConfig is e2e's benchmark config (ports, one worker) plus the
// peephole section with the switch's zone.
func vswitchdConfig(t *topology, dir string, cpu int, pollMode string) []byte {
	cfg := e2e.VswitchdConfig{
		APISocket: filepath.Join(dir, "vswitchd.sock"),
		StateFile: filepath.Join(dir, "state.json"),
		WorkerCPU: cpu,
		PollMode:  pollMode,
		Ports:     []e2e.VswitchdPort{{Name: "client", Interface: t.P0}, {Name: "server", Interface: t.P1}},
	}
	b := cfg.Render()
	b = append(b, fmt.Sprintf(`peephole:
  responders: [arp, nd, dns]
  dns:
    zones:
      - name: %s
    records:
      - {name: %s, type: A, value: %s, ttl: 60}
`, zone, switchName, switchAnswer)...)
	return b
}

// startVswitchd writes the config and runs vswitchd pinned (whole
// process) to the server core (at the harness's niceness), then waits for
// `vswitchctl status`.
func startVswitchd(ctx context.Context, s Settings, t *topology, dir string) (*vswitchd, error) {
	cfgPath := filepath.Join(dir, "vswitchd.yaml")
	if err := os.WriteFile(cfgPath, vswitchdConfig(t, dir, s.ServerCPU, s.PollMode), 0o644); err != nil {
		return nil, err
	}
	v := &vswitchd{ctl: filepath.Join(s.Bin, "vswitchctl"), sock: filepath.Join(dir, "vswitchd.sock")}
	var err error
	v.proc, err = startProc("vswitchd", filepath.Join(dir, "vswitchd.log"),
		pinned(s.ServerCPU, filepath.Join(s.Bin, "vswitchd"), "--config", cfgPath)...)
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, 30*time.Second, func() error {
		if v.exited() {
			return fmt.Errorf("vswitchd exited before ready (%v): %s", v.waitErr, v.log())
		}
		_, err := v.run(ctx, "status")
		return err
	})
	if err != nil {
		v.stop()
		return nil, err
	}
	return v, nil
}

// run runs vswitchctl and returns its stdout.
func (v *vswitchd) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.ctl, append([]string{"--socket", v.sock}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("vswitchctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// dnsCounters are the switch's DNS responder counters that the report
// quotes: how many queries it answered itself and how many it passed on.
type dnsCounters struct {
	Answered    uint64 `json:"answered"`
	OutsideZone uint64 `json:"passed_outside_zone"`
	// BusyPct is the busiest worker's busy share (batch processing
	// including the TX kicks, which in copy mode carry the kernel's
	// delivery to the client) over the daemon's last one-second rate
	// sample; RxPackets and Batches give the mean batch size.
	BusyPct            float64
	RxPackets, Batches uint64
}

// dnsStats reads the peephole DNS counters from `vswitchctl -o json stats`.
func (v *vswitchd) dnsStats(ctx context.Context) (dnsCounters, error) {
	out, err := v.run(ctx, "-o", "json", "stats")
	if err != nil {
		return dnsCounters{}, err
	}
	var st struct {
		Workers []struct {
			BusyPct   float64 `json:"busy_pct"`
			RxPackets uint64  `json:"rx_packets"`
			Batches   uint64  `json:"batches"`
		} `json:"workers"`
		Peephole *struct {
			DNS struct {
				Answered uint64            `json:"answered"`
				Passed   map[string]uint64 `json:"passed"`
			} `json:"dns"`
		} `json:"peephole"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return dnsCounters{}, fmt.Errorf("decode vswitchctl stats: %w", err)
	}
	if st.Peephole == nil {
		return dnsCounters{}, fmt.Errorf("vswitchctl stats has no peephole counters")
	}
	c := dnsCounters{Answered: st.Peephole.DNS.Answered, OutsideZone: st.Peephole.DNS.Passed["outside_zone"]}
	for _, w := range st.Workers {
		c.BusyPct = max(c.BusyPct, w.BusyPct)
		c.RxPackets += w.RxPackets
		c.Batches += w.Batches
	}
	return c, nil
}

// waitFor polls check every 50 ms until it returns nil, ctx ends or
// timeout passes; the error is check's last.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
