package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Report is everything one run measured; it is the JSON file.
type Report struct {
	Date   string       `json:"date"`
	Host   e2e.HostInfo `json:"host"`
	Commit string       `json:"commit,omitempty"`
	// LoadAvgEnd is /proc/loadavg after the run (Host.LoadAvg: before).
	LoadAvgEnd string       `json:"loadavg_end,omitempty"`
	Settings   Settings     `json:"settings"`
	Cases      []CaseReport `json:"cases"`
	Ratios     []Ratio      `json:"ratios,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// CaseReport is a case with the medians over its repetitions.
type CaseReport struct {
	CaseResult
	Summary Summary `json:"summary"`
}

// Summary aggregates a case's repetitions (medians unless named otherwise).
type Summary struct {
	N         int     `json:"n"`
	QPSMin    float64 `json:"qps_min"`
	QPS       float64 `json:"qps_median"`
	QPSMax    float64 `json:"qps_max"`
	LostPct   float64 `json:"lost_pct"`
	AvgLatMs  float64 `json:"dnsperf_avg_latency_ms"`
	LoadP50Us float64 `json:"probe_load_p50_us"`
	LoadP99Us float64 `json:"probe_load_p99_us"`
	IdleP50Us float64 `json:"probe_idle_p50_us,omitempty"`
	IdleP99Us float64 `json:"probe_idle_p99_us,omitempty"`
	// ProbeLost and ProbeWrong are totals over the repetitions.
	ProbeLost  int     `json:"probe_lost"`
	ProbeWrong int     `json:"probe_wrong"`
	DnsperfCPU float64 `json:"dnsperf_cpu_share"`
	// SwitchBusyPct is the median vswitchd worker busy share (vswitchd
	// cases); SwitchCapacity = q/s / busy share, the rate the worker's
	// core would sustain at the same cost per query if the client kept up.
	SwitchBusyPct  float64   `json:"switch_worker_busy_pct,omitempty"`
	SwitchCapacity float64   `json:"switch_capacity_qps_estimate,omitempty"`
	ClientBound    int       `json:"client_bound_reps"`
	CPUBusy        []float64 `json:"cpu_busy_pct"`
	// OpenQPS* are answers per second in the open-loop phase (min, median,
	// max over the repetitions that ran it); OpenGenMpps the median query
	// rate offered meanwhile.
	OpenN       int     `json:"open_loop_n,omitempty"`
	OpenQPSMin  float64 `json:"open_loop_qps_min,omitempty"`
	OpenQPS     float64 `json:"open_loop_qps_median,omitempty"`
	OpenQPSMax  float64 `json:"open_loop_qps_max,omitempty"`
	OpenGenMpps float64 `json:"open_loop_gen_mpps,omitempty"`
}

func summarize(reps []Rep) Summary {
	s := Summary{N: len(reps)}
	if len(reps) == 0 {
		return s
	}
	col := func(f func(Rep) float64) []float64 {
		out := make([]float64, len(reps))
		for i, r := range reps {
			out[i] = f(r)
		}
		return out
	}
	qps := col(func(r Rep) float64 { return r.Dnsperf.QPS })
	s.QPSMin, s.QPS, s.QPSMax = slices.Min(qps), e2e.Median(qps), slices.Max(qps)
	s.LostPct = e2e.Median(col(func(r Rep) float64 {
		if r.Dnsperf.Sent == 0 {
			return 0
		}
		return 100 * float64(r.Dnsperf.Lost) / float64(r.Dnsperf.Sent)
	}))
	s.AvgLatMs = e2e.Median(col(func(r Rep) float64 { return r.Dnsperf.AvgLatencyMs }))
	s.LoadP50Us = e2e.Median(col(func(r Rep) float64 { return r.ProbeLoad.P50Us }))
	s.LoadP99Us = e2e.Median(col(func(r Rep) float64 { return r.ProbeLoad.P99Us }))
	if reps[0].ProbeIdle != nil {
		s.IdleP50Us = e2e.Median(col(func(r Rep) float64 { return r.ProbeIdle.P50Us }))
		s.IdleP99Us = e2e.Median(col(func(r Rep) float64 { return r.ProbeIdle.P99Us }))
	}
	s.DnsperfCPU = e2e.Median(col(func(r Rep) float64 { return r.Dnsperf.CPUShare }))
	if reps[0].SwitchBusyPct != nil {
		s.SwitchBusyPct = e2e.Median(col(func(r Rep) float64 { return *r.SwitchBusyPct }))
		if s.SwitchBusyPct > 0 {
			s.SwitchCapacity = e2e.Median(col(func(r Rep) float64 {
				if *r.SwitchBusyPct <= 0 {
					return 0
				}
				return r.Dnsperf.QPS / (*r.SwitchBusyPct / 100)
			}))
		}
	}
	var open, gen []float64
	for _, r := range reps {
		if r.Open != nil {
			open = append(open, r.Open.QPS)
			gen = append(gen, r.Open.GenMpps)
		}
	}
	if len(open) > 0 {
		s.OpenN = len(open)
		s.OpenQPSMin, s.OpenQPS, s.OpenQPSMax = slices.Min(open), e2e.Median(open), slices.Max(open)
		s.OpenGenMpps = e2e.Median(gen)
	}
	cores := 0
	for _, r := range reps {
		s.ProbeLost += r.ProbeLoad.Lost
		s.ProbeWrong += r.ProbeLoad.Wrong
		if r.ProbeIdle != nil {
			s.ProbeLost += r.ProbeIdle.Lost
			s.ProbeWrong += r.ProbeIdle.Wrong
		}
		if r.ClientBound {
			s.ClientBound++
		}
		cores = max(cores, len(r.CPUBusy))
	}
	s.CPUBusy = make([]float64, cores)
	for c := range cores {
		s.CPUBusy[c] = e2e.Median(col(func(r Rep) float64 {
			if c < len(r.CPUBusy) {
				return r.CPUBusy[c]
			}
			return 0
		}))
	}
	return s
}

// Ratio compares the switch answering itself with dnsmasq on one path.
type Ratio struct {
	Versus string  `json:"versus"`
	QPS    float64 `json:"qps_switch_per_dnsmasq"`
	// LoadP99 and IdleP99 are the switch's p99 over dnsmasq's (below 1:
	// the switch's tail is lower).
	LoadP99 float64 `json:"p99_under_load_switch_per_dnsmasq"`
	IdleP99 float64 `json:"p99_idle_switch_per_dnsmasq,omitempty"`
	// AtLeast: the switch case was client-bound, so QPS is a lower bound.
	AtLeast bool `json:"qps_ratio_is_lower_bound"`
	// OpenQPS is the ratio of the open-loop answer rates (0: not measured).
	OpenQPS float64 `json:"open_loop_qps_switch_per_dnsmasq,omitempty"`
}

func (r *Report) set(results []CaseResult, err error) {
	if err != nil {
		r.Error = err.Error()
	}
	by := map[string]*CaseReport{}
	for _, c := range results {
		r.Cases = append(r.Cases, CaseReport{CaseResult: c, Summary: summarize(c.Reps)})
	}
	for i := range r.Cases {
		by[r.Cases[i].Name] = &r.Cases[i]
	}
	sw := by[CaseSwitch]
	if sw == nil || sw.Summary.N == 0 {
		return
	}
	for _, other := range []string{CaseDnsmasqBridge, CaseDnsmasqVswitchd} {
		o := by[other]
		if o == nil || o.Summary.N == 0 || o.Summary.QPS == 0 {
			continue
		}
		q := Ratio{Versus: other, QPS: sw.Summary.QPS / o.Summary.QPS, AtLeast: sw.Summary.ClientBound > 0}
		if o.Summary.LoadP99Us > 0 {
			q.LoadP99 = sw.Summary.LoadP99Us / o.Summary.LoadP99Us
		}
		if o.Summary.IdleP99Us > 0 {
			q.IdleP99 = sw.Summary.IdleP99Us / o.Summary.IdleP99Us
		}
		if o.Summary.OpenQPS > 0 {
			q.OpenQPS = sw.Summary.OpenQPS / o.Summary.OpenQPS
		}
		r.Ratios = append(r.Ratios, q)
	}
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "# vswitch DNS benchmark (peephole responder vs dnsmasq)\n\n")
	fmt.Fprintf(&b, "- date: %s\n- kernel: %s\n- cpu: %s, %d cores\n- load average at start: %s\n- load average at end: %s\n- go: %s\n",
		r.Date, r.Host.Kernel, r.Host.CPUModel, r.Host.Cores, r.Host.LoadAvg, r.LoadAvgEnd, r.Host.GoVersion)
	b.WriteString(r.Host.ShareLine())
	if r.Commit != "" {
		fmt.Fprintf(&b, "- commit: %s\n", r.Commit)
	}
	fmt.Fprintf(&b, "- reproduce: `make bench-dns` (go run ./bench/dnsperf)\n\n")
	fmt.Fprintf(&b, "Topology: netns client (dnsperf) --veth-- switch --veth-- netns server (dnsmasq %s). "+
		"Every case queries the same server address; the name decides who answers. "+
		"dnsperf: `-c %d -T 1 -q %d -t %d -l %.0f`, one A query name, pinned to core %d with this harness. "+
		"vswitchd (whole process, poll mode %s) and dnsmasq run on core %d. All of them run at nice %d. "+
		"Latency percentiles: a Go prober on its own socket, one query at a time at %d q/s, during dnsperf (\"load\") "+
		"and alone for %.0f s after it (\"idle\"); a lost probe counts as 1 s. "+
		"Client-bound: dnsperf used >= %.0f%% of its core, or its core was >= %.0f%% busy.\n\n",
		serverIP, s.Clients, s.Outstanding, s.TimeoutS, s.DurationS, s.ClientCPU, s.PollMode, s.ServerCPU, s.Nice,
		s.ProbeRate, s.IdleS, 100*s.ClientBound, s.ClientCoreBusy)
	if r.Error != "" {
		fmt.Fprintf(&b, "**run error**: %s\n\n", r.Error)
	}
	b.WriteString("| case | answered by | path | reps | q/s min | q/s median | q/s max | lost % | dnsperf mean ms | p50 µs load | p99 µs load | p50 µs idle | p99 µs idle | dnsperf CPU | ")
	for c := 0; c < r.Host.Cores; c++ {
		fmt.Fprintf(&b, "CPU%d %% | ", c)
	}
	b.WriteString("notes |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for c := 0; c < r.Host.Cores; c++ {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, c := range r.Cases {
		m := c.Summary
		var notes []string
		if c.Error != "" {
			notes = append(notes, "error: "+c.Error)
		}
		if m.ClientBound > 0 {
			why := ""
			for _, r := range c.Reps {
				if r.ClientBound {
					why = r.ClientBoundWhy
				}
			}
			notes = append(notes, fmt.Sprintf("client-bound in %d of %d reps (e.g. %s): the client's ceiling, the server may do more", m.ClientBound, m.N, why))
		}
		if m.SwitchBusyPct > 0 {
			notes = append(notes, fmt.Sprintf("vswitchd worker %.1f%% busy (≈ %.0f q/s at 100%%)", m.SwitchBusyPct, m.SwitchCapacity))
		}
		if m.ProbeLost > 0 {
			notes = append(notes, fmt.Sprintf("%d probes lost", m.ProbeLost))
		}
		if m.ProbeWrong > 0 {
			notes = append(notes, fmt.Sprintf("%d wrong answers", m.ProbeWrong))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.0f | **%.0f** | %.0f | %.2f | %.3f | %.0f | %.0f | %.0f | %.0f | %.0f%% | ",
			c.Name, c.Answerer, c.Path, m.N, m.QPSMin, m.QPS, m.QPSMax, m.LostPct, m.AvgLatMs,
			m.LoadP50Us, m.LoadP99Us, m.IdleP50Us, m.IdleP99Us, 100*m.DnsperfCPU)
		for i := 0; i < r.Host.Cores; i++ {
			if i < len(m.CPUBusy) {
				fmt.Fprintf(&b, "%.0f | ", m.CPUBusy[i])
			} else {
				b.WriteString("- | ")
			}
		}
		fmt.Fprintf(&b, "%s |\n", strings.ReplaceAll(strings.Join(notes, "; "), "|", `\|`))
	}
	if s.OpenS > 0 {
		fmt.Fprintf(&b, "\nOpen loop: after the probes, each repetition sends the case's A query for %.0f s from the client namespace "+
			"with the bench/e2e XDP live-frames generator on core %d (%d UDP source ports, as fast as it goes: far more than "+
			"either server answers) and counts the answers arriving on the client's veth with an XDP program. "+
			"Answers per second is the server's own ceiling, which dnsperf cannot reach from one core.\n\n", s.OpenS, s.ClientCPU, openLoopFlows)
		b.WriteString("| case | reps | answers/s min | answers/s median | answers/s max | queries offered Mpps (median) |\n|---|---:|---:|---:|---:|---:|\n")
		for _, c := range r.Cases {
			m := c.Summary
			if m.OpenN == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | **%.0f** | %.0f | %.2f |\n", c.Name, m.OpenN, m.OpenQPSMin, m.OpenQPS, m.OpenQPSMax, m.OpenGenMpps)
		}
	}
	if len(r.Ratios) > 0 {
		b.WriteString("\nSwitch answering itself vs dnsmasq (medians):\n\n| versus | q/s ratio (dnsperf) | q/s ratio (open loop) | p99 ratio under load | p99 ratio idle |\n|---|---:|---:|---:|---:|\n")
		for _, q := range r.Ratios {
			qs := fmt.Sprintf("%.2f", q.QPS)
			if q.AtLeast {
				qs = "≥ " + qs + " (client-bound)"
			}
			open := "-"
			if q.OpenQPS > 0 {
				open = fmt.Sprintf("%.2f", q.OpenQPS)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.2f |\n", q.Versus, qs, open, q.LoadP99, q.IdleP99)
		}
	}
	b.WriteString("\nPer repetition:\n\n")
	for _, c := range r.Cases {
		for i, rep := range c.Reps {
			fmt.Fprintf(&b, "- %s rep %d: %s\n", c.Name, i+1, rep.line())
		}
	}
	return b.String()
}

// writeReport writes dns-YYYYMMDD-HHMMSS.{json,md} next to vsbench's
// results, each as .tmp then renamed, so a reader never sees half a file.
func writeReport(dir string, t time.Time, r *Report, md string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "dns-"+t.UTC().Format("20060102-150405"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".json", append(js, '\n')}, {base + ".md", []byte(md)}} {
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
