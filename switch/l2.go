package vswitch

import (
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// L2Stage is the learning switch: it classifies every frame into a VLAN by
// its input port, learns the source MAC, and forwards by destination MAC or
// floods unknown unicast, broadcast and multicast within the VLAN.
//
// After Process, a forwarded or flooded packet's VLAN field holds its
// classified VLAN (the TX path tags or untags per output port) and FlagVLAN
// still says whether the frame itself carries a tag.
type L2Stage struct {
	fdb   *FDB
	ports *atomic.Pointer[portTable]
	// now is the switch clock in seconds, advanced by the worker per poll.
	now *atomic.Uint32
}

// NewL2Stage returns the learning stage over fdb and the port table.
func NewL2Stage(fdb *FDB, ports *atomic.Pointer[portTable], now *atomic.Uint32) *L2Stage {
	return &L2Stage{fdb: fdb, ports: ports, now: now}
}

// Name implements pipeline.Stage.
func (s *L2Stage) Name() string { return "l2" }

// Process implements pipeline.Stage.
func (s *L2Stage) Process(b *pipeline.Batch) {
	tbl := s.ports.Load()
	now := s.now.Load()
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone {
			continue
		}
		in := tbl.get(p.InPort)
		if in == nil {
			p.Drop(pipeline.DropUnknownPort)
			continue
		}
		vlan, ok := in.vlan.ingress(p.Flags&pipeline.FlagVLAN != 0, p.VLAN)
		if !ok {
			p.Drop(pipeline.DropVLANNotAllowed)
			continue
		}
		p.VLAN = vlan
		d := p.Data
		if d[6]&1 != 0 || d[6]|d[7]|d[8]|d[9]|d[10]|d[11] == 0 {
			p.Drop(pipeline.DropBadSrcMAC)
			continue
		}
		s.fdb.learn(fdbKeyBytes(d[6:12], vlan), p.InPort, now)
		if d[0]&1 != 0 {
			p.Verdict = pipeline.VerdictFlood
			continue
		}
		out, known := s.fdb.lookup(fdbKeyBytes(d[0:6], vlan))
		switch {
		case !known:
			p.Verdict = pipeline.VerdictFlood
		case out == p.InPort:
			p.Drop(pipeline.DropHairpin)
		default:
			p.Forward(out)
		}
	}
}
