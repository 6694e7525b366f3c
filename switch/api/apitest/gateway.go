package apitest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// This file holds the fake's half of vswitch.GatewayControl. A fake has no
// router, and answers every gateway control with ErrNoRouter as the daemon
// does without router.interfaces, until EnableRouter gives it one: two
// interfaces, a static route, two ACL rules, two cached flows and fixed
// flow cache counters. Routes and ACL edits are validated like the
// daemon's; flows and counters are canned.

// gatewayFake is the router state of one Control. Control's fields live in
// control.go, so the state hangs off gateways instead; c.mu guards it.
type gatewayFake struct {
	ifaces []fakeIface
	static []pipeline.RouteInfo
	acl    vswitch.ACLInfo
	rules  []pipeline.ACLRule // parallel to acl.Rules
	flows  []vswitch.FlowInfo
	stats  vswitch.FlowStats
}

type fakeIface struct {
	name   string
	vlan   uint16
	prefix netip.Prefix // address with its prefix length
}

// gateways maps a *Control to its *gatewayFake. Entries live as long as
// the process: fakes are few and short-lived tests' only.
var gateways sync.Map

// gatewayLocked returns c's router state; c.mu is held.
func (c *Control) gatewayLocked() (*gatewayFake, error) {
	g, ok := gateways.Load(c)
	if !ok {
		return nil, vswitch.ErrNoRouter
	}
	return g.(*gatewayFake), nil
}

// EnableRouter gives the fake the sample router: interfaces vlan10
// (10.0.1.254/24, VLAN 10) and vlan20 (10.0.2.254/24, VLAN 20), the static
// route 10.9.0.0/16 via 10.0.2.1, the ACL rules "allow tcp to 10.0.2.0/24
// port 22" and "deny udp from 10.0.1.0/24 to port 53" (default allow,
// established on), two cached flows and flow cache counters. Calling it
// again resets the router to the sample.
func (c *Control) EnableRouter() {
	g := &gatewayFake{
		ifaces: []fakeIface{
			{"vlan10", 10, netip.MustParsePrefix("10.0.1.254/24")},
			{"vlan20", 20, netip.MustParsePrefix("10.0.2.254/24")},
		},
		acl: vswitch.ACLInfo{Default: "allow", Established: true, Rules: []vswitch.ACLRuleInfo{},
			DefaultHits: 100, EstablishedHits: 40, EstablishedEntries: 3},
	}
	if err := g.addRoute(vswitch.RouteSpec{Prefix: "10.9.0.0/16", Via: "10.0.2.1"}); err != nil {
		panic(err) // the sample is fixed; failing here is a bug in it
	}
	for i, r := range []vswitch.ACLRuleSpec{
		{Action: "allow", Proto: "tcp", Dst: "10.0.2.0/24", DstPorts: "22"},
		{Action: "deny", Proto: "udp", Src: "10.0.1.0/24", DstPorts: "53"},
	} {
		if err := g.insertRule(-1, r); err != nil {
			panic(err)
		}
		g.acl.Rules[i].Hits = uint64(5 * (i + 1))
	}
	g.flows = []vswitch.FlowInfo{
		{Worker: 0, Key: "in_port=eth0 vlan=10 proto=6 10.0.1.5:40000 > 10.0.2.7:22", Verdict: "forward", OutPort: "eth1",
			Actions: "set_eth(src=02:76:73:00:00:01,dst=02:00:00:00:00:03),dec_ttl,vlan=20,output:eth1", IdleSec: 2, Valid: true},
		{Worker: 1, Key: "in_port=eth0 vlan=10 proto=17 10.0.1.5:5353 > 10.0.2.7:53", Verdict: "drop", Reason: "acl_deny",
			Actions: "drop", IdleSec: 31, Valid: false},
	}
	w0 := pipeline.FlowCacheStats{Entries: 1, Capacity: 65536, Hits: 900, Misses: 100, Inserts: 90, Evictions: 1, Revalidations: 4, Expired: 6, Invalidated: 2}
	w1 := pipeline.FlowCacheStats{Entries: 1, Capacity: 65536, Hits: 100, Misses: 0, Inserts: 10, Expired: 1}
	g.stats = vswitch.FlowStats{
		Total: w0.Add(w1), Workers: []pipeline.FlowCacheStats{w0, w1}, Generation: 7,
		Route:  pipeline.RouteStats{Routed: 1000, NoRoute: 3, TTLExceeded: 2, ICMPSent: 4, ICMPLimited: 1, Parked: 5, Flooded: 6},
		Parked: 1, Solicitations: 8, Released: 4, ParkTimeouts: 1, EchoReplies: 9, Local: 11,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gateways.Store(c, g)
}

// connected returns the connected route of an interface.
func (f fakeIface) connected() pipeline.RouteInfo {
	return pipeline.RouteInfo{Prefix: f.prefix.Masked(), Interface: f.name, VLAN: f.vlan, Connected: true}
}

// addRoute checks and adds a static route as the daemon does: the via
// must be in a connected prefix, the prefix must not be one.
func (g *gatewayFake) addRoute(r vswitch.RouteSpec) error {
	p, err := netip.ParsePrefix(r.Prefix)
	if err != nil || p.Addr().Zone() != "" {
		return fieldErr("prefix", "%q is not a prefix (10.9.0.0/16)", r.Prefix)
	}
	via, err := netip.ParseAddr(r.Via)
	if err != nil || via.Zone() != "" || via.Is4() != p.Addr().Is4() {
		return fieldErr("via", "%q is not an address of the prefix's family", r.Via)
	}
	p = p.Masked()
	var out *fakeIface
	for i, f := range g.ifaces {
		if f.prefix.Masked() == p {
			return fieldErr("prefix", "%s is a connected prefix", p)
		}
		if f.prefix.Contains(via) {
			out = &g.ifaces[i]
		}
	}
	if out == nil {
		return fieldErr("via", "%s is in no connected prefix of the router", via)
	}
	for _, s := range g.static {
		if s.Prefix == p {
			return fmt.Errorf("add route %s: %w", p, vswitch.ErrExists)
		}
	}
	g.static = append(g.static, pipeline.RouteInfo{Prefix: p, Via: via, Interface: out.name, VLAN: out.vlan})
	return nil
}

// Routes implements vswitch.GatewayControl: connected and static routes,
// sorted by prefix.
func (c *Control) Routes() ([]pipeline.RouteInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.RouteInfo, 0, len(g.ifaces)+len(g.static))
	for _, f := range g.ifaces {
		out = append(out, f.connected())
	}
	out = append(out, g.static...)
	slices.SortFunc(out, func(a, b pipeline.RouteInfo) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return out, nil
}

// AddRoute implements vswitch.GatewayControl.
func (c *Control) AddRoute(r vswitch.RouteSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return err
	}
	return g.addRoute(r)
}

