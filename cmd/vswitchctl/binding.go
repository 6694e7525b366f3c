package main

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

// family is what tells `arp` (IPv4) from `nd` (IPv6); the two command
// groups are otherwise the same.
type family struct {
	cmd      string // arp or nd
	name     string // IPv4 or IPv6
	filter   string // api.FamilyIPv4 or api.FamilyIPv6
	other    string // the command of the other family
	example  string // an address of the family, for help texts
	gateway  string // another, for the gateway example
	is4      bool
	protocol string // what the responder answers
}

var (
	familyIPv4 = family{cmd: "arp", name: "IPv4", filter: api.FamilyIPv4, other: "nd", example: "10.0.10.5", gateway: "10.0.10.1", is4: true, protocol: "ARP"}
	familyIPv6 = family{cmd: "nd", name: "IPv6", filter: api.FamilyIPv6, other: "arp", example: "2001:db8:10::5", gateway: "2001:db8:10::1", protocol: "neighbor discovery"}
)

// bindingFields names the argument or flag behind a binding field in the
// daemon's errors.
var bindingFields = map[string]string{"ip": "IP", "mac": "MAC", "vlan": "--vlan", "kind": "--kind", "port": "--port"}

func newBindingCmd(o *options, f family) *cobra.Command {
	cmd := newGroupCmd(f.cmd, fmt.Sprintf("List, add and delete the %s bindings the %s responder answers from", f.name, f.protocol))
	cmd.AddCommand(newBindingListCmd(o, f), newBindingAddCmd(o, f), newBindingDelCmd(o, f), newBindingFlushCmd(o, f))
	return cmd
}

func newBindingListCmd(o *options, f family) *cobra.Command {
	var vlan uint16
	var kind string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "show"},
		Short:   fmt.Sprintf("List the static, gateway and gleaned %s bindings", f.name),
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter := api.BindingFilter{Family: f.filter}
			if cmd.Flags().Changed("vlan") { // --vlan 0 is a real filter
				if vlan > 4094 {
					return usageErrorf("invalid --vlan: %d is not in 0..4094", vlan)
				}
				filter.VLAN = &vlan
			}
			switch kind {
			case "", "static", "gateway", "gleaned":
				filter.Kind = kind
			default:
				return usageErrorf("invalid --kind: %q is not one of static, gateway, gleaned", kind)
			}
			cl := o.client()
			defer cl.Close()
			bs, err := cl.Bindings(cmd.Context(), filter)
			if err != nil {
				return err
			}
			sortBindings(bs)
			if o.output == outputJSON {
				return printJSON(o.out, bs)
			}
			return printBindings(o, bs)
		},
	}
	cmd.Flags().Uint16Var(&vlan, "vlan", 0, "only bindings in this VLAN")
	cmd.Flags().StringVar(&kind, "kind", "", "only bindings of this kind: static, gateway or gleaned")
	_ = cmd.RegisterFlagCompletionFunc("kind", choices("static", "gateway", "gleaned"))
	return cmd
}

// sortBindings orders by VLAN, then address, as people read them.
func sortBindings(bs []vswitch.BindingInfo) {
	slices.SortFunc(bs, func(a, b vswitch.BindingInfo) int {
		ia, _ := netip.ParseAddr(a.IP)
		ib, _ := netip.ParseAddr(b.IP)
		return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), ia.Compare(ib), cmp.Compare(a.IP, b.IP))
	})
}

func printBindings(o *options, bs []vswitch.BindingInfo) error {
	t := newTable(o.out, "IP", "MAC", "VLAN", "KIND", "PORT", "AGE")
	for _, b := range bs {
		age := "-"
		if b.Kind == "gleaned" {
			age = seconds(b.AgeSec)
		}
		t.row(b.IP, b.MAC, b.VLAN, dash(b.Kind), dash(b.Port), age)
	}
	return t.flush()
}

