package vswitch

import (
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// IngressStage classifies every frame into a VLAN by its input port and
// drops what the port may not send: frames of a VLAN the port does not
// carry and frames with a multicast or zero source MAC. After it, p.VLAN
// holds the packet's segment whether or not the frame carries a tag
// (FlagVLAN still says whether it does), so every later stage (the
// peephole responders, L2) sees the same segment the TX path tags for.
type IngressStage struct {
	ports *atomic.Pointer[portTable]
}

// NewIngressStage returns the classification stage over the port table.
func NewIngressStage(ports *atomic.Pointer[portTable]) *IngressStage {
	return &IngressStage{ports: ports}
}

// Name implements pipeline.Stage.
func (s *IngressStage) Name() string { return "ingress" }

// Process implements pipeline.Stage.
func (s *IngressStage) Process(b *pipeline.Batch) {
	tbl := s.ports.Load()
	// A batch comes from one queue, so its frames mostly share a port and
	// a tag: classify each (port, tag) pair once per run of them.
	var in *portEntry
	lastPort, lastTagged, lastVID := pipeline.NoPort, false, uint16(0)
	vlan, ok := uint16(0), false
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone {
			continue
		}
		tagged := p.Flags&pipeline.FlagVLAN != 0
		if p.InPort != lastPort || tagged != lastTagged || p.VLAN != lastVID {
			if p.InPort != lastPort {
				in = tbl.get(p.InPort)
			}
			lastPort, lastTagged, lastVID = p.InPort, tagged, p.VLAN
			if in != nil {
				vlan, ok = in.vlan.ingress(tagged, p.VLAN)
			}
		}
		if in == nil {
			p.Drop(pipeline.DropUnknownPort)
			continue
		}
		if !ok {
			p.Drop(pipeline.DropVLANNotAllowed)
			continue
		}
		p.VLAN = vlan
		if badSrcMAC(p.Data) {
			p.Drop(pipeline.DropBadSrcMAC)
		}
	}
}

// badSrcMAC reports a multicast or all-zero source MAC. Parse has checked
// that the frame holds an Ethernet header.
func badSrcMAC(d []byte) bool {
	_ = d[11]
	mac := uint64(d[6]) | uint64(d[7])<<8 | uint64(d[8])<<16 | uint64(d[9])<<24 |
		uint64(d[10])<<32 | uint64(d[11])<<40
	return mac&1 != 0 || mac == 0
}

// L2Stage is the learning switch: it learns the source MAC of every frame
// in its classified VLAN (IngressStage runs first) and forwards by
// destination MAC or floods unknown unicast, broadcast and multicast within
// the VLAN.
//
// After Process, a forwarded or flooded packet's VLAN field holds its
// classified VLAN (the TX path tags or untags per output port) and FlagVLAN
// still says whether the frame itself carries a tag.
type L2Stage struct {
	fdb *FDB
	// now is the switch clock in seconds, advanced by the worker per poll.
	now *atomic.Uint32
}

// NewL2Stage returns the learning stage over fdb.
func NewL2Stage(fdb *FDB, now *atomic.Uint32) *L2Stage {
	return &L2Stage{fdb: fdb, now: now}
}

// Name implements pipeline.Stage.
func (s *L2Stage) Name() string { return "l2" }

// Process implements pipeline.Stage.
func (s *L2Stage) Process(b *pipeline.Batch) {
	now := s.now.Load()
	// A batch is mostly runs of one flow. The last source learned and the
	// last destination looked up are remembered for the batch: learning
	// the same key on the same port at the same time again changes
	// nothing, and a learn of any other key forgets the remembered
	// lookup, so the verdicts are those of learning and looking up every
	// packet.
	var lastSrc, lastDst uint64 // 0 is no key (fdbKeyBytes sets fdbKeyValid)
	var lastIn, lastOut uint16
	var lastKnown bool
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone {
			continue
		}
		vlan := p.VLAN
		d := p.Data
		if src := fdbKeyBytes(d[6:12], vlan); src != lastSrc || p.InPort != lastIn {
			s.fdb.learn(src, p.InPort, now)
			lastSrc, lastIn, lastDst = src, p.InPort, 0
		}
		if d[0]&1 != 0 {
			p.Verdict = pipeline.VerdictFlood
			continue
		}
		if dst := fdbKeyBytes(d[0:6], vlan); dst != lastDst {
			lastOut, lastKnown = s.fdb.lookup(dst)
			lastDst = dst
		}
		out, known := lastOut, lastKnown
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
