package peephole

import (
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// ARPStats are an ARPStage's counters. Passed packets keep no verdict and
// go on to the L2 path.
type ARPStats struct {
	Answered      uint64 // requests turned into replies
	NotRequest    uint64 // ARP replies and other operations
	Gratuitous    uint64 // sender IP == target IP (announcements)
	Probe         uint64 // sender IP 0.0.0.0 (RFC 5227 probes)
	UnknownTarget uint64 // no binding for the target IP in the packet's VLAN
	Malformed     uint64 // not Ethernet/IPv4 ARP, truncated, or a non-unicast sender MAC
}

// ARPStage answers ARP requests for bound IPv4 addresses by rewriting the
// request in place into the reply and setting pipeline.VerdictReply.
// Everything else ARP is left undecided. It is safe for one worker at a time
// per stage value; counters may be read from any goroutine.
type ARPStage struct {
	table *BindingTable
	c     [arpNumReasons]atomic.Uint64
}

const (
	arpAnswered = iota
	arpNotRequest
	arpGratuitous
	arpProbe
	arpUnknownTarget
	arpMalformed
	arpNumReasons
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
	}
}

// Process implements pipeline.Stage. It loads the binding snapshot once and
// publishes its counters once per batch.
func (s *ARPStage) Process(b *pipeline.Batch) {
	var n [arpNumReasons]uint64
	var snap *snapshot
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone || p.EtherType != pipeline.EtherTypeARP {
			continue
		}
		if snap == nil {
			snap = s.table.load()
		}
		n[arpProcess(p, snap)]++
	}
	for r, v := range n {
		if v != 0 {
			s.c[r].Add(v)
		}
	}
}

// arpProcess decides one ARP packet and returns the counter to bump. It
// rechecks the frame itself rather than trusting FlagARP, so a packet the
// parser did not see cannot make it read out of bounds.
func arpProcess(p *pipeline.Packet, snap *snapshot) int {
	off := int(p.L3Off)
	if off < pipeline.EthernetHeaderLen || off > len(p.Data) || len(p.Data)-off < pipeline.ARPLen {
		return arpMalformed
	}
	a := pipeline.ARP(p.Data[off : off+pipeline.ARPLen])
	if a.HardwareType() != 1 || a.ProtocolType() != pipeline.EtherTypeIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		return arpMalformed
	}
	if a.Op() != pipeline.ARPRequest {
		return arpNotRequest
	}
	sender := a.SenderMAC()
	if sender.IsZero() || sender.IsMulticast() {
		// Replying to it would send the answer to a group or nowhere.
		return arpMalformed
	}
	sip, tip := a.SenderIP(), a.TargetIP()
	if sip == [4]byte{} {
		return arpProbe
	}
	if sip == tip {
		return arpGratuitous
	}
	e, ok := snap.find4(segment(p), tip)
	if !ok {
		return arpUnknownTarget
	}
	a.SetOp(pipeline.ARPReply)
	a.SetTargetMAC(sender)
	a.SetTargetIP(sip)
	a.SetSenderMAC(e.mac)
	a.SetSenderIP(tip)
	eth := pipeline.Ethernet(p.Data)
	eth.SetDst(sender)
	eth.SetSrc(e.mac)
	p.Verdict = pipeline.VerdictReply
	return arpAnswered
}
