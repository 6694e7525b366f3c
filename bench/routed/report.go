package main

import (
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

// Issue targets, judged at targetFlows flows.
const (
	targetFlows = 1000
	targetPlain = 0.9  // vswitchd-route / linux-route
	targetACL   = 10.0 // vswitchd-route-acl1000 / linux-route-nft1000
)

// Anchor figures of this machine (shared anchors, "More anchors", 1 and
// 1000 flows), for the reader's comparison.
const (
	anchorPlainMpps = 0.95
	anchorNftMpps   = 0.061
)

// CaseReport is a CaseResult with its summary.
type CaseReport struct {
	CaseResult
	Summary e2e.Summary `json:"summary"`
}

// Ratio is vswitchd over Linux at one flow count, by median rx rate.
type Ratio struct {
	Flows               int
	Linux, Vswitchd     float64 // medians, Mpps; 0 = missing
	LinuxNft, VsACL     float64
	Plain, ACL          *float64
	PlainMet, ACLTarget string
}

// Report is what one run measured.
type Report struct {
	Date       string
	Stamp      string // YYYYMMDD-HHMMSS (UTC), also in the file names
	Machine    string
	Host       e2e.HostInfo
	Commit     string
	Command    string
	Settings   Settings
	Cases      []CaseReport
	Ratios     []Ratio
	Configs    map[string]string
	Topology   []string
	GenCommand string
	LoadAvgEnd string
	Errors     []string
}

func newReport(now time.Time, s Settings, args []string) *Report {
	host := e2e.ReadHostInfo()
	return &Report{
		Date:     now.UTC().Format(time.RFC3339),
		Stamp:    now.UTC().Format("20060102-150405"),
		Machine:  fmt.Sprintf("%d-core KVM guest, %s, kernel %s", host.Cores, host.CPUModel, host.Kernel),
		Host:     host,
		Commit:   gitDescribe(),
		Command:  strings.TrimSpace("routed " + strings.Join(args, " ")),
		Settings: s,
		Configs:  map[string]string{},
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

// add records a case's results; a failed one is also an error of the run.
// A later round of a case and flow count already recorded merges into it:
// its repetitions, unrouted counts and warnings append, the first error
// stands, its diagnostics replace the earlier ones.
func (r *Report) add(rs []CaseResult) {
	for _, c := range rs {
		if c.Error != "" {
			r.fail("%s %d flows: %s", c.Case, c.Flows, c.Error)
		}
		if o := r.find(c.Case, c.Flows); o != nil {
			o.Reps = append(o.Reps, c.Reps...)
			o.Unrouted = append(o.Unrouted, c.Unrouted...)
			o.Warnings = append(o.Warnings, c.Warnings...)
			if o.Error == "" {
				o.Error = c.Error
			}
			if c.Diagnostics != "" {
				o.Diagnostics = c.Diagnostics
			}
			o.Summary = e2e.Summarize(o.Reps)
			continue
		}
		r.Cases = append(r.Cases, CaseReport{CaseResult: c, Summary: e2e.Summarize(c.Reps)})
	}
}

func (r *Report) find(c string, flows int) *CaseReport {
	for i := range r.Cases {
		if r.Cases[i].Case == c && r.Cases[i].Flows == flows {
			return &r.Cases[i]
		}
	}
	return nil
}

// median is the median rx Mpps of a case at flows, 0 if it has none.
func (r *Report) median(c string, flows int) float64 {
	for _, x := range r.Cases {
		if x.Case == c && x.Flows == flows && x.Error == "" && x.Summary.N > 0 {
			return x.Summary.RxMedian
		}
	}
	return 0
}

// finish computes the ratios.
func (r *Report) finish() {
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.LoadAvgEnd = strings.TrimSpace(string(data))
	}
	ratio := func(a, b float64) *float64 {
		if a == 0 || b == 0 {
			return nil
		}
		x := a / b
		return &x
	}
	judge := func(flows int, q *float64, target float64) string {
		switch {
		case flows != targetFlows:
			return "-"
		case q == nil:
			return "n/a"
		case *q >= target:
			return fmt.Sprintf("met (>= %gx)", target)
		}
		return fmt.Sprintf("**not met** (< %gx)", target)
	}
	for _, f := range r.Settings.Flows {
		q := Ratio{Flows: f, Linux: r.median(CaseLinux, f), Vswitchd: r.median(CaseVswitchd, f),
			LinuxNft: r.median(CaseLinuxNft, f), VsACL: r.median(CaseVswitchdACL, f)}
		q.Plain, q.ACL = ratio(q.Vswitchd, q.Linux), ratio(q.VsACL, q.LinuxNft)
		q.PlainMet, q.ACLTarget = judge(f, q.Plain, targetPlain), judge(f, q.ACL, targetACL)
		r.Ratios = append(r.Ratios, q)
	}
}

func mpps(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func ratioCell(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *p)
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	gen, sw := s.GenCPU, s.SwCPU
	fmt.Fprintf(&b, "# Routed end to end: vswitchd L3 gateway vs the Linux kernel router\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %s\n- go: %s\n", r.Date, r.Machine, r.Host.GoVersion)
	if r.Commit != "" {
		fmt.Fprintf(&b, "- commit: %s\n", r.Commit)
	}
	fmt.Fprintf(&b, "- run with: `make bench-routed` (this run: `%s`)\n", r.Command)
	fmt.Fprintf(&b, "- load average at start / end: %s / %s\n", r.Host.LoadAvg, r.LoadAvgEnd)
	b.WriteString(r.Host.ShareLine())
	fmt.Fprintf(&b, "- %d B UDP frames, %d x %s per case and flow count in interleaved rounds (each round runs every case once), "+
		"generator on cpu %d, vswitchd on cpu %d; "+
		"harness, generator and vswitchd at nice %d in a session of their own (autogroup niceness too)\n",
		s.Size, s.Reps, s.dur, gen, sw, s.Nice)
	fmt.Fprintf(&b, "- before each case the run waits up to %s for an idle machine (every core < %d%% busy for 3 s); "+
		"a case measured on a busy machine carries a warning, and then its figures are not comparable with the anchors\n\n",
		s.quietWait, quietBusyPct)

	fmt.Fprintf(&b, "## Ratios (median rx Mpps; issue targets at %d flows: plain >= %gx, ACL >= %gx)\n\n", targetFlows, targetPlain, targetACL)
	b.WriteString("| flows | linux-route | vswitchd-route | vswitchd / linux | target | linux-route-nft1000 | vswitchd-route-acl1000 | vswitchd / linux | target |\n")
	b.WriteString("|---:|---:|---:|---:|---|---:|---:|---:|---|\n")
	for _, q := range r.Ratios {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.Flows, mpps(q.Linux), mpps(q.Vswitchd),
			ratioCell(q.Plain), q.PlainMet, mpps(q.LinuxNft), mpps(q.VsACL), ratioCell(q.ACL), q.ACLTarget)
	}
	fmt.Fprintf(&b, "\nAnchors on this machine (shared anchors, RESULTS.md \"More anchors\"): Linux plain routing %.2f Mpps, "+
		"routing + 1000-rule nft chain %.3f Mpps.\n", anchorPlainMpps, anchorNftMpps)
	b.WriteString(r.anchorCheck())
	b.WriteString("\n")

	fmt.Fprintf(&b, "## Every case\n\n")
	seen := map[string]bool{}
	for _, c := range r.Cases {
		if !seen[c.Case] {
			seen[c.Case] = true
			fmt.Fprintf(&b, "- `%s`: %s\n", c.Case, c.Note)
		}
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "| case | flows | reps | rx Mpps min | rx median | rx max | gen tx Mpps | CPU%d %% | CPU%d %% | notes |\n", gen, sw)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range r.Cases {
		sm := c.Summary
		var notes []string
		if c.Error != "" {
			notes = append(notes, "**failed**: "+c.Error)
		}
		for _, w := range c.Warnings {
			notes = append(notes, "warning: "+w)
		}
		note := strings.Join(notes, "; ")
		if sm.N == 0 {
			fmt.Fprintf(&b, "| %s | %d | 0 | - | - | - | - | - | - | %s |\n", c.Case, c.Flows, mdCell(note))
			continue
		}
		cpu := func(i int) string {
			if i < len(sm.CPUBusy) {
				return fmt.Sprintf("%.0f", sm.CPUBusy[i])
			}
			return "-"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.3f | **%.3f** | %.3f | %.3f | %s | %s | %s |\n", c.Case, c.Flows, sm.N,
			sm.RxMin, sm.RxMedian, sm.RxMax, sm.TxMedian, cpu(gen), cpu(sw), mdCell(note))
	}

	fmt.Fprintf(&b, "\n## Method\n\n")
	for _, m := range []string{
		"topology: three network namespaces, `gen: G0 10.78.1.1/24 --veth-- P0 [rtr] P1 --veth-- S1 10.78.2.2/24 :snk`; " +
			"the router (Linux or vswitchd) lives in its own namespace `rtr`, not the root namespace, so ip_forward, " +
			"the nft table and the neighbour entries touch nothing on the host; one TX/RX queue per veth end; IPv6 off",
		"both router-side veth ends carry the gateway MAC 02:00:5e:10:00:01, which is also vswitchd's router MAC, so the " +
			"generator and the sink address the same gateway in every case; default routes via 10.78.1.254 / 10.78.2.254 " +
			"with permanent neighbour entries for them (no ARP during measurement); the Linux router has permanent " +
			"neighbours for both hosts, vswitchd static peephole bindings",
		fmt.Sprintf("generator: bench/e2e's XDP live-frames generator (BPF_PROG_RUN, XDP_TX out of G0) pinned to cpu %d, "+
			"routed variant: the 42-byte Ethernet/IPv4/UDP header is restored on every packet, because a router rewrites "+
			"the recycled live-frame pages in place (the anchors' `gen -R`); UDP 10.78.1.1 -> 10.78.2.2, dst MAC = gateway, "+
			"valid checksums; N flows = source ports %d.. (N <= %d) or %d source ports x N/%d destination ports from %d "+
			"(outside the denied 10000..10999)", gen, genSrcPort, maxSrcPorts, maxSrcPorts, maxSrcPorts, genDstPort),
		"sink: XDP program on S1 dropping IPv4/UDP (ICMP passes, for the ping check) and counting only routed frames " +
			"(dst MAC = S1's, TTL 63 from the generator's 64) as received; other UDP frames (flooded or bridged unchanged) " +
			"are counted apart as unrouted and reported as a warning; rx Mpps = routed count / generator sending time",
		fmt.Sprintf("Linux cases: forwarding runs inline in softirq on the generator core (cpu %d) inside BPF_PROG_RUN, "+
			"as in the anchors; GRO on P0 (veth NAPI for XDP frames); nft1000: table %s, forward chain of %d "+
			"`udp dport P drop` rules then accept, no sets, no conntrack; the table is deleted and ip_forward restored after the case",
			gen, nftTable, denyCount),
		fmt.Sprintf("vswitchd cases: `ip netns exec rtr taskset -c %d vswitchd`, one busy-poll worker on cpu %d (the "+
			"whole process there), AF_XDP on P0/P1; kernel forwarding in `rtr` is off (no addresses, ip_forward "+
			"restored), so only vswitchd can route; vswitchctl stats below", sw, sw),
		"a ping gen -> snk precedes each case's measurements (failure = warning; the measurement shows the truth); " +
			"a case whose DUT does not start is recorded as failed with the DUT's error and the run goes on",
	} {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	if r.GenCommand != "" {
		fmt.Fprintf(&b, "\nGenerator (per repetition): `%s`\n", r.GenCommand)
	}
	if len(r.Topology) > 0 {
		fmt.Fprintf(&b, "\nTopology commands:\n\n```\n%s\n```\n", strings.Join(r.Topology, "\n"))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Configs)) {
		fmt.Fprintf(&b, "\n### %s setup\n\n```\n%s\n```\n", k, strings.TrimRight(r.Configs[k], "\n"))
	}
	var diag []string
	for _, c := range r.Cases {
		if c.Diagnostics != "" {
			diag = append(diag, fmt.Sprintf("%s, after %d flows (cumulative since start):\n%s", c.Case, c.Flows, strings.TrimRight(c.Diagnostics, "\n")))
		}
	}
	if len(diag) > 0 {
		fmt.Fprintf(&b, "\n### vswitchctl stats\n\n```\n%s\n```\n", strings.Join(diag, "\n\n"))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\n## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", mdCell(e))
		}
	}
	return b.String()
}

