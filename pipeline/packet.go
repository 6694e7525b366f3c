package pipeline

// Verdict is the single outcome of a packet's trip through the pipeline.
// Every packet ends in exactly one counted verdict.
type Verdict uint8

const (
	// VerdictNone means no stage has decided yet. A packet still in
	// VerdictNone after the last stage is dropped with DropNoVerdict.
	VerdictNone Verdict = iota
	// VerdictForward sends the packet out of Packet.OutPort.
	VerdictForward
	// VerdictFlood sends a copy out of every port of the packet's segment
	// except the one it came in on.
	VerdictFlood
	// VerdictReply sends the packet, rewritten in place, back out of its
	// input port.
	VerdictReply
	// VerdictDrop drops the packet; Packet.Reason says why.
	VerdictDrop
	// VerdictPunt hands the packet to the slow path.
	VerdictPunt
	// VerdictPending parks the packet until the slow path answers.
	VerdictPending
	numVerdicts
)

var verdictNames = [numVerdicts]string{"none", "forward", "flood", "reply", "drop", "punt", "pending"}

func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "invalid"
}

// Flag bits describe what the parser found.
const (
	FlagVLAN      uint16 = 1 << iota // an 802.1Q tag was present (VLAN holds its ID)
	FlagIPv4                         // L3 is IPv4
	FlagIPv6                         // L3 is IPv6
	FlagARP                          // L3 is ARP (Ethernet/IPv4)
	FlagL4                           // L4Off points at a parsed TCP/UDP/ICMP header
	FlagFragment                     // IP fragment; L4 is only parsed for the first one
	FlagIPOptions                    // IPv4 header carries options
	FlagIPv6Ext                      // IPv6 extension headers were skipped
)

// NoPort is the OutPort of a packet that has no output port.
const NoPort = ^uint16(0)

// Packet is a view onto one frame. Data aliases memory that the receiving
// port owns (a UMEM frame or a shared-ring buffer); the packet is valid until
// the batch it is in is flushed, and no stage may keep it past Process.
//
// Parse fills the offset fields once; later stages read them without
// rechecking lengths the parser already validated.
type Packet struct {
	// Data is the frame from the Ethernet destination address to the end of
	// the L2 payload (no FCS). Stages may rewrite bytes in place and may
	// shorten or extend it within cap(Data).
	Data []byte
	// Addr is the owning port's handle on the frame (a UMEM address); only
	// the port layer interprets it.
	Addr uint64
	// Tail, when not nil, holds the frame's last len(Tail) bytes where the
	// sending port still has them (a memring client's shared buffer): Data
	// has the frame's full length, but its last len(Tail) bytes are not
	// filled in yet. Ports set it only for TCP and UDP frames whose headers
	// all lie before the tail, so parsing and header rewrites never see it.
	// A stage that reads L4 payload calls Materialize first; the port layer
	// either copies the tail straight to its destination or materializes.
	Tail []byte
	// InPort is the index of the port the frame arrived on.
	InPort uint16
	// OutPort is the output port for VerdictForward.
	OutPort uint16

	// Parse results.
	Flags     uint16
	VLAN      uint16 // VLAN ID when FlagVLAN is set
	EtherType uint16 // ethertype after any VLAN tag
	L3Off     uint16 // offset of the ARP/IPv4/IPv6 header
	L4Off     uint16 // offset of the TCP/UDP/ICMP header (FlagL4)
	L4Proto   uint8  // IP protocol number of the L4 header (after IPv6 extensions)
	L3Len     uint16 // bytes of L3 header + payload as the IP header claims

	Verdict Verdict
	Reason  DropReason
}

// Reset clears parse results, verdict and Tail, keeping Data, Addr and
// InPort.
func (p *Packet) Reset() {
	p.Tail = nil
	p.OutPort = NoPort
	p.Flags = 0
	p.VLAN = 0
	p.EtherType = 0
	p.L3Off = 0
	p.L4Off = 0
	p.L4Proto = 0
	p.L3Len = 0
	p.Verdict = VerdictNone
	p.Reason = DropNone
}

// Materialize fills in the frame's tail (see Tail), so that all of Data is
// the frame. It is a no-op for a complete frame. Data may have moved or
// changed length since the tail was set (a VLAN tag pushed or popped):
// the tail is always the end of the frame.
func (p *Packet) Materialize() {
	if p.Tail == nil {
		return
	}
	copy(p.Data[len(p.Data)-len(p.Tail):], p.Tail)
	p.Tail = nil
}

// Drop sets the verdict to VerdictDrop with reason r.
func (p *Packet) Drop(r DropReason) {
	p.Verdict = VerdictDrop
	p.Reason = r
}

// Forward sets the verdict to VerdictForward out of port out.
func (p *Packet) Forward(out uint16) {
	p.Verdict = VerdictForward
	p.OutPort = out
}
