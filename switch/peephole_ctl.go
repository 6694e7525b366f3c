package vswitch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vswitch/vswitch/peephole"
	"github.com/vswitch/vswitch/pipeline"
)

// peepholeState is the switch's side of the responders: the tables the
// workers' stages read, the spec they were built from (edited at runtime
// and persisted), and each worker's stages for their counters.
type peepholeState struct {
	spec     PeepholeSpec // bindings as configured (with ports); DNS comes from zones
	bindings *peephole.BindingTable
	glean    *peephole.GleanTable // nil when gleaning is off
	guard    *peephole.Guard
	zones    *peephole.DNSZones
	stages   []workerPeephole
}

// workerPeephole is one worker's peephole stages; nil when not configured.
type workerPeephole struct {
	guard *peephole.GuardStage
	arp   *peephole.ARPStage
	nd    *peephole.NDStage
	dns   *peephole.DNSStage
}

// initPeephole builds the responders' tables from spec (validated).
func (sw *Switch) initPeephole(spec PeepholeSpec) error {
	bt, zs, err := spec.build("peephole")
	if err != nil {
		return err
	}
	sw.ph = peepholeState{spec: spec, bindings: bt, guard: peephole.NewGuard(), zones: zs}
	if !spec.Glean.Disabled {
		sw.ph.glean = peephole.NewGleanTable(spec.Glean.Size, &sw.clock)
		bt.SetGlean(sw.ph.glean)
	}
	return nil
}

// pipelineFor builds worker i's pipeline: parse, VLAN ingress, then the
// peephole guard and responders, then the gateway (when a router is
// configured), then L2.
func (sw *Switch) pipelineFor(worker int) *pipeline.Pipeline {
	spec := &sw.cfg.Peephole
	var ws workerPeephole
	stages := []pipeline.Stage{pipeline.ParseStage{}, NewIngressStage(&sw.ports)}
	ws.guard = peephole.NewGuardStage(sw.ph.guard)
	stages = append(stages, ws.guard)
	if spec.has(ResponderARP) {
		ws.arp = peephole.NewARPStage(sw.ph.bindings)
		stages = append(stages, ws.arp)
	}
	if spec.has(ResponderND) {
		ws.nd = peephole.NewNDStage(sw.ph.bindings)
		stages = append(stages, ws.nd)
	}
	if spec.has(ResponderDNS) {
		ws.dns = peephole.NewDNSStage(sw.ph.zones)
		stages = append(stages, ws.dns)
	}
	sw.ph.stages = append(sw.ph.stages, ws)
	if g := sw.gatewayFor(worker); g != nil {
		stages = append(stages, g)
	}
	return pipeline.NewPipeline(append(stages, NewL2Stage(sw.fdb, &sw.clock))...)
}

// expireGleaned ages gleaned bindings out (housekeeping).
func (sw *Switch) expireGleaned(now uint32) {
	if sw.ph.glean == nil {
		return
	}
	aging := uint32(sw.cfg.Peephole.Glean.Aging / time.Second)
	if now > aging {
		sw.ph.glean.Expire(now - aging)
	}
}

// refreshGuardLocked recomputes the spoof guard from the live ports (plus
// extra, a port being added) and the bindings that name a port. sw.mu held.
func (sw *Switch) refreshGuardLocked(extra *afxdpPort) {
	ports := map[string]*afxdpPort{}
	for name, p := range sw.live {
		ports[name] = p
	}
	if extra != nil {
		ports[extra.spec.Name] = extra
	}
	var guarded []uint16
	for _, p := range ports {
		if p.spec.SpoofGuard {
			guarded = append(guarded, p.index)
		}
	}
	var claims []peephole.Claim
	for _, b := range sw.ph.spec.Bindings {
		p := ports[b.Port]
		if p == nil {
			continue
		}
		pb, err := b.binding("")
		if err != nil {
			continue // validated when added
		}
		claims = append(claims, peephole.Claim{Port: p.index, VLAN: pb.VLAN, IP: pb.IP, MAC: pb.MAC})
	}
	sw.ph.guard.Set(guarded, claims)
}

// Bindings implements Control: static and gateway bindings, then gleaned.
func (sw *Switch) Bindings() []BindingInfo {
	sw.mu.Lock()
	out := make([]BindingInfo, 0, len(sw.ph.spec.Bindings))
	for _, b := range sw.ph.spec.Bindings {
		out = append(out, BindingInfo{BindingSpec: b})
	}
	sw.mu.Unlock()
	if sw.ph.glean != nil {
		now := time.Now()
		for _, b := range sw.ph.glean.List(sw.clockTime) {
			out = append(out, BindingInfo{
				BindingSpec: BindingSpec{IP: b.IP.String(), MAC: b.MAC.String(), VLAN: b.VLAN, Kind: b.Kind.String()},
				AgeSec:      max(0, now.Sub(b.LastSeen).Seconds()),
			})
		}
	}
	return out
}