// anchorDeviation: a Linux median further than this from its anchor is
// called out, because the ratios then mean something else.
const anchorDeviation = 0.25

// anchorCheck compares the Linux medians at targetFlows with the anchors
// and gives the vswitchd ratios against the anchor figures as well.
func (r *Report) anchorCheck() string {
	var b strings.Builder
	for _, x := range []struct {
		linux, vs     string
		anchor        float64
		what, vsLabel string
	}{
		{CaseLinux, CaseVswitchd, anchorPlainMpps, "plain", "vswitchd-route"},
		{CaseLinuxNft, CaseVswitchdACL, anchorNftMpps, "nft1000", "vswitchd-route-acl1000"},
	} {
		l, v := r.median(x.linux, targetFlows), r.median(x.vs, targetFlows)
		if l == 0 {
			continue
		}
		dev := l/x.anchor - 1
		if dev < -anchorDeviation || dev > anchorDeviation {
			fmt.Fprintf(&b, "\n**Note**: %s at %d flows measured %.3f Mpps here, %+.0f%% off its anchor (%.3f); "+
				"the machine or the kernel differs from the anchor run", x.linux, targetFlows, l, 100*dev, x.anchor)
			if v > 0 {
				fmt.Fprintf(&b, ", and %s / anchor = %.2f", x.vsLabel, v/x.anchor)
			}
			b.WriteString(".\n")
		}
	}
	return b.String()
}

