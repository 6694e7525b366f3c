package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/switch/affinity"
)

// Options select what a run measures.
type Options struct {
	Bin      string   // directory holding vswitchd and vswitchctl
	Cases    []string // subset of AllCases, measured in this order
	Sizes    []int    // frame sizes, L2 bytes without FCS
	Flows    []int    // UDP source-port counts
	Reps     int
	Duration time.Duration // per repetition
	GenCPU   int           // generator core
	SwCPU    int           // vswitchd worker / testpmd forwarding lcore / OVS PMD core
	// PinSwitch binds every vswitchd thread to SwCPU, as the anchors did for
	// OVS; otherwise the worker is pinned to SwCPU and the daemon's control
	// threads to GenCPU by its config, as testpmd's main lcore.
	PinSwitch bool
	// RingSize is vswitchd's AF_XDP ring size per port (0: its default);
	// TestpmdRing is testpmd's --rxd/--txd (0: the PMD's default, 2048).
	RingSize    int
	TestpmdRing int
	// GenCommand is the command prefix that runs GenMain in a new process,
	// e.g. {"/proc/self/exe", "gen"}; "ip netns exec SRC" is put before it.
	GenCommand []string
	Checksum   bool // UDP checksums in generated frames (false: 0)
	// Interleave measures in rounds: each round starts every case in turn
	// and measures one repetition of each size and flow count, so a slow
	// spell of the host spreads over all cases instead of landing on one.
	Interleave   bool
	ReadyTimeout time.Duration
	PingTimeout  time.Duration
	Log          io.Writer // progress lines; nil discards
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 15 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	if len(o.Cases) == 0 || len(o.Sizes) == 0 || len(o.Flows) == 0 || o.Reps < 1 || o.Duration <= 0 {
		return errors.New("options: need cases, sizes, flows, reps >= 1 and a duration")
	}
	for _, c := range o.Cases {
		if _, err := newSwitch(c, o); err != nil {
			return err
		}
	}
	for _, s := range o.Sizes {
		if s < MinFrameSize || s > MaxFrameSize {
			return fmt.Errorf("%w: size %d is not in %d..%d", ErrFrameSpec, s, MinFrameSize, MaxFrameSize)
		}
	}
	for _, f := range o.Flows {
		if f < 1 || f > 0xffff-genSrcPort {
			return fmt.Errorf("%w: flows %d", ErrFrameSpec, f)
		}
	}
	n := runtime.NumCPU()
	if o.GenCPU < 0 || o.GenCPU >= n || o.SwCPU < 0 || o.SwCPU >= n {
		return fmt.Errorf("options: gen cpu %d / switch cpu %d outside 0..%d", o.GenCPU, o.SwCPU, n-1)
	}
	if len(o.GenCommand) == 0 {
		return errors.New("options: no generator command")
	}
	return nil
}

// Generator frame constants: UDP 10.201.1.1:1024.. -> 10.201.1.2:9 (discard).
const (
	genSrcPort = 1024
	genDstPort = 9
)

// Rep is one measured repetition.
type Rep struct {
	Sent     uint64    `json:"sent"`     // generator packets
	Received uint64    `json:"received"` // sink packets
	Elapsed  float64   `json:"elapsed_s"`
	RxMpps   float64   `json:"rx_mpps"`
	TxMpps   float64   `json:"tx_mpps"`
	CPUBusy  []float64 `json:"cpu_busy_pct"`
}

