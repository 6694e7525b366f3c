package vswitch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/vswitch/vswitch/peephole"
	"github.com/vswitch/vswitch/pipeline"
)

// routerState is the switch's side of the gateway: the router and ACL the
// workers' steps read, the connection table, the generation that config
// changes bump, and each worker's gateway stage.
type routerState struct {
	spec  RouterSpec // as running: routes and ACL edited at runtime
	r     *pipeline.Router
	acl   atomic.Pointer[pipeline.ACLSet]
	conns *pipeline.ConnTable
	// gen counts config changes that can alter a cached result (routes,
	// ACL, static bindings, flow flushes). The flow caches compare entries
	// against gen + FDB changes + glean changes.
	gen     atomic.Uint64
	workers []*workerGateway
}

// workerGateway is one worker's gateway stage and the parts of it the
// worker drives.
type workerGateway struct {
	stage  *pipeline.GatewayStage
	route  *pipeline.RouteStep
	park   *pipeline.ParkQueue
	solPkt pipeline.Packet
	rel    []pipeline.ParkedPacket // released this round; cap = park queue
	// solicits and released count ARP/ND requests sent and parked packets
	// run again after their next hop answered.
	solicits, released, parkTimeouts atomic.Uint64
}

// fdbLocator adapts the FDB to pipeline.L2Locator and pipeline.L2Learner.
type fdbLocator struct {
	fdb   *FDB
	clock *atomic.Uint32
}

func (l fdbLocator) Locate(vlan uint16, mac pipeline.MAC) (uint16, bool) {
	return l.fdb.Lookup(mac, vlan)
}

func (l fdbLocator) Learn(vlan uint16, mac pipeline.MAC, port uint16) {
	l.fdb.Learn(mac, vlan, port, l.clock.Load())
}

// initRouter builds the router from spec (validated); the gateway
// addresses become gateway bindings so the ARP and ND responders answer
// for them.
func (sw *Switch) initRouter(spec RouterSpec) error {
	if !spec.Enabled() {
		return nil
	}
	c, err := spec.compile("router")
	if err != nil {
		return err
	}
	rs := &routerState{spec: spec}
	rs.r, err = pipeline.NewRouter(c.mac, c.ifaces, c.routes, &rs.gen)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	set, err := pipeline.CompileACL(c.acl, sw.cfg.Workers.Count, nil)
	if err != nil {
		return fieldErr("router.acl", "%v", err)
	}
	rs.acl.Store(set)
	rs.conns = pipeline.NewConnTable(spec.ACL.ConnTable, &sw.clock)
	for i, ifc := range c.ifaces {
		for j, a := range ifc.Addresses {
			b := peephole.Binding{VLAN: ifc.VLAN, IP: a.Addr(), MAC: c.mac, Kind: peephole.KindGateway}
			if err := sw.ph.bindings.Add(b); err != nil {
				return fieldErr(fmt.Sprintf("router.interfaces[%d].addresses[%d]", i, j), "%s: %v", a.Addr(), err)
			}
		}
	}
	sw.rt = rs
	return nil
}

// gatewayFor builds worker i's gateway stage, or returns nil without a
// router.
func (sw *Switch) gatewayFor(worker int) *pipeline.GatewayStage {
	rs := sw.rt
	if rs == nil {
		return nil
	}
	wg := &workerGateway{park: pipeline.NewParkQueue(rs.spec.ParkQueue),
		rel: make([]pipeline.ParkedPacket, 0, rs.spec.ParkQueue)}
	l2 := fdbLocator{fdb: sw.fdb, clock: &sw.clock}
	wg.route = pipeline.NewRouteStep(rs.r, sw.ph.bindings, l2, wg.park)
	var steps []pipeline.GatewayStep
	for _, name := range rs.spec.Stages {
		switch name {
		case StageRoute:
			steps = append(steps, wg.route)
		case StageACL:
			steps = append(steps, pipeline.NewACLStep(&rs.acl, rs.conns, worker))
		}
	}
	idle := uint32(rs.spec.FlowCache.IdleTimeout / time.Second)
	cache := pipeline.NewFlowCache(rs.spec.FlowCache.Entries, idle)
	wg.stage = pipeline.NewGatewayStage(rs.r, steps, cache, sw.gatewayGen, &sw.clock)
	wg.stage.SetLearner(l2)
	rs.workers = append(rs.workers, wg)
	return wg.stage
}