// TSV renders one row per repetition, and one row with rep 0 for a case
// and flow count that has no repetitions (failed before measuring).
func (r *Report) TSV() string {
	var b strings.Builder
	b.WriteString("date\tcase\tframe_b\tflows\trep\tsent\treceived\telapsed_s\trx_mpps\tgen_tx_mpps\tunrouted\tcpu_gen_pct\tcpu_sw_pct\terror\n")
	s := r.Settings
	for _, c := range r.Cases {
		errText := strings.NewReplacer("\t", " ", "\n", " ").Replace(c.Error)
		if len(c.Reps) == 0 {
			fmt.Fprintf(&b, "%s\t%s\t%d\t%d\t0\t\t\t\t\t\t\t\t\t%s\n", r.Date, c.Case, c.Size, c.Flows, errText)
			continue
		}
		for i, m := range c.Reps {
			cpu := func(n int) string {
				if n < len(m.CPUBusy) {
					return fmt.Sprintf("%.1f", m.CPUBusy[n])
				}
				return ""
			}
			e := ""
			if i == len(c.Reps)-1 {
				e = errText
			}
			var un uint64
			if i < len(c.Unrouted) {
				un = c.Unrouted[i]
			}
			fmt.Fprintf(&b, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%.4f\t%.4f\t%d\t%s\t%s\t%s\n", r.Date, c.Case, c.Size, c.Flows, i+1,
				m.Sent, m.Received, m.Elapsed, m.RxMpps, m.TxMpps, un, cpu(s.GenCPU), cpu(s.SwCPU), e)
		}
	}
	return b.String()
}

// write saves routed-STAMP.tsv and .md in dir.
func (r *Report) write(dir string, now time.Time, md string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "routed-"+now.UTC().Format("20060102-150405"))
	if err := os.WriteFile(base+".tsv", []byte(r.TSV()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return nil, err
	}
	return []string{base + ".tsv", base + ".md"}, nil
}
