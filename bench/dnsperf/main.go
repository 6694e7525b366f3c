// Command dnsperf (bench/dnsperf, run by make bench-dns) is the DNS
// benchmark of the peephole DNS responder: how fast vswitchd answers A
// queries for its own zones compared with a real DNS server (dnsmasq)
// behind it, and behind a Linux bridge, all in one run on one topology:
//
//	netns client: dnsperf --veth-- [vswitchd | Linux bridge] --veth-- netns server: dnsmasq
//
// Cases, in order:
//
//	switch            vswitchd answers an in-zone A query itself (peephole DNS)
//	dnsmasq-vswitchd  the same queries for a name outside the switch's zones,
//	                  answered by dnsmasq in the server namespace, through vswitchd
//	dnsmasq-bridge    the reference: dnsmasq behind a Linux bridge
//
// Every case sends to the same server address (dnsmasq's); only the name
// decides who answers. The run goes in rounds, each case once per round,
// so that the load of a shared machine hits every case alike. Each
// repetition runs dnsperf for -dur (throughput,
// dnsperf's mean latency) with a Go prober alongside at a fixed moderate
// rate that records every round trip (p50/p99 under load, which dnsperf
// 2.10 does not report), then the prober alone for -idle-dur (p50/p99
// unloaded). dnsperf and the harness run on -client-cpu; vswitchd's worker
// and dnsmasq run on -server-cpu, so each server gets the same core.
//
// The client side saturating first (client-bound) is detected, from
// dnsperf's CPU time or from its core being busy (dnsperf, the sending
// softirqs, other work on a shared machine), and reported with the rate
// reached: the server's true rate is then at least that.
//
// Results go to stdout (markdown) and, with -out, to
// dns-YYYYMMDD-HHMMSS.{json,md}. Rates are reported, never asserted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// Case names.
const (
	CaseSwitch          = "switch"
	CaseDnsmasqVswitchd = "dnsmasq-vswitchd"
	CaseDnsmasqBridge   = "dnsmasq-bridge"
)

// AllCases is the default order: the two vswitchd cases of a round share
// one daemon.
var AllCases = []string{CaseSwitch, CaseDnsmasqVswitchd, CaseDnsmasqBridge}

// Settings are one run's knobs, recorded in the report.
type Settings struct {
	Bin         string   `json:"bin"`
	Out         string   `json:"out,omitempty"`
	Cases       []string `json:"cases"`
	Reps        int      `json:"reps"`
	DurationS   float64  `json:"duration_s"`
	IdleS       float64  `json:"idle_probe_s"`
	Clients     int      `json:"dnsperf_clients"`
	Outstanding int      `json:"dnsperf_max_outstanding"`
	TimeoutS    int      `json:"dnsperf_timeout_s"`
	ProbeRate   int      `json:"probe_qps"`
	ClientCPU   int      `json:"client_cpu"`
	ServerCPU   int      `json:"server_cpu"`
	PollMode    string   `json:"vswitchd_poll_mode"`
	// Nice is the niceness of every measured process (dnsperf, vswitchd,
	// dnsmasq, the prober): on a shared machine, other work at the default
	// niceness must not starve them. 0 leaves it alone.
	Nice        int     `json:"nice"`
	ClientBound float64 `json:"client_bound_cpu_share"`
	// ClientCoreBusy is the client core's busy percentage from which a
	// repetition counts as client-bound even when dnsperf itself used
	// less: on a shared machine other work on that core starves it.
	ClientCoreBusy float64 `json:"client_bound_core_busy_pct"`
	// OpenS is the length of each repetition's open-loop phase (see
	// openloop.go); 0 skips it.
	OpenS                 float64 `json:"open_loop_s"`
	dur, idleDur, openDur time.Duration
}