// gatewayGen is the flow caches' generation: every counter whose change
// can alter a cached result, summed (each only grows, so the sum changes
// whenever one does).
func (sw *Switch) gatewayGen() uint64 {
	g := sw.rt.gen.Load() + sw.fdb.Changes()
	if sw.ph.glean != nil {
		g += sw.ph.glean.Changes()
	}
	return g
}

// bumpGatewayGen invalidates every cached flow result.
func (sw *Switch) bumpGatewayGen() {
	if sw.rt != nil {
		sw.rt.gen.Add(1)
	}
}

// serviceGateway runs parked packets whose next hop answered, drops those
// that waited too long, and sends the ARP/ND requests the route step and
// the park queue asked for. The worker calls it after each batch and from
// housekeeping while anything is parked.
func (w *Worker) serviceGateway() {
	wg := w.gw
	if wg == nil || wg.park.Len() == 0 {
		return
	}
	now := w.sw.clock.Load()
	nbrs := w.sw.ph.bindings
	wg.rel = wg.rel[:0]
	wg.park.Drain(now, func(vlan uint16, ip netip.Addr) bool {
		_, ok := nbrs.Resolve(vlan, ip)
		return ok
	}, func(pp pipeline.ParkedPacket, resolved bool) {
		if !resolved {
			wg.parkTimeouts.Add(1)
			w.drop(pp.InPort, pipeline.DropNoNeighbor)
			w.umem.Put(pp.Addr)
			return
		}
		wg.rel = append(wg.rel, pp) // cap is the park queue's: never grows
	})
	w.sendSolicitations(wg)
	b := &w.relBatch
	for off := 0; off < len(wg.rel); off += pipeline.MaxBatch {
		chunk := wg.rel[off:min(off+pipeline.MaxBatch, len(wg.rel))]
		for i, pp := range chunk {
			p := &b.Pkts[i]
			p.Data, p.Addr, p.InPort = w.umem.Frame(pp.Addr, pp.Len), pp.Addr, pp.InPort
			p.Reset()
		}
		b.Len = len(chunk)
		wg.released.Add(uint64(len(chunk)))
		w.pipe.Process(b)
		w.transmit(b)
	}
	wg.rel = wg.rel[:0]
	// Packets of this round that parked again asked for their next hop.
	w.sendSolicitations(wg)
}

// sendSolicitations floods the queued ARP requests and neighbor
// solicitations in their segments, each in a fresh frame.
func (w *Worker) sendSolicitations(wg *workerGateway) {
	asks := wg.park.Solicitations()
	if len(asks) == 0 {
		return
	}
	tbl := w.sw.ports.Load()
	r := w.sw.rt.r
	for _, s := range asks {
		addr, ok := w.umem.Get()
		if !ok {
			w.drop(pipeline.NoPort, pipeline.DropNoFrame)
			continue
		}
		addr += frameHeadroom
		buf := w.umem.Frame(addr, uint32(w.umem.FrameSize()-frameHeadroom))
		n := r.Solicit(buf, s)
		if n == 0 {
			w.umem.Put(addr)
			continue
		}
		p := &wg.solPkt
		p.Data, p.Addr, p.InPort = buf[:n], addr, pipeline.NoPort
		p.Reset()
		p.VLAN = s.VLAN
		w.flood(tbl, p)
		wg.solicits.Add(1)
	}
	w.flushDirty()
}

// Routes implements GatewayControl.
func (sw *Switch) Routes() ([]pipeline.RouteInfo, error) {
	if sw.rt == nil {
		return nil, ErrNoRouter
	}
	return sw.rt.r.Routes(), nil
}

