package vswitch

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

// RouterSpec configures the switch as the gateway of its segments: the
// router's interfaces (an address per segment), static routes, the ACL
// firewall and the per-worker flow cache. The router is on when it has at
// least one interface.
type RouterSpec struct {
	// MAC is the router's Ethernet address on every interface (default
	// DefaultRouterMAC).
	MAC string `yaml:"mac,omitempty" json:"mac,omitempty"`
	// Interfaces are the gateway's addresses, one interface per VLAN.
	Interfaces []RouterInterfaceSpec `yaml:"interfaces" json:"interfaces"`
	// Routes are static routes besides the connected prefixes.
	Routes []RouteSpec `yaml:"routes" json:"routes"`
	// ACL is the firewall of routed traffic.
	ACL ACLSpec `yaml:"acl" json:"acl"`
	// FlowCache sizes each worker's cache of per-flow results.
	FlowCache FlowCacheSpec `yaml:"flow_cache" json:"flow_cache"`
	// Stages is the order of the gateway steps (default [acl, route]:
	// the firewall sees every packet before routing spends a lookup, an
	// ARP request or an ICMP error on it).
	Stages []string `yaml:"stages" json:"stages"`
	// ParkQueue is how many packets a worker holds while it resolves
	// next hops (default 256).
	ParkQueue int `yaml:"park_queue,omitempty" json:"park_queue,omitempty"`
}

// RouterInterfaceSpec is one router interface.
type RouterInterfaceSpec struct {
	Name string `yaml:"name" json:"name"`
	// VLAN is the segment (0 = untagged).
	VLAN uint16 `yaml:"vlan" json:"vlan"`
	// Addresses are the interface's addresses with prefix length, e.g.
	// 10.0.1.254/24; each prefix is a connected route.
	Addresses []string `yaml:"addresses" json:"addresses"`
}

// RouteSpec is a static route.
type RouteSpec struct {
	Prefix string `yaml:"prefix" json:"prefix"`
	Via    string `yaml:"via" json:"via"`
}

// ACLSpec is the gateway firewall.
type ACLSpec struct {
	// Default is the action when no rule matches: allow (default) or deny.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Established lets in the replies of flows a rule (or the default)
	// allowed, whatever the rules say about them.
	Established bool `yaml:"established,omitempty" json:"established,omitempty"`
	// EstablishedTimeout is how long such a connection lives idle
	// (default 120s).
	EstablishedTimeout time.Duration `yaml:"established_timeout,omitempty" json:"established_timeout,omitempty"`
	// ConnTable is the number of connection entries (default 65536).
	ConnTable int `yaml:"conn_table,omitempty" json:"conn_table,omitempty"`
	// Rules are matched in order; the first match decides.
	Rules []ACLRuleSpec `yaml:"rules" json:"rules"`
}

// ACLRuleSpec is one ACL rule. Empty match fields match anything.
type ACLRuleSpec struct {
	// Action is allow or deny.
	Action string `yaml:"action" json:"action"`
	// Proto is tcp, udp, icmp, icmpv6, any or a protocol number.
	Proto string `yaml:"proto,omitempty" json:"proto,omitempty"`
	// Src and Dst are prefixes (a bare address means /32 or /128).
	Src string `yaml:"src,omitempty" json:"src,omitempty"`
	Dst string `yaml:"dst,omitempty" json:"dst,omitempty"`
	// SrcPorts and DstPorts are a port or a range lo-hi (TCP and UDP
	// only: a rule with ports never matches other protocols).
	SrcPorts string `yaml:"src_ports,omitempty" json:"src_ports,omitempty"`
	DstPorts string `yaml:"dst_ports,omitempty" json:"dst_ports,omitempty"`
}

// FlowCacheSpec sizes the per-worker flow caches.
type FlowCacheSpec struct {
	// Entries per worker (default 65536).
	Entries int `yaml:"entries,omitempty" json:"entries,omitempty"`
	// IdleTimeout drops an entry unused for this long (default 30s).
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
}

