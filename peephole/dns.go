package peephole

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/vswitch/vswitch/pipeline"
)

// DNSPassReason says why the DNS stage left a packet to later stages.
type DNSPassReason uint8

const (
	DNSPassNotDNS             DNSPassReason = iota // not UDP to port 53
	DNSPassNotQuery                                // QR set or opcode not QUERY
	DNSPassMultiQuestion                           // QDCOUNT != 1
	DNSPassCompressedQuestion                      // compression pointer in the question
	DNSPassTCP                                     // DNS over TCP (not answered by a one-frame stage)
	DNSPassFragment                                // IP fragment
	DNSPassOutsideZone                             // name outside the local zones
	DNSPassTooBig                                  // answer does not fit the EDNS0 size or the frame
	DNSPassUnsupportedType                         // query type or class not answered here
	DNSPassExtraRecords                            // answer/authority records, or additional other than one OPT
	DNSPassIPOptions                               // IPv4 options or IPv6 extension headers
	DNSPassMulticast                               // sent to a multicast/broadcast MAC
	DNSPassCNAMEChain                              // CNAME chain longer than maxCNAMEChain (or a loop)
	numDNSPass
)

var dnsPassNames = [numDNSPass]string{
	"not_dns", "not_query", "multi_question", "compressed_question", "tcp",
	"fragment", "outside_zone", "too_big", "unsupported_type", "extra_records",
	"ip_options", "multicast", "cname_chain",
}

func (r DNSPassReason) String() string {
	if r < numDNSPass {
		return dnsPassNames[r]
	}
	return "invalid"
}

// DNSStats is a snapshot of the DNS stage's counters.
type DNSStats struct {
	Answered, NXDomain, NoData, Malformed uint64
	Passed                                [numDNSPass]uint64 // indexed by DNSPassReason
}

// DNSStage answers DNS queries for names in the local zones of a DNSZones
// store, in place, when the query and its answer each fit in one UDP frame
// (never with TC set). Anything else is left alone for a resolver
// elsewhere. Answered counts every reply; NXDomain and NoData count the
// negative ones among them.
type DNSStage struct {
	zones *DNSZones

	answered, nxdomain, nodata, malformed atomic.Uint64
	passed                                [numDNSPass]atomic.Uint64
}

var _ pipeline.Stage = (*DNSStage)(nil)

// NewDNSStage returns a stage answering from zones.
func NewDNSStage(zones *DNSZones) *DNSStage { return &DNSStage{zones: zones} }

// Name returns "dns".
func (s *DNSStage) Name() string { return "dns" }

// Stats returns the counters.
func (s *DNSStage) Stats() DNSStats {
	st := DNSStats{
		Answered:  s.answered.Load(),
		NXDomain:  s.nxdomain.Load(),
		NoData:    s.nodata.Load(),
		Malformed: s.malformed.Load(),
	}
	for i := range st.Passed {
		st.Passed[i] = s.passed[i].Load()
	}
	return st
}

// DNS wire constants.
const (
	dnsHeaderLen     = 12
	dnsPort          = 53
	dnsClassIN       = 1
	dnsTypeOPT       = 41
	dnsRcodeNXDomain = 3
	dnsTypeSOA       = 6
	dnsTypeNS        = 2
	dnsMinUDPSize    = 512
	// dnsOurUDPSize is the EDNS0 payload size a reply advertises (the
	// DNS flag day 2020 figure).
	dnsOurUDPSize = 1232
	// dnsMaxMsg keeps every offset a compression pointer may need in its
	// 14 bits.
	dnsMaxMsg = 0x3fff
)

// dnsOutcome is what Process records about one packet, summed per batch.
type dnsOutcome uint8

const (
	dnsOutPass dnsOutcome = iota
	dnsOutAnswer
	dnsOutNXDomain
	dnsOutNoData
	dnsOutMalformed
)

