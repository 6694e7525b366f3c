package peephole

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// DNS record types the responder stores.
type DNSType uint16

const (
	DNSTypeA     DNSType = 1
	DNSTypeCNAME DNSType = 5
	DNSTypePTR   DNSType = 12
	DNSTypeAAAA  DNSType = 28
)

func (t DNSType) String() string {
	switch t {
	case DNSTypeA:
		return "A"
	case DNSTypeCNAME:
		return "CNAME"
	case DNSTypePTR:
		return "PTR"
	case DNSTypeAAAA:
		return "AAAA"
	}
	return fmt.Sprintf("TYPE%d", uint16(t))
}

// maxCNAMEChain bounds how many CNAMEs inside the local zones one answer
// follows; a longer chain (or a loop) is left to a resolver elsewhere.
const maxCNAMEChain = 8

// Sentinel errors of the control API. They are wrapped with the field they
// concern: "add record: name \"x\": not in any zone".
var (
	ErrDNSBadName      = errors.New("bad domain name")
	ErrDNSNotInZone    = errors.New("not in any local zone")
	ErrDNSZoneExists   = errors.New("zone already exists")
	ErrDNSBadType      = errors.New("unsupported record type")
	ErrDNSBadValue     = errors.New("bad record value")
	ErrDNSBadTTL       = errors.New("TTL above 2^31-1")
	ErrDNSCNAMEClash   = errors.New("CNAME and other data at one name")
	ErrDNSNoSuchRecord = errors.New("no such record")
	ErrDNSNoSuchZone   = errors.New("no such zone")
)

// DNSSOA is the start of authority of a local zone (RFC 1035 3.3.13). Its
// Minimum is the TTL of negative answers (RFC 2308).
type DNSSOA struct {
	MName, RName                            string
	Serial, Refresh, Retry, Expire, Minimum uint32
}

// DNSZone is a zone the switch is authoritative for.
type DNSZone struct {
	Name string
	SOA  DNSSOA
}

// DNSRecord is one resource record as the control API sees it. Value is an
// address for A/AAAA and a domain name for PTR/CNAME.
type DNSRecord struct {
	Name  string
	Type  DNSType
	Value string
	TTL   uint32
}

// DNSZones is the record store. The control path (AddZone, DelZone, AddRecord,
// DelRecord, List) serializes on a mutex and rebuilds an immutable snapshot
// on every change; the datapath reads only the snapshot, through an atomic
// pointer, so lookups take no lock and do not allocate.
type DNSZones struct {
	mu      sync.Mutex
	zones   []DNSZone
	records []DNSRecord
	snap    atomic.Pointer[dnsSnapshot]
}

// NewDNSZones returns an empty store.
func NewDNSZones() *DNSZones {
	z := &DNSZones{}
	z.snap.Store(&dnsSnapshot{zones: map[string]*dnsZoneSnap{}, names: map[string]*dnsNode{}})
	return z
}

