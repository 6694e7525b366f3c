package pipeline

import "encoding/binary"

// MaxBatch is the largest number of packets in one Batch. Rings are polled
// for at most this many frames at a time.
const MaxBatch = 64

// Batch is a fixed inline array of packets that a worker fills from one
// receive queue, runs through the stages, and then flushes. The worker owns
// the batch and reuses it for every poll; stages must not keep references to
// it or to its packets past Process.
type Batch struct {
	Len int
	// Kinds says which kinds of packet the batch holds, so that a stage
	// acting on one kind can skip a batch without it. ParseStage sets it;
	// Pipeline.Process clears it before the first stage, so a batch no
	// ParseStage has seen is unknown (zero) and every stage looks at
	// every packet.
	Kinds Kinds
	Pkts  [MaxBatch]Packet
}

// Kinds is a summary of a batch's packets: a superset of the kinds the
// responder stages act on.
type Kinds uint8

const (
	// KindsKnown: the other bits are valid.
	KindsKnown Kinds = 1 << iota
	// KindARP: an ARP frame.
	KindARP
	// KindICMPv6: an ICMPv6 message over IPv6 with its header parsed.
	KindICMPv6
	// KindPort53: an unfragmented TCP or UDP packet to port 53.
	KindPort53
	// KindUDPFragment: a fragment of a UDP datagram.
	KindUDPFragment
)

// Lacks reports whether the batch is known to hold no packet of any of
// the kinds in k.
func (k Kinds) Lacks(kinds Kinds) bool { return k&KindsKnown != 0 && k&kinds == 0 }

// kinds is the Kinds bits of one parsed packet.
func (p *Packet) kinds() Kinds {
	var k Kinds
	if p.EtherType == EtherTypeARP {
		k |= KindARP
	}
	if p.Flags&(FlagIPv4|FlagIPv6) == 0 {
		return k
	}
	if p.Flags&FlagIPv6 != 0 && p.Flags&FlagL4 != 0 && p.L4Proto == ProtoICMPv6 {
		k |= KindICMPv6
	}
	if p.Flags&FlagFragment != 0 {
		if p.L4Proto == ProtoUDP {
			k |= KindUDPFragment
		}
	} else if p.Flags&FlagL4 != 0 && (p.L4Proto == ProtoUDP || p.L4Proto == ProtoTCP) {
		// A header too short to read the port in counts as port 53.
		if port, ok := p.DstPort(); !ok || port == 53 {
			k |= KindPort53
		}
	}
	return k
}

// DstPort is the destination port of an unfragmented TCP or UDP packet
// whose header was parsed; ok is false for anything else.
func (p *Packet) DstPort() (port uint16, ok bool) {
	if p.Flags&(FlagL4|FlagFragment) != FlagL4 ||
		p.L4Proto != ProtoUDP && p.L4Proto != ProtoTCP ||
		int(p.L4Off)+4 > len(p.Data) {
		return 0, false
	}
	// The destination port is at the same offset in both headers.
	return binary.BigEndian.Uint16(p.Data[p.L4Off+2:]), true
}

// Packets returns the live part of the batch.
func (b *Batch) Packets() []Packet { return b.Pkts[:b.Len] }

// Stage is one step of the pipeline. Process looks at every packet of the
// batch whose Verdict is still VerdictNone (packets already decided are left
// alone) and may set a verdict or rewrite the frame in place. Stages never
// allocate, block, or do I/O.
type Stage interface {
	Name() string
	Process(b *Batch)
}

// Pipeline runs its stages in order. It is built once per configuration
// generation and is owned by one worker.
type Pipeline struct {
	stages []Stage
}

// NewPipeline returns a pipeline of the given stages in order.
func NewPipeline(stages ...Stage) *Pipeline {
	return &Pipeline{stages: append([]Stage(nil), stages...)}
}

// Stages returns the stages in order. The caller must not modify the slice.
func (p *Pipeline) Stages() []Stage { return p.stages }

// Process runs every stage over b, then gives every packet still without a
// verdict the drop reason DropNoVerdict, so nothing leaves uncounted.
func (p *Pipeline) Process(b *Batch) {
	b.Kinds = 0
	for _, s := range p.stages {
		s.Process(b)
	}
	for i := 0; i < b.Len; i++ {
		if b.Pkts[i].Verdict == VerdictNone {
			b.Pkts[i].Drop(DropNoVerdict)
		}
	}
}