// DelRoute implements vswitch.GatewayControl.
func (c *Control) DelRoute(prefix string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return err
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return fieldErr("prefix", "%q is not a prefix", prefix)
	}
	p = p.Masked()
	i := slices.IndexFunc(g.static, func(r pipeline.RouteInfo) bool { return r.Prefix == p })
	if i < 0 {
		return fmt.Errorf("delete route %s: %w", p, vswitch.ErrNotFound)
	}
	g.static = slices.Delete(g.static, i, i+1)
	return nil
}

// aclCopy returns the ACL with its own rule slice, indexes renumbered.
func (g *gatewayFake) aclCopy() vswitch.ACLInfo {
	info := g.acl
	info.Rules = slices.Clone(g.acl.Rules)
	for i := range info.Rules {
		info.Rules[i].Index = i
	}
	return info
}

// ACL implements vswitch.GatewayControl.
func (c *Control) ACL() (vswitch.ACLInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.ACLInfo{}, err
	}
	return g.aclCopy(), nil
}

// insertRule validates r and inserts it before index (-1: append).
func (g *gatewayFake) insertRule(index int, r vswitch.ACLRuleSpec) error {
	rule, spec, err := parseRule(r)
	if err != nil {
		return err
	}
	n := len(g.acl.Rules)
	if index < 0 {
		index = n
	}
	if index > n {
		return fieldErr("index", "%d is past the end of the %d rules", index, n)
	}
	g.rules = slices.Insert(g.rules, index, rule)
	g.acl.Rules = slices.Insert(g.acl.Rules, index, vswitch.ACLRuleInfo{ACLRuleSpec: spec, Text: rule.String()})
	return nil
}

// AddACLRule implements vswitch.GatewayControl.
func (c *Control) AddACLRule(index int, r vswitch.ACLRuleSpec) (vswitch.ACLInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.ACLInfo{}, err
	}
	if err := g.insertRule(index, r); err != nil {
		return vswitch.ACLInfo{}, err
	}
	return g.aclCopy(), nil
}

