package main

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

func newFDBCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("fdb", "Show and flush the L2 forwarding database")
	cmd.AddCommand(newFDBShowCmd(o), newFDBFlushCmd(o))
	return cmd
}

func newFDBShowCmd(o *options) *cobra.Command {
	var port string
	var vlan uint16
	cmd := &cobra.Command{
		Use:     "show",
		Aliases: []string{"list", "ls"},
		Short:   "Show the learned and static MAC addresses",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := api.FDBFilter{Port: port}
			if cmd.Flags().Changed("vlan") { // --vlan 0 is a real filter
				if vlan > 4095 {
					return usageErrorf("invalid --vlan: %d is not in 0..4095", vlan)
				}
				f.VLAN = &vlan
			}
			cl := o.client()
			defer cl.Close()
			entries, err := cl.FDB(cmd.Context(), f)
			if err != nil {
				return err
			}
			// The daemon lists in table order; people read by VLAN, then MAC.
			slices.SortFunc(entries, func(a, b vswitch.FDBEntry) int {
				return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.MAC, b.MAC))
			})
			if o.output == outputJSON {
				return printJSON(o.out, entries)
			}
			t := newTable(o.out, "MAC", "VLAN", "PORT", "TYPE", "AGE")
			for _, e := range entries {
				typ, age := "learned", seconds(e.AgeSec)
				if e.Static {
					typ, age = "static", "-"
				}
				t.row(e.MAC, e.VLAN, e.Port, typ, age)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "only entries on this port")
	cmd.Flags().Uint16Var(&vlan, "vlan", 0, "only entries in this VLAN")
	_ = cmd.RegisterFlagCompletionFunc("port", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return portNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func newFDBFlushCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Remove every learned entry (static entries stay)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			n, err := cl.FlushFDB(cmd.Context())
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, api.FlushResult{Flushed: n})
			}
			fmt.Fprintf(o.out, "flushed %d entries\n", n)
			return nil
		},
	}
}
