package peephole

import (
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// ARPStats are an ARPStage's counters. Passed packets keep no verdict and
// go on to the L2 path. Gleaned counts alongside the others: a gleaned
// request is also counted by what happened to it.
type ARPStats struct {
	Answered      uint64 // requests turned into replies
	NotRequest    uint64 // ARP replies and other operations
	Gratuitous    uint64 // sender IP == target IP (announcements)
	Probe         uint64 // sender IP 0.0.0.0 (RFC 5227 probes)
	UnknownTarget uint64 // no binding for the target IP in the packet's VLAN
	Malformed     uint64 // not Ethernet/IPv4 ARP, truncated, or a non-unicast sender MAC
	SelfTarget    uint64 // the target's gleaned MAC is the asker's own: a duplicate-address check, passed
	Gleaned       uint64 // sender bindings learned or refreshed into the GleanTable
}

// ARPStage answers ARP requests for bound IPv4 addresses by rewriting the
// request in place into the reply and setting pipeline.VerdictReply. It
// answers from the static and gateway bindings first, then from the
// gleaned ones, and gleans sender bindings from requests, replies and
// announcements when the BindingTable has a GleanTable attached: never
// from probes, never when the sender MAC is not unicast or not the frame's
// Ethernet source, never over a static or gateway binding.
// Everything else ARP is left undecided. It is safe for one worker at a
// time per stage value; counters may be read from any goroutine.
type ARPStage struct {
	table *BindingTable
	c     [arpNumCounters]atomic.Uint64
}

const (
	arpAnswered = iota
	arpNotRequest
	arpGratuitous
	arpProbe
	arpUnknownTarget
	arpMalformed
	arpSelfTarget
	arpNumReasons
	arpGleaned     = arpNumReasons // not an outcome: counted next to one
	arpNumCounters = arpGleaned + 1
)

var _ pipeline.Stage = (*ARPStage)(nil)

// NewARPStage returns a stage answering from t.
func NewARPStage(t *BindingTable) *ARPStage { return &ARPStage{table: t} }

// Name implements pipeline.Stage.
func (*ARPStage) Name() string { return "peephole-arp" }

// Stats returns the counters.
func (s *ARPStage) Stats() ARPStats {
	return ARPStats{
		Answered:      s.c[arpAnswered].Load(),
		NotRequest:    s.c[arpNotRequest].Load(),
		Gratuitous:    s.c[arpGratuitous].Load(),
		Probe:         s.c[arpProbe].Load(),
		UnknownTarget: s.c[arpUnknownTarget].Load(),
		Malformed:     s.c[arpMalformed].Load(),
		SelfTarget:    s.c[arpSelfTarget].Load(),
		Gleaned:       s.c[arpGleaned].Load(),
	}
}

// Process implements pipeline.Stage. It loads the binding snapshot and the
// glean table once and publishes its counters once per batch.
func (s *ARPStage) Process(b *pipeline.Batch) {
	if b.Kinds.Lacks(pipeline.KindARP) {
		return
	}
	var n [arpNumCounters]uint64
	var c nbrBatch
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone || p.EtherType != pipeline.EtherTypeARP {
			continue
		}
		if c.snap == nil {
			c.load(s.table)
		}
		r, gleaned := arpProcess(p, &c)
		n[r]++
		if gleaned {
			n[arpGleaned]++
		}
	}
	for r, v := range n {
		if v != 0 {
			s.c[r].Add(v)
		}
	}
	c.done()
}

// arpProcess decides one ARP packet and returns the counter to bump and
// whether it gleaned the sender. It rechecks the frame itself rather than
// trusting FlagARP, so a packet the parser did not see cannot make it read
// out of bounds.
func arpProcess(p *pipeline.Packet, c *nbrBatch) (reason int, gleaned bool) {
	off := int(p.L3Off)
	if off < pipeline.EthernetHeaderLen || off > len(p.Data) || len(p.Data)-off < pipeline.ARPLen {
		return arpMalformed, false
	}
	a := pipeline.ARP(p.Data[off : off+pipeline.ARPLen])
	if a.HardwareType() != 1 || a.ProtocolType() != pipeline.EtherTypeIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		return arpMalformed, false
	}
	eth := pipeline.Ethernet(p.Data)
	op, sender, sip, tip, vlan := a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetIP(), segment(p)
	// Requests, replies and announcements all say "sip is at sender";
	// probes (sip 0.0.0.0) say nothing and glean4 refuses them.
	if op == pipeline.ARPRequest || op == pipeline.ARPReply {
		gleaned = c.glean4(vlan, sip, sender, eth.Src())
	}
	if op != pipeline.ARPRequest {
		return arpNotRequest, gleaned
	}
	if sender.IsZero() || sender.IsMulticast() {
		// Replying to it would send the answer to a group or nowhere.
		return arpMalformed, gleaned
	}
	if sip == [4]byte{} {
		return arpProbe, gleaned
	}
	if sip == tip {
		return arpGratuitous, gleaned
	}
	e, ok := c.find4(vlan, tip)
	if !ok {
		return arpUnknownTarget, gleaned
	}
	if e.gleaned && (e.mac == eth.Src() || e.mac == sender) {
		// The host asks who has its own address: let the owner (if any
		// other) answer, so the duplicate is detected.
		return arpSelfTarget, gleaned
	}
	a.SetOp(pipeline.ARPReply)
	a.SetTargetMAC(sender)
	a.SetTargetIP(sip)
	a.SetSenderMAC(e.mac)
	a.SetSenderIP(tip)
	eth.SetDst(sender)
	eth.SetSrc(e.mac)
	p.Verdict = pipeline.VerdictReply
	return arpAnswered, gleaned
}