// AddZone makes the switch authoritative for name with the given SOA. The
// root zone is refused: it would make the switch answer (NXDOMAIN) for
// every name on the Internet.
func (z *DNSZones) AddZone(name string, soa DNSSOA) error {
	w, err := dnsZoneName(name)
	if err != nil {
		return fmt.Errorf("add zone: name %q: %w", name, err)
	}
	if _, err := dnsWireName(soa.MName); err != nil {
		return fmt.Errorf("add zone: soa mname %q: %w", soa.MName, err)
	}
	if _, err := dnsWireName(soa.RName); err != nil {
		return fmt.Errorf("add zone: soa rname %q: %w", soa.RName, err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, o := range z.zones {
		if ow, _ := dnsWireName(o.Name); string(ow) == string(w) {
			return fmt.Errorf("add zone: name %q: %w", name, ErrDNSZoneExists)
		}
	}
	z.zones = append(z.zones, DNSZone{Name: name, SOA: soa})
	z.rebuild()
	return nil
}

// DelZone removes the zone name and every record in it. Records that
// belong to a zone nested inside it (a longer local zone) stay.
func (z *DNSZones) DelZone(name string) error {
	w, err := dnsZoneName(name)
	if err != nil {
		return fmt.Errorf("del zone: name %q: %w", name, err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	snap := z.snap.Load()
	zone, ok := snap.zones[string(w)]
	if !ok {
		return fmt.Errorf("del zone: name %q: %w", name, ErrDNSNoSuchZone)
	}
	zones := z.zones[:0:0]
	for _, o := range z.zones {
		if ow, _ := dnsWireName(o.Name); string(ow) != string(w) {
			zones = append(zones, o)
		}
	}
	records := z.records[:0:0]
	for _, r := range z.records {
		if rw, _ := dnsWireName(r.Name); snap.findZone(rw) != zone {
			records = append(records, r)
		}
	}
	z.zones, z.records = zones, records
	z.rebuild()
	return nil
}

// dnsZoneName is dnsWireName for a zone apex: the root is not a zone the
// switch may own.
func dnsZoneName(name string) ([]byte, error) {
	w, err := dnsWireName(name)
	if err != nil {
		return nil, err
	}
	if len(w) == 1 {
		return nil, ErrDNSBadName
	}
	return w, nil
}

// AddRecord adds one record to a local zone. The error names the field
// that is wrong.
func (z *DNSZones) AddRecord(name string, typ DNSType, value string, ttl uint32) error {
	w, err := dnsWireName(name)
	if err != nil {
		return fmt.Errorf("add record: name %q: %w", name, err)
	}
	if _, err := dnsRData(typ, value); err != nil {
		if errors.Is(err, ErrDNSBadType) {
			return fmt.Errorf("add record: type %v: %w", typ, err)
		}
		return fmt.Errorf("add record: value %q: %w", value, err)
	}
	if ttl > 1<<31-1 {
		return fmt.Errorf("add record: ttl %d: %w", ttl, ErrDNSBadTTL)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.snap.Load().findZone(w) == nil {
		return fmt.Errorf("add record: name %q: %w", name, ErrDNSNotInZone)
	}
	for _, r := range z.records {
		rw, _ := dnsWireName(r.Name)
		if string(rw) != string(w) {
			continue
		}
		if r.Type == DNSTypeCNAME || typ == DNSTypeCNAME {
			return fmt.Errorf("add record: name %q: %w", name, ErrDNSCNAMEClash)
		}
	}
	z.records = append(z.records, DNSRecord{Name: name, Type: typ, Value: value, TTL: ttl})
	z.rebuild()
	return nil
}

// DelRecord removes the records at name of type typ whose value equals
// value (all of them when value is empty).
func (z *DNSZones) DelRecord(name string, typ DNSType, value string) error {
	w, err := dnsWireName(name)
	if err != nil {
		return fmt.Errorf("del record: name %q: %w", name, err)
	}
	var want []byte
	if value != "" {
		if want, err = dnsRData(typ, value); err != nil {
			return fmt.Errorf("del record: value %q: %w", value, err)
		}
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	kept := z.records[:0:0]
	for _, r := range z.records {
		rw, _ := dnsWireName(r.Name)
		rd, _ := dnsRData(r.Type, r.Value)
		if string(rw) == string(w) && r.Type == typ && (want == nil || string(rd) == string(want)) {
			continue
		}
		kept = append(kept, r)
	}
	if len(kept) == len(z.records) {
		return fmt.Errorf("del record: name %q: %w", name, ErrDNSNoSuchRecord)
	}
	z.records = kept
	z.rebuild()
	return nil
}

// List returns copies of the zones and records, sorted by name.
func (z *DNSZones) List() ([]DNSZone, []DNSRecord) {
	z.mu.Lock()
	defer z.mu.Unlock()
	zs := append([]DNSZone(nil), z.zones...)
	rs := append([]DNSRecord(nil), z.records...)
	sort.Slice(zs, func(i, j int) bool { return zs[i].Name < zs[j].Name })
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	return zs, rs
}

// rebuild turns the spec into a new snapshot and publishes it. z.mu held.
func (z *DNSZones) rebuild() {
	s := &dnsSnapshot{zones: map[string]*dnsZoneSnap{}, names: map[string]*dnsNode{}}
	for _, zn := range z.zones {
		w, _ := dnsWireName(zn.Name)
		m, _ := dnsWireName(zn.SOA.MName)
		r, _ := dnsWireName(zn.SOA.RName)
		zs := &dnsZoneSnap{apex: w, soa: dnsSOARData(m, r, zn.SOA), ttl: zn.SOA.Minimum}
		s.zones[string(w)] = zs
		s.node(w)
	}
	for _, r := range z.records {
		w, _ := dnsWireName(r.Name)
		if s.findZone(w) == nil {
			continue // cannot happen: AddRecord checked and DelZone drops a zone's records
		}
		rd, _ := dnsRData(r.Type, r.Value)
		n := s.node(w)
		rr := dnsRR{ttl: r.TTL, rdata: rd}
		switch r.Type {
		case DNSTypeA:
			n.a = append(n.a, rr)
		case DNSTypeAAAA:
			n.aaaa = append(n.aaaa, rr)
		case DNSTypePTR:
			n.ptr = append(n.ptr, rr)
		case DNSTypeCNAME:
			n.cname = rr.rdata
			n.cnameTTL = rr.ttl
		}
		// Empty non-terminals between the name and its apex exist too
		// (RFC 8020): a query for them is NODATA, not NXDOMAIN.
		for off := 0; w[off] != 0; {
			off += 1 + int(w[off])
			if _, ok := s.zones[string(w[off:])]; ok {
				break
			}
			s.node(w[off:])
		}
	}
	z.snap.Store(s)
}

// dnsSnapshot is an immutable view of the store for the datapath.
type dnsSnapshot struct {
	zones map[string]*dnsZoneSnap // by apex wire name
	names map[string]*dnsNode     // by owner wire name; every existing name
}

type dnsZoneSnap struct {
	apex []byte
	soa  []byte // SOA RDATA, uncompressed
	ttl  uint32 // TTL of the SOA in negative answers
}

type dnsRR struct {
	ttl   uint32
	rdata []byte
}

type dnsNode struct {
	a, aaaa, ptr []dnsRR
	cname        []byte // CNAME target wire name, nil if none
	cnameTTL     uint32
}

func (n *dnsNode) rrs(t DNSType) []dnsRR {
	switch t {
	case DNSTypeA:
		return n.a
	case DNSTypeAAAA:
		return n.aaaa
	case DNSTypePTR:
		return n.ptr
	}
	return nil
}

func (s *dnsSnapshot) node(w []byte) *dnsNode {
	if n, ok := s.names[string(w)]; ok {
		return n
	}
	n := &dnsNode{}
	s.names[string(w)] = n
	return n
}

// findZone returns the zone that holds the lower-case wire name w, or nil.
// It does not allocate.
func (s *dnsSnapshot) findZone(w []byte) *dnsZoneSnap {
	for off := 0; off < len(w); off += 1 + int(w[off]) {
		if z, ok := s.zones[string(w[off:])]; ok {
			return z
		}
		if w[off] == 0 {
			break
		}
	}
	return nil
}

// dnsWireName returns the lower-case wire form of a dotted name (a trailing
// dot is optional). Escapes are not supported.
func dnsWireName(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return []byte{0}, nil
	}
	if strings.ContainsAny(name, "\\ \t") {
		return nil, ErrDNSBadName
	}
	w := make([]byte, 0, len(name)+2)
	for _, l := range strings.Split(name, ".") {
		if len(l) == 0 || len(l) > 63 {
			return nil, ErrDNSBadName
		}
		w = append(w, byte(len(l)))
		w = append(w, strings.ToLower(l)...)
	}
	w = append(w, 0)
	if len(w) > 255 {
		return nil, ErrDNSBadName
	}
	return w, nil
}

func dnsRData(t DNSType, v string) ([]byte, error) {
	switch t {
	case DNSTypeA, DNSTypeAAAA:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return nil, ErrDNSBadValue
		}
		if t == DNSTypeA {
			if !a.Is4() {
				return nil, ErrDNSBadValue
			}
			b := a.As4()
			return b[:], nil
		}
		if !a.Is6() || a.Is4In6() {
			return nil, ErrDNSBadValue
		}
		b := a.As16()
		return b[:], nil
	case DNSTypePTR, DNSTypeCNAME:
		w, err := dnsWireName(v)
		if err != nil {
			return nil, ErrDNSBadValue
		}
		return w, nil
	}
	return nil, ErrDNSBadType
}

func dnsSOARData(m, r []byte, soa DNSSOA) []byte {
	b := append(append(append([]byte(nil), m...), r...), make([]byte, 20)...)
	t := b[len(m)+len(r):]
	for i, v := range [5]uint32{soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minimum} {
		t[4*i], t[4*i+1], t[4*i+2], t[4*i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return b
}
