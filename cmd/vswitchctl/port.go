package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
)

func newPortCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("port", "List, add and delete ports")
	cmd.AddCommand(newPortListCmd(o), newPortAddCmd(o), newPortDelCmd(o))
	return cmd
}

func newPortListCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "show"},
		Short:   "List the ports",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			ports, err := cl.Ports(cmd.Context())
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, ports)
			}
			return printPorts(o, ports)
		},
	}
}

// printPorts shows every kind of port in one table. A memring port has no
// link, so its interface, ifindex, MAC, XDP and bind cells are "-", its
// state is attached or detached, and its queues are the attached client's
// queue pairs. RING is descriptors per ring: an AF_XDP port's ring_size,
// a memring port's memring.ring_size.
func printPorts(o *options, ports []vswitch.PortInfo) error {
	t := newTable(o.out, "NAME", "TYPE", "INTERFACE", "IFINDEX", "MAC", "STATE", "XDP", "BIND", "QUEUES", "RING", "WORKERS", "VLAN")
	for _, p := range ports {
		ifindex := "-"
		if p.Ifindex != 0 {
			ifindex = strconv.Itoa(p.Ifindex)
		}
		ring := p.RingSize
		if p.Memring != nil {
			ring = p.Memring.RingSize
		}
		ringCell := "-"
		if ring != 0 {
			ringCell = strconv.Itoa(ring)
		}
		t.row(p.Name, portType(p.PortSpec), dash(p.Interface), ifindex, dash(p.MAC), dash(p.State), dash(p.XDPMode), dash(p.BindMode),
			joinInts(p.Queues), ringCell, joinInts(p.Worker), vlanString(p.VLAN))
	}
	return t.flush()
}

// portType is the spec's type; a daemon that predates port types leaves it
// empty, and then the port is AF_XDP.
func portType(s vswitch.PortSpec) string {
	if s.Type == "" {
		return vswitch.PortAFXDP
	}
	return s.Type
}