// DelACLRule implements vswitch.GatewayControl.
func (c *Control) DelACLRule(index int) (vswitch.ACLInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.ACLInfo{}, err
	}
	if index < 0 || index >= len(g.acl.Rules) {
		return vswitch.ACLInfo{}, fmt.Errorf("delete acl rule %d: %w", index, vswitch.ErrNotFound)
	}
	g.rules = slices.Delete(g.rules, index, index+1)
	g.acl.Rules = slices.Delete(g.acl.Rules, index, index+1)
	return g.aclCopy(), nil
}

// SetACLDefault implements vswitch.GatewayControl.
func (c *Control) SetACLDefault(action string) (vswitch.ACLInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.ACLInfo{}, err
	}
	if action != "allow" && action != "deny" {
		return vswitch.ACLInfo{}, fieldErr("default", "%q is not one of allow, deny", action)
	}
	g.acl.Default = action
	return g.aclCopy(), nil
}

var fakeProtos = map[string]uint8{"": 0, "any": 0, "tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}

// parseRule checks r as the daemon does, with errors naming rule.FIELD,
// and returns it parsed and in the daemon's listing form.
func parseRule(r vswitch.ACLRuleSpec) (pipeline.ACLRule, vswitch.ACLRuleSpec, error) {
	var out pipeline.ACLRule
	switch r.Action {
	case "allow":
		out.Allow = true
	case "deny":
	default:
		return out, r, fieldErr("rule.action", "%q is not one of allow, deny", r.Action)
	}
	if p, ok := fakeProtos[strings.ToLower(r.Proto)]; ok {
		out.Proto = p
	} else if n, err := strconv.ParseUint(r.Proto, 10, 8); err == nil && n > 0 {
		out.Proto = uint8(n)
	} else {
		return out, r, fieldErr("rule.proto", "%q is not tcp, udp, icmp, icmpv6, any or a protocol number 1..255", r.Proto)
	}
	var err error
	if out.Src, err = parsePrefix(r.Src); err != nil {
		return out, r, fieldErr("rule.src", "%v", err)
	}
	if out.Dst, err = parsePrefix(r.Dst); err != nil {
		return out, r, fieldErr("rule.dst", "%v", err)
	}
	if out.SrcPorts, err = parsePorts(r.SrcPorts); err != nil {
		return out, r, fieldErr("rule.src_ports", "%v", err)
	}
	if out.DstPorts, err = parsePorts(r.DstPorts); err != nil {
		return out, r, fieldErr("rule.dst_ports", "%v", err)
	}
	if (r.SrcPorts != "" || r.DstPorts != "") && out.Proto != 6 && out.Proto != 17 {
		return out, r, fieldErr("rule.dst_ports", "ports need proto tcp or udp")
	}
	spec := vswitch.ACLRuleSpec{Action: r.Action, Proto: "any", SrcPorts: r.SrcPorts, DstPorts: r.DstPorts}
	for name, n := range fakeProtos {
		if n == out.Proto && n != 0 {
			spec.Proto = name
		}
	}
	if out.Proto != 0 && spec.Proto == "any" {
		spec.Proto = strconv.Itoa(int(out.Proto))
	}
	if out.Src.IsValid() {
		spec.Src = out.Src.String()
	}
	if out.Dst.IsValid() {
		spec.Dst = out.Dst.String()
	}
	return out, spec, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" || s == "any" {
		return netip.Prefix{}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an address or prefix", s)
	}
	return p.Masked(), nil
}

func parsePorts(s string) (pipeline.PortRange, error) {
	if s == "" || s == "any" {
		return pipeline.PortRange{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := l, error(nil)
	if isRange {
		h, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || l > h {
		return pipeline.PortRange{}, fmt.Errorf("%q is not a port or a range lo-hi of 0..65535", s)
	}
	return pipeline.PortRange{Lo: uint16(l), Hi: uint16(h)}, nil
}

// Flows implements vswitch.GatewayControl: the sample flows, at most limit
// (0: all).
func (c *Control) Flows(limit int) ([]vswitch.FlowInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return nil, err
	}
	out := slices.Clone(g.flows)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []vswitch.FlowInfo{}
	}
	return out, nil
}

// FlushFlows implements vswitch.GatewayControl: it empties the flow list,
// bumps the generation and returns how many flows there were.
func (c *Control) FlushFlows() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return 0, err
	}
	n := len(g.flows)
	g.flows = nil
	g.stats.Generation++
	return n, nil
}