// clockTime converts a switch clock value to wall time.
func (sw *Switch) clockTime(c uint32) time.Time {
	return sw.start.Add(time.Duration(c) * time.Second)
}

// bindingKey identifies a binding: VLAN and canonical address.
func bindingKey(vlan uint16, ip netip.Addr) string {
	return fmt.Sprintf("%d/%s", vlan, ip.Unmap())
}

// AddBinding implements Control.
func (sw *Switch) AddBinding(b BindingSpec) (BindingInfo, error) {
	b.SetDefaults()
	pb, err := b.binding("")
	if err != nil {
		return BindingInfo{}, err
	}
	b.IP, b.MAC = pb.IP.String(), pb.MAC.String()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	k := bindingKey(pb.VLAN, pb.IP)
	for _, o := range sw.ph.spec.Bindings {
		oip, _ := netip.ParseAddr(o.IP)
		if bindingKey(o.VLAN, oip) != k {
			continue
		}
		if o == b {
			return BindingInfo{BindingSpec: b}, nil
		}
		return BindingInfo{}, fmt.Errorf("add binding %s vlan %d: bound to %s: %w", b.IP, b.VLAN, o.MAC, ErrExists)
	}
	if err := sw.ph.bindings.Add(pb); err != nil {
		return BindingInfo{}, fmt.Errorf("add binding %s vlan %d: %w", b.IP, b.VLAN, err)
	}
	sw.ph.spec.Bindings = append(sw.ph.spec.Bindings, b)
	sw.bumpGatewayGen()
	sw.refreshGuardLocked(nil)
	sw.log.Info("binding added", zap.String("ip", b.IP), zap.String("mac", b.MAC), zap.Uint16("vlan", b.VLAN),
		zap.String("kind", b.Kind), zap.String("port", b.Port))
	sw.saveOrLog()
	return BindingInfo{BindingSpec: b}, nil
}

// DelBinding implements Control. A gleaned binding is deleted too.
func (sw *Switch) DelBinding(vlan uint16, ip string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Zone() != "" {
		return fieldErr("ip", "%q is not an IP address", ip)
	}
	addr = addr.Unmap()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	k := bindingKey(vlan, addr)
	i := slices.IndexFunc(sw.ph.spec.Bindings, func(o BindingSpec) bool {
		oip, _ := netip.ParseAddr(o.IP)
		return bindingKey(o.VLAN, oip) == k
	})
	if i < 0 {
		if sw.ph.glean != nil && sw.ph.glean.Del(vlan, addr) {
			return nil
		}
		return fmt.Errorf("delete binding %s vlan %d: %w", addr, vlan, ErrNotFound)
	}
	if err := sw.ph.bindings.Del(vlan, addr); err != nil {
		return fmt.Errorf("delete binding %s vlan %d: %w", addr, vlan, err)
	}
	sw.ph.spec.Bindings = slices.Delete(sw.ph.spec.Bindings, i, i+1)
	sw.bumpGatewayGen()
	sw.refreshGuardLocked(nil)
	sw.log.Info("binding deleted", zap.String("ip", addr.String()), zap.Uint16("vlan", vlan))
	sw.saveOrLog()
	return nil
}

// FlushGleaned implements Control.
func (sw *Switch) FlushGleaned() int {
	if sw.ph.glean == nil {
		return 0
	}
	return sw.ph.glean.Flush()
}

// DNS implements Control.
func (sw *Switch) DNS() DNSSpec {
	zs, rs := sw.ph.zones.List()
	out := DNSSpec{Zones: make([]DNSZoneSpec, 0, len(zs)), Records: make([]DNSRecordSpec, 0, len(rs))}
	for _, z := range zs {
		out.Zones = append(out.Zones, DNSZoneSpec{Name: z.Name, SOA: DNSSOASpec{
			MName: z.SOA.MName, RName: z.SOA.RName, Serial: z.SOA.Serial, Refresh: z.SOA.Refresh,
			Retry: z.SOA.Retry, Expire: z.SOA.Expire, Minimum: z.SOA.Minimum,
		}})
	}
	for _, r := range rs {
		out.Records = append(out.Records, DNSRecordSpec{Name: r.Name, Type: r.Type.String(), Value: r.Value, TTL: r.TTL})
	}
	return out
}

// AddDNSZone implements Control.
func (sw *Switch) AddDNSZone(z DNSZoneSpec) (DNSZoneSpec, error) {
	z.SetDefaults()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := addZone(sw.ph.zones, z); err != nil {
		if errors.Is(err, peephole.ErrDNSZoneExists) {
			return z, fmt.Errorf("add zone %s: %w", z.Name, ErrExists)
		}
		return z, zoneFieldErr("zone", err).(*FieldError).trim("zone.")
	}
	sw.log.Info("dns zone added", zap.String("zone", z.Name))
	sw.saveOrLog()
	return z, nil
}

