package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
)

// memring ports are ports without a link: shared-memory rings a colocated
// container attaches to through the daemon's memring socket. They are
// added, listed and deleted through the same port API as AF_XDP ports;
// these commands only speak their language (queue pairs, ring and frame
// sizes, who may attach) and show their attach state and ring counters.

func newMemringCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("memring", "List, add and delete memring (shared-memory) ports")
	cmd.Long = "A memring port is a pair of shared-memory rings per queue pair that a\n" +
		"colocated process attaches to through vswitchd's memring socket; who may\n" +
		"attach is checked by the peer's uid and gid. The port exists (and keeps its\n" +
		"index) while detached; frames flow only while a client is attached."
	cmd.AddCommand(newMemringListCmd(o), newMemringAddCmd(o), newMemringDelCmd(o))
	return cmd
}

// memringPort is one row of `memring list`: the port as the daemon shows it
// and its ring counters, under the JSON names of vswitch.PortStats.
type memringPort struct {
	vswitch.PortInfo
	MemringBadDesc uint64 `json:"memring_bad_desc"`
	MemringCorrupt uint64 `json:"memring_corrupt"`
}

func newMemringListCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "show"},
		Short:   "List the memring ports, their clients and ring counters",
		Long: "list shows each memring port: its index, whether a client is attached and\n" +
			"its pid, the region geometry, whether the attached region is on huge\n" +
			"pages, who may attach (uids and gids; none of either means root only), and\n" +
			"how many invalid descriptors its clients wrote (BAD-DESC) and sessions were\n" +
			"dropped for corrupt rings (CORRUPT).",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			ports, err := cl.Ports(cmd.Context())
			if err != nil {
				return err
			}
			st, err := cl.Stats(cmd.Context())
			if err != nil {
				return err
			}
			rows := []memringPort{} // [] rather than null in JSON
			for _, p := range ports {
				if p.Type != vswitch.PortMemring {
					continue
				}
				r := memringPort{PortInfo: p}
				// A port added between the two calls has no stats yet: zeros.
				if i := slices.IndexFunc(st.Ports, func(s vswitch.PortStats) bool { return s.Name == p.Name }); i >= 0 {
					r.MemringBadDesc, r.MemringCorrupt = st.Ports[i].MemringBadDesc, st.Ports[i].MemringCorrupt
				}
				rows = append(rows, r)
			}
			if o.output == outputJSON {
				return printJSON(o.out, rows)
			}
			return printMemringPorts(o, rows)
		},
	}
}

func printMemringPorts(o *options, rows []memringPort) error {
	t := newTable(o.out, "NAME", "INDEX", "STATE", "PID", "QUEUE-PAIRS", "RING-SIZE", "FRAME-SIZE", "HUGEPAGES", "UIDS", "GIDS", "VLAN", "BAD-DESC", "CORRUPT")
	for _, r := range rows {
		m := r.Memring
		if m == nil { // the daemon sets defaults; never trust that blindly
			m = &vswitch.MemringSpec{}
		}
		pid, huge := "-", "-"
		if r.State == "attached" {
			pid = strconv.Itoa(r.PeerPID)
			huge = "no"
			if r.Hugepages {
				huge = "yes"
			}
		}
		t.row(r.Name, r.Index, dash(r.State), pid, m.QueuePairs, m.RingSize, m.FrameSize, huge,
			joinInts(m.UIDs), joinInts(m.GIDs), vlanString(r.VLAN), r.MemringBadDesc, r.MemringCorrupt)
	}
	return t.flush()
}

// memringAddFlags are the flags of `memring add`, one per PortSpec field a
// memring port takes.
type memringAddFlags struct {
	queuePairs, ringSize, frameSize int
	uids, gids                      []uint
	vlan                            vlanFlags
	spoofGuard                      bool
}

// memringFieldFlags names the flag that sets each field of a memring
// PortSpec, so a validation error points at what the user typed.
var memringFieldFlags = map[string]string{
	"name":                "NAME",
	"type":                "NAME", // a name taken by another kind of port
	"memring":             "--queue-pairs",
	"memring.queue_pairs": "--queue-pairs",
	"memring.ring_size":   "--ring-size",
	"memring.frame_size":  "--frame-size",
	"memring.uids":        "--uid",
	"memring.gids":        "--gid",
	"vlan":                "--vlan-mode",
	"vlan.mode":           "--vlan-mode",
	"vlan.tag":            "--vlan-tag",
	"vlan.allowed":        "--vlan-allowed",
	"vlan.native":         "--vlan-native",
	"spoof_guard":         "--spoof-guard",
}

