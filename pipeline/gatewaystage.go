package pipeline

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
)

// GatewayStage is the switch acting as the gateway of its segments, one per
// worker. It takes the packets addressed to the router's MAC in a VLAN the
// router has an interface on, and leaves everything else to the stages
// after it (L2).
//
// A routed packet is looked up in the worker's flow cache; a hit gets the
// cached result applied in one pass. A miss runs the gateway steps in
// their configured order (route, acl, ...), each of which acts on the
// packet and records what it did; the recorded result goes into the cache
// unless a step marked it uncacheable. Packets with TTL <= 1 always run the
// steps (they get an ICMP error). Packets for the router's own addresses
// are answered (ICMP echo) or consumed.
type GatewayStage struct {
	r     *Router
	learn L2Learner
	// last is the source last learned: a run of frames from one host
	// (the usual case) is learned once per clock second.
	last  learned
	steps []GatewayStep
	cache *FlowCache
	gen   func() uint64
	clock *atomic.Uint32
	f     FlowCtx
	stats gatewayCounters
}

type gatewayCounters struct {
	echo, local atomic.Uint64
}

// GatewayStats are a GatewayStage's counters besides the flow cache's.
type GatewayStats struct {
	EchoReplies uint64 `json:"echo_replies"`
	Local       uint64 `json:"local"`
}

// NewGatewayStage returns a worker's gateway stage. gen returns the
// current generation (the sum of every counter whose change can alter a
// cached result); clock is the switch clock in seconds.
func NewGatewayStage(r *Router, steps []GatewayStep, cache *FlowCache, gen func() uint64, clock *atomic.Uint32) *GatewayStage {
	return &GatewayStage{r: r, steps: steps, cache: cache, gen: gen, clock: clock}
}

// L2Learner learns where a source MAC address lives (the switch's FDB).
type L2Learner interface {
	Learn(vlan uint16, mac MAC, port uint16)
}

type learned struct {
	mac        MAC
	vlan, port uint16
	at         uint32
	ok         bool
}

// learnFrom learns p's source MAC unless it is the one learned last in
// the same clock second.
func (g *GatewayStage) learnFrom(p *Packet, now uint32) {
	l := learned{mac: MAC(p.Data[6:12]), vlan: p.VLAN, port: p.InPort, at: now, ok: true}
	if l == g.last {
		return
	}
	g.learn.Learn(l.vlan, l.mac, l.port)
	g.last = l
}

// SetLearner makes the stage learn the source MAC of every frame it takes,
// as the L2 stage does for the frames it switches: routed hosts must be
// found by MAC too, and their FDB entries kept from aging out.
func (g *GatewayStage) SetLearner(l L2Learner) { g.learn = l }

// Name implements Stage.
func (g *GatewayStage) Name() string { return "gateway" }

// Cache returns the worker's flow cache (use it on the worker only).
func (g *GatewayStage) Cache() *FlowCache { return g.cache }

// Steps returns the steps in order.
func (g *GatewayStage) Steps() []GatewayStep { return g.steps }

// Generation returns the current generation.
func (g *GatewayStage) Generation() uint64 { return g.gen() }

// Stats returns the stage's own counters.
func (g *GatewayStage) Stats() GatewayStats {
	return GatewayStats{EchoReplies: g.stats.echo.Load(), Local: g.stats.local.Load()}
}

// Process implements Stage.
func (g *GatewayStage) Process(b *Batch) {
	gen := g.gen()
	now := g.clock.Load()
	mac := g.r.mac
	snap := g.r.snap.Load()
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != VerdictNone || MAC(p.Data[0:6]) != mac || snap.byVLAN[p.VLAN&0xfff] < 0 {
			continue
		}
		if g.learn != nil {
			g.learnFrom(p, now)
		}
		f := &g.f
		if !ExtractFlowKey(p, &f.Key) {
			// ARP replies to the router's own requests (already gleaned by
			// the ARP responder) and anything else non-IP sent to it.
			g.stats.local.Add(1)
			p.Drop(DropLocal)
			continue
		}
		if TTL(p) > 1 {
			if a := g.cache.Lookup(&f.Key, gen, now); a != nil {
				a.Apply(p, now)
				continue
			}
		}
		g.miss(p, snap, gen, now, nil)
	}
}

