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

// Anchor figures of net_memif on this host class (shared anchors,
// RESULTS.md, bench-memif.sh: median rx Mpps of 3 reps).
var memifAnchor = map[int]float64{64: 19.851, 1500: 19.206}

// Report is one run; it is the JSON file.
type Report struct {
	Date     string           `json:"date"`
	Host     e2e.HostInfo     `json:"host"`
	Commit   string           `json:"commit,omitempty"`
	Settings settings         `json:"settings"`
	Results  []CaseSummary    `json:"results"`
	Ratios   []Ratio          `json:"ratios"`
	raw      []e2e.CaseResult `json:"-"`
}

// CaseSummary is a case's repetitions with their aggregate.
type CaseSummary struct {
	e2e.CaseResult
	Summary e2e.Summary `json:"summary"`
}

// Ratio is memring's median receive rate over memif's at one size.
type Ratio struct {
	Size         int      `json:"size"`
	MemringMpps  float64  `json:"memring_rx_mpps_median"`
	MemifMpps    float64  `json:"memif_rx_mpps_median"`
	MemringMemif *float64 `json:"memring_per_memif,omitempty"`
	AnchorMemif  float64  `json:"memif_anchor_mpps,omitempty"`
	VsAnchor     *float64 `json:"memring_per_memif_anchor,omitempty"`
}

func (r *Report) add(c e2e.CaseResult) {
	r.raw = append(r.raw, c)
	r.Results = append(r.Results, CaseSummary{CaseResult: c, Summary: e2e.Summarize(c.Reps)})
}

func (r *Report) ratios() {
	r.Ratios = nil
	for _, size := range r.Settings.Sizes {
		q := Ratio{Size: size, AnchorMemif: memifAnchor[size]}
		var m, f bool
		for _, c := range r.Results {
			if c.Size != size || c.Error != "" || c.Summary.N == 0 {
				continue
			}
			switch c.Case {
			case "memring":
				q.MemringMpps, m = c.Summary.RxMedian, true
			case "memif":
				q.MemifMpps, f = c.Summary.RxMedian, true
			}
		}
		if m && f && q.MemifMpps > 0 {
			x := q.MemringMpps / q.MemifMpps
			q.MemringMemif = &x
		}
		if m && q.AnchorMemif > 0 {
			x := q.MemringMpps / q.AnchorMemif
			q.VsAnchor = &x
		}
		r.Ratios = append(r.Ratios, q)
	}
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "# memring vs memif, process to process\n\n")
	fmt.Fprintf(&b, "- date: %s\n- kernel: %s\n- cpu: %s, %d cores\n- load average at start: %s\n- go: %s\n",
		r.Date, r.Host.Kernel, r.Host.CPUModel, r.Host.Cores, r.Host.LoadAvg, r.Host.GoVersion)
	b.WriteString(r.Host.ShareLine())
	if r.Commit != "" {
		fmt.Fprintf(&b, "- commit: %s\n", r.Commit)
	}
	fmt.Fprintf(&b, "- %d repetitions x %s per case and size, %s warm-up, fresh processes per repetition; producer on CPU %d, receiver on CPU %d\n\n",
		s.Reps, s.Duration, s.Warmup, s.CPUs[0], s.CPUs[1])
	b.WriteString("## Receive rate (Mpps)\n\n")
	b.WriteString(e2e.MarkdownTable(r.raw, []int{s.CPUs[0], s.CPUs[1]}))
	b.WriteString("\nPer repetition (rx Mpps): ")
	for i, c := range r.Results {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %d B:", c.Case, c.Size)
		for _, rep := range c.Reps {
			fmt.Fprintf(&b, " %.3f", rep.RxMpps)
		}
	}
	b.WriteString("\n\n## Ratio memring / memif (medians)\n\n")
	b.WriteString("| frame B | memring Mpps | memif Mpps (this run) | memring / memif | memif anchor Mpps | memring / anchor |\n|---:|---:|---:|---:|---:|---:|\n")
	f := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", *p)
	}
	for _, q := range r.Ratios {
		fmt.Fprintf(&b, "| %d | %.3f | %.3f | %s | %.3f | %s |\n", q.Size, q.MemringMpps, q.MemifMpps, f(q.MemringMemif), q.AnchorMemif, f(q.VsAnchor))
	}
	b.WriteString("\nBoth cases busy-poll one core each; CPU % is the share of each core busy during the\n" +
		"measurement (all processes on the host, so other load shows up there too).\n")
	return b.String()
}

// write stores the report as memring-<timestamp>.{md,json} in dir.
func (r *Report) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "memring-"+time.Now().UTC().Format("20060102-150405"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".md", []byte(r.Markdown()), 0o644); err != nil {
		return nil, err
	}
	return []string{base + ".md", base + ".json"}, nil
}