func newMemringAddCmd(o *options) *cobra.Command {
	// The flags default to the daemon's own defaults, read from the code
	// that fills them, so --help shows what a bare add gets.
	def := vswitch.PortSpec{Type: vswitch.PortMemring}
	def.SetDefaults()
	var f memringAddFlags
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a memring port for a colocated process to attach to",
		Example: "  vswitchctl memring add vm1 --uid 1000\n" +
			"  vswitchctl memring add vm2 --queue-pairs 4 --ring-size 4096 --gid 100 --vlan-mode access --vlan-tag 10\n" +
			"  vswitchctl memring add nf1 --frame-size 4096 --uid 1000,1001 --spoof-guard",
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
				// Local validation passed, so the daemon knows a rule
				// this vswitchctl does not: still name the flag.
				return fieldArgError(err, memringFieldFlags)
			}
			if o.output == outputJSON {
				return printJSON(o.out, info)
			}
			return printMemringPorts(o, []memringPort{{PortInfo: info}})
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.queuePairs, "queue-pairs", def.Memring.QueuePairs, "queue pairs (RX and TX ring each) of the region, 1..16")
	fl.IntVar(&f.ringSize, "ring-size", def.Memring.RingSize, "descriptors per ring, a power of two in 64..32768")
	fl.IntVar(&f.frameSize, "frame-size", def.Memring.FrameSize, "bytes per frame buffer, a power of two in 2048..16384")
	fl.UintSliceVar(&f.uids, "uid", nil, "uid that may attach; repeat or list, e.g. 1000,1001 (no --uid and no --gid: root only)")
	fl.UintSliceVar(&f.gids, "gid", nil, "gid that may attach; repeat or list")
	f.vlan.register(cmd)
	fl.BoolVar(&f.spoofGuard, "spoof-guard", false, "let the port claim only the addresses bound to it (vswitchctl arp/nd add --port)")
	return cmd
}

// spec builds and checks the memring PortSpec locally with the daemon's own
// validation, so a mistake fails before anything is sent and the error
// names the flag. The geometry is sent as given, never defaulted here: an
// explicit --queue-pairs 0 is an error, not a request for the default.
func (f *memringAddFlags) spec(cmd *cobra.Command, name string) (vswitch.PortSpec, error) {
	spec := vswitch.PortSpec{Name: name, Type: vswitch.PortMemring, SpoofGuard: f.spoofGuard,
		Memring: &vswitch.MemringSpec{QueuePairs: f.queuePairs, RingSize: f.ringSize, FrameSize: f.frameSize}}
	var err error
	if spec.Memring.UIDs, err = ids("--uid", f.uids); err != nil {
		return spec, err
	}
	if spec.Memring.GIDs, err = ids("--gid", f.gids); err != nil {
		return spec, err
	}
	if spec.VLAN, err = f.vlan.spec(cmd); err != nil {
		return spec, err
	}
	if err := spec.Validate(""); err != nil {
		return spec, &usageError{fmt.Errorf("invalid %s: %w", flagOf(err, memringFieldFlags), err)}
	}
	return spec, nil
}

// ids converts the values of a --uid or --gid flag, refusing what does not
// fit a uid_t.
func ids(flag string, v []uint) ([]uint32, error) {
	var out []uint32
	for _, id := range v {
		if id > math.MaxUint32 {
			return nil, usageErrorf("invalid %s: %d is not in 0..%d", flag, id, uint32(math.MaxUint32))
		}
		out = append(out, uint32(id))
	}
	return out, nil
}

func newMemringDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a memring port, detaching its client",
		Long: "del deletes a memring port; an attached client is detached first. It\n" +
			"refuses a port of another type, so a typo cannot take down a link: use\n" +
			"'vswitchctl port del' for those.",
		Args: args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return memringNames(cmd, o), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			cl := o.client()
			defer cl.Close()
			ports, err := cl.Ports(cmd.Context())
			if err != nil {
				return err
			}
			i := slices.IndexFunc(ports, func(p vswitch.PortInfo) bool { return p.Name == name })
			if i < 0 {
				return fmt.Errorf("delete memring port %q: %w", name, vswitch.ErrNotFound)
			}
			if t := portType(ports[i].PortSpec); t != vswitch.PortMemring {
				return fmt.Errorf("delete memring port %q: %s is a port of type %s, not memring (use 'vswitchctl port del %s')", name, name, t, name)
			}
			if err := cl.DelPort(cmd.Context(), name); err != nil {
				return err
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted memring port %s\n", name)
			}
			return nil
		},
	}
}

// memringNames asks the daemon for the memring port names to complete; a
// daemon that is down just completes nothing.
func memringNames(cmd *cobra.Command, o *options) []string {
	cl := o.client()
	defer cl.Close()
	ports, err := cl.Ports(cmd.Context())
	if err != nil {
		return nil
	}
	var names []string
	for _, p := range ports {
		if p.Type == vswitch.PortMemring {
			names = append(names, p.Name)
		}
	}
	return names
}