// Router defaults.
const (
	DefaultRouterMAC          = "02:76:73:00:00:01"
	DefaultFlowCacheEntries   = 65536
	DefaultFlowIdleTimeout    = 30 * time.Second
	DefaultParkQueue          = 256
	DefaultConnTable          = 65536
	DefaultEstablishedTimeout = 120 * time.Second
	maxFlowCacheEntries       = 1 << 24
)

// Gateway step names of router.stages.
const (
	StageRoute = "route"
	StageACL   = "acl"
)

// Enabled reports whether the router is configured.
func (s *RouterSpec) Enabled() bool { return len(s.Interfaces) > 0 }

// SetDefaults fills the router section's empty fields.
func (s *RouterSpec) SetDefaults() {
	if s.MAC == "" {
		s.MAC = DefaultRouterMAC
	}
	if s.Stages == nil {
		s.Stages = []string{StageACL, StageRoute}
	}
	if s.ParkQueue == 0 {
		s.ParkQueue = DefaultParkQueue
	}
	if s.FlowCache.Entries == 0 {
		s.FlowCache.Entries = DefaultFlowCacheEntries
	}
	if s.FlowCache.IdleTimeout == 0 {
		s.FlowCache.IdleTimeout = DefaultFlowIdleTimeout
	}
	if s.ACL.Default == "" {
		s.ACL.Default = "allow"
	}
	if s.ACL.EstablishedTimeout == 0 {
		s.ACL.EstablishedTimeout = DefaultEstablishedTimeout
	}
	if s.ACL.ConnTable == 0 {
		s.ACL.ConnTable = DefaultConnTable
	}
}

// compiledRouter is a validated RouterSpec in the pipeline's terms.
type compiledRouter struct {
	mac    pipeline.MAC
	ifaces []pipeline.RouterInterface
	routes []pipeline.StaticRoute
	acl    pipeline.ACLConfig
}

// Validate checks the section; errors name the field under prefix.
func (s *RouterSpec) Validate(prefix string) error {
	_, err := s.compile(prefix)
	return err
}

func (s *RouterSpec) compile(prefix string) (*compiledRouter, error) {
	c := &compiledRouter{}
	if !s.Enabled() {
		if len(s.Routes) > 0 || len(s.ACL.Rules) > 0 {
			return nil, fieldErr(prefix+".interfaces", "routes and ACL rules need at least one router interface")
		}
		return c, nil
	}
	mac, err := pipeline.ParseMAC(s.MAC)
	if err != nil || mac.IsMulticast() || mac.IsZero() {
		return nil, fieldErr(prefix+".mac", "%q is not a unicast MAC address", s.MAC)
	}
	c.mac = mac
	for i, ifc := range s.Interfaces {
		f := fmt.Sprintf("%s.interfaces[%d]", prefix, i)
		if ifc.Name == "" || !validPortName(ifc.Name) {
			return nil, fieldErr(f+".name", "%q: an interface needs a name of [A-Za-z0-9._-]", ifc.Name)
		}
		if ifc.VLAN > 4094 {
			return nil, fieldErr(f+".vlan", "%d is not in 0..4094", ifc.VLAN)
		}
		if len(ifc.Addresses) == 0 {
			return nil, fieldErr(f+".addresses", "an interface needs at least one address")
		}
		ri := pipeline.RouterInterface{Name: ifc.Name, VLAN: ifc.VLAN}
		for j, a := range ifc.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() || !p.Addr().IsGlobalUnicast() && !p.Addr().IsPrivate() {
				return nil, fieldErr(fmt.Sprintf("%s.addresses[%d]", f, j), "%q is not a unicast address with prefix length (10.0.1.254/24)", a)
			}
			if p.Masked().Addr() == p.Addr() && p.Bits() < p.Addr().BitLen()-1 {
				return nil, fieldErr(fmt.Sprintf("%s.addresses[%d]", f, j), "%q is the network address of its prefix, not an interface address", a)
			}
			ri.Addresses = append(ri.Addresses, p)
		}
		c.ifaces = append(c.ifaces, ri)
	}
	for i, r := range s.Routes {
		rt, err := r.route(fmt.Sprintf("%s.routes[%d]", prefix, i))
		if err != nil {
			return nil, err
		}
		c.routes = append(c.routes, rt)
	}
	// The pipeline's own checks (duplicate VLANs or prefixes, a via in no
	// connected prefix) name the field relative to the router section.
	if _, err := pipeline.NewRouter(c.mac, c.ifaces, c.routes, nil); err != nil {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok {
			field, msg = "interfaces", err.Error()
		}
		return nil, fieldErr(prefix+"."+field, "%s", msg)
	}
	seen := map[string]bool{}
	for i, st := range s.Stages {
		if st != StageRoute && st != StageACL {
			return nil, fieldErr(fmt.Sprintf("%s.stages[%d]", prefix, i), "%q is not one of route, acl", st)
		}
		if seen[st] {
			return nil, fieldErr(fmt.Sprintf("%s.stages[%d]", prefix, i), "%q appears twice", st)
		}
		seen[st] = true
	}
	if !seen[StageRoute] {
		return nil, fieldErr(prefix+".stages", "route must be one of the stages")
	}
	if s.FlowCache.Entries < 1 || s.FlowCache.Entries > maxFlowCacheEntries {
		return nil, fieldErr(prefix+".flow_cache.entries", "%d is not in 1..%d", s.FlowCache.Entries, maxFlowCacheEntries)
	}
	if s.FlowCache.IdleTimeout < time.Second {
		return nil, fieldErr(prefix+".flow_cache.idle_timeout", "%v is shorter than 1s", s.FlowCache.IdleTimeout)
	}
	if s.ParkQueue < 1 || s.ParkQueue > 4096 {
		return nil, fieldErr(prefix+".park_queue", "%d is not in 1..4096", s.ParkQueue)
	}
	acl, err := s.ACL.config(prefix + ".acl")
	if err != nil {
		return nil, err
	}
	c.acl = acl
	return c, nil
}

