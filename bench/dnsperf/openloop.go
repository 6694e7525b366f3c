package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/vswitch/vswitch/bench/e2e"
)

// The open-loop phase: dnsperf is a closed-loop client that one core of
// this machine cannot drive past ~100k q/s, so it cannot show what a
// server does at its limit. This phase sends the same A query as fast as
// the bench/e2e XDP live-frames generator can (millions per second, far
// more than either server answers) from the client namespace, and counts
// the answers that come back with an XDP program on the client's veth
// (bench/e2e's sink: it counts and drops IPv4/UDP, passes the rest).
// Answers per second is then the server's own ceiling on its core.

// OpenLoopResult is one open-loop measurement.
type OpenLoopResult struct {
	Sent     uint64  `json:"queries_sent"`
	Answered uint64  `json:"answers_received"`
	Elapsed  float64 `json:"elapsed_s"`
	QPS      float64 `json:"answers_per_s"`
	// GenMpps is the generator's query rate; CPUBusy each core's busy
	// share while it sent.
	GenMpps float64   `json:"gen_mpps"`
	CPUBusy []float64 `json:"cpu_busy_pct"`
	// SwitchAnswered is the growth of vswitchd's DNS answered counter
	// (vswitchd cases): it must match Answered when the switch answers.
	SwitchAnswered *uint64 `json:"switch_dns_answered,omitempty"`
}

// openLoopSrcPort is the first UDP source port of the generated queries;
// openLoopFlows ports are cycled, one per query.
const (
	openLoopSrcPort = 20000
	openLoopFlows   = 256
)

// queryPayload is the DNS message of an A query for name, recursion
// desired, a fixed ID (every query is answered on its own; the ID only has
// to be echoed).
func queryPayload(name string) ([]byte, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = 0x7673
	return m.Pack()
}

// openLoopFrame is the generator's frame spec for queries of name.
func openLoopFrame(name string) (e2e.FrameSpec, error) {
	q, err := queryPayload(name)
	if err != nil {
		return e2e.FrameSpec{}, fmt.Errorf("pack query: %w", err)
	}
	f := e2e.FrameSpec{
		Payload: q, SrcMAC: clientMAC, DstMAC: serverMAC, SrcIP: clientIP, DstIP: serverIP,
		SrcPort: openLoopSrcPort, DstPort: dnsPort, Flows: openLoopFlows, Checksum: true,
	}
	return f, f.Validate()
}

// runOpenLoop measures one open-loop phase of case ci. vs is the running
// daemon in vswitchd cases, nil behind the bridge.
func runOpenLoop(ctx context.Context, s Settings, topo *topology, vs *vswitchd, ci caseInfo) (res OpenLoopResult, err error) {
	frame, err := openLoopFrame(ci.query)
	if err != nil {
		return res, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return res, fmt.Errorf("remove memlock limit: %w", err)
	}
	// The generator's XDP_TX leaves s0 through ndo_xdp_xmit, which the
	// root-side end p0 takes only with NAPI on: vswitchd's XDP program
	// gives it that; behind the bridge, GRO does, for this phase only.
	if ci.bridge {
		if err := run(ctx, "ethtool", "-K", topo.P0, "gro", "on"); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, run(context.Background(), "ethtool", "-K", topo.P0, "gro", "off")) }()
	}
	sink, err := e2e.NewSinkProgram()
	if err != nil {
		return res, err
	}
	defer sink.Close()
	ns, err := netns.GetFromName(topo.SrcNS)
	if err != nil {
		return res, fmt.Errorf("open netns %s: %w", topo.SrcNS, err)
	}
	defer ns.Close()
	l, err := e2e.AttachXDPIn(ns, topo.S0, sink.Prog)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()

	var c0 dnsCounters
	if vs != nil {
		if c0, err = vs.dnsStats(ctx); err != nil {
			return res, err
		}
	}
	before, err := sink.Recv.Read()
	if err != nil {
		return res, err
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	cfg := e2e.GenConfig{Ifname: topo.S0, Frame: frame, Duration: s.openDur, CPU: s.ClientCPU}
	g, err := e2e.RunGenChild(ctx, topo.SrcNS, s.ClientCPU, s.openDur, append([]string{exe, "gen"}, e2e.GenArgs(cfg)...))
	if err != nil {
		return res, err
	}
	// Answers in flight when the generator stopped still count: give them
	// a moment (a queue of a few thousand drains in well under 100 ms).
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	after, err := sink.Recv.Read()
	if err != nil {
		return res, err
	}
	res = OpenLoopResult{Sent: g.Sent, Answered: after - before, Elapsed: g.Elapsed, GenMpps: g.Mpps, CPUBusy: g.CPUBusy}
	if g.Elapsed > 0 {
		res.QPS = float64(res.Answered) / g.Elapsed
	}
	if vs != nil {
		c1, err := vs.dnsStats(ctx)
		if err != nil {
			return res, err
		}
		a := c1.Answered - c0.Answered
		res.SwitchAnswered = &a
	}
	if res.Answered == 0 {
		return res, fmt.Errorf("open loop: %d queries sent, no answer came back", g.Sent)
	}
	return res, nil
}