// trim removes prefix from the field of e (API errors name the request's
// own fields).
func (e *FieldError) trim(prefix string) error {
	return &FieldError{Field: strings.TrimPrefix(e.Field, prefix), Msg: e.Msg}
}

// DelDNSZone implements Control.
func (sw *Switch) DelDNSZone(name string) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := sw.ph.zones.DelZone(name); err != nil {
		if errors.Is(err, peephole.ErrDNSNoSuchZone) {
			return fmt.Errorf("delete zone %s: %w", name, ErrNotFound)
		}
		return fieldErr("name", "%v", err)
	}
	sw.log.Info("dns zone deleted", zap.String("zone", name))
	sw.saveOrLog()
	return nil
}

// AddDNSRecord implements Control.
func (sw *Switch) AddDNSRecord(r DNSRecordSpec) (DNSRecordSpec, error) {
	r.SetDefaults()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := addRecord(sw.ph.zones, r); err != nil {
		return r, err
	}
	sw.log.Info("dns record added", zap.String("name", r.Name), zap.String("type", r.Type), zap.String("value", r.Value))
	sw.saveOrLog()
	return r, nil
}

// DelDNSRecord implements Control.
func (sw *Switch) DelDNSRecord(r DNSRecordSpec) error {
	t, ok := dnsTypes[strings.ToUpper(r.Type)]
	if !ok {
		return fieldErr("type", "%q is not one of A, AAAA, CNAME, PTR", r.Type)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err := sw.ph.zones.DelRecord(r.Name, t, r.Value); err != nil {
		if errors.Is(err, peephole.ErrDNSNoSuchRecord) {
			return fmt.Errorf("delete record %s %s: %w", r.Name, r.Type, ErrNotFound)
		}
		return recordFieldErr(err)
	}
	sw.log.Info("dns record deleted", zap.String("name", r.Name), zap.String("type", r.Type), zap.String("value", r.Value))
	sw.saveOrLog()
	return nil
}

// saveOrLog persists the state; a failure is logged, the change stays.
// sw.mu held.
func (sw *Switch) saveOrLog() {
	if err := sw.saveLocked(); err != nil {
		sw.log.Error("persist state", zap.Error(err))
	}
}

// PeepholeStats implements Control: the responders' counters summed over
// workers.
func (sw *Switch) PeepholeStats() PeepholeStats {
	st := PeepholeStats{
		ARP: ResponderStats{Passed: map[string]uint64{}},
		ND:  ResponderStats{Passed: map[string]uint64{}},
		DNS: ResponderStats{Passed: map[string]uint64{}},
	}
	pass := func(m map[string]uint64, k string, v uint64) {
		if v != 0 {
			m[k] += v
		}
	}
	for _, ws := range sw.ph.stages {
		if ws.arp != nil {
			a := ws.arp.Stats()
			st.ARP.Answered += a.Answered
			st.ARP.Malformed += a.Malformed
			st.ARP.Gleaned += a.Gleaned
			pass(st.ARP.Passed, "not_request", a.NotRequest)
			pass(st.ARP.Passed, "gratuitous", a.Gratuitous)
			pass(st.ARP.Passed, "probe", a.Probe)
			pass(st.ARP.Passed, "unknown_target", a.UnknownTarget)
		}
		if ws.nd != nil {
			n := ws.nd.Stats()
			st.ND.Answered += n.Answered
			st.ND.Malformed += n.Malformed
			st.ND.Gleaned += n.Gleaned
			pass(st.ND.Passed, "not_request", n.NotRequest)
			pass(st.ND.Passed, "probe", n.Probe)
			pass(st.ND.Passed, "unknown_target", n.UnknownTarget)
			pass(st.ND.Passed, "too_big", n.TooBig)
			pass(st.ND.Passed, "unsupported", n.Unsupported)
		}
		if ws.dns != nil {
			d := ws.dns.Stats()
			st.DNS.Answered += d.Answered
			st.DNS.Malformed += d.Malformed
			st.DNS.NXDomain += d.NXDomain
			st.DNS.NoData += d.NoData
			for r, v := range d.Passed {
				// not_dns counts every UDP packet the stage looked at, not
				// a query it passed on.
				if peephole.DNSPassReason(r) != peephole.DNSPassNotDNS {
					pass(st.DNS.Passed, peephole.DNSPassReason(r).String(), v)
				}
			}
		}
	}
	if sw.ph.glean != nil {
		st.Gleaned = sw.ph.glean.Len()
	}
	return st
}