// route parses a static route; f names it in errors.
func (r RouteSpec) route(f string) (pipeline.StaticRoute, error) {
	p, err := netip.ParsePrefix(r.Prefix)
	if err != nil || p.Addr().Zone() != "" {
		return pipeline.StaticRoute{}, fieldErr(f+".prefix", "%q is not a prefix (10.9.0.0/16)", r.Prefix)
	}
	via, err := netip.ParseAddr(r.Via)
	if err != nil || via.Zone() != "" || via.Is4() != p.Addr().Is4() {
		return pipeline.StaticRoute{}, fieldErr(f+".via", "%q is not an address of the prefix's family", r.Via)
	}
	return pipeline.StaticRoute{Prefix: p.Masked(), Via: via}, nil
}

// config turns the ACL section into the pipeline's ACL configuration.
func (a *ACLSpec) config(f string) (pipeline.ACLConfig, error) {
	var c pipeline.ACLConfig
	switch a.Default {
	case "", "allow":
		c.DefaultAllow = true
	case "deny":
	default:
		return c, fieldErr(f+".default", "%q is not one of allow, deny", a.Default)
	}
	if a.EstablishedTimeout < 0 {
		return c, fieldErr(f+".established_timeout", "%v is negative", a.EstablishedTimeout)
	}
	if a.ConnTable < 0 || a.ConnTable > 1<<24 {
		return c, fieldErr(f+".conn_table", "%d is not in 1..%d", a.ConnTable, 1<<24)
	}
	c.Established, c.EstablishedTimeout = a.Established, a.EstablishedTimeout
	for i, r := range a.Rules {
		rule, err := r.rule(fmt.Sprintf("%s.rules[%d]", f, i))
		if err != nil {
			return c, err
		}
		c.Rules = append(c.Rules, rule)
	}
	if _, err := pipeline.CompileACL(c, 1, nil); err != nil {
		return c, fieldErr(f, "%v", err)
	}
	return c, nil
}

var protoNames = map[string]uint8{
	"": 0, "any": 0, "tcp": pipeline.ProtoTCP, "udp": pipeline.ProtoUDP,
	"icmp": pipeline.ProtoICMP, "icmpv6": pipeline.ProtoICMPv6,
}