// vlanString renders a port's VLAN mode in one cell.
func vlanString(v *vswitch.VLANSpec) string {
	switch {
	case v == nil:
		return "-"
	case v.Mode == "access":
		return fmt.Sprintf("access %d", v.Tag)
	default:
		s := "trunk "
		if len(v.Allowed) == 0 {
			s += "all"
		} else {
			s += joinInts(v.Allowed)
		}
		if v.Native != 0 {
			s += fmt.Sprintf(" native %d", v.Native)
		}
		return s
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// portAddFlags are the flags of `port add`, one per PortSpec field.
type portAddFlags struct {
	iface, xdpMode, bind string
	queues               int
	ringSize             int
	vlan                 vlanFlags
	spoofGuard           bool
}

// vlanFlags are the VLAN flags shared by `port add` and `memring add`.
type vlanFlags struct {
	mode        string
	tag, native uint16
	allowed     []uint
}

// register adds the --vlan-* flags to cmd.
func (v *vlanFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&v.mode, "vlan-mode", "", "802.1Q mode: access or trunk (default: all VLANs, untagged in VLAN 0)")
	fl.Uint16Var(&v.tag, "vlan-tag", 0, "access VLAN (with --vlan-mode access)")
	fl.UintSliceVar(&v.allowed, "vlan-allowed", nil, "VLANs a trunk carries, e.g. 10,20 (default all)")
	fl.Uint16Var(&v.native, "vlan-native", 0, "VLAN of untagged frames on a trunk")
	_ = cmd.RegisterFlagCompletionFunc("vlan-mode", choices("access", "trunk"))
}

// spec returns the VLANSpec the flags describe, nil without --vlan-mode.
// A VLAN flag without a mode is a usage error; the rest is left to
// PortSpec.Validate.
func (v *vlanFlags) spec(cmd *cobra.Command) (*vswitch.VLANSpec, error) {
	if v.mode == "" {
		for _, n := range []string{"vlan-tag", "vlan-allowed", "vlan-native"} {
			if cmd.Flags().Changed(n) {
				return nil, usageErrorf("--%s needs --vlan-mode access or trunk", n)
			}
		}
		return nil, nil
	}
	s := &vswitch.VLANSpec{Mode: v.mode, Tag: v.tag, Native: v.native}
	for _, id := range v.allowed {
		if id > 4094 {
			return nil, usageErrorf("invalid --vlan-allowed: %d is not in 1..4094", id)
		}
		s.Allowed = append(s.Allowed, uint16(id))
	}
	return s, nil
}

// fieldFlags names the flag that sets each PortSpec field, so a validation
// error points at what the user typed.
var fieldFlags = map[string]string{
	"name":         "NAME",
	"interface":    "--interface",
	"xdp_mode":     "--xdp-mode",
	"bind":         "--bind",
	"queues":       "--queues",
	"ring_size":    "--ring-size",
	"vlan":         "--vlan-mode",
	"vlan.mode":    "--vlan-mode",
	"vlan.tag":     "--vlan-tag",
	"vlan.allowed": "--vlan-allowed",
	"vlan.native":  "--vlan-native",
	"spoof_guard":  "--spoof-guard",
}

func newPortAddCmd(o *options) *cobra.Command {
	var f portAddFlags
	cmd := &cobra.Command{
		Use:   "add NAME --interface IF",
		Short: "Attach a network interface as a port",
		Example: "  vswitchctl port add p1 --interface eth1\n" +
			"  vswitchctl port add p2 --interface eth2 --vlan-mode access --vlan-tag 10\n" +
			"  vswitchctl port add up --interface eth3 --vlan-mode trunk --vlan-allowed 10,20 --vlan-native 1",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			spec, err := f.spec(cmd, a[0])
			if err != nil {
				return err
			}
			cl := o.client()
			defer cl.Close()
			info, err := cl.AddPort(cmd.Context(), spec)
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, info)
			}
			return printPorts(o, []vswitch.PortInfo{info})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.iface, "interface", "", "Linux network interface to attach (required)")
	fl.StringVar(&f.xdpMode, "xdp-mode", "native", "XDP attach mode: native or skb")
	fl.StringVar(&f.bind, "bind", "auto", "AF_XDP bind mode: auto, copy or zerocopy")
	fl.IntVar(&f.queues, "queues", 0, "use the link's first N queues (0 = all)")
	fl.IntVar(&f.ringSize, "ring-size", vswitch.DefaultRingSize, fmt.Sprintf("descriptors per AF_XDP ring of each queue, a power of two in 64..%d", vswitch.MaxRingSize))
	f.vlan.register(cmd)
	fl.BoolVar(&f.spoofGuard, "spoof-guard", false, "let the port claim only the addresses bound to it (vswitchctl arp/nd add --port)")
	_ = cmd.RegisterFlagCompletionFunc("xdp-mode", choices("native", "skb"))
	_ = cmd.RegisterFlagCompletionFunc("bind", choices("auto", "copy", "zerocopy"))
	_ = cmd.RegisterFlagCompletionFunc("interface", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		ifs, _ := net.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// spec builds and checks the PortSpec locally, with the daemon's own
// defaults and validation, so a typo fails before anything is sent and the
// error names the flag.
func (f *portAddFlags) spec(cmd *cobra.Command, name string) (vswitch.PortSpec, error) {
	if f.iface == "" {
		return vswitch.PortSpec{}, usageErrorf("required flag --interface not set")
	}
	spec := vswitch.PortSpec{Name: name, Interface: f.iface, XDPMode: f.xdpMode, Bind: f.bind, Queues: f.queues, RingSize: f.ringSize, SpoofGuard: f.spoofGuard}
	var err error
	if spec.VLAN, err = f.vlan.spec(cmd); err != nil {
		return spec, err
	}
	spec.SetDefaults()
	if err := spec.Validate(""); err != nil {
		return spec, &usageError{fmt.Errorf("invalid %s: %w", flagOf(err, fieldFlags), err)}
	}
	return spec, nil
}

// flagOf names the flag behind a validation error of a PortSpec, looking
// the field up in flags.
func flagOf(err error, flags map[string]string) string {
	var fe *vswitch.FieldError
	if !errors.As(err, &fe) {
		return "port"
	}
	field, _, _ := strings.Cut(fe.Field, "[") // vlan.allowed[2] -> vlan.allowed
	if f, ok := flags[field]; ok {
		return f
	}
	return fe.Field
}

func newPortDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a port",
		Args:    args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return portNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			cl := o.client()
			defer cl.Close()
			if err := cl.DelPort(cmd.Context(), a[0]); err != nil {
				return err
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted port %s\n", a[0])
			}
			return nil
		},
	}
}

// portNames asks the daemon for port names to complete; a daemon that is
// down just completes nothing.
func portNames(cmd *cobra.Command, o *options) []string {
	cl := o.client()
	defer cl.Close()
	ports, err := cl.Ports(cmd.Context())
	if err != nil {
		return nil
	}
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	return names
}