// CaseResult is every repetition of one case at one size and flow count.
type CaseResult struct {
	Case     string   `json:"case"`
	Label    string   `json:"label"`
	Note     string   `json:"note"`
	Size     int      `json:"size"`
	Flows    int      `json:"flows"`
	Reps     []Rep    `json:"reps"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Diagnostics is the switch's own view after the repetitions (vswitchd:
	// "vswitchctl stats", counters cumulative since the daemon started).
	Diagnostics string `json:"diagnostics,omitempty"`
}

// diagnoser is a Switch that can describe its state (counters, drops).
type diagnoser interface {
	Diagnose(ctx context.Context) string
}

// Run sets up the topology, measures every case in o.Cases one after the
// other on it, and tears it down. A failing case is recorded in its results
// (Error) and the run goes on; Run itself fails only when the topology
// cannot be built or ctx ends (the results so far are returned).
func Run(ctx context.Context, o Options) (results []CaseResult, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	names := NewNames(os.Getpid())
	fmt.Fprintf(o.Log, "topology %s: %s/%s <-> %s [switch] %s <-> %s/%s\n",
		names.ID, names.SrcNS, names.S0, names.P0, names.P1, names.D1, names.DstNS)
	topo, err := SetupTopology(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("set up topology: %w", err)
	}
	defer func() {
		if cerr := topo.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tear down topology: %w", cerr))
		}
	}()
	if !o.Interleave {
		for _, c := range o.Cases {
			rs, cerr := runCase(ctx, &o, topo, c)
			results = append(results, rs...)
			if cerr != nil {
				return results, fmt.Errorf("interrupted: %w", cerr)
			}
		}
		return results, nil
	}
	one := o
	one.Reps = 1
	broken := map[string]bool{} // measured nothing in a round: not retried
	for round := 1; round <= o.Reps; round++ {
		fmt.Fprintf(o.Log, "round %d of %d\n", round, o.Reps)
		for _, c := range o.Cases {
			if broken[c] {
				continue
			}
			rs, cerr := runCase(ctx, &one, topo, c)
			results = mergeRound(results, rs)
			if cerr != nil {
				return results, fmt.Errorf("interrupted: %w", cerr)
			}
			broken[c] = !slices.ContainsFunc(rs, func(r CaseResult) bool { return len(r.Reps) > 0 })
		}
	}
	return results, nil
}

// mergeRound adds one round's results to the run's: repetitions, errors and
// warnings accumulate per case, size and flow count; the diagnostics are
// the latest.
func mergeRound(all, round []CaseResult) []CaseResult {
	for _, r := range round {
		i := slices.IndexFunc(all, func(a CaseResult) bool {
			return a.Case == r.Case && a.Size == r.Size && a.Flows == r.Flows
		})
		if i < 0 {
			all = append(all, r)
			continue
		}
		a := &all[i]
		a.Reps = append(a.Reps, r.Reps...)
		if r.Error != "" && !strings.Contains(a.Error, r.Error) {
			a.Error = strings.TrimPrefix(a.Error+"; "+r.Error, "; ")
		}
		a.Warnings = append(a.Warnings, r.Warnings...)
		if r.Diagnostics != "" {
			a.Diagnostics = r.Diagnostics
		}
	}
	return all
}

// runCase measures one case at every size and flow count. The returned error
// is only ctx's: anything else is recorded in the results.
func runCase(ctx context.Context, o *Options, topo *Topology, name string) ([]CaseResult, error) {
	sw, err := newSwitch(name, o)
	if err != nil {
		return nil, err
	}
	return runSwitch(ctx, o, topo, name, sw)
}

// runSwitch is runCase with the switch already made.
func runSwitch(ctx context.Context, o *Options, topo *Topology, name string, sw Switch) ([]CaseResult, error) {
	var rs []CaseResult
	for _, size := range o.Sizes {
		for _, flows := range o.Flows {
			rs = append(rs, CaseResult{Case: name, Label: CaseLabel(name), Note: sw.Note(), Size: size, Flows: flows})
		}
	}
	failAll := func(msg string) {
		for i := range rs {
			if rs[i].Error == "" {
				rs[i].Error = msg
			}
		}
	}
	fmt.Fprintf(o.Log, "case %s: start\n", CaseLabel(name))
	stop := func() {
		if err := sw.Stop(); err != nil {
			fmt.Fprintf(o.Log, "case %s: stop: %v\n", CaseLabel(name), err)
			for i := range rs {
				rs[i].Warnings = append(rs[i].Warnings, "stop: "+err.Error())
			}
		}
	}
	if err := sw.Start(ctx, topo); err != nil {
		stop()
		failAll("start: " + err.Error())
		fmt.Fprintf(o.Log, "case %s: %v\n", CaseLabel(name), err)
		return rs, ctx.Err()
	}
	defer stop()
	// Proves forwarding both ways before measuring and, for a learning
	// switch, fills its FDB with both MACs.
	if err := pingCheck(ctx, topo, o.PingTimeout); err != nil {
		failAll("forwarding check: " + err.Error())
		fmt.Fprintf(o.Log, "case %s: %v\n", CaseLabel(name), err)
		return rs, ctx.Err()
	}
	for i := range rs {
		r := &rs[i]
		for rep := 1; rep <= o.Reps; rep++ {
			if err := sw.Alive(); err != nil {
				r.Error = err.Error()
				break
			}
			m, err := measureRep(ctx, o, topo, r.Size, r.Flows)
			if ctx.Err() != nil {
				r.Error = "interrupted"
				return rs, ctx.Err()
			}
			if err != nil {
				r.Error = err.Error()
				fmt.Fprintf(o.Log, "  %s %d B %d flows rep %d: %v\n", r.Label, r.Size, r.Flows, rep, err)
				break
			}
			// A switch that died during the repetition forwarded only part
			// of it: that rate is not the switch's, so it is not kept.
			if err := sw.Alive(); err != nil {
				r.Error = fmt.Sprintf("switch died during repetition %d: %v", rep, err)
				fmt.Fprintf(o.Log, "  %s %d B %d flows rep %d: %s\n", r.Label, r.Size, r.Flows, rep, r.Error)
				break
			}
			r.Reps = append(r.Reps, m)
			fmt.Fprintf(o.Log, "  %s %d B %d flows rep %d: rx %.3f Mpps, gen tx %.3f Mpps, cpu %s\n",
				r.Label, r.Size, r.Flows, rep, m.RxMpps, m.TxMpps, fmtCPU(m.CPUBusy))
			if m.Received == 0 {
				r.Error = fmt.Sprintf("sink received 0 of %d packets", m.Sent)
				break
			}
		}
		if d, ok := sw.(diagnoser); ok && sw.Alive() == nil {
			r.Diagnostics = d.Diagnose(ctx)
			fmt.Fprintf(o.Log, "  %s %d B %d flows, switch counters:\n%s\n", r.Label, r.Size, r.Flows,
				indent(r.Diagnostics, "    "))
		}
	}
	return rs, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

func fmtCPU(b []float64) string {
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = fmt.Sprintf("%d:%.0f%%", i, v)
	}
	return strings.Join(parts, " ")
}

// pingCheck pings the destination from the source namespace until one echo
// comes back or timeout passes. ICMP passes the sink, so replies come back
// through the switch.
func pingCheck(ctx context.Context, t *Topology, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		last = run(ctx, "ip", "netns", "exec", t.SrcNS, "ping", "-n", "-q", "-c", "1", "-W", "1", DstIP.String())
		if last == nil {
			return nil
		}
		select { // ping can fail at once (no route yet): do not spin
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no ping reply %s -> %s within %s: %v", SrcIP, DstIP, timeout, last)
}

// measureRep runs the generator once and counts what reached the sink.
func measureRep(ctx context.Context, o *Options, t *Topology, size, flows int) (Rep, error) {
	cfg := GenConfig{
		Ifname: t.S0,
		Frame: FrameSpec{
			Size: size, Flows: flows, SrcMAC: SrcMAC, DstMAC: DstMAC, SrcIP: SrcIP, DstIP: DstIP,
			SrcPort: genSrcPort, DstPort: genDstPort, Checksum: o.Checksum,
		},
		Duration: o.Duration,
		CPU:      o.GenCPU,
		CallTime: 500 * time.Millisecond,
	}
	rx0, err := t.SinkCount()
	if err != nil {
		return Rep{}, err
	}
	g, err := runGenChild(ctx, o, t, cfg)
	if err != nil {
		return Rep{}, err
	}
	rx1, err := t.WaitSinkQuiet(ctx, time.Second)
	if err != nil {
		return Rep{}, err
	}
	m := Rep{Sent: g.Sent, Received: rx1 - rx0, Elapsed: g.Elapsed, TxMpps: g.Mpps, CPUBusy: g.CPUBusy}
	if g.Elapsed > 0 {
		m.RxMpps = float64(m.Received) / g.Elapsed / 1e6
	}
	if g.Sent == 0 {
		return m, fmt.Errorf("%w: sent 0 packets", ErrGenerator)
	}
	return m, nil
}

// runGenChild runs the generator as "ip netns exec SRC <GenCommand> <flags>"
// started on the generator core, and parses its JSON result.
func runGenChild(ctx context.Context, o *Options, t *Topology, cfg GenConfig) (GenResult, error) {
	return RunGenChild(ctx, t.SrcNS, o.GenCPU, cfg.Duration, append(append([]string(nil), o.GenCommand...), GenArgs(cfg)...))
}

// RunGenChild runs a generator child, "ip netns exec NS ARGV...", started
// on core cpu (< 0: the child pins itself), allowing it dur plus a margin,
// and parses the GenResult it prints as JSON.
func RunGenChild(ctx context.Context, ns string, cpu int, dur time.Duration, argv []string) (GenResult, error) {
	var res GenResult
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Own process group (terminal ^C goes to the harness only); SIGKILL if
	// the harness dies. On cancel: SIGTERM, which ends it after the current
	// BPF_PROG_RUN call (<= 0.5 s), then SIGKILL after WaitDelay.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	var err error
	if cpu >= 0 {
		err = affinity.StartPinned(cmd, cpu)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return res, fmt.Errorf("%w: start: %v", ErrGenerator, err)
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("%w: %v: %s", ErrGenerator, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("%w: bad output %q: %v", ErrGenerator, stdout.String(), err)
	}
	return res, nil
}