// miss handles a packet without a valid cached result.
func (g *GatewayStage) miss(p *Packet, snap *routerSnap, gen uint64, now uint32, tr *Trace) {
	f := &g.f
	key := f.Key
	f.Reset(now, tr)
	f.Key = key
	if snap.isOwn(&f.Key) {
		g.local(p, tr)
		return
	}
	for _, s := range g.steps {
		if !s.Step(p, f) {
			break
		}
	}
	if f.NoCache || p.Verdict != f.Act.Verdict || (p.Verdict != VerdictForward && p.Verdict != VerdictDrop) {
		return
	}
	if tr == nil {
		g.cache.Insert(&f.Key, gen, now, &f.Act)
	}
}

// local answers an ICMP or ICMPv6 echo request to one of the router's
// addresses in place and consumes everything else sent to them (ND
// advertisements answering the router's own solicitations among them).
func (g *GatewayStage) local(p *Packet, tr *Trace) {
	d := p.Data
	l4 := int(p.L4Off)
	if p.Flags&FlagL4 != 0 && p.Flags&FlagFragment == 0 &&
		(p.L4Proto == ProtoICMP && d[l4] == 8 || p.L4Proto == ProtoICMPv6 && d[l4] == 128) && d[l4+1] == 0 {
		me, them := MAC(d[0:6]), MAC(d[6:12])
		SetMACs(d, me, them)
		l3 := int(p.L3Off)
		old := binary.BigEndian.Uint16(d[l4:])
		if p.Flags&FlagIPv4 != 0 {
			var a [4]byte
			copy(a[:], d[l3+12:l3+16])
			copy(d[l3+12:l3+16], d[l3+16:l3+20])
			copy(d[l3+16:l3+20], a[:])
			d[l4] = 0
		} else {
			var a [16]byte
			copy(a[:], d[l3+8:l3+24])
			copy(d[l3+8:l3+24], d[l3+24:l3+40])
			copy(d[l3+24:l3+40], a[:])
			d[l4] = 129
		}
		// Swapping the addresses leaves every sum unchanged; only the
		// type byte changed.
		csum := binary.BigEndian.Uint16(d[l4+2:])
		binary.BigEndian.PutUint16(d[l4+2:], ChecksumUpdate16(csum, old, binary.BigEndian.Uint16(d[l4:])))
		p.Verdict = VerdictReply
		g.stats.echo.Add(1)
		if tr != nil {
			tr.Add("local", "reply", "echo request to the router's address %s answered", g.f.Key.DstAddr())
		}
		return
	}
	g.stats.local.Add(1)
	p.Drop(DropLocal)
	if tr != nil {
		tr.Add("local", "consume", "addressed to the router's address %s", g.f.Key.DstAddr())
	}
}

// TraceResult is what vswitchctl trace shows for one packet.
type TraceResult struct {
	Key     string       `json:"key"`
	Cache   string       `json:"cache"`
	Cached  *TraceAction `json:"cached,omitempty"`
	Events  []TraceEvent `json:"events"`
	Verdict string       `json:"verdict"`
	Reason  string       `json:"reason,omitempty"`
	OutPort int          `json:"out_port"`
	// Entry is the result the steps synthesized; Cacheable says whether
	// it would be cached.
	Entry     *TraceAction `json:"entry,omitempty"`
	Cacheable bool         `json:"cacheable"`
	// Same says whether the cached result (when valid) equals the one the
	// steps synthesized now.
	Same *bool `json:"same,omitempty"`
}

// TraceAction is a FlowAction in readable form.
type TraceAction struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	OutPort int    `json:"out_port"`
	OutVLAN uint16 `json:"out_vlan"`
	Actions string `json:"actions"`
}

