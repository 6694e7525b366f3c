package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

func newFlowsCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("flows", "Show, flush and count the gateway's per-worker flow caches")
	cmd.AddCommand(newFlowsShowCmd(o), newFlowsFlushCmd(o), newFlowsStatsCmd(o))
	return cmd
}

func newFlowsShowCmd(o *options) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "show",
		Aliases: []string{"list", "ls"},
		Short:   "Show the cached flows of every worker",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErrorf("invalid --limit: %d is negative", limit)
			}
			cl := o.client()
			defer cl.Close()
			flows, err := cl.Flows(cmd.Context(), limit)
			if err != nil {
				return gatewayError(err)
			}
			if o.output == outputJSON {
				return printJSON(o.out, flows)
			}
			return printFlows(o, flows)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many flows (0: all)")
	return cmd
}

func printFlows(o *options, flows []vswitch.FlowInfo) error {
	t := newTable(o.out, "WORKER", "KEY", "ACTIONS", "IDLE", "VALID")
	for _, f := range flows {
		actions := f.Actions
		if f.Reason != "" {
			actions += "(" + f.Reason + ")"
		}
		t.row(f.Worker, f.Key, actions, seconds(float64(f.IdleSec)), yesNo(f.Valid))
	}
	return t.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newFlowsFlushCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Invalidate every cached flow (the next packet of each recomputes it)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			n, err := cl.FlushFlows(cmd.Context())
			if err != nil {
				return gatewayError(err)
			}
			if o.output == outputJSON {
				return printJSON(o.out, api.FlushResult{Flushed: n})
			}
			fmt.Fprintf(o.out, "flushed %d flows\n", n)
			return nil
		},
	}
}

func newFlowsStatsCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the flow caches' counters, the route step's and the ARP/ND parking's",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			st, err := cl.FlowStats(cmd.Context())
			if err != nil {
				return gatewayError(err)
			}
			if o.output == outputJSON {
				return printJSON(o.out, st)
			}
			return printFlowStats(o, st)
		},
	}
}

func printFlowStats(o *options, st vswitch.FlowStats) error {
	t := newTable(o.out, "WORKER", "ENTRIES", "CAPACITY", "HITS", "MISSES", "INSERTS", "EVICTIONS", "REVALIDATIONS", "EXPIRED", "INVALIDATED")
	row := func(name string, s pipeline.FlowCacheStats) {
		t.row(name, s.Entries, s.Capacity, s.Hits, s.Misses, s.Inserts, s.Evictions, s.Revalidations, s.Expired, s.Invalidated)
	}
	for i, w := range st.Workers {
		row(strconv.Itoa(i), w)
	}
	row("total", st.Total)
	if err := t.flush(); err != nil {
		return err
	}
	ratio := "-"
	if n := st.Total.Hits + st.Total.Misses; n > 0 {
		ratio = strconv.FormatFloat(100*float64(st.Total.Hits)/float64(n), 'f', 1, 64) + "%"
	}
	r := st.Route
	fmt.Fprintf(o.out, "hit ratio: %s\n", ratio)
	fmt.Fprintf(o.out, "generation: %d\n", st.Generation)
	fmt.Fprintf(o.out, "route: routed %d, no route %d, ttl exceeded %d, icmp sent %d, icmp rate-limited %d, parked %d, flooded %d\n",
		r.Routed, r.NoRoute, r.TTLExceeded, r.ICMPSent, r.ICMPLimited, r.Parked, r.Flooded)
	fmt.Fprintf(o.out, "parked: %d now, solicitations %d, released %d, timeouts %d\n", st.Parked, st.Solicitations, st.Released, st.ParkTimeouts)
	fmt.Fprintf(o.out, "local: %d, echo replies %d\n", st.Local, st.EchoReplies)
	return nil
}