// FlowStats implements vswitch.GatewayControl.
func (c *Control) FlowStats() (vswitch.FlowStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.FlowStats{}, err
	}
	st := g.stats
	st.Workers = slices.Clone(g.stats.Workers)
	return st, nil
}

// Trace implements vswitch.GatewayControl with a canned result built from
// req: a cache miss, a "route" event that forwards dst out of eth1 on the
// interface whose prefix holds it (or drops it: no route), and an "acl"
// event allowing it by default. in_port, src and dst are checked like the
// daemon checks them.
func (c *Control) Trace(req vswitch.TraceRequest) (vswitch.TraceInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.gatewayLocked()
	if err != nil {
		return vswitch.TraceInfo{}, err
	}
	if !slices.ContainsFunc(c.ports, func(p vswitch.PortInfo) bool { return p.Name == req.InPort }) {
		return vswitch.TraceInfo{}, fieldErr("in_port", "%q is not a port", req.InPort)
	}
	src, err := netip.ParseAddr(req.Src)
	if err != nil {
		return vswitch.TraceInfo{}, fieldErr("src", "%q is not an IP address", req.Src)
	}
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil || dst.Is4() != src.Is4() {
		return vswitch.TraceInfo{}, fieldErr("dst", "%q is not an IP address of src's family", req.Dst)
	}
	proto := cmp.Or(strings.ToLower(req.Proto), "udp")
	ttl := cmp.Or(req.TTL, 64)
	sport, dport := cmp.Or(req.SrcPort, 12345), cmp.Or(req.DstPort, 80)
	vlan := req.VLAN
	for _, f := range g.ifaces {
		if vlan == 0 && f.prefix.Contains(src) {
			vlan = f.vlan
		}
	}
	res := pipeline.TraceResult{
		Key:     fmt.Sprintf("in_port=%s vlan=%d proto=%d %s:%d > %s:%d", req.InPort, vlan, fakeProtos[proto], src, sport, dst, dport),
		Cache:   "miss (no entry)",
		OutPort: -1,
	}
	var out *fakeIface
	target := dst // the neighbor the packet goes to
	for i, f := range g.ifaces {
		if f.prefix.Contains(dst) {
			out = &g.ifaces[i]
		}
	}
	for _, s := range g.static {
		if out == nil && s.Prefix.Contains(dst) {
			i := slices.IndexFunc(g.ifaces, func(f fakeIface) bool { return f.name == s.Interface })
			out, target = &g.ifaces[i], s.Via
		}
	}
	if out == nil {
		res.Events = []pipeline.TraceEvent{{Stage: "route", Decision: "drop", Detail: "no route to " + dst.String()}}
		res.Verdict, res.Reason = "drop", "no_route"
		res.Entry = &pipeline.TraceAction{Verdict: "drop", Reason: "no_route", OutPort: -1, Actions: "drop"}
		res.Cacheable = true
		return vswitch.TraceInfo{TraceResult: res}, nil
	}
	res.Events = []pipeline.TraceEvent{
		{Stage: "route", Decision: "forward", Detail: fmt.Sprintf("%s via %s (02:00:00:00:00:03) out port 1 on %s (vlan %d), TTL-1", dst, target, out.name, out.vlan)},
		{Stage: "acl", Decision: g.acl.Default, Detail: "default " + g.acl.Default},
	}
	if g.acl.Default == "deny" {
		res.Verdict, res.Reason = "drop", "acl_deny"
		res.Entry = &pipeline.TraceAction{Verdict: "drop", Reason: "acl_deny", OutPort: -1, Actions: "drop"}
		res.Cacheable = true
		return vswitch.TraceInfo{TraceResult: res}, nil
	}
	res.Verdict, res.OutPort = "forward", 1
	res.Entry = &pipeline.TraceAction{Verdict: "forward", OutPort: 1, OutVLAN: out.vlan,
		Actions: fmt.Sprintf("set_eth(src=%s,dst=02:00:00:00:00:03),dec_ttl,vlan=%d,output:1", vswitch.DefaultRouterMAC, out.vlan)}
	res.Cacheable = ttl > 1
	// A packet of a sample flow finds its entry: a hit, the same result.
	if slices.ContainsFunc(g.flows, func(f vswitch.FlowInfo) bool { return f.Key == res.Key && f.Valid }) {
		same := true
		res.Cache, res.Cached, res.Same = "hit", res.Entry, &same
	}
	return vswitch.TraceInfo{Worker: 0, TraceResult: res, OutPortName: "eth1"}, nil
}