func newBindingAddCmd(o *options, f family) *cobra.Command {
	var spec vswitch.BindingSpec
	cmd := &cobra.Command{
		Use:   "add IP MAC",
		Short: fmt.Sprintf("Bind an %s address to a MAC address", f.name),
		Example: fmt.Sprintf("  vswitchctl %s add %s 02:00:00:00:00:05 --vlan 10 --port p1\n", f.cmd, f.example) +
			fmt.Sprintf("  vswitchctl %s add %s 02:00:00:00:00:01 --vlan 10 --kind gateway", f.cmd, f.gateway),
		Args: args(cobra.ExactArgs(2)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			ip, err := f.parseIP(a[0])
			if err != nil {
				return err
			}
			mac, err := net.ParseMAC(a[1])
			if err != nil || len(mac) != 6 {
				return usageErrorf("invalid MAC: %q is not a MAC address like 02:00:00:00:00:01", a[1])
			}
			if spec.VLAN > 4094 {
				return usageErrorf("invalid --vlan: %d is not in 0..4094", spec.VLAN)
			}
			switch spec.Kind {
			case "static", "gateway":
			default:
				return usageErrorf("invalid --kind: %q is not one of static, gateway", spec.Kind)
			}
			spec.IP, spec.MAC = ip.String(), mac.String()
			cl := o.client()
			defer cl.Close()
			info, err := cl.AddBinding(cmd.Context(), spec)
			if err != nil {
				return fieldArgError(err, bindingFields)
			}
			if o.output == outputJSON {
				return printJSON(o.out, info)
			}
			return printBindings(o, []vswitch.BindingInfo{info})
		},
	}
	fl := cmd.Flags()
	fl.Uint16Var(&spec.VLAN, "vlan", 0, "VLAN of the address (0 = untagged)")
	fl.StringVar(&spec.Kind, "kind", "static", "static, or gateway for an address the switch owns")
	fl.StringVar(&spec.Port, "port", "", "port the address lives behind (spoof_guard ports may claim only their own)")
	_ = cmd.RegisterFlagCompletionFunc("kind", choices("static", "gateway"))
	_ = cmd.RegisterFlagCompletionFunc("port", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return portNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// parseIP parses the IP argument and insists on the command's family, so
// `arp add 2001:db8::1 ...` points at `nd` instead of failing later.
func (f family) parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, usageErrorf("invalid IP: %q is not an %s address", s, f.name)
	}
	ip = ip.Unmap()
	if ip.Is4() != f.is4 {
		other := "IPv6"
		if !f.is4 {
			other = "IPv4"
		}
		return ip, usageErrorf("invalid IP: %s is an %s address; %s bindings are under \"vswitchctl %s\"", s, other, other, f.other)
	}
	return ip, nil
}

func newBindingDelCmd(o *options, f family) *cobra.Command {
	var vlan uint16
	cmd := &cobra.Command{
		Use:     "del IP",
		Aliases: []string{"delete", "rm"},
		Short:   fmt.Sprintf("Delete the binding of an %s address (static, gateway or gleaned)", f.name),
		Args:    args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return bindingIPs(cmd, o, f), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			ip, err := f.parseIP(a[0])
			if err != nil {
				return err
			}
			if vlan > 4094 {
				return usageErrorf("invalid --vlan: %d is not in 0..4094", vlan)
			}
			cl := o.client()
			defer cl.Close()
			if err := cl.DelBinding(cmd.Context(), vlan, ip.String()); err != nil {
				return fieldArgError(err, bindingFields)
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted %s in VLAN %d\n", ip, vlan)
			}
			return nil
		},
	}
	cmd.Flags().Uint16Var(&vlan, "vlan", 0, "VLAN of the address (0 = untagged)")
	return cmd
}

// bindingIPs asks the daemon for the family's bound addresses to complete;
// a daemon that is down just completes nothing.
func bindingIPs(cmd *cobra.Command, o *options, f family) []string {
	cl := o.client()
	defer cl.Close()
	bs, err := cl.Bindings(cmd.Context(), api.BindingFilter{Family: f.filter})
	if err != nil {
		return nil
	}
	sortBindings(bs)
	var ips []string
	for _, b := range bs {
		if !slices.Contains(ips, b.IP) {
			ips = append(ips, b.IP)
		}
	}
	return ips
}

func newBindingFlushCmd(o *options, f family) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Remove every gleaned binding, IPv4 and IPv6 (static and gateway bindings stay)",
		Long: "flush removes every binding learned from observed ARP and ND traffic. The\n" +
			"daemon keeps one gleaned table for both families, so `arp flush` and\n" +
			"`nd flush` do the same. Static and gateway bindings stay.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			n, err := cl.FlushGleaned(cmd.Context())
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, api.FlushResult{Flushed: n})
			}
			fmt.Fprintf(o.out, "flushed %d gleaned bindings\n", n)
			return nil
		},
	}
}
