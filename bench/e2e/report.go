package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Summary aggregates the repetitions of one CaseResult.
type Summary struct {
	N        int       `json:"n"`
	RxMin    float64   `json:"rx_mpps_min"`
	RxMedian float64   `json:"rx_mpps_median"`
	RxMax    float64   `json:"rx_mpps_max"`
	TxMedian float64   `json:"gen_tx_mpps_median"`
	CPUBusy  []float64 `json:"cpu_busy_pct_median"` // per core
}

// Summarize returns min/median/max of the receive rate, the median generator
// rate and the per-core median CPU busy share.
func Summarize(reps []Rep) Summary {
	s := Summary{N: len(reps)}
	if len(reps) == 0 {
		return s
	}
	rx := make([]float64, len(reps))
	tx := make([]float64, len(reps))
	cores := 0
	for i, r := range reps {
		rx[i], tx[i] = r.RxMpps, r.TxMpps
		cores = max(cores, len(r.CPUBusy))
	}
	s.RxMin, s.RxMax = slices.Min(rx), slices.Max(rx)
	s.RxMedian, s.TxMedian = Median(rx), Median(tx)
	s.CPUBusy = make([]float64, cores)
	for c := range cores {
		var v []float64
		for _, r := range reps {
			if c < len(r.CPUBusy) {
				v = append(v, r.CPUBusy[c])
			}
		}
		s.CPUBusy[c] = Median(v)
	}
	return s
}

// Median of xs (mean of the middle two for an even count); 0 for none.
// xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Ratio compares the switch under test with the references at one size and
// flow count, by median receive rate. A nil ratio means a side is missing or
// failed.
type Ratio struct {
	Size       int      `json:"size"`
	Flows      int      `json:"flows"`
	VsBridge   *float64 `json:"vswitchd_per_bridge,omitempty"`
	VsRedirect *float64 `json:"vswitchd_per_xdp_redirect,omitempty"`
	// VsTestpmd compares with the reference AF_XDP switch (DPDK testpmd).
	VsTestpmd *float64 `json:"vswitchd_per_testpmd,omitempty"`
	// VsOVS compares with Open vSwitch on afxdp ports.
	VsOVS *float64 `json:"vswitchd_per_ovs,omitempty"`
}

// Ratios computes vswitchd/bridge, vswitchd/xdp-redirect, vswitchd/testpmd
// and vswitchd/ovs for every size and flow count vswitchd was measured at.
func Ratios(rs []CaseResult) []Ratio {
	median := func(c string, size, flows int) (float64, bool) {
		for _, r := range rs {
			if r.Case == c && r.Size == size && r.Flows == flows && r.Error == "" && len(r.Reps) > 0 {
				return Summarize(r.Reps).RxMedian, true
			}
		}
		return 0, false
	}
	var out []Ratio
	for _, r := range rs {
		if r.Case != CaseVswitchd {
			continue
		}
		q := Ratio{Size: r.Size, Flows: r.Flows}
		if v, ok := median(CaseVswitchd, r.Size, r.Flows); ok {
			if b, ok := median(CaseBridge, r.Size, r.Flows); ok && b > 0 {
				x := v / b
				q.VsBridge = &x
			}
			if d, ok := median(CaseRedirect, r.Size, r.Flows); ok && d > 0 {
				x := v / d
				q.VsRedirect = &x
			}
			if p, ok := median(CaseTestpmd, r.Size, r.Flows); ok && p > 0 {
				x := v / p
				q.VsTestpmd = &x
			}
			if p, ok := median(CaseOVS, r.Size, r.Flows); ok && p > 0 {
				x := v / p
				q.VsOVS = &x
			}
		}
		out = append(out, q)
	}
	return out
}

// MarkdownTable renders one row per CaseResult with the CPU columns of the
// given cores (generator core and switch core).
func MarkdownTable(rs []CaseResult, cores []int) string {
	var b strings.Builder
	b.WriteString("| case | frame B | flows | reps | rx Mpps min | rx median | rx max | gen tx Mpps | ")
	for _, c := range cores {
		fmt.Fprintf(&b, "CPU%d %% | ", c)
	}
	b.WriteString("notes |\n|---|---:|---:|---:|---:|---:|---:|---:|")
	for range cores {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, r := range rs {
		s := Summarize(r.Reps)
		note := r.Note
		if r.Error != "" {
			note = "**error**: " + r.Error
		}
		for _, w := range r.Warnings {
			note += "; warning: " + w
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | ", r.Label, r.Size, r.Flows, s.N)
		if s.N == 0 {
			b.WriteString("- | - | - | - | ")
			for range cores {
				b.WriteString("- | ")
			}
		} else {
			fmt.Fprintf(&b, "%.3f | **%.3f** | %.3f | %.3f | ", s.RxMin, s.RxMedian, s.RxMax, s.TxMedian)
			for _, c := range cores {
				if c < len(s.CPUBusy) {
					fmt.Fprintf(&b, "%.0f | ", s.CPUBusy[c])
				} else {
					b.WriteString("- | ")
				}
			}
		}
		b.WriteString(mdCell(note) + " |\n")
	}
	return b.String()
}

// MarkdownRatios renders the ratio table; empty if vswitchd was not measured.
// The testpmd and ovs columns are there only when some row has both sides
// measured (neither is in every run, e.g. not in ci).
func MarkdownRatios(qs []Ratio) string {
	if len(qs) == 0 {
		return ""
	}
	f := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", *p)
	}
	testpmd := slices.ContainsFunc(qs, func(q Ratio) bool { return q.VsTestpmd != nil })
	ovs := slices.ContainsFunc(qs, func(q Ratio) bool { return q.VsOVS != nil })
	var b strings.Builder
	b.WriteString("| frame B | flows | vswitchd / linux-bridge | vswitchd / xdp-redirect |")
	if testpmd {
		b.WriteString(" vswitchd / testpmd |")
	}
	if ovs {
		b.WriteString(" vswitchd / ovs |")
	}
	b.WriteString("\n|---:|---:|---:|---:|")
	if testpmd {
		b.WriteString("---:|")
	}
	if ovs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, q := range qs {
		fmt.Fprintf(&b, "| %d | %d | %s | %s |", q.Size, q.Flows, f(q.VsBridge), f(q.VsRedirect))
		if testpmd {
			fmt.Fprintf(&b, " %s |", f(q.VsTestpmd))
		}
		if ovs {
			fmt.Fprintf(&b, " %s |", f(q.VsOVS))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// mdCell keeps a cell on one line and its pipes from splitting the row.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// HostInfo identifies the machine a report was measured on.
type HostInfo struct {
	Kernel    string `json:"kernel"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	// LoadAvg is /proc/loadavg when the run started: other work on the
	// machine skews rates, and this makes such a run recognisable.
	LoadAvg string `json:"loadavg"`
	// CPUShare is the share of wall time (percent) a pinned spinning
	// thread got on each core, all cores at once, for 1 s when the run
	// started (CPUShare): what the host left this guest.
	CPUShare []float64 `json:"cpu_share_pct"`
}

// ShareLine is the report line for CPUShare.
func (h HostInfo) ShareLine() string {
	return "- CPU share at start (a pinned spinning thread per core, 1 s): " + FormatCPUShare(h.CPUShare) + "\n"
}

// ReadHostInfo collects kernel release, CPU model and core count.
func ReadHostInfo() HostInfo {
	h := HostInfo{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		h.CPUModel = cpuModel(data)
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		h.LoadAvg = strings.TrimSpace(string(data))
	}
	h.CPUShare = CPUShare(h.Cores, time.Second)
	return h
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