func parseSettings(args []string, stderr io.Writer) (Settings, error) {
	s := Settings{
		Bin: "bin", Cases: AllCases, Reps: 3, dur: 10 * time.Second, idleDur: 3 * time.Second,
		Clients: 4, Outstanding: 200, TimeoutS: 1, ProbeRate: 500,
		ClientCPU: 0, ServerCPU: 1, PollMode: "busy", ClientBound: 0.9, ClientCoreBusy: 95, Nice: -15,
		openDur: 5 * time.Second,
	}
	fs := flag.NewFlagSet("dnsperf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cases := strings.Join(s.Cases, ",")
	fs.StringVar(&s.Bin, "bin", s.Bin, "directory with the vswitchd and vswitchctl binaries")
	fs.StringVar(&s.Out, "out", s.Out, "directory for dns-DATE.{json,md} (empty: stdout only)")
	fs.StringVar(&cases, "cases", cases, "cases, in order: "+strings.Join(AllCases, ","))
	fs.IntVar(&s.Reps, "reps", s.Reps, "repetitions per case")
	fs.DurationVar(&s.dur, "dur", s.dur, "dnsperf duration of one repetition (whole seconds)")
	fs.DurationVar(&s.idleDur, "idle-dur", s.idleDur, "prober-only phase after each repetition (0: none)")
	fs.DurationVar(&s.openDur, "open-dur", s.openDur, "open-loop phase (XDP query generator, answers counted) after each repetition (0: none)")
	fs.IntVar(&s.Clients, "clients", s.Clients, "dnsperf -c (client sockets)")
	fs.IntVar(&s.Outstanding, "outstanding", s.Outstanding, "dnsperf -q (queries in flight)")
	fs.IntVar(&s.TimeoutS, "timeout", s.TimeoutS, "dnsperf -t: seconds before a query counts as lost")
	fs.IntVar(&s.ProbeRate, "probe-qps", s.ProbeRate, "latency prober rate (queries/s, one at a time)")
	fs.IntVar(&s.ClientCPU, "client-cpu", s.ClientCPU, "core of dnsperf and this harness (prober)")
	fs.IntVar(&s.ServerCPU, "server-cpu", s.ServerCPU, "core of vswitchd (whole process) and dnsmasq")
	fs.StringVar(&s.PollMode, "poll-mode", s.PollMode, "vswitchd workers.poll_mode")
	fs.IntVar(&s.Nice, "nice", s.Nice, "niceness of dnsperf, vswitchd, dnsmasq and the prober (0: unchanged)")
	fs.Float64Var(&s.ClientBound, "client-bound", s.ClientBound, "dnsperf CPU share of one core from which a case counts as client-bound")
	fs.Float64Var(&s.ClientCoreBusy, "client-core-busy", s.ClientCoreBusy, "busy % of the client core from which a case counts as client-bound")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s.Cases = nil
	for _, c := range strings.Split(cases, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		known := false
		for _, k := range AllCases {
			known = known || c == k
		}
		if !known {
			return s, fmt.Errorf("-cases: unknown case %q (have %s)", c, strings.Join(AllCases, ","))
		}
		s.Cases = append(s.Cases, c)
	}
	if len(s.Cases) == 0 {
		return s, errors.New("-cases: none")
	}
	if s.Reps < 1 || s.dur < time.Second || s.Clients < 1 || s.Outstanding < 1 || s.TimeoutS < 1 || s.ProbeRate < 1 {
		return s, errors.New("-reps, -dur (>= 1s), -clients, -outstanding, -timeout and -probe-qps must be positive")
	}
	s.dur = s.dur.Truncate(time.Second)
	var err error
	if s.Bin, err = filepath.Abs(s.Bin); err != nil {
		return s, err
	}
	if s.Out != "" {
		if s.Out, err = filepath.Abs(s.Out); err != nil {
			return s, err
		}
	}
	if s.openDur < 0 {
		return s, errors.New("-open-dur must not be negative")
	}
	s.DurationS, s.IdleS, s.OpenS = s.dur.Seconds(), s.idleDur.Seconds(), s.openDur.Seconds()
	return s, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	// The open-loop phase runs the generator as a child of this binary.
	if len(args) > 0 && args[0] == "gen" {
		return e2e.GenMain(args[1:], stdout, stderr)
	}
	s, err := parseSettings(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "dnsperf bench:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "dnsperf bench: needs root (network namespaces, veth, AF_XDP)")
		return 1
	}
	for _, tool := range []string{"ip", "ethtool", "taskset", "dnsperf", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(stderr, "dnsperf bench: needs %s in PATH (make deps installs it): %v\n", tool, err)
			return 1
		}
	}
	// Signals end the run through ctx, so every deferred teardown (daemon,
	// dnsmasq, links, namespaces) still runs. After SIGKILL,
	// "go run ./bench/vsbench cleanup" removes the namespaces (same names).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// The host probe (CPU share) runs before the harness pins itself, as
	// in bench/memringe2e.
	host := e2e.ReadHostInfo()
	// The harness is a client: its prober must not take the server's core.
	if err := e2e.PinProcess(s.ClientCPU, s.Nice); err != nil {
		fmt.Fprintln(stderr, "dnsperf bench:", err)
		return 1
	}
	now := time.Now()
	rep := &Report{
		Date:     now.UTC().Format(time.RFC3339),
		Host:     host,
		Commit:   gitDescribe(),
		Settings: s,
	}
	if left, _ := e2e.Leftovers(); len(left) > 0 {
		fmt.Fprintf(stderr, "note: namespaces of killed runs exist (%s); 'go run ./bench/vsbench cleanup' removes them\n", strings.Join(left, " "))
	}
	results, err := Run(ctx, s, stderr)
	rep.set(results, err)
	rep.LoadAvgEnd = loadAvg()
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if s.Out != "" {
		paths, werr := writeReport(s.Out, now, rep, md)
		for _, p := range paths {
			fmt.Fprintln(stderr, "wrote", p)
		}
		if werr != nil {
			fmt.Fprintln(stderr, "dnsperf bench: write results:", werr)
			return 1
		}
	}
	var fails []string
	if ctx.Err() != nil {
		fails = append(fails, "interrupted")
	}
	if rep.Error != "" {
		fails = append(fails, rep.Error)
	}
	for _, c := range rep.Cases {
		if c.Error != "" {
			fails = append(fails, c.Name+": "+c.Error)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(stderr, "dnsperf bench: FAILED:")
		for _, f := range fails {
			fmt.Fprintln(stderr, "  -", f)
		}
		return 1
	}
	return 0
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// loadAvg is /proc/loadavg, to show how busy the shared machine was.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
