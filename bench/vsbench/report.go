package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Report is everything one vsbench run measured; it is the JSON file.
type Report struct {
	Date     string        `json:"date"`
	Host     e2e.HostInfo  `json:"host"`
	Commit   string        `json:"commit,omitempty"`
	Settings Settings      `json:"settings"`
	Micro    *MicroReport  `json:"micro,omitempty"`
	E2E      []CaseSummary `json:"e2e,omitempty"`
	E2EError string        `json:"e2e_error,omitempty"`
	Ratios   []e2e.Ratio   `json:"ratios,omitempty"`
	results  []e2e.CaseResult
}

// CaseSummary is a case's raw repetitions with their aggregate.
type CaseSummary struct {
	e2e.CaseResult
	Summary e2e.Summary `json:"summary"`
}

func (r *Report) setE2E(rs []e2e.CaseResult, err error) {
	r.results = rs
	for _, c := range rs {
		r.E2E = append(r.E2E, CaseSummary{CaseResult: c, Summary: e2e.Summarize(c.Reps)})
	}
	r.Ratios = e2e.Ratios(rs)
	if err != nil {
		r.E2EError = err.Error()
	}
}

// Markdown renders the report: header, e2e table, ratios, micro table.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "# vswitch benchmarks (%s)\n\n", s.Mode)
	fmt.Fprintf(&b, "- date: %s\n- kernel: %s\n- cpu: %s, %d cores\n- load average at start: %s\n- go: %s\n",
		r.Date, r.Host.Kernel, r.Host.CPUModel, r.Host.Cores, r.Host.LoadAvg, r.Host.GoVersion)
	b.WriteString(r.Host.ShareLine())
	if r.Commit != "" {
		fmt.Fprintf(&b, "- commit: %s\n", r.Commit)
	}
	if s.E2E {
		fmt.Fprintf(&b, "\n## End to end: Mpps received in the destination namespace\n\n")
		fmt.Fprintf(&b, "Generator: XDP live frames (BPF_PROG_RUN, XDP_TX) on core %d, UDP, %s per repetition; "+
			"sink: XDP_DROP on the destination veth, counted by the program. "+
			"rx = sink count / generator time. CPU %% = busy share over the sending window. "+
			"Switch under test: core %d. Kernel switches (bridge, XDP redirect) run inline in the "+
			"generator's softirq on core %d (closed loop: gen tx = rx).",
			s.GenCPU, time.Duration(s.DurationS*float64(time.Second)), s.SwCPU, s.GenCPU)
		if s.Interleave {
			b.WriteString(" Repetitions are interleaved: each round starts every case in turn and measures one repetition of it, so a slow spell of the host is shared by the cases.")
		}
		b.WriteString("\n\n")
		if r.E2EError != "" {
			fmt.Fprintf(&b, "**e2e error**: %s\n\n", r.E2EError)
		}
		if len(r.results) > 0 {
			cores := []int{s.GenCPU}
			if s.SwCPU != s.GenCPU {
				cores = append(cores, s.SwCPU)
			}
			b.WriteString(e2e.MarkdownTable(r.results, cores))
			if t := e2e.MarkdownRatios(r.Ratios); t != "" {
				b.WriteString("\nRatios of median rx:\n\n")
				b.WriteString(t)
			}
			when := "after the repetitions"
			if s.Interleave && s.Reps > 1 {
				// Each round started the switch afresh.
				when = "after the last round (since that round's start)"
			}
			for _, c := range r.results {
				if c.Diagnostics != "" {
					fmt.Fprintf(&b, "\n%s %d B %d flows, switch counters %s:\n\n```\n%s\n```\n",
						c.Label, c.Size, c.Flows, when, strings.TrimRight(c.Diagnostics, "\n"))
				}
			}
		}
	}
	if r.Micro != nil {
		b.WriteString("\n## Micro benchmarks\n\n")
		b.WriteString(microMarkdown(r.Micro))
	}
	return b.String()
}

// writeReport writes results-YYYYMMDD-HHMMSS.{json,md} and, with micro
// results, .bench.txt (the raw go test text for benchstat). Each file is
// written as .tmp and renamed, so a reader never sees half a report.
func writeReport(dir string, t time.Time, r *Report, md string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "results-"+t.Format("20060102-150405"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	files := []struct {
		path string
		data []byte
	}{
		{base + ".json", append(js, '\n')},
		{base + ".md", []byte(md)},
	}
	if r.Micro != nil && r.Micro.Raw != "" {
		files = append(files, struct {
			path string
			data []byte
		}{base + ".bench.txt", []byte(r.Micro.Raw)})
	}
	var paths []string
	for _, f := range files {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o644); err != nil {
			return paths, err
		}
		if err := os.Rename(tmp, f.path); err != nil {
			os.Remove(tmp)
			return paths, err
		}
		paths = append(paths, f.path)
	}
	return paths, nil
}
