package vswitch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vswitch/vswitch/peephole"
	"github.com/vswitch/vswitch/pipeline"
)

// Responder names of peephole.responders.
const (
	ResponderARP = "arp"
	ResponderND  = "nd"
	ResponderDNS = "dns"
)

// Peephole defaults.
const (
	DefaultGleanSize  = 4096
	DefaultGleanAging = 300 * time.Second
	DefaultDNSTTL     = 60
)

// SetDefaults fills the peephole section's empty fields. A nil responder
// list means all of them; an explicit empty list stays empty (all off).
func (s *PeepholeSpec) SetDefaults() {
	if s.Responders == nil {
		s.Responders = []string{ResponderARP, ResponderND, ResponderDNS}
	}
	if s.Glean.Size == 0 {
		s.Glean.Size = DefaultGleanSize
	}
	if s.Glean.Aging == 0 {
		s.Glean.Aging = DefaultGleanAging
	}
	for i := range s.Bindings {
		s.Bindings[i].SetDefaults()
	}
	for i := range s.DNS.Zones {
		s.DNS.Zones[i].SetDefaults()
	}
	for i := range s.DNS.Records {
		s.DNS.Records[i].SetDefaults()
	}
}

// SetDefaults fills the binding's kind.
func (b *BindingSpec) SetDefaults() {
	if b.Kind == "" {
		b.Kind = peephole.KindStatic.String()
	}
}

// SetDefaults fills the zone's SOA.
func (z *DNSZoneSpec) SetDefaults() {
	name := strings.TrimSuffix(z.Name, ".")
	s := &z.SOA
	if s.MName == "" {
		s.MName = "ns." + name
	}
	if s.RName == "" {
		s.RName = "hostmaster." + name
	}
	if s.Serial == 0 {
		s.Serial = 1
	}
	if s.Refresh == 0 {
		s.Refresh = 3600
	}
	if s.Retry == 0 {
		s.Retry = 600
	}
	if s.Expire == 0 {
		s.Expire = 86400
	}
	if s.Minimum == 0 {
		s.Minimum = 60
	}
}

// SetDefaults fills the record's TTL and upper-cases its type.
func (r *DNSRecordSpec) SetDefaults() {
	if r.TTL == 0 {
		r.TTL = DefaultDNSTTL
	}
	r.Type = strings.ToUpper(r.Type)
}

// Validate checks the peephole section; prefix names it ("peephole").
func (s *PeepholeSpec) Validate(prefix string) error {
	seen := map[string]bool{}
	for i, r := range s.Responders {
		switch r {
		case ResponderARP, ResponderND, ResponderDNS:
		default:
			return fieldErr(fmt.Sprintf("%s.responders[%d]", prefix, i), "%q is not one of arp, nd, dns", r)
		}
		if seen[r] {
			return fieldErr(fmt.Sprintf("%s.responders[%d]", prefix, i), "%q listed twice", r)
		}
		seen[r] = true
	}
	if n := s.Glean.Size; n < 64 || n > 1<<20 || n&(n-1) != 0 {
		return fieldErr(prefix+".glean.size", "%d is not a power of two in 64..1048576", n)
	}
	if s.Glean.Aging < time.Second {
		return fieldErr(prefix+".glean.aging", "%s is shorter than 1s", s.Glean.Aging)
	}
	_, _, err := s.build(prefix)
	return err
}

// has reports whether responder r is on.
func (s *PeepholeSpec) has(r string) bool { return slices.Contains(s.Responders, r) }

// build turns the spec into the datapath's tables. Errors name the field.
func (s *PeepholeSpec) build(prefix string) (*peephole.BindingTable, *peephole.DNSZones, error) {
	bt := peephole.NewBindingTable()
	for i, b := range s.Bindings {
		pb, err := b.binding(fmt.Sprintf("%s.bindings[%d]", prefix, i))
		if err != nil {
			return nil, nil, err
		}
		if err := bt.Add(pb); err != nil {
			return nil, nil, fieldErr(fmt.Sprintf("%s.bindings[%d].ip", prefix, i), "%s in vlan %d is bound twice", pb.IP, pb.VLAN)
		}
	}
	zs := peephole.NewDNSZones()
	for i, z := range s.DNS.Zones {
		if err := addZone(zs, z); err != nil {
			return nil, nil, zoneFieldErr(fmt.Sprintf("%s.dns.zones[%d]", prefix, i), err)
		}
	}
	for i, r := range s.DNS.Records {
		if err := addRecord(zs, r); err != nil {
			return nil, nil, err.(*FieldError).under(fmt.Sprintf("%s.dns.records[%d]", prefix, i))
		}
	}
	return bt, zs, nil
}