// AddRoute implements GatewayControl.
func (sw *Switch) AddRoute(r RouteSpec) error {
	if sw.rt == nil {
		return ErrNoRouter
	}
	rt, err := r.route("")
	if err != nil {
		return trimFieldDot(err)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := sw.rt.r.AddRoute(rt); err != nil {
		switch {
		case errors.Is(err, pipeline.ErrRouteExists):
			return fmt.Errorf("add route %s: %w", rt.Prefix, ErrExists)
		case errors.Is(err, pipeline.ErrViaUnreached):
			return fieldErr("via", "%s is in no connected prefix of the router", rt.Via)
		case errors.Is(err, pipeline.ErrRouteConflict):
			return fieldErr("prefix", "%s is a connected prefix", rt.Prefix)
		}
		return fmt.Errorf("add route %s: %w", rt.Prefix, err)
	}
	sw.rt.spec.Routes = append(sw.rt.spec.Routes, RouteSpec{Prefix: rt.Prefix.String(), Via: rt.Via.String()})
	sw.log.Info("route added", zap.Stringer("prefix", rt.Prefix), zap.Stringer("via", rt.Via))
	sw.saveOrLog()
	return nil
}

// DelRoute implements GatewayControl.
func (sw *Switch) DelRoute(prefix string) error {
	if sw.rt == nil {
		return ErrNoRouter
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return fieldErr("prefix", "%q is not a prefix", prefix)
	}
	p = p.Masked()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := sw.rt.r.DelRoute(p); err != nil {
		return fmt.Errorf("delete route %s: %w", p, ErrNotFound)
	}
	sw.rt.spec.Routes = slices.DeleteFunc(sw.rt.spec.Routes, func(r RouteSpec) bool {
		q, err := netip.ParsePrefix(r.Prefix)
		return err == nil && q.Masked() == p
	})
	sw.log.Info("route deleted", zap.Stringer("prefix", p))
	sw.saveOrLog()
	return nil
}

// trimFieldDot drops the leading "." of a field named under an empty
// prefix.
func trimFieldDot(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) && strings.HasPrefix(fe.Field, ".") {
		return &FieldError{Field: fe.Field[1:], Msg: fe.Msg}
	}
	return err
}

