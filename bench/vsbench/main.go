// Command vsbench runs the vswitch benchmarks: micro benchmarks (go test
// -bench) and the end-to-end packet benchmark of bench/e2e, and reports them
// as a markdown table (stdout) and, with -out, JSON + markdown + raw
// benchmark text files.
//
//	vsbench e2e -bin DIR [flags]            full e2e run, table on stdout
//	vsbench all -bin DIR -out DIR [flags]   micro + e2e, result files
//	vsbench ci  -bin DIR -out DIR [flags]   short micro + 3 s e2e; fails on allocs/op > 0
//	vsbench cleanup                         remove namespaces of killed runs
//	vsbench gen ...                         the generator (run by the harness in the source netns)
//
// Throughput is reported, never asserted. The exit code is non-zero when a
// case or the micro run failed, and in ci mode when a micro benchmark
// allocates.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: vsbench e2e|all|ci [flags]   (vsbench MODE -h lists the flags)
       vsbench cleanup                   remove namespaces left by killed runs
       vsbench gen [flags]               generator child (started by the harness)`

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "gen":
		return e2e.GenMain(args[1:], stdout, stderr)
	case "cleanup":
		names, err := e2e.RemoveLeftovers(context.Background())
		for _, n := range names {
			fmt.Fprintln(stdout, "removed netns", n)
		}
		if err != nil {
			fmt.Fprintln(stderr, "cleanup:", err)
			return 1
		}
		return 0
	case "e2e", "all", "ci":
		return runBench(args[0], args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vsbench: unknown command %q\n%s\n", args[0], usage)
	return 2
}

// Settings are one run's knobs, recorded in the report.
type Settings struct {
	Mode           string   `json:"mode"`
	Bin            string   `json:"bin"`
	Out            string   `json:"out,omitempty"`
	Cases          []string `json:"cases"`
	Sizes          []int    `json:"sizes"`
	Flows          []int    `json:"flows"`
	Reps           int      `json:"reps"`
	DurationS      float64  `json:"duration_s"`
	GenCPU         int      `json:"gen_cpu"`
	SwCPU          int      `json:"switch_cpu"`
	PinSwitch      bool     `json:"pin_switch"`
	RingSize       int      `json:"ring_size,omitempty"`
	TestpmdRing    int      `json:"testpmd_ring,omitempty"`
	Interleave     bool     `json:"interleave"`
	Checksum       bool     `json:"udp_checksum"`
	Micro          bool     `json:"micro"`
	MicroBenchtime string   `json:"micro_benchtime,omitempty"`
	MicroCount     int      `json:"micro_count,omitempty"`
	MicroPackages  []string `json:"micro_packages,omitempty"`
	E2E            bool     `json:"e2e"`
	duration       time.Duration
}

// defaultSettings: e2e/all measure everything (3 x 10 s); ci measures the
// main configuration once for 3 s with short micro benchmarks, and only the
// cases that need nothing beyond the kernel and our binaries (no DPDK, no
// OVS).
func defaultSettings(mode string) Settings {
	s := Settings{
		Mode: mode, Bin: "bin", Cases: e2e.DefaultCases,
		Sizes: []int{64, 1500}, Flows: []int{1, 1000}, Reps: 3, duration: 10 * time.Second,
		GenCPU: 0, SwCPU: 1, PinSwitch: true, Interleave: true, Checksum: true, E2E: true,
		MicroCount: 1, MicroPackages: []string{"./bench/", "./pipeline/", "./switch/", "./peephole/"},
	}
	switch mode {
	case "all":
		s.Micro, s.Out = true, "bench/results"
	case "ci":
		s.Micro, s.Out = true, "bench/results"
		s.Cases = e2e.CICases
		s.Sizes, s.Flows, s.Reps, s.duration = []int{64}, []int{1}, 1, 3*time.Second
		s.MicroBenchtime = "100ms"
	}
	return s
}

func parseSettings(mode string, args []string, stderr io.Writer) (Settings, error) {
	s := defaultSettings(mode)
	fs := flag.NewFlagSet("vsbench "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cases := strings.Join(s.Cases, ",")
	sizes, flows := joinInts(s.Sizes), joinInts(s.Flows)
	pkgs := strings.Join(s.MicroPackages, ",")
	fs.StringVar(&s.Bin, "bin", s.Bin, "directory with the vswitchd and vswitchctl binaries")
	fs.StringVar(&s.Out, "out", s.Out, "directory for results-DATE.{json,md,bench.txt} (empty: none)")
	fs.StringVar(&cases, "cases", cases, "cases to measure, in order: "+strings.Join(e2e.AllCases, ","))
	fs.StringVar(&sizes, "sizes", sizes, "frame sizes in bytes (L2, no FCS)")
	fs.StringVar(&flows, "flows", flows, "flow counts (UDP source ports)")
	fs.IntVar(&s.Reps, "reps", s.Reps, "repetitions per case, size and flow count")
	fs.DurationVar(&s.duration, "dur", s.duration, "duration of one repetition")
	fs.IntVar(&s.GenCPU, "gen-cpu", s.GenCPU, "generator core (also testpmd's idle main lcore)")
	fs.IntVar(&s.SwCPU, "sw-cpu", s.SwCPU, "switch core (vswitchd worker, testpmd forwarding lcore, OVS PMD and daemon)")
	fs.BoolVar(&s.PinSwitch, "pin-switch", s.PinSwitch, "pin every vswitchd thread to -sw-cpu (false: worker on -sw-cpu, control threads on -gen-cpu)")
	fs.IntVar(&s.RingSize, "ring", s.RingSize, "vswitchd's AF_XDP ring size per port (0: the daemon's default)")
	fs.IntVar(&s.TestpmdRing, "testpmd-ring", s.TestpmdRing, "testpmd's --rxd/--txd (0: net_af_xdp's default)")
	fs.BoolVar(&s.Interleave, "interleave", s.Interleave, "measure in rounds, one repetition of every case per round (false: all repetitions of a case in a row)")
	fs.BoolVar(&s.Checksum, "csum", s.Checksum, "valid UDP checksums in generated frames (false: 0)")
	fs.BoolVar(&s.Micro, "micro", s.Micro, "run the micro benchmarks")
	fs.BoolVar(&s.E2E, "e2e", s.E2E, "run the end-to-end benchmark")
	fs.StringVar(&s.MicroBenchtime, "benchtime", s.MicroBenchtime, "go test -benchtime for micro benchmarks")
	fs.IntVar(&s.MicroCount, "count", s.MicroCount, "go test -count for micro benchmarks (benchstat wants >= 5)")
	fs.StringVar(&pkgs, "pkgs", pkgs, "micro benchmark packages")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if s.Sizes, err = splitInts(sizes); err != nil {
		return s, fmt.Errorf("-sizes: %w", err)
	}
	if s.Flows, err = splitInts(flows); err != nil {
		return s, fmt.Errorf("-flows: %w", err)
	}
	s.Cases = splitList(cases)
	s.MicroPackages = splitList(pkgs)
	if s.Bin, err = filepath.Abs(s.Bin); err != nil {
		return s, err
	}
	if s.Out != "" {
		if s.Out, err = filepath.Abs(s.Out); err != nil {
			return s, err
		}
	}
	s.DurationS = s.duration.Seconds()
	return s, nil
}

func runBench(mode string, args []string, stdout, stderr io.Writer) int {
	s, err := parseSettings(mode, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "vsbench:", err)
		return 2
	}
	// Signals end the run through ctx, so every deferred teardown (daemon,
	// programs, links, namespaces) still runs. SIGKILL cannot be caught:
	// "vsbench cleanup" removes what such a run left.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	root := moduleRoot()
	now := time.Now()
	rep := &Report{
		Date:     now.Format(time.RFC3339),
		Host:     e2e.ReadHostInfo(),
		Commit:   gitDescribe(root),
		Settings: s,
	}
	if s.Micro {
		rep.Micro = runMicro(ctx, microSpec{
			Dir: root, Packages: s.MicroPackages, Benchtime: s.MicroBenchtime, Count: s.MicroCount,
		}, stderr)
	}
	if s.E2E && ctx.Err() == nil {
		rep.setE2E(runE2E(ctx, s, stderr))
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if s.Out != "" {
		paths, err := writeReport(s.Out, now, rep, md)
		if err != nil {
			fmt.Fprintln(stderr, "vsbench: write results:", err)
			return 1
		}
		for _, p := range paths {
			fmt.Fprintln(stderr, "wrote", p)
		}
	}
	return exitCode(rep, mode, ctx.Err(), stderr)
}

// runE2E runs the packet benchmark; it needs root for namespaces and XDP.
func runE2E(ctx context.Context, s Settings, log io.Writer) ([]e2e.CaseResult, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("e2e needs root (network namespaces, veth, XDP); skipped")
	}
	if left, _ := e2e.Leftovers(); len(left) > 0 {
		fmt.Fprintf(log, "note: namespaces of killed runs exist (%s); 'vsbench cleanup' removes them\n",
			strings.Join(left, " "))
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary for the generator: %w", err)
	}
	return e2e.Run(ctx, e2e.Options{
		Bin: s.Bin, Cases: s.Cases, Sizes: s.Sizes, Flows: s.Flows, Reps: s.Reps,
		Duration: s.duration, GenCPU: s.GenCPU, SwCPU: s.SwCPU, PinSwitch: s.PinSwitch,
		RingSize: s.RingSize, TestpmdRing: s.TestpmdRing,
		GenCommand: []string{exe, "gen"}, Checksum: s.Checksum, Interleave: s.Interleave, Log: log,
	})
}

func exitCode(rep *Report, mode string, ctxErr error, stderr io.Writer) int {
	var fails []string
	if ctxErr != nil {
		fails = append(fails, "interrupted")
	}
	if rep.E2EError != "" {
		fails = append(fails, "e2e: "+rep.E2EError)
	}
	for _, c := range rep.E2E {
		if c.Error != "" {
			fails = append(fails, fmt.Sprintf("%s %d B %d flows: %s", c.Label, c.Size, c.Flows, c.Error))
		}
	}
	if m := rep.Micro; m != nil {
		if m.Error != "" {
			fails = append(fails, "micro: "+m.Error)
		}
		if mode == "ci" {
			for _, a := range m.AllocFailures() {
				fails = append(fails, "allocates on the hot path: "+a)
			}
		}
	}
	if len(fails) == 0 {
		return 0
	}
	fmt.Fprintln(stderr, "vsbench: FAILED:")
	for _, f := range fails {
		fmt.Fprintln(stderr, "  -", f)
	}
	return 1
}

// moduleRoot is the directory of the main module's go.mod (where "go test
// ./pipeline/" must run), or the working directory.
func moduleRoot() string {
	if out, err := exec.Command(goTool(), "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod)
		}
	}
	wd, _ := os.Getwd()
	return wd
}

func gitDescribe(dir string) string {
	out, err := exec.Command("git", "-C", dir, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func splitInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}