// under prefixes the field of e.
func (e *FieldError) under(prefix string) error {
	return &FieldError{Field: prefix + "." + e.Field, Msg: e.Msg}
}

// binding validates b and returns it as the peephole table's binding.
// prefix names b in errors ("peephole.bindings[2]"; "" for the API).
func (b *BindingSpec) binding(prefix string) (peephole.Binding, error) {
	if prefix != "" {
		prefix += "."
	}
	ip, err := netip.ParseAddr(b.IP)
	if err != nil || ip.Zone() != "" {
		return peephole.Binding{}, fieldErr(prefix+"ip", "%q is not an IP address", b.IP)
	}
	mac, err := pipeline.ParseMAC(b.MAC)
	if err != nil {
		return peephole.Binding{}, fieldErr(prefix+"mac", "%q is not a MAC address", b.MAC)
	}
	if b.VLAN > peephole.MaxVLAN {
		return peephole.Binding{}, fieldErr(prefix+"vlan", "%d is not in 0..4094", b.VLAN)
	}
	var kind peephole.Kind
	switch b.Kind {
	case "", "static":
		kind = peephole.KindStatic
	case "gateway":
		kind = peephole.KindGateway
	default:
		return peephole.Binding{}, fieldErr(prefix+"kind", "%q is not one of static, gateway", b.Kind)
	}
	if b.Port != "" && !validPortName(b.Port) {
		return peephole.Binding{}, fieldErr(prefix+"port", "%q is not a port name", b.Port)
	}
	pb := peephole.Binding{VLAN: b.VLAN, IP: ip, MAC: mac, Kind: kind}
	// The table's own checks (unicast, not loopback, ...) name the field.
	if err := peephole.NewBindingTable().Add(pb); err != nil {
		switch {
		case errors.Is(err, peephole.ErrBadMAC):
			return pb, fieldErr(prefix+"mac", "%s is not a unicast MAC address", mac)
		case errors.Is(err, peephole.ErrBadVLAN):
			return pb, fieldErr(prefix+"vlan", "%d is not in 0..4094", b.VLAN)
		default:
			return pb, fieldErr(prefix+"ip", "%s is not a bindable unicast address", ip)
		}
	}
	pb.IP = ip.Unmap()
	return pb, nil
}

// addZone adds z (defaults filled) to zs.
func addZone(zs *peephole.DNSZones, z DNSZoneSpec) error {
	z.SetDefaults()
	return zs.AddZone(z.Name, peephole.DNSSOA{
		MName: z.SOA.MName, RName: z.SOA.RName, Serial: z.SOA.Serial, Refresh: z.SOA.Refresh,
		Retry: z.SOA.Retry, Expire: z.SOA.Expire, Minimum: z.SOA.Minimum,
	})
}

// zoneFieldErr names the field of a zone error.
func zoneFieldErr(prefix string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "soa mname"):
		return fieldErr(prefix+".soa.mname", "%v", err)
	case strings.Contains(msg, "soa rname"):
		return fieldErr(prefix+".soa.rname", "%v", err)
	}
	return fieldErr(prefix+".name", "%v", err)
}

// dnsTypes are the record types a zone holds.
var dnsTypes = map[string]peephole.DNSType{
	"A": peephole.DNSTypeA, "AAAA": peephole.DNSTypeAAAA,
	"CNAME": peephole.DNSTypeCNAME, "PTR": peephole.DNSTypePTR,
}

// addRecord adds r (defaults filled) to zs; the error is a *FieldError.
func addRecord(zs *peephole.DNSZones, r DNSRecordSpec) error {
	r.SetDefaults()
	t, ok := dnsTypes[r.Type]
	if !ok {
		return fieldErr("type", "%q is not one of A, AAAA, CNAME, PTR", r.Type)
	}
	if err := zs.AddRecord(r.Name, t, r.Value, r.TTL); err != nil {
		return recordFieldErr(err)
	}
	return nil
}

// recordFieldErr names the field of a record error by its cause.
func recordFieldErr(err error) error {
	switch {
	case errors.Is(err, peephole.ErrDNSBadValue):
		return fieldErr("value", "%v", err)
	case errors.Is(err, peephole.ErrDNSBadTTL):
		return fieldErr("ttl", "%v", err)
	case errors.Is(err, peephole.ErrDNSBadType):
		return fieldErr("type", "%v", err)
	}
	return fieldErr("name", "%v", err)
}

// validPortName reports whether s is a valid port name.
func validPortName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
