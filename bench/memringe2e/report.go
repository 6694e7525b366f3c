package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

// Path names in the report.
const (
	pathMemring = "memring"
	pathVeth    = "veth+afxdp"
)

// Throughput is one path at one frame size: its repetitions and summary.
type Throughput struct {
	Path        string    `json:"path"`
	Size        int       `json:"size"`
	Note        string    `json:"note,omitempty"`
	Reps        []e2e.Rep `json:"reps"`
	GenRingFull []uint64  `json:"gen_ring_full_polls,omitempty"` // memring: generator polls that found m1 full
	// ForeignPct is CPU taken by processes outside the run, in % of one
	// core, per repetition (memring) or per round (veth, where bench/e2e
	// runs every size of the round in one call).
	ForeignPct  []float64   `json:"foreign_cpu_pct"`
	Summary     e2e.Summary `json:"summary"`
	Error       string      `json:"error,omitempty"`
	Diagnostics string      `json:"vswitchctl_stats,omitempty"`
}

// Ratio is memring over veth by median receive rate at one size.
type Ratio struct {
	Size        int     `json:"size"`
	MemringMpps float64 `json:"memring_mpps"`
	VethMpps    float64 `json:"veth_mpps"`
	Ratio       float64 `json:"memring_over_veth"`
	Target      float64 `json:"target"`
	Met         bool    `json:"target_met"`
}

// Report is the JSON file.
type Report struct {
	Date       string            `json:"date"`
	Machine    string            `json:"machine"`
	Host       e2e.HostInfo      `json:"host"`
	Commit     string            `json:"commit,omitempty"`
	Command    string            `json:"command"`
	Commands   map[string]string `json:"commands"`
	Configs    map[string]string `json:"vswitchd_configs"`
	Pinning    string            `json:"pinning"`
	Method     []string          `json:"method"`
	Settings   Settings          `json:"settings"`
	TopCPU     string            `json:"top_cpu_at_start"`
	TopCPUEnd  string            `json:"top_cpu_at_end"`
	Throughput []Throughput      `json:"throughput"`
	Ratios     []Ratio           `json:"ratios"`
	Latency    []LatencyResult   `json:"latency"`
	// CrossCoreRTT is crossCoreRTT between the client and switch cores,
	// ns, at the start of each round (before its vswitchd starts).
	CrossCoreRTT []float64         `json:"cross_core_round_trip_ns,omitempty"`
	Diagnostics  map[string]string `json:"diagnostics,omitempty"`
	Errors       []string          `json:"errors,omitempty"`
}

// targetRatio is the goal: memring at least 10x the veth path.
const targetRatio = 10

