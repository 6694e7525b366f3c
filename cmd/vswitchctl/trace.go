package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// traceFields names the flag behind a trace field in the daemon's errors.
var traceFields = map[string]string{
	"in_port": "--in-port", "src": "--src", "dst": "--dst", "proto": "--proto", "vlan": "--vlan",
	"src_mac": "--src-mac", "dst_mac": "--dst-mac", "src_port": "--sport", "dst_port": "--dport", "ttl": "--ttl",
}

var traceProtos = []string{"udp", "tcp", "icmp", "icmpv6"}

func newTraceCmd(o *options) *cobra.Command {
	var req vswitch.TraceRequest
	cmd := &cobra.Command{
		Use:   "trace --in-port PORT --src ADDR --dst ADDR",
		Short: "Show what the gateway would do with a packet, step by step",
		Long: "trace builds the packet the flags describe, as if it came in on --in-port, and\n" +
			"runs it through the gateway of the worker that polls that port: the flow cache\n" +
			"lookup, then every step's decision. Nothing is sent and nothing is cached.\n" +
			"Defaults: --proto udp, --sport 12345, --dport 80, --ttl 64, --dst-mac the\n" +
			"router's, --src-mac 02:00:00:00:00:01, untagged.",
		Example: "  vswitchctl trace --in-port eth0 --src 10.0.1.5 --dst 10.9.3.4 --proto tcp --dport 443",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTrace(req); err != nil {
				return err
			}
			cl := o.client()
			defer cl.Close()
			info, err := cl.Trace(cmd.Context(), req)
			if err != nil {
				return gatewayError(fieldArgError(err, traceFields))
			}
			if o.output == outputJSON {
				return printJSON(o.out, info)
			}
			return printTrace(o, info)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.InPort, "in-port", "", "port the packet comes in on (required)")
	fl.StringVar(&req.Src, "src", "", "source IP address (required)")
	fl.StringVar(&req.Dst, "dst", "", "destination IP address (required)")
	fl.StringVar(&req.Proto, "proto", "", "udp, tcp, icmp (IPv4) or icmpv6 (IPv6) (default udp)")
	fl.Uint16Var(&req.SrcPort, "sport", 0, "source port, or ICMP echo id (default 12345)")
	fl.Uint16Var(&req.DstPort, "dport", 0, "destination port (default 80)")
	fl.Uint8Var(&req.TTL, "ttl", 0, "TTL or hop limit (default 64)")
	fl.Uint16Var(&req.VLAN, "vlan", 0, "tag the frame with this VLAN (default untagged)")
	fl.StringVar(&req.SrcMAC, "src-mac", "", "source MAC (default 02:00:00:00:00:01)")
	fl.StringVar(&req.DstMAC, "dst-mac", "", "destination MAC (default the router's)")
	_ = cmd.RegisterFlagCompletionFunc("proto", choices(traceProtos...))
	_ = cmd.RegisterFlagCompletionFunc("in-port", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return portNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// checkTrace rejects what the command line got wrong before the daemon
// sees it.
func checkTrace(req vswitch.TraceRequest) error {
	for _, f := range []struct{ flag, v string }{{"in-port", req.InPort}, {"src", req.Src}, {"dst", req.Dst}} {
		if f.v == "" {
			return usageErrorf("--%s is required", f.flag)
		}
	}
	src, err := netip.ParseAddr(req.Src)
	if err != nil {
		return usageErrorf("invalid --src: %q is not an IP address", req.Src)
	}
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil {
		return usageErrorf("invalid --dst: %q is not an IP address", req.Dst)
	}
	if src.Is4() != dst.Is4() {
		return usageErrorf("invalid --dst: %s is not of --src's address family", req.Dst)
	}
	switch req.Proto {
	case "", "udp", "tcp", "icmp", "icmpv6":
	default:
		return usageErrorf("invalid --proto: %q is not one of %v", req.Proto, traceProtos)
	}
	if req.VLAN > 4094 {
		return usageErrorf("invalid --vlan: %d is not in 0..4094", req.VLAN)
	}
	for _, f := range []struct{ flag, v string }{{"src-mac", req.SrcMAC}, {"dst-mac", req.DstMAC}} {
		if mac, err := net.ParseMAC(f.v); f.v != "" && (err != nil || len(mac) != 6) {
			return usageErrorf("invalid --%s: %q is not a MAC address like 02:00:00:00:00:01", f.flag, f.v)
		}
	}
	return nil
}

func printTrace(o *options, info vswitch.TraceInfo) error {
	w := o.out
	fmt.Fprintf(w, "key: %s\n", info.Key)
	fmt.Fprintf(w, "worker: %d\n", info.Worker)
	fmt.Fprintf(w, "cache: %s\n", info.Cache)
	if info.Cached != nil {
		fmt.Fprintf(w, "cached: %s\n", traceActionText(info.Cached))
	}
	for _, e := range info.Events {
		fmt.Fprintf(w, "%s: %s  %s\n", e.Stage, e.Decision, e.Detail)
	}
	verdict := info.Verdict
	switch {
	case info.Reason != "":
		verdict += " (" + info.Reason + ")"
	case info.OutPort >= 0:
		verdict += fmt.Sprintf(" out %s (port %d)", dash(info.OutPortName), info.OutPort)
	}
	fmt.Fprintf(w, "verdict: %s\n", verdict)
	if info.Entry != nil {
		cacheable := "not cacheable"
		if info.Cacheable {
			cacheable = "cacheable"
		}
		fmt.Fprintf(w, "entry: %s (%s)\n", traceActionText(info.Entry), cacheable)
	}
	if info.Same != nil {
		fmt.Fprintf(w, "entry equals cached: %s\n", yesNo(*info.Same))
	}
	return nil
}

func traceActionText(a *pipeline.TraceAction) string {
	if a.Reason != "" {
		return a.Actions + " (" + a.Reason + ")"
	}
	return a.Actions
}