// Process answers what it can and leaves every other packet untouched.
func (s *DNSStage) Process(b *pipeline.Batch) {
	if b.Kinds.Lacks(pipeline.KindPort53 | pipeline.KindUDPFragment) {
		// Every undecided packet is one answer passes as not DNS.
		var n uint64
		for i := 0; i < b.Len; i++ {
			if b.Pkts[i].Verdict == pipeline.VerdictNone {
				n++
			}
		}
		if n != 0 {
			s.passed[DNSPassNotDNS].Add(n)
		}
		return
	}
	snap := s.zones.snap.Load()
	var answered, nx, nd, bad uint64
	var passed [numDNSPass]uint64
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		if p.Verdict != pipeline.VerdictNone {
			continue
		}
		if notDNSPort(p) {
			passed[DNSPassNotDNS]++
			continue
		}
		out, why := s.answer(snap, p)
		switch out {
		case dnsOutPass:
			passed[why]++
		case dnsOutMalformed:
			bad++
		case dnsOutNXDomain:
			nx++
			answered++
		case dnsOutNoData:
			nd++
			answered++
		default:
			answered++
		}
	}
	if answered != 0 {
		s.answered.Add(answered)
	}
	if nx != 0 {
		s.nxdomain.Add(nx)
	}
	if nd != 0 {
		s.nodata.Add(nd)
	}
	if bad != 0 {
		s.malformed.Add(bad)
	}
	for r, n := range passed {
		if n != 0 {
			s.passed[r].Add(n)
		}
	}
}

// dnsQuery is what the parser learned about an answerable query.
type dnsQuery struct {
	qtype   DNSType
	qEnd    int // offset just past the question
	hasOPT  bool
	udpSize int
	rd      bool
	name    [255]byte // lower-cased wire name
	nameLen int
}

// notDNSPort is answer's verdict for the common case, TCP or UDP to
// another port than 53 in an unfragmented packet, decided without calling
// answer (whose frame holds a whole query name).
func notDNSPort(p *pipeline.Packet) bool {
	port, ok := p.DstPort()
	return ok && port != dnsPort
}

// answer decides for one packet and, when it answers, rewrites it and sets
// VerdictReply. It must not touch the frame before it knows it answers.
func (s *DNSStage) answer(snap *dnsSnapshot, p *pipeline.Packet) (dnsOutcome, DNSPassReason) {
	if p.Flags&(pipeline.FlagIPv4|pipeline.FlagIPv6) == 0 {
		return dnsOutPass, DNSPassNotDNS
	}
	if p.Flags&pipeline.FlagFragment != 0 {
		if p.L4Proto == pipeline.ProtoUDP {
			return dnsOutPass, DNSPassFragment
		}
		return dnsOutPass, DNSPassNotDNS
	}
	if p.Flags&pipeline.FlagL4 == 0 {
		return dnsOutPass, DNSPassNotDNS
	}
	if p.L4Proto == pipeline.ProtoTCP {
		if pipeline.TCP(p.Data[p.L4Off:]).DstPort() == dnsPort {
			return dnsOutPass, DNSPassTCP
		}
		return dnsOutPass, DNSPassNotDNS
	}
	u := p.UDP()
	if u == nil || u.DstPort() != dnsPort {
		return dnsOutPass, DNSPassNotDNS
	}
	if p.Flags&(pipeline.FlagIPOptions|pipeline.FlagIPv6Ext) != 0 {
		return dnsOutPass, DNSPassIPOptions
	}
	if p.Ethernet().Dst().IsMulticast() {
		return dnsOutPass, DNSPassMulticast
	}
	p.Materialize() // the query is payload
	msg := u.Payload()
	var q dnsQuery
	if out, why := parseDNSQuery(msg, &q); out != dnsOutAnswer {
		return out, why
	}
	qname := q.name[:q.nameLen]
	zone := snap.findZone(qname)
	if zone == nil {
		return dnsOutPass, DNSPassOutsideZone
	}

	// Resolve: follow CNAMEs inside the local zones, then take the
	// records of the query type at the end of the chain.
	var chain [maxCNAMEChain]*dnsNode
	nChain := 0
	var final []dnsRR
	var soaZone *dnsZoneSnap
	rcode := uint16(0)
	name := qname
	for {
		n := snap.names[string(name)]
		if n == nil {
			rcode, soaZone = dnsRcodeNXDomain, zone
			break
		}
		if n.cname != nil {
			if nChain == maxCNAMEChain {
				return dnsOutPass, DNSPassCNAMEChain
			}
			chain[nChain] = n
			nChain++
			name = n.cname
			if zone = snap.findZone(name); zone == nil {
				break // the rest is for a resolver to follow
			}
			continue
		}
		if final = n.rrs(q.qtype); len(final) == 0 {
			soaZone = zone
		}
		break
	}

	// Size the reply before writing a byte, so a pass leaves the frame
	// exactly as it came.
	size := q.qEnd
	for _, n := range chain[:nChain] {
		size += 2 + 10 + len(n.cname)
	}
	for _, rr := range final {
		size += 2 + 10 + len(rr.rdata)
	}
	if soaZone != nil {
		size += len(soaZone.apex) + 10 + len(soaZone.soa)
	}
	if q.hasOPT {
		size += 11
	}
	dnsOff := int(p.L4Off) + pipeline.UDPHeaderLen
	limit := min(q.udpSize, cap(p.Data)-dnsOff, dnsMaxMsg, 0xffff-pipeline.UDPHeaderLen-(int(p.L4Off)-int(p.L3Off)))
	if size > limit {
		return dnsOutPass, DNSPassTooBig
	}

	// Write the reply.
	p.Data = p.Data[:dnsOff+size]
	m := p.Data[dnsOff:]
	flags := uint16(0x8000 | 0x0400 | rcode) // QR, AA
	if q.rd {
		flags |= 0x0100
	}
	binary.BigEndian.PutUint16(m[2:], flags)
	binary.BigEndian.PutUint16(m[4:], 1)
	binary.BigEndian.PutUint16(m[6:], uint16(nChain+len(final)))
	ns := uint16(0)
	if soaZone != nil {
		ns = 1
	}
	binary.BigEndian.PutUint16(m[8:], ns)
	ar := uint16(0)
	if q.hasOPT {
		ar = 1
	}
	binary.BigEndian.PutUint16(m[10:], ar)
	pos := q.qEnd
	owner := dnsHeaderLen // where the owner name of the next record is
	for _, n := range chain[:nChain] {
		pos = putRRHeader(m, pos, owner, DNSTypeCNAME, n.cnameTTL, len(n.cname))
		owner = pos
		pos += copy(m[pos:], n.cname)
	}
	for _, rr := range final {
		pos = putRRHeader(m, pos, owner, q.qtype, rr.ttl, len(rr.rdata))
		pos += copy(m[pos:], rr.rdata)
	}
	if soaZone != nil {
		pos += copy(m[pos:], soaZone.apex)
		binary.BigEndian.PutUint16(m[pos:], dnsTypeSOA)
		binary.BigEndian.PutUint16(m[pos+2:], dnsClassIN)
		binary.BigEndian.PutUint32(m[pos+4:], soaZone.ttl)
		binary.BigEndian.PutUint16(m[pos+8:], uint16(len(soaZone.soa)))
		pos += 10
		pos += copy(m[pos:], soaZone.soa)
	}
	if q.hasOPT {
		m[pos] = 0
		binary.BigEndian.PutUint16(m[pos+1:], dnsTypeOPT)
		binary.BigEndian.PutUint16(m[pos+3:], dnsOurUDPSize)
		clear(m[pos+5 : pos+11]) // extended rcode, version 0, no DO, no options
	}

	s.turnAround(p, size)
	p.Verdict = pipeline.VerdictReply
	switch {
	case rcode == dnsRcodeNXDomain:
		return dnsOutNXDomain, 0
	case soaZone != nil:
		return dnsOutNoData, 0
	}
	return dnsOutAnswer, 0
}

