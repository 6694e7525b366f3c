// Command memring-bench compares memring process to process with DPDK's
// net_memif, the shared-memory interface it is modelled on, on this host in
// one run:
//
//   - memring: "memring pair-bench" (cmd/memring): a producer process fills
//     the to-client ring of a memring region, zero-copy like testpmd txonly,
//     and a receiver process counts the frames, each pinned to its own CPU.
//   - memif: two dpdk-testpmd processes connected by net_memif, txonly
//     (role=server) -> rxonly (role=client), forwarding lcores on the same
//     two CPUs (the setup of the shared anchors' bench-memif.sh).
//
// Each case runs at every --sizes, --reps times, fresh processes per
// repetition. The report (markdown + JSON in --out, markdown also on stdout)
// gives the receive rate per repetition, min/median/max, the CPU busy share
// of both cores, and the ratio memring/memif of the medians. Throughput is
// reported, never asserted; the exit status is non-zero when a case failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
	"github.com/vswitch/vswitch/switch/netnstest"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// settings are the flags.
type settings struct {
	Memring   string        `json:"memring_binary"`
	Testpmd   string        `json:"testpmd_binary"`
	Sizes     []int         `json:"sizes"`
	Reps      int           `json:"reps"`
	Duration  time.Duration `json:"duration_ns"`
	Warmup    time.Duration `json:"warmup_ns"`
	CPUs      [2]int        `json:"cpus"` // producer, receiver
	Mode      string        `json:"memring_mode"`
	Out       string        `json:"-"`
	SkipMemif bool          `json:"skip_memif"`
	// Hugepages: free 2 MiB huge pages made sure of for the run (see
	// memringe2e); 0 leaves the host as it is.
	Hugepages int `json:"hugepages"`
}

func parseFlags(args []string, stderr io.Writer) (*settings, error) {
	fs := flag.NewFlagSet("memring-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &settings{}
	sizes := fs.String("sizes", "64,1500", "frame sizes in bytes (without FCS), comma separated")
	cpus := fs.String("cpus", "0,1", "producer CPU,receiver CPU")
	fs.StringVar(&s.Memring, "memring", "", "path of the memring binary (go build -o bin/memring ./cmd/memring) (required)")
	fs.StringVar(&s.Testpmd, "testpmd", "dpdk-testpmd", "dpdk-testpmd binary")
	fs.IntVar(&s.Reps, "reps", 3, "repetitions per case and size")
	fs.DurationVar(&s.Duration, "duration", 10*time.Second, "measurement time per repetition")
	fs.DurationVar(&s.Warmup, "warmup", 3*time.Second, "time before measuring (memif: after the receiver prints its first stats)")
	fs.StringVar(&s.Mode, "mode", "poll", "memring receiver mode: poll or interrupt")
	fs.StringVar(&s.Out, "out", "", "directory for memring-<timestamp>.{md,json} (none: stdout only)")
	fs.BoolVar(&s.SkipMemif, "skip-memif", false, "measure memring only")
	fs.IntVar(&s.Hugepages, "hugepages", 32, "free 2 MiB huge pages to make sure of for the region during the run (0: leave vm.nr_hugepages alone)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if s.Memring == "" {
		return nil, fmt.Errorf("-memring: required")
	}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 60 || n > 2048 {
			return nil, fmt.Errorf("-sizes: %q is not a frame size in 60..2048", f)
		}
		s.Sizes = append(s.Sizes, n)
	}
	parts := strings.Split(*cpus, ",")
	if len(parts) != 2 {
		return nil, fmt.Errorf("-cpus: want producer,receiver")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-cpus: %q is not a CPU", p)
		}
		s.CPUs[i] = n
	}
	if s.Reps < 1 || s.Duration < time.Second {
		return nil, fmt.Errorf("-reps must be >= 1 and -duration >= 1s")
	}
	return s, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	s, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "memring-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer netnstest.HugepagesForRun(s.Hugepages, stderr, "memring-bench")()
	rep := &Report{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Host:     e2e.ReadHostInfo(),
		Commit:   gitCommit(),
		Settings: *s,
	}
	log := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	failed := false
	for _, size := range s.Sizes {
		r := runMemring(ctx, s, size, log)
		failed = failed || r.Error != ""
		rep.add(r)
		if !s.SkipMemif {
			r := runMemif(ctx, s, size, log)
			failed = failed || r.Error != ""
			rep.add(r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.ratios()
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if s.Out != "" {
		paths, err := rep.write(s.Out)
		if err != nil {
			fmt.Fprintln(stderr, "memring-bench:", err)
			return 1
		}
		for _, p := range paths {
			log("wrote %s", p)
		}
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// gitCommit is the HEAD commit of the working directory's repository, or "".
func gitCommit() string {
	data, err := os.ReadFile(filepath.Join(".git", "HEAD"))
	if err != nil {
		return ""
	}
	ref := strings.TrimSpace(string(data))
	if r, ok := strings.CutPrefix(ref, "ref: "); ok {
		b, err := os.ReadFile(filepath.Join(".git", r))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return ref
}
