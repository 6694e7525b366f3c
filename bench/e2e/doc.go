// Package e2e is the end-to-end packet benchmark harness: a two-namespace
// veth topology, an XDP live-frames generator, an XDP_DROP sink, the
// reference switches (Linux bridge, XDP redirect, DPDK testpmd with
// net_af_xdp, Open vSwitch with afxdp ports) and vswitchd as the switch
// under test, plus the aggregation and reporting of the measured rates.
//
// Method (same as the shared anchors, so numbers compare):
//
//	netns src: s0 --veth-- p0 [switch, root netns] p1 --veth-- d1 :netns dst
//
// The generator runs BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on s0 in
// the source namespace, pinned to one core; the sink counts and drops UDP on
// d1; "rx Mpps" is the sink's count divided by the generator's run time.
//
// The BPF programs are assembled in Go (cilium/ebpf asm), so no C toolchain
// is needed where the benchmark runs. Product code must not import this
// package.
package e2e