// putRRHeader writes a compressed owner pointing at owner and the fixed
// part of a record at pos; it returns where the RDATA goes.
func putRRHeader(m []byte, pos, owner int, t DNSType, ttl uint32, rdlen int) int {
	binary.BigEndian.PutUint16(m[pos:], 0xc000|uint16(owner))
	binary.BigEndian.PutUint16(m[pos+2:], uint16(t))
	binary.BigEndian.PutUint16(m[pos+4:], dnsClassIN)
	binary.BigEndian.PutUint32(m[pos+6:], ttl)
	binary.BigEndian.PutUint16(m[pos+10:], uint16(rdlen))
	return pos + 12
}

// turnAround swaps addresses and ports and fixes lengths and checksums for
// a DNS message of dnsLen bytes that now ends the frame.
func (s *DNSStage) turnAround(p *pipeline.Packet, dnsLen int) {
	d := p.Data
	var mac [6]byte
	copy(mac[:], d[0:6])
	copy(d[0:6], d[6:12])
	copy(d[6:12], mac[:])

	udpLen := pipeline.UDPHeaderLen + dnsLen
	l3 := int(p.L3Off)
	p.L3Len = uint16(int(p.L4Off) - l3 + udpLen)
	if p.Flags&pipeline.FlagIPv4 != 0 {
		ip := pipeline.IPv4(d[l3:])
		var a [4]byte
		copy(a[:], ip[12:16])
		copy(ip[12:16], ip[16:20])
		copy(ip[16:20], a[:])
		binary.BigEndian.PutUint16(ip[2:], p.L3Len)
		ip.UpdateChecksum()
	} else {
		ip := pipeline.IPv6(d[l3:])
		var a [16]byte
		copy(a[:], ip[8:24])
		copy(ip[8:24], ip[24:40])
		copy(ip[24:40], a[:])
		binary.BigEndian.PutUint16(ip[4:], p.L3Len-pipeline.IPv6HeaderLen)
	}
	u := d[p.L4Off:]
	sp := binary.BigEndian.Uint16(u[0:])
	copy(u[0:2], u[2:4])
	binary.BigEndian.PutUint16(u[2:], sp)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen))
	binary.BigEndian.PutUint16(u[6:], 0)
	p.SetL4Checksum()
}

