package peephole

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// NDStats are an NDStage's counters. Only ICMPv6 messages are counted;
// passed packets keep no verdict and go on to the L2 path. Gleaned counts
// alongside the others: a gleaned solicitation is also counted by what
// happened to it.
type NDStats struct {
	Answered      uint64 // solicitations turned into advertisements
	NotRequest    uint64 // ICMPv6 messages other than Neighbor Solicitation
	Probe         uint64 // DAD probes (source ::)
	UnknownTarget uint64 // no binding for the target in the packet's VLAN
	Malformed     uint64 // fails RFC 4861 7.1.1 validation or a length check
	TooBig        uint64 // the advertisement would not fit in the frame's buffer
	Unsupported   uint64 // a solicitation behind IPv6 extension headers
	SelfTarget    uint64 // the target's gleaned MAC is the asker's own: a duplicate-address check, passed
	Gleaned       uint64 // bindings learned or refreshed from NS source and NA target options
}

// NDStage answers IPv6 Neighbor Solicitations for bound addresses by
// rewriting the solicitation in place into the Neighbor Advertisement and
// setting pipeline.VerdictReply. It answers from the static and gateway
// bindings first, then from the gleaned ones (never with the Router flag),
// and, when the BindingTable has a GleanTable attached, gleans the source
// of solicitations carrying a source link-layer option and the target of
// valid advertisements carrying a target link-layer option. As for ARP,
// the option's MAC must be the frame's Ethernet source (so a proxy's
// advertisement for another host teaches nothing), unicast, and the
// address must not have a static or gateway binding. Everything else is
// left undecided. It is safe for one worker at a time per stage value;
// counters may be read from any goroutine.
type NDStage struct {
	table *BindingTable
	c     [ndNumCounters]atomic.Uint64
}

const (
	ndAnswered = iota
	ndNotRequest
	ndProbe
	ndUnknownTarget
	ndMalformed
	ndTooBig
	ndUnsupported
	ndSelfTarget
	ndNumReasons
	ndGleaned     = ndNumReasons // not an outcome: counted next to one
	ndNumCounters = ndGleaned + 1
)

// ND message layout (RFC 4861 4.3, 4.4, 4.6.1).
const (
	ndMsgLen        = 24 // ICMPv6 header, flags/reserved, target address
	ndOptSourceLL   = 1
	ndOptTargetLL   = 2
	ndNALen         = ndMsgLen + 8 // with one target link-layer option
	ndFlagRouter    = 0x80
	ndFlagSolicited = 0x40
	ndFlagOverride  = 0x20
)

var _ pipeline.Stage = (*NDStage)(nil)

// NewNDStage returns a stage answering from t.
func NewNDStage(t *BindingTable) *NDStage { return &NDStage{table: t} }

// Name implements pipeline.Stage.
func (*NDStage) Name() string { return "peephole-nd" }

// Stats returns the counters.
func (s *NDStage) Stats() NDStats {
	return NDStats{
		Answered:      s.c[ndAnswered].Load(),
		NotRequest:    s.c[ndNotRequest].Load(),
		Probe:         s.c[ndProbe].Load(),
		UnknownTarget: s.c[ndUnknownTarget].Load(),
		Malformed:     s.c[ndMalformed].Load(),
		TooBig:        s.c[ndTooBig].Load(),
		Unsupported:   s.c[ndUnsupported].Load(),
		SelfTarget:    s.c[ndSelfTarget].Load(),
		Gleaned:       s.c[ndGleaned].Load(),
	}
}

// Process implements pipeline.Stage. It loads the binding snapshot and the
// glean table once and publishes its counters once per batch.
func (s *NDStage) Process(b *pipeline.Batch) {
	if b.Kinds.Lacks(pipeline.KindICMPv6) {
		return
	}
	var n [ndNumCounters]uint64
	var c nbrBatch
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone || p.Flags&pipeline.FlagIPv6 == 0 ||
			p.Flags&pipeline.FlagL4 == 0 || p.L4Proto != pipeline.ProtoICMPv6 {
			continue
		}
		if c.snap == nil {
			c.load(s.table)
		}
		r, gleaned := ndProcess(p, &c)
		n[r]++
		if gleaned {
			n[ndGleaned]++
		}
	}
	for r, v := range n {
		if v != 0 {
			s.c[r].Add(v)
		}
	}
	c.done()
}