func newReport(now time.Time, host e2e.HostInfo, s Settings, args []string) *Report {
	exe, _ := os.Executable()
	return &Report{
		Date:     now.UTC().Format(time.RFC3339),
		Machine:  fmt.Sprintf("%d-core KVM guest, kernel %s", host.Cores, host.Kernel),
		Host:     host,
		Commit:   gitDescribe(),
		Command:  strings.TrimSpace(exe + " " + strings.Join(args, " ")),
		Commands: map[string]string{},
		Configs:  map[string]string{},
		Pinning: fmt.Sprintf("vswitchd: every thread on cpu %d (worker pinned by its config, the rest by taskset / "+
			"bench/e2e), busy poll. Clients on cpu %d: memring generator and sink in one loop on one thread "+
			"of this harness; veth generator = bench/e2e XDP live-frames child on cpu %d (sink is an XDP "+
			"program, runs in softirq wherever the frame arrives); latency sender and receiver of both "+
			"paths in one loop on one thread of this harness. The whole harness is bound to cpu %d. Niceness %d for the harness and its children (vswitchd, generator).",
			s.SwitchCPU, s.ClientCPU, s.ClientCPU, s.ClientCPU, s.Nice),
		Method: []string{
			"throughput: Mpps received by the sink over the generator's sending time, median of the repetitions; " +
				"repetitions run in rounds, each measuring every size on the memring path (a fresh vswitchd) and then " +
				"on the veth path (a fresh topology and vswitchd), so a slow spell of the host is shared by both paths",
			"memring generator: 64-slot batches into m1 (Reserve/Submit), rewriting each frame's first 64 bytes; " +
				"the rest of each buffer keeps the template (like the XDP live-frames generator); " +
				"sink: Recv/Release on m2, reading each frame's EtherType and IP protocol (like the XDP sink)",
			"frames: the e2e generator's UDP/IPv4 frame, 1 flow, 10.201.1.1:1024 -> 10.201.1.2:9, " +
				"from 02:76:73:62:00:01 to 02:76:73:62:00:02, valid checksums",
			"FDB primed before measuring (memring: one frame m2 -> m1, then m1 -> m2; veth: bench/e2e's ping check), " +
				"so frames are forwarded to the learned port, not flooded",
			"latency: one-way, probes at a fixed rate on a fixed schedule; a probe = Ethernet/IPv4/ICMP echo reply " +
				"(ICMP because the e2e sink drops IPv4/UDP on d1) with magic, 64-bit sequence and send time " +
				"(Go monotonic clock, ns) in the payload; latency = receive time in the polling loop - send time; " +
				"sender and receiver busy-poll in one loop on one thread (memring: Rx.Recv; veth: recvfrom " +
				"MSG_DONTWAIT on an AF_PACKET socket bound to d1; send: AF_PACKET sendto on s0); " +
				"probes of the warm-up are not counted; percentiles by nearest rank",
			"foreign cpu %: CPU time of processes outside the run (not the harness, vswitchd, vswitchctl, ip) " +
				"while measuring, in % of one core; other engineers' benchmarks share this 2-core machine, and a " +
				"figure far above a few % means that measurement was disturbed",
		},
		Settings:    s,
		TopCPU:      topCPU(),
		Diagnostics: map[string]string{},
	}
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func (r *Report) fail(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// addThroughput records one round of a path at one size. Rounds of the same
// path and size merge: repetitions, ring-full and foreign-CPU samples
// append, the last round's switch counters and note stand, and the first
// error stands.
func (r *Report) addThroughput(t Throughput) {
	if t.Error != "" {
		r.fail("%s %d B: %s", t.Path, t.Size, t.Error)
	}
	for i := range r.Throughput {
		o := &r.Throughput[i]
		if o.Path != t.Path || o.Size != t.Size {
			continue
		}
		o.Reps = append(o.Reps, t.Reps...)
		o.GenRingFull = append(o.GenRingFull, t.GenRingFull...)
		o.ForeignPct = append(o.ForeignPct, t.ForeignPct...)
		if t.Diagnostics != "" {
			o.Diagnostics = t.Diagnostics
		}
		if t.Note != "" {
			o.Note = t.Note
		}
		if o.Error == "" {
			o.Error = t.Error
		}
		o.Summary = e2e.Summarize(o.Reps)
		return
	}
	t.Summary = e2e.Summarize(t.Reps)
	r.Throughput = append(r.Throughput, t)
}

func (r *Report) find(path string, size int) *Throughput {
	for i := range r.Throughput {
		if t := &r.Throughput[i]; t.Path == path && t.Size == size && len(t.Reps) > 0 {
			return t
		}
	}
	return nil
}

// finish computes the ratios.
func (r *Report) finish() {
	r.TopCPUEnd = topCPU()
	for _, size := range r.Settings.Sizes {
		m, v := r.find(pathMemring, size), r.find(pathVeth, size)
		if m == nil || v == nil || v.Summary.RxMedian == 0 {
			continue
		}
		q := m.Summary.RxMedian / v.Summary.RxMedian
		r.Ratios = append(r.Ratios, Ratio{Size: size, MemringMpps: m.Summary.RxMedian, VethMpps: v.Summary.RxMedian,
			Ratio: q, Target: targetRatio, Met: q >= targetRatio})
	}
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "# memring end to end: container -> vswitchd -> container, memring vs veth + AF_XDP\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %s (%s)\n- load average at start: %s\n- go: %s\n",
		r.Date, r.Machine, r.Host.CPUModel, r.Host.LoadAvg, r.Host.GoVersion)
	b.WriteString(r.Host.ShareLine())
	if r.Commit != "" {
		fmt.Fprintf(&b, "- commit: %s\n", r.Commit)
	}
	fmt.Fprintf(&b, "- command: `%s`\n- pinning: %s\n", r.Command, r.Pinning)
	if s.Hugepages > 0 {
		fmt.Fprintf(&b, "- huge pages: at least %d free 2 MiB pages made sure of for the run (vm.nr_hugepages raised if needed, restored after), so the daemon puts the memring regions on them\n", s.Hugepages)
	}
	fmt.Fprintf(&b, "- machine idle before the run (both cores < %.0f%% busy for 3 s): %t (last sample: %s)\n",
		s.QuietBusyPct, s.QuietAtStart, pct(s.BusyAtStart))
	if len(r.CrossCoreRTT) > 0 {
		ns := make([]string, len(r.CrossCoreRTT))
		for i, v := range r.CrossCoreRTT {
			ns[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, "- cross-core round trip, cpu %d <-> %d, at the start of each round (one cache line handed back and forth 200000 times; the memring path pays it for every line the client and the switch share): %s ns\n",
			s.ClientCPU, s.SwitchCPU, strings.Join(ns, ", "))
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "## Throughput: Mpps at the sink (median of %d x %s)\n\n", s.Reps, s.dur)
	fmt.Fprintf(&b, "| frame | veth + AF_XDP | memring | memring / veth | target %dx |\n|---:|---:|---:|---:|:---|\n", targetRatio)
	for _, q := range r.Ratios {
		met := "no"
		if q.Met {
			met = "yes"
		}
		fmt.Fprintf(&b, "| %d B | %.3f | %.3f | %.1f | %s |\n", q.Size, q.VethMpps, q.MemringMpps, q.Ratio, met)
	}
	fmt.Fprintf(&b, "\nEvery repetition:\n\n| path | frame | rx Mpps (min / median / max) | gen tx Mpps (median) | reps rx Mpps | cpu busy %% (median per core) | foreign cpu %% |\n|---|---:|---|---:|---|---|---|\n")
	for _, t := range r.Throughput {
		var reps []string
		for _, x := range t.Reps {
			reps = append(reps, fmt.Sprintf("%.3f", x.RxMpps))
		}
		sm := t.Summary
		cell := fmt.Sprintf("%.3f / %.3f / %.3f", sm.RxMin, sm.RxMedian, sm.RxMax)
		if t.Error != "" {
			cell += " (error: " + mdCell(t.Error) + ")"
		}
		var foreign []string
		for _, f := range t.ForeignPct {
			foreign = append(foreign, fmt.Sprintf("%.0f", f))
		}
		fmt.Fprintf(&b, "| %s | %d B | %s | %.3f | %s | %s | %s |\n", t.Path, t.Size, cell, sm.TxMedian,
			strings.Join(reps, ", "), pct(sm.CPUBusy), strings.Join(foreign, ", "))
	}

	fmt.Fprintf(&b, "\n## One-way latency at %.0f probes/s (%s, first %s not counted)\n\n", s.LatRatePPS, s.latDur, s.latWarmup)
	fmt.Fprintf(&b, "| path | frame | sent / scheduled | samples | lost | p50 us | p90 us | p99 us | p99.9 us | max us | mean us | foreign cpu %% |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Latency {
		st := l.Stats
		fmt.Fprintf(&b, "| %s | %d B | %d / %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |\n",
			l.Path, l.Size, l.Sent, l.Scheduled, st.Samples, l.Lost, st.P50Us, st.P90Us, st.P99Us, st.P999Us, st.MaxUs, st.MeanUs, l.ForeignPct)
	}
	fmt.Fprintf(&b, "\n## Method\n\n")
	for _, m := range r.Method {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	fmt.Fprintf(&b, "\n## Commands\n\n")
	for _, k := range sortedKeys(r.Commands) {
		fmt.Fprintf(&b, "- %s: `%s`\n", k, r.Commands[k])
	}
	for _, k := range sortedKeys(r.Configs) {
		fmt.Fprintf(&b, "\nvswitchd config, %s:\n\n```yaml\n%s```\n", k, r.Configs[k])
	}
	if r.TopCPU != "" {
		fmt.Fprintf(&b, "\nBusiest processes when the run started and ended (`ps --sort=-pcpu`, %%CPU is a lifetime average):\n\n```\n%s\n```\n\n```\n%s\n```\n", r.TopCPU, r.TopCPUEnd)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\n## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", mdCell(e))
		}
	}
	return b.String()
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// write saves memring-e2e-DATE.json and .md in dir.
func (r *Report) write(dir string, now time.Time, md string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "memring-e2e-"+now.UTC().Format("20060102-150405"))
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".json", append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return nil, err
	}
	return []string{base + ".json", base + ".md"}, nil
}
