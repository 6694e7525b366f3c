package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MicroResult is one line of "go test -bench" output.
type MicroResult struct {
	Package     string             `json:"package"`
	Name        string             `json:"name"` // as printed, with the -GOMAXPROCS suffix
	Iterations  int64              `json:"iterations"`
	NsPerOp     float64            `json:"ns_per_op"`
	BytesPerOp  *float64           `json:"bytes_per_op,omitempty"`  // nil without -benchmem
	AllocsPerOp *float64           `json:"allocs_per_op,omitempty"` // nil without -benchmem
	Extra       map[string]float64 `json:"extra,omitempty"`         // b.ReportMetric units
}

// MicroReport is the outcome of the micro benchmark run.
type MicroReport struct {
	Command  string        `json:"command"`
	Packages []string      `json:"packages"`
	Skipped  []string      `json:"skipped,omitempty"` // patterns with no Go files
	Results  []MicroResult `json:"results"`
	Error    string        `json:"error,omitempty"`
	Raw      string        `json:"-"` // the text benchstat reads; saved as its own file
}

// AllocFailures lists benchmarks that allocate: every micro benchmark here
// measures a hot path, and the hot path must not allocate.
func (m *MicroReport) AllocFailures() []string {
	var out []string
	for _, r := range m.Results {
		if r.AllocsPerOp != nil && *r.AllocsPerOp > 0 {
			out = append(out, fmt.Sprintf("%s.%s: %g allocs/op", r.Package, r.Name, *r.AllocsPerOp))
		}
	}
	return out
}

// microSpec says how to run the micro benchmarks.
type microSpec struct {
	Dir       string   // module root
	Packages  []string // e.g. ./bench/ ./pipeline/ ./switch/
	Benchtime string   // go test -benchtime; "" = default
	Count     int
}

// runMicro runs the benchmarks, streaming the raw output to progress, and
// parses it. A package pattern whose directory has no Go files is skipped
// (go test would fail on it) and listed in Skipped.
func runMicro(ctx context.Context, s microSpec, progress io.Writer) *MicroReport {
	rep := &MicroReport{}
	for _, p := range s.Packages {
		if hasGoFiles(filepath.Join(s.Dir, p)) {
			rep.Packages = append(rep.Packages, p)
		} else {
			rep.Skipped = append(rep.Skipped, p)
		}
	}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(max(1, s.Count))}
	if s.Benchtime != "" {
		args = append(args, "-benchtime", s.Benchtime)
	}
	args = append(args, rep.Packages...)
	rep.Command = "go " + strings.Join(args, " ")
	if len(rep.Packages) == 0 {
		rep.Error = "no package with Go files among " + strings.Join(s.Packages, " ")
		return rep
	}
	fmt.Fprintf(progress, "micro: %s\n", rep.Command)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, progress)
	cmd.Stderr = cmd.Stdout
	// Interrupt the whole group (go and the test binaries it started).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	rep.Raw = out.String()
	rep.Results = parseBench(rep.Raw)
	if err != nil {
		rep.Error = fmt.Sprintf("%s: %v", rep.Command, err)
	}
	return rep
}

// goTool finds the go command: PATH first, then the toolchain this binary
// was built with (go run sets GOROOT for it).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

// parseBench extracts benchmark lines from go test output. "pkg:" lines set
// the package of the lines that follow; anything else is ignored, like
// benchstat does.
func parseBench(text string) []MicroResult {
	var out []MicroResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if r, ok := parseBenchLine(line); ok {
			r.Package = pkg
			out = append(out, r)
		}
	}
	return out
}

// parseBenchLine parses "BenchmarkX-2  1000  123 ns/op  0 B/op  0 allocs/op [v unit]...".
func parseBenchLine(line string) (MicroResult, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return MicroResult{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return MicroResult{}, false
	}
	r := MicroResult{Name: f[0], Iterations: n}
	seenNs := false
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return MicroResult{}, false
		}
		switch unit := f[i+1]; unit {
		case "ns/op":
			r.NsPerOp, seenNs = v, true
		case "B/op":
			r.BytesPerOp = &v
		case "allocs/op":
			r.AllocsPerOp = &v
		default:
			if r.Extra == nil {
				r.Extra = map[string]float64{}
			}
			r.Extra[unit] = v
		}
	}
	return r, seenNs
}

// microMarkdown renders the micro results table.
func microMarkdown(m *MicroReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`\n\n", m.Command)
	if len(m.Skipped) > 0 {
		fmt.Fprintf(&b, "Skipped (no Go files): %s\n\n", strings.Join(m.Skipped, " "))
	}
	if m.Error != "" {
		fmt.Fprintf(&b, "**error**: %s\n\n", m.Error)
	}
	if len(m.Results) == 0 {
		b.WriteString("No benchmark results.\n")
		return b.String()
	}
	b.WriteString("| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---:|---:|---:|---|\n")
	opt := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	for _, r := range m.Results {
		var extra []string
		for k, v := range r.Extra {
			extra = append(extra, fmt.Sprintf("%g %s", v, k))
		}
		slices.Sort(extra) // map order is random; keep reports diffable
		allocs := opt(r.AllocsPerOp)
		if r.AllocsPerOp != nil && *r.AllocsPerOp > 0 {
			allocs = "**" + allocs + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Package, r.Name,
			strconv.FormatFloat(r.NsPerOp, 'f', -1, 64), opt(r.BytesPerOp), allocs, strings.Join(extra, ", "))
	}
	return b.String()
}