// parseDNSQuery checks that msg is one query this stage can answer and
// fills q. It returns dnsOutAnswer when it is, else the pass reason or
// dnsOutMalformed. It reads msg only within its length.
func parseDNSQuery(msg []byte, q *dnsQuery) (dnsOutcome, DNSPassReason) {
	if len(msg) < dnsHeaderLen {
		return dnsOutMalformed, 0
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xf != 0 {
		return dnsOutPass, DNSPassNotQuery
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return dnsOutPass, DNSPassMultiQuestion
	}
	arcount := binary.BigEndian.Uint16(msg[10:])
	if binary.BigEndian.Uint16(msg[6:]) != 0 || binary.BigEndian.Uint16(msg[8:]) != 0 || arcount > 1 {
		return dnsOutPass, DNSPassExtraRecords
	}
	q.rd = flags&0x0100 != 0
	pos := dnsHeaderLen
	n := 0
	for {
		if pos >= len(msg) {
			return dnsOutMalformed, 0
		}
		l := int(msg[pos])
		switch {
		case l&0xc0 == 0xc0:
			return dnsOutPass, DNSPassCompressedQuestion
		case l&0xc0 != 0:
			return dnsOutMalformed, 0 // reserved label types (RFC 6891 retired 0x40)
		}
		if n+1+l > len(q.name) || pos+1+l > len(msg) {
			return dnsOutMalformed, 0
		}
		q.name[n] = byte(l)
		for i := 1; i <= l; i++ {
			c := msg[pos+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.name[n+i] = c
		}
		n += 1 + l
		pos += 1 + l
		if l == 0 {
			break
		}
	}
	q.nameLen = n
	if pos+4 > len(msg) {
		return dnsOutMalformed, 0
	}
	q.qtype = DNSType(binary.BigEndian.Uint16(msg[pos:]))
	qclass := binary.BigEndian.Uint16(msg[pos+2:])
	pos += 4
	q.qEnd = pos
	q.udpSize = dnsMinUDPSize
	if arcount == 1 {
		// Only an OPT record (RFC 6891 6.1.2): root owner, type 41.
		if pos+11 > len(msg) {
			return dnsOutMalformed, 0
		}
		if msg[pos] != 0 || binary.BigEndian.Uint16(msg[pos+1:]) != dnsTypeOPT {
			return dnsOutPass, DNSPassExtraRecords
		}
		if size := int(binary.BigEndian.Uint16(msg[pos+3:])); size > dnsMinUDPSize {
			q.udpSize = size
		}
		if msg[pos+6] != 0 { // EDNS version: BADVERS is for a full server to say
			return dnsOutPass, DNSPassExtraRecords
		}
		rdlen := int(binary.BigEndian.Uint16(msg[pos+9:]))
		pos += 11 + rdlen
		q.hasOPT = true
	}
	if pos != len(msg) {
		return dnsOutMalformed, 0
	}
	if qclass != dnsClassIN {
		return dnsOutPass, DNSPassUnsupportedType
	}
	// The zone store holds A, AAAA, PTR and CNAME; for any other data type
	// the authoritative answer is NODATA (or NXDOMAIN). Left for a full
	// server: CNAME, SOA and NS queries (the store has no such data to
	// answer truthfully), meta types (ANY, zone transfers, MAILA/MAILB)
	// and OPT.
	switch q.qtype {
	case DNSTypeCNAME, dnsTypeSOA, dnsTypeNS, dnsTypeOPT:
		return dnsOutPass, DNSPassUnsupportedType
	}
	if q.qtype >= 128 && q.qtype <= 255 { // meta and QTYPE-only values (RFC 6895)
		return dnsOutPass, DNSPassUnsupportedType
	}
	if q.qtype == 0 {
		return dnsOutMalformed, 0
	}
	return dnsOutAnswer, 0
}
