package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DaemonConfig is the vswitchd config of a vswitchd case (Spec only; Render
// turns it into the YAML the daemon reads): one busy-polling worker pinned
// to the switch core, two access ports, the router with one interface per
// VLAN, and static peephole bindings for the two hosts so the router needs
// no ARP.
type DaemonConfig struct {
	APISocket string
	StateFile string
	WorkerCPU int
	Ports     []PortConfig
	RouterMAC string
	Ifaces    []RouterIface
	// FlowCacheEntries and FlowIdle size the router's per-worker flow cache.
	FlowCacheEntries int
	FlowIdle         time.Duration
	// DenyUDPDstPorts become one ACL rule each, "deny udp dst port P", in
	// this order, before the default allow.
	DenyUDPDstPorts []uint16
	Bindings        []Binding
}

// PortConfig is an access port on a veth end.
type PortConfig struct {
	Name, Interface string
	VLAN            uint16
}

// RouterIface is a router interface: its VLAN and address (CIDR).
type RouterIface struct {
	Name    string
	VLAN    uint16
	Address string
}

// Binding is a static peephole binding: IP -> MAC behind Port in VLAN.
type Binding struct {
	IP, MAC, Port string
	VLAN          uint16
}

// Render returns the YAML text. Names and addresses are quoted with
// strconv.Quote (valid YAML double-quoted scalars for the ASCII used here);
// the ACL rules are flow mappings, one line each.
func (c DaemonConfig) Render() string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "# written by bench/routed for one benchmark case\n")
	fmt.Fprintf(&b, "api_socket: %s\nstate_file: %s\n", q(c.APISocket), q(c.StateFile))
	fmt.Fprintf(&b, "workers:\n  count: 1\n  cpus: [%d]\n  poll_mode: busy\n", c.WorkerCPU)
	b.WriteString("ports:\n")
	for _, p := range c.Ports {
		fmt.Fprintf(&b, "  - name: %s\n    interface: %s\n    vlan: {mode: access, tag: %d}\n", q(p.Name), q(p.Interface), p.VLAN)
	}
	b.WriteString("router:\n")
	fmt.Fprintf(&b, "  mac: %s\n  interfaces:\n", q(c.RouterMAC))
	for _, i := range c.Ifaces {
		fmt.Fprintf(&b, "    - {name: %s, vlan: %d, addresses: [%s]}\n", q(i.Name), i.VLAN, q(i.Address))
	}
	fmt.Fprintf(&b, "  flow_cache: {entries: %d, idle_timeout: %s}\n", c.FlowCacheEntries, c.FlowIdle)
	b.WriteString("  acl:\n    default: allow\n")
	if len(c.DenyUDPDstPorts) == 0 {
		b.WriteString("    rules: []\n")
	} else {
		b.WriteString("    rules:\n")
		for _, p := range c.DenyUDPDstPorts {
			fmt.Fprintf(&b, "      - {action: deny, proto: udp, dst_ports: \"%d\"}\n", p)
		}
	}
	b.WriteString("peephole:\n  bindings:\n")
	for _, x := range c.Bindings {
		fmt.Fprintf(&b, "    - {ip: %s, mac: %s, vlan: %d, port: %s}\n", q(x.IP), q(x.MAC), x.VLAN, q(x.Port))
	}
	return b.String()
}

// Abbreviated returns the rendered config with the ACL rules after the
// first two and before the last one elided, for the report.
func Abbreviated(text string) string {
	lines := strings.Split(text, "\n")
	var out []string
	var rules []string
	flush := func() {
		if len(rules) > 4 {
			out = append(out, rules[:2]...)
			out = append(out, fmt.Sprintf("      # ... %d more rules of the same form ...", len(rules)-3))
			out = append(out, rules[len(rules)-1])
		} else {
			out = append(out, rules...)
		}
		rules = nil
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "      - {action:") {
			rules = append(rules, l)
			continue
		}
		flush()
		out = append(out, l)
	}
	flush()
	return strings.Join(out, "\n")
}

// denyPorts returns n consecutive ports from first (the ACL and nft rules).
func denyPorts(first uint16, n int) []uint16 {
	ps := make([]uint16, n)
	for i := range ps {
		ps[i] = first + uint16(i)
	}
	return ps
}