// ACL implements GatewayControl.
func (sw *Switch) ACL() (ACLInfo, error) {
	if sw.rt == nil {
		return ACLInfo{}, ErrNoRouter
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.aclInfoLocked(), nil
}

func (sw *Switch) aclInfoLocked() ACLInfo {
	set := sw.rt.acl.Load()
	hits := set.Hits()
	info := ACLInfo{Default: sw.rt.spec.ACL.Default, Established: set.Established(), Rules: []ACLRuleInfo{},
		EstablishedHits: set.EstablishedHits(), EstablishedEntries: sw.rt.conns.Len()}
	for i, r := range set.Rules() {
		info.Rules = append(info.Rules, ACLRuleInfo{Index: i, ACLRuleSpec: ruleSpec(r), Text: r.String(), Hits: hits[i]})
	}
	info.DefaultHits = hits[len(hits)-1]
	return info
}

// editACLLocked compiles spec's ACL (carrying counters over), publishes
// it, invalidates cached flows and saves the state.
func (sw *Switch) editACLLocked(spec ACLSpec) (ACLInfo, error) {
	cfg, err := spec.config("acl")
	if err != nil {
		return ACLInfo{}, err
	}
	set, err := pipeline.CompileACL(cfg, sw.cfg.Workers.Count, sw.rt.acl.Load())
	if err != nil {
		return ACLInfo{}, fieldErr("acl", "%v", err)
	}
	sw.rt.acl.Store(set)
	sw.rt.spec.ACL = spec
	sw.rt.gen.Add(1)
	sw.saveOrLog()
	return sw.aclInfoLocked(), nil
}

// AddACLRule implements GatewayControl.
func (sw *Switch) AddACLRule(index int, r ACLRuleSpec) (ACLInfo, error) {
	if sw.rt == nil {
		return ACLInfo{}, ErrNoRouter
	}
	if _, err := r.rule("rule"); err != nil {
		return ACLInfo{}, err
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	spec := sw.rt.spec.ACL
	n := len(spec.Rules)
	if index < 0 {
		index = n
	}
	if index > n {
		return ACLInfo{}, fieldErr("index", "%d is past the end of the %d rules", index, n)
	}
	spec.Rules = slices.Insert(slices.Clone(spec.Rules), index, r)
	info, err := sw.editACLLocked(spec)
	if err == nil {
		sw.log.Info("acl rule added", zap.Int("index", index), zap.String("rule", info.Rules[index].Text))
	}
	return info, err
}

// DelACLRule implements GatewayControl.
func (sw *Switch) DelACLRule(index int) (ACLInfo, error) {
	if sw.rt == nil {
		return ACLInfo{}, ErrNoRouter
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	spec := sw.rt.spec.ACL
	if index < 0 || index >= len(spec.Rules) {
		return ACLInfo{}, fmt.Errorf("delete acl rule %d: %w", index, ErrNotFound)
	}
	spec.Rules = slices.Delete(slices.Clone(spec.Rules), index, index+1)
	sw.log.Info("acl rule deleted", zap.Int("index", index))
	return sw.editACLLocked(spec)
}

// SetACLDefault implements GatewayControl.
func (sw *Switch) SetACLDefault(action string) (ACLInfo, error) {
	if sw.rt == nil {
		return ACLInfo{}, ErrNoRouter
	}
	if action != "allow" && action != "deny" {
		return ACLInfo{}, fieldErr("default", "%q is not one of allow, deny", action)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	spec := sw.rt.spec.ACL
	spec.Default = action
	sw.log.Info("acl default set", zap.String("action", action))
	return sw.editACLLocked(spec)
}

// Flows implements GatewayControl. Each worker lists its own cache.
func (sw *Switch) Flows(limit int) ([]FlowInfo, error) {
	if sw.rt == nil {
		return nil, ErrNoRouter
	}
	tbl := sw.ports.Load()
	out := []FlowInfo{}
	for _, w := range sw.workers {
		if limit > 0 && len(out) >= limit {
			break
		}
		var mine []pipeline.FlowEntry
		gen, now := sw.gatewayGen(), sw.clock.Load()
		w.do(func(w *Worker) {
			w.gw.stage.Cache().Entries(gen, now, func(e pipeline.FlowEntry) {
				if limit <= 0 || len(out)+len(mine) < limit {
					mine = append(mine, e)
				}
			})
		})
		for _, e := range mine {
			out = append(out, flowInfo(w.id, tbl, e))
		}
	}
	return out, nil
}

func flowInfo(worker int, tbl *portTable, e pipeline.FlowEntry) FlowInfo {
	a := e.Action
	fi := FlowInfo{Worker: worker, Key: e.Key.String(), Verdict: a.Verdict.String(), IdleSec: e.Idle, Valid: e.Valid}
	if in := tbl.get(e.Key.InPort); in != nil {
		fi.Key = fmt.Sprintf("in_port=%s%s", in.name, fi.Key[strings.IndexByte(fi.Key, ' '):])
	}
	if a.Verdict == pipeline.VerdictDrop {
		fi.Reason, fi.Actions = a.Reason.String(), a.Describe(nil)
		return fi
	}
	name := func(port uint16) string {
		if p := tbl.get(port); p != nil {
			return p.name
		}
		return fmt.Sprint(port)
	}
	fi.OutPort = name(a.OutPort)
	fi.Actions = a.Describe(name)
	return fi
}

// FlushFlows implements GatewayControl: bumping the generation makes every
// entry stale at once; the workers then free them.
func (sw *Switch) FlushFlows() (int, error) {
	if sw.rt == nil {
		return 0, ErrNoRouter
	}
	n := 0
	for _, w := range sw.workers {
		w.do(func(w *Worker) { n += w.gw.stage.Cache().Flush() })
	}
	sw.rt.gen.Add(1)
	sw.log.Info("flow caches flushed", zap.Int("entries", n))
	return n, nil
}

// FlowStats implements GatewayControl.
func (sw *Switch) FlowStats() (FlowStats, error) {
	if sw.rt == nil {
		return FlowStats{}, ErrNoRouter
	}
	st := FlowStats{Generation: sw.gatewayGen(), Workers: []pipeline.FlowCacheStats{}}
	for _, w := range sw.workers {
		wg := w.gw
		cs := wg.stage.Cache().Stats()
		st.Workers = append(st.Workers, cs)
		st.Total = st.Total.Add(cs)
		st.Route = st.Route.Add(wg.route.Stats())
		st.Parked += wg.park.Len()
		st.Solicitations += wg.solicits.Load()
		st.Released += wg.released.Load()
		st.ParkTimeouts += wg.parkTimeouts.Load()
		gs := wg.stage.Stats()
		st.EchoReplies += gs.EchoReplies
		st.Local += gs.Local
	}
	return st, nil
}

// sweepFlows frees idle and stale entries of the worker's flow cache, a
// slice of it per housekeeping round.
func (w *Worker) sweepFlows() {
	if w.gw == nil {
		return
	}
	w.gw.stage.Cache().Sweep(w.sw.gatewayGen(), w.sw.clock.Load(), 64)
}

// expireConns ages idle connection entries out (housekeeping).
func (sw *Switch) expireConns() {
	if sw.rt == nil {
		return
	}
	if set := sw.rt.acl.Load(); set.Established() {
		sw.rt.conns.ExpireIdle(uint32(set.EstablishedTimeout() / time.Second))
	}
}