func traceAction(a *FlowAction) *TraceAction {
	t := &TraceAction{Verdict: a.Verdict.String(), OutPort: int(a.OutPort), OutVLAN: a.OutVLAN, Actions: a.Describe(nil)}
	if a.Verdict == VerdictDrop {
		t.Reason, t.OutPort = a.Reason.String(), -1
	}
	return t
}

// Describe renders the action list in the order Apply runs it, e.g.
// "set_eth(src=..,dst=..),dec_ttl,vlan=2,output:1", or "drop". portName
// names the output port; nil prints its number.
func (a *FlowAction) Describe(portName func(uint16) string) string {
	if a.Verdict == VerdictDrop {
		return "drop"
	}
	var s string
	if a.Ops&OpSetMACs != 0 {
		s += fmt.Sprintf("set_eth(src=%s,dst=%s),", a.SrcMAC, a.DstMAC)
	}
	if a.Ops&OpDecTTL != 0 {
		s += "dec_ttl,"
	}
	out := strconv.Itoa(int(a.OutPort))
	if portName != nil {
		out = portName(a.OutPort)
	}
	return s + fmt.Sprintf("vlan=%d,output:%s", a.OutVLAN, out)
}

// Trace runs a parsed packet (a copy the caller owns; it is rewritten)
// through the stage as if it had just arrived, without touching the cache
// and without parking it, and reports every decision. The packet must
// already carry its classified VLAN. Run it on the worker that owns the
// stage.
func (g *GatewayStage) Trace(p *Packet) TraceResult {
	gen := g.gen()
	now := g.clock.Load()
	snap := g.r.snap.Load()
	tr := &Trace{}
	res := TraceResult{OutPort: -1}
	if MAC(p.Data[0:6]) != g.r.mac {
		res.Cache = "not looked up"
		tr.Add("gateway", "pass", "destination MAC %s is not the router's %s: switched at L2", MAC(p.Data[0:6]), g.r.mac)
		res.Events, res.Verdict = tr.Events, "pass"
		return res
	}
	if snap.byVLAN[p.VLAN&0xfff] < 0 {
		res.Cache = "not looked up"
		tr.Add("gateway", "pass", "the router has no interface on VLAN %d", p.VLAN)
		res.Events, res.Verdict = tr.Events, "pass"
		return res
	}
	if !ExtractFlowKey(p, &g.f.Key) {
		res.Cache = "not looked up"
		tr.Add("gateway", "consume", "not IP: ARP/other traffic for the router")
		res.Events, res.Verdict, res.Reason = tr.Events, "drop", DropLocal.String()
		return res
	}
	key := g.f.Key
	res.Key = key.String()
	cached, found, valid := g.cache.Peek(&key, gen, now)
	switch {
	case TTL(p) <= 1:
		res.Cache = "not looked up (TTL <= 1)"
	case !found:
		res.Cache = "miss (no entry)"
	case !valid:
		res.Cache = "miss (stale entry: older generation, idle, or state it depended on changed)"
		res.Cached = traceAction(&cached)
	default:
		res.Cache = "hit"
		res.Cached = traceAction(&cached)
	}
	// Steps that park must not: the trace's frame is not a port's.
	g.miss(p, snap, gen, now, tr)
	f := &g.f
	res.Events = tr.Events
	res.Verdict = p.Verdict.String()
	if p.Verdict == VerdictDrop {
		res.Reason = p.Reason.String()
	}
	if p.Verdict == VerdictForward {
		res.OutPort = int(p.OutPort)
	}
	res.Cacheable = !f.NoCache && p.Verdict == f.Act.Verdict && (p.Verdict == VerdictForward || p.Verdict == VerdictDrop)
	if res.Cacheable {
		res.Entry = traceAction(&f.Act)
		if found && valid {
			same := *res.Entry == *res.Cached
			res.Same = &same
		}
	}
	return res
}