// rule parses one ACL rule; f names it in errors.
func (r ACLRuleSpec) rule(f string) (pipeline.ACLRule, error) {
	var out pipeline.ACLRule
	switch r.Action {
	case "allow":
		out.Allow = true
	case "deny":
	default:
		return out, fieldErr(f+".action", "%q is not one of allow, deny", r.Action)
	}
	if p, ok := protoNames[strings.ToLower(r.Proto)]; ok {
		out.Proto = p
	} else if n, err := strconv.ParseUint(r.Proto, 10, 8); err == nil && n > 0 {
		out.Proto = uint8(n)
	} else {
		return out, fieldErr(f+".proto", "%q is not tcp, udp, icmp, icmpv6, any or a protocol number 1..255", r.Proto)
	}
	var err error
	if out.Src, err = parseACLPrefix(r.Src); err != nil {
		return out, fieldErr(f+".src", "%v", err)
	}
	if out.Dst, err = parseACLPrefix(r.Dst); err != nil {
		return out, fieldErr(f+".dst", "%v", err)
	}
	if out.Src.IsValid() && out.Dst.IsValid() && out.Src.Addr().Is4() != out.Dst.Addr().Is4() {
		return out, fieldErr(f+".dst", "%s is not of src's address family", out.Dst)
	}
	if out.SrcPorts, err = parsePortRange(r.SrcPorts); err != nil {
		return out, fieldErr(f+".src_ports", "%v", err)
	}
	if out.DstPorts, err = parsePortRange(r.DstPorts); err != nil {
		return out, fieldErr(f+".dst_ports", "%v", err)
	}
	if (r.SrcPorts != "" || r.DstPorts != "") && out.Proto != pipeline.ProtoTCP && out.Proto != pipeline.ProtoUDP {
		field := f + ".src_ports"
		if r.DstPorts != "" {
			field = f + ".dst_ports"
		}
		return out, fieldErr(field, "ports need proto tcp or udp")
	}
	return out, nil
}

// parseACLPrefix parses a prefix or a bare address; "" or "any" is the
// zero prefix (any address).
func parseACLPrefix(s string) (netip.Prefix, error) {
	if s == "" || s == "any" {
		return netip.Prefix{}, nil
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	return p.Masked(), nil
}

// parsePortRange parses "80", "1000-2000"; "" or "any" is any port.
func parsePortRange(s string) (pipeline.PortRange, error) {
	if s == "" || s == "any" {
		return pipeline.PortRange{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || l > h {
		return pipeline.PortRange{}, fmt.Errorf("%q is not a port or a range lo-hi of 0..65535", s)
	}
	return pipeline.PortRange{Lo: uint16(l), Hi: uint16(h)}, nil
}

// ruleSpec is the inverse of rule, for listing and the state file.
func ruleSpec(r pipeline.ACLRule) ACLRuleSpec {
	s := ACLRuleSpec{Action: "deny", Proto: "any"}
	if r.Allow {
		s.Action = "allow"
	}
	for name, n := range protoNames {
		if n == r.Proto && name != "" {
			s.Proto = name
		}
	}
	if r.Proto != 0 && s.Proto == "any" {
		s.Proto = strconv.Itoa(int(r.Proto))
	}
	if r.Src.IsValid() {
		s.Src = r.Src.String()
	}
	if r.Dst.IsValid() {
		s.Dst = r.Dst.String()
	}
	s.SrcPorts, s.DstPorts = portsSpec(r.SrcPorts), portsSpec(r.DstPorts)
	return s
}

func portsSpec(p pipeline.PortRange) string {
	switch {
	case p.Lo == 0 && (p.Hi == 0 || p.Hi == 0xffff):
		return ""
	case p.Lo == p.Hi:
		return strconv.Itoa(int(p.Lo))
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

// hasStage reports whether the gateway runs step name.
func (s *RouterSpec) hasStage(name string) bool { return slices.Contains(s.Stages, name) }