// ndProcess decides one parsed ICMPv6 packet and returns the counter to
// bump and whether it gleaned a binding. Offsets are rechecked against the
// frame so that inconsistent parse fields cannot make it read out of
// bounds.
func ndProcess(p *pipeline.Packet, c *nbrBatch) (reason int, gleaned bool) {
	d := p.Data
	l3, l4, end := int(p.L3Off), int(p.L4Off), int(p.L3Off)+int(p.L3Len)
	if l3 < pipeline.EthernetHeaderLen || l4 < l3+pipeline.IPv6HeaderLen || end > len(d) || l4+pipeline.ICMPHeaderLen > end {
		return ndMalformed, false
	}
	icmp := d[l4:end]
	if icmp[0] == pipeline.ICMPv6NeighborAdvert {
		return ndNotRequest, c.glean != nil && ndGleanNA(p, c)
	}
	if icmp[0] != pipeline.ICMPv6NeighborSolicit {
		return ndNotRequest, false
	}
	if l4 != l3+pipeline.IPv6HeaderLen || p.Flags&pipeline.FlagFragment != 0 {
		return ndUnsupported, false
	}
	ip := pipeline.IPv6(d[l3:end])
	// RFC 4861 7.1.1: hop limit 255 proves the sender is on-link.
	if ip.HopLimit() != 255 || icmp[1] != 0 || len(icmp) < ndMsgLen || !p.L4ChecksumValid() {
		return ndMalformed, false
	}
	target := [16]byte(icmp[8:24])
	if target[0] == 0xff {
		return ndMalformed, false
	}
	src := ip.Src()
	if src[0] == 0xff {
		return ndMalformed, false
	}
	var sll []byte
	for opts := icmp[ndMsgLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return ndMalformed, false
		}
		if opts[0] == ndOptSourceLL {
			if src == ([16]byte{}) {
				return ndMalformed, false // RFC 4861 7.1.1: no source LL option in DAD
			}
			if opts[1] == 1 {
				sll = opts[2:8]
			}
		}
		opts = opts[int(opts[1])*8:]
	}
	eth := pipeline.Ethernet(d)
	requester := eth.Src()
	if requester.IsZero() || requester.IsMulticast() {
		return ndMalformed, false
	}
	if src == ([16]byte{}) {
		return ndProbe, false
	}
	vlan := segment(p)
	if sll != nil {
		gleaned = c.glean6(vlan, src, pipeline.MAC(sll), requester)
	}
	e, ok := c.find6(vlan, target)
	if !ok {
		return ndUnknownTarget, gleaned
	}
	if e.gleaned && e.mac == requester {
		// The host asks who has its own address: let the owner (if any
		// other) answer, so the duplicate is detected.
		return ndSelfTarget, gleaned
	}
	naEnd := l4 + ndNALen
	if naEnd > cap(d) {
		return ndTooBig, gleaned
	}
	d = d[:naEnd]
	p.Data = d
	p.L3Len = pipeline.IPv6HeaderLen + ndNALen

	eth.SetDst(requester)
	eth.SetSrc(e.mac)

	h := d[l3:l4]
	binary.BigEndian.PutUint32(h[0:], 6<<28) // version 6, traffic class and flow label 0
	binary.BigEndian.PutUint16(h[4:], ndNALen)
	h[6] = pipeline.ProtoICMPv6
	h[7] = 255
	copy(h[8:24], target[:])
	copy(h[24:40], src[:])

	na := d[l4:naEnd]
	flags := byte(ndFlagSolicited | ndFlagOverride)
	if e.router {
		flags |= ndFlagRouter
	}
	na[0], na[1], na[2], na[3] = pipeline.ICMPv6NeighborAdvert, 0, 0, 0
	na[4], na[5], na[6], na[7] = flags, 0, 0, 0
	copy(na[8:24], target[:])
	na[24], na[25] = ndOptTargetLL, 1
	copy(na[26:32], e.mac[:])
	sum := pipeline.PseudoHeaderSumIPv6(target, src, pipeline.ProtoICMPv6, ndNALen)
	binary.BigEndian.PutUint16(na[2:], ^pipeline.Checksum(na, sum))

	p.Verdict = pipeline.VerdictReply
	return ndAnswered, gleaned
}

// ndGleanNA validates a Neighbor Advertisement (RFC 4861 7.1.2) and gleans
// its target from the target link-layer option. An advertisement that
// fails validation, or has no such option, teaches nothing.
func ndGleanNA(p *pipeline.Packet, c *nbrBatch) bool {
	d := p.Data
	l3, l4, end := int(p.L3Off), int(p.L4Off), int(p.L3Off)+int(p.L3Len)
	if l4 != l3+pipeline.IPv6HeaderLen || p.Flags&pipeline.FlagFragment != 0 {
		return false
	}
	ip, icmp := pipeline.IPv6(d[l3:end]), d[l4:end]
	if ip.HopLimit() != 255 || icmp[1] != 0 || len(icmp) < ndMsgLen || !p.L4ChecksumValid() {
		return false
	}
	target := [16]byte(icmp[8:24])
	if dst := ip.Dst(); dst[0] == 0xff && icmp[4]&ndFlagSolicited != 0 {
		return false // RFC 4861 7.1.2: a multicast advertisement is unsolicited
	}
	var tll []byte
	for opts := icmp[ndMsgLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return false
		}
		if opts[0] == ndOptTargetLL && opts[1] == 1 {
			tll = opts[2:8]
		}
		opts = opts[int(opts[1])*8:]
	}
	return tll != nil && c.glean6(segment(p), target, pipeline.MAC(tll), pipeline.Ethernet(d).Src())
}
