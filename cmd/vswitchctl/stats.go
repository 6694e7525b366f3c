package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
)

func newStatsCmd(o *options) *cobra.Command {
	var port string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show per-port, per-worker and responder counters",
		Long: "stats shows every counter of the switch: per port rx/tx frames, bytes and\n" +
			"rates, drops by reason and the kernel's AF_XDP counters; per worker what it\n" +
			"did with the frames, its drops by reason and how busy it is; per memring\n" +
			"port the invalid descriptors its clients wrote and the sessions dropped for\n" +
			"corrupt rings (shown only when there are memring ports); per responder\n" +
			"(ARP, ND, DNS) what it answered, what it left to forwarding and why, and how\n" +
			"many bindings were gleaned. With --port only that port's counters are shown\n" +
			"(workers and responders serve every port, so they are left out).",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			st, err := cl.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if port != "" {
				i := slices.IndexFunc(st.Ports, func(p vswitch.PortStats) bool { return p.Name == port })
				if i < 0 {
					return fmt.Errorf("show stats of port %q: %w", port, vswitch.ErrNotFound)
				}
				// Workers and responders serve many ports, so their
				// counters say nothing about this one; leave them out.
				st.Ports, st.Workers, st.Peephole, st.Gateway = st.Ports[i:i+1], nil, vswitch.PeepholeStats{}, nil
			}
			if o.output == outputJSON {
				return printJSON(o.out, st)
			}
			// Which counters mean something depends on the port's type,
			// which only the port list says.
			ports, err := cl.Ports(cmd.Context())
			if err != nil {
				return err
			}
			memring := map[string]bool{}
			for _, p := range ports {
				memring[p.Name] = p.Type == vswitch.PortMemring
			}
			if err := printStats(o, st, memring); err != nil {
				return err
			}
			if port != "" {
				return nil
			}
			fmt.Fprintln(o.out)
			if err := printPeephole(o, st.Peephole); err != nil {
				return err
			}
			if st.Gateway == nil {
				return nil
			}
			fmt.Fprintln(o.out)
			return printFlowStats(o, *st.Gateway)
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "only this port's counters")
	_ = cmd.RegisterFlagCompletionFunc("port", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return portNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// printStats shows the port, worker and drop tables. memring says which
// ports are memring ports: they get the memring table instead of the
// AF_XDP socket one, and each table shows only when it has a port.
func printStats(o *options, st vswitch.Stats, memring map[string]bool) error {
	t := newTable(o.out, "PORT", "RX-PKTS", "RX-BYTES", "RX-PPS", "TX-PKTS", "TX-BYTES", "TX-PPS", "DROPS")
	for _, p := range st.Ports {
		t.row(p.Name, p.RxPackets, p.RxBytes, rate(p.RxPPS), p.TxPackets, p.TxBytes, rate(p.TxPPS), p.Drops)
	}
	if err := t.flush(); err != nil {
		return err
	}

	var xskPorts, memPorts []vswitch.PortStats
	for _, p := range st.Ports {
		if memring[p.Name] {
			memPorts = append(memPorts, p)
		} else {
			xskPorts = append(xskPorts, p)
		}
	}
	if len(xskPorts) > 0 {
		fmt.Fprintln(o.out)
		t = newTable(o.out, "PORT", "XSK-RX-DROPPED", "XSK-RX-RING-FULL", "XSK-FILL-RING-EMPTY", "XSK-TX-INVALID")
		for _, p := range xskPorts {
			t.row(p.Name, p.XSKRxDropped, p.XSKRxRingFull, p.XSKFillRingEmpty, p.XSKTxInvalid)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(memPorts) > 0 {
		fmt.Fprintln(o.out)
		t = newTable(o.out, "PORT", "MEMRING-BAD-DESC", "MEMRING-CORRUPT")
		for _, p := range memPorts {
			t.row(p.Name, p.MemringBadDesc, p.MemringCorrupt)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	if len(st.Workers) > 0 {
		fmt.Fprintln(o.out)
		t = newTable(o.out, "WORKER", "CPU", "RX-PKTS", "TX-PKTS", "FORWARDED", "FLOODED", "REPLIED", "DROPS", "POLLS", "BUSY%", "RX-PPS", "TX-PPS")
		for _, w := range st.Workers {
			cpu := "-"
			if w.CPU >= 0 {
				cpu = strconv.Itoa(w.CPU)
			}
			t.row(w.ID, cpu, w.RxPackets, w.TxPackets, w.Forwarded, w.Flooded, w.Replied, w.Drops, w.Polls,
				strconv.FormatFloat(w.BusyPct, 'f', 1, 64), rate(w.RxPPS), rate(w.TxPPS))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	// Drops by reason only where there are any: a healthy switch shows none.
	type dropRow struct {
		where  string
		reason string
		n      uint64
	}
	var drops []dropRow
	for _, p := range st.Ports {
		for _, r := range slices.Sorted(maps.Keys(p.DropsBy)) {
			drops = append(drops, dropRow{"port " + p.Name, r, p.DropsBy[r]})
		}
	}
	for _, w := range st.Workers {
		for _, r := range slices.Sorted(maps.Keys(w.DropsBy)) {
			drops = append(drops, dropRow{"worker " + strconv.Itoa(w.ID), r, w.DropsBy[r]})
		}
	}
	if len(drops) > 0 {
		fmt.Fprintln(o.out)
		t = newTable(o.out, "DROPS-AT", "REASON", "COUNT")
		for _, d := range drops {
			t.row(d.where, d.reason, d.n)
		}
		return t.flush()
	}
	return nil
}

// printPeephole shows the responders' counters: what each answered, found
// malformed, (DNS) answered negatively or (ARP, ND) gleaned, what each
// passed on by reason, and the gleaned bindings now in the table.
func printPeephole(o *options, ph vswitch.PeepholeStats) error {
	responders := []struct {
		name string
		s    vswitch.ResponderStats
	}{{"arp", ph.ARP}, {"nd", ph.ND}, {"dns", ph.DNS}}
	t := newTable(o.out, "RESPONDER", "ANSWERED", "PASSED", "MALFORMED", "NXDOMAIN", "NODATA", "GLEANED")
	for _, r := range responders {
		var passed uint64
		for _, n := range r.s.Passed {
			passed += n
		}
		// Only DNS answers negatively; only ARP and ND glean.
		nx, nodata, gleaned := "-", "-", strconv.FormatUint(r.s.Gleaned, 10)
		if r.name == "dns" {
			nx, nodata, gleaned = strconv.FormatUint(r.s.NXDomain, 10), strconv.FormatUint(r.s.NoData, 10), "-"
		}
		t.row(r.name, r.s.Answered, passed, r.s.Malformed, nx, nodata, gleaned)
	}
	if err := t.flush(); err != nil {
		return err
	}

	var passedAny bool
	for _, r := range responders {
		passedAny = passedAny || len(r.s.Passed) > 0
	}
	if passedAny {
		fmt.Fprintln(o.out)
		t = newTable(o.out, "PASSED-BY", "REASON", "COUNT")
		for _, r := range responders {
			for _, reason := range slices.Sorted(maps.Keys(r.s.Passed)) {
				t.row(r.name, reason, r.s.Passed[reason])
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(o.out)
	t = newTable(o.out)
	t.row("GLEANED BINDINGS", ph.Gleaned)
	return t.flush()
}
