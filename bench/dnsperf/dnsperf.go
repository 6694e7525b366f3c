package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DnsperfResult is what one dnsperf run reported, plus its own CPU use.
type DnsperfResult struct {
	Sent      uint64  `json:"sent"`
	Completed uint64  `json:"completed"`
	Lost      uint64  `json:"lost"`
	RunTimeS  float64 `json:"run_time_s"`
	QPS       float64 `json:"qps"`
	// AvgLatencyMs, MinLatencyMs, MaxLatencyMs and StdDevMs are dnsperf's
	// latency statistics over every completed query.
	AvgLatencyMs float64 `json:"avg_latency_ms"`
	MinLatencyMs float64 `json:"min_latency_ms"`
	MaxLatencyMs float64 `json:"max_latency_ms"`
	StdDevMs     float64 `json:"stddev_latency_ms"`
	// RCodes counts responses by code (NOERROR, NXDOMAIN, ...).
	RCodes map[string]uint64 `json:"rcodes,omitempty"`
	// CPUShare is dnsperf's user+system time over its wall time, in cores:
	// near 1 with one thread means dnsperf itself was the bottleneck.
	CPUShare float64 `json:"cpu_share"`
}

var (
	dpUint    = regexp.MustCompile(`(?m)^\s*Queries (sent|completed|lost):\s+([0-9]+)`)
	dpFloat   = regexp.MustCompile(`(?m)^\s*(Run time \(s\)|Queries per second|Latency StdDev \(s\)):\s+([0-9.]+)`)
	dpLatency = regexp.MustCompile(`(?m)^\s*Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)`)
	dpRCodes  = regexp.MustCompile(`(?m)^\s*Response codes:\s+(.*)$`)
	dpRCode   = regexp.MustCompile(`([A-Z]+) ([0-9]+) \(`)
)

// ParseDnsperf reads the "Statistics:" block dnsperf prints at the end.
func ParseDnsperf(out string) (DnsperfResult, error) {
	var r DnsperfResult
	if !strings.Contains(out, "Statistics:") {
		return r, fmt.Errorf("no Statistics block in dnsperf output")
	}
	seen := map[string]bool{}
	for _, m := range dpUint.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(m[2], 10, 64)
		switch m[1] {
		case "sent":
			r.Sent = v
		case "completed":
			r.Completed = v
		case "lost":
			r.Lost = v
		}
		seen[m[1]] = true
	}
	for _, m := range dpFloat.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "Run time (s)":
			r.RunTimeS = v
		case "Queries per second":
			r.QPS = v
		case "Latency StdDev (s)":
			r.StdDevMs = v * 1e3
		}
		seen[m[1]] = true
	}
	if m := dpLatency.FindStringSubmatch(out); m != nil {
		avg, _ := strconv.ParseFloat(m[1], 64)
		lo, _ := strconv.ParseFloat(m[2], 64)
		hi, _ := strconv.ParseFloat(m[3], 64)
		r.AvgLatencyMs, r.MinLatencyMs, r.MaxLatencyMs = avg*1e3, lo*1e3, hi*1e3
	}
	if m := dpRCodes.FindStringSubmatch(out); m != nil {
		r.RCodes = map[string]uint64{}
		for _, c := range dpRCode.FindAllStringSubmatch(m[1], -1) {
			v, _ := strconv.ParseUint(c[2], 10, 64)
			r.RCodes[c[1]] = v
		}
	}
	for _, k := range []string{"sent", "completed", "Queries per second", "Run time (s)"} {
		if !seen[k] {
			return r, fmt.Errorf("dnsperf output lacks %q", k)
		}
	}
	return r, nil
}

// dnsperfSpec is one dnsperf invocation.
type dnsperfSpec struct {
	NS          string
	CPU         int
	Server      string
	Name        string // queried as type A, over and over
	Dur         time.Duration
	Clients     int
	Outstanding int
	TimeoutS    int
	Dir         string // for the query file and the output
}

// runDnsperf runs dnsperf in the client namespace, pinned to spec.CPU,
// and parses its statistics. ip netns exec and taskset exec their
// command, so the process reaped is dnsperf itself and its rusage is
// dnsperf's.
func runDnsperf(ctx context.Context, spec dnsperfSpec) (DnsperfResult, string, error) {
	qfile := filepath.Join(spec.Dir, "queries-"+spec.Name+".txt")
	if err := os.WriteFile(qfile, []byte(spec.Name+" A\n"), 0o644); err != nil {
		return DnsperfResult{}, "", err
	}
	secs := int(spec.Dur / time.Second)
	ctx, cancel := context.WithTimeout(ctx, spec.Dur+time.Duration(spec.TimeoutS)*time.Second+30*time.Second)
	defer cancel()
	argv := append([]string{"ip", "netns", "exec", spec.NS}, pinned(spec.CPU,
		"dnsperf", "-s", spec.Server, "-d", qfile, "-l", strconv.Itoa(secs),
		"-c", strconv.Itoa(spec.Clients), "-T", "1", "-q", strconv.Itoa(spec.Outstanding),
		"-t", strconv.Itoa(spec.TimeoutS))...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	text := out.String()
	if err != nil {
		return DnsperfResult{}, text, fmt.Errorf("dnsperf: %w: %s", err, lastLines(text, 5))
	}
	r, err := ParseDnsperf(text)
	if err != nil {
		return r, text, fmt.Errorf("%w: %s", err, lastLines(text, 5))
	}
	if ps := cmd.ProcessState; ps != nil && wall > 0 {
		r.CPUShare = (ps.UserTime() + ps.SystemTime()).Seconds() / wall.Seconds()
	}
	return r, text, nil
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// pinned prefixes argv with taskset: run on core cpu. taskset execs the
// command, so its PID is the one started. Niceness is not set here: the
// harness set its own (pinProcess) and children inherit it; nice -n is
// relative and would add to it.
func pinned(cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}
