package vswitch

import "time"

// PeepholeSpec configures the in-switch responders (package peephole): which
// of them run, gleaning of bindings from ARP/ND traffic, the static binding
// table and the local DNS zones.
type PeepholeSpec struct {
	// Responders lists the responders that run, any of arp, nd, dns
	// (default: all three). An empty list in YAML (responders: []) turns
	// them all off.
	Responders []string `yaml:"responders" json:"responders"`
	// Glean configures learning bindings from observed ARP and ND.
	Glean GleanSpec `yaml:"glean" json:"glean"`
	// Bindings are static and gateway IP-to-MAC bindings.
	Bindings []BindingSpec `yaml:"bindings" json:"bindings"`
	// DNS holds the zones the switch answers for.
	DNS DNSSpec `yaml:"dns" json:"dns"`
}

// GleanSpec configures gleaning.
type GleanSpec struct {
	// Disabled turns gleaning off.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Size is the number of gleaned entries (power of two, default 4096).
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Aging is how long a gleaned binding lives without being seen again
	// (default 300s).
	Aging time.Duration `yaml:"aging,omitempty" json:"aging,omitempty"`
}

// BindingSpec is one static or gateway binding.
type BindingSpec struct {
	// IP is an IPv4 or IPv6 unicast address.
	IP string `yaml:"ip" json:"ip"`
	// MAC is the unicast MAC address the IP resolves to.
	MAC string `yaml:"mac" json:"mac"`
	// VLAN is the segment (0 = untagged).
	VLAN uint16 `yaml:"vlan,omitempty" json:"vlan,omitempty"`
	// Kind is static (default) or gateway (an address the switch owns; ND
	// answers for it carry the Router flag).
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Port names the port the address lives behind. A port with
	// spoof_guard may only claim addresses bound to it.
	Port string `yaml:"port,omitempty" json:"port,omitempty"`
}

// DNSSpec is the DNS data the switch is authoritative for.
type DNSSpec struct {
	Zones   []DNSZoneSpec   `yaml:"zones" json:"zones"`
	Records []DNSRecordSpec `yaml:"records" json:"records"`
}

// DNSZoneSpec is a local zone and its SOA. Empty SOA fields get defaults
// (mname ns.<zone>, rname hostmaster.<zone>, serial 1, refresh 3600,
// retry 600, expire 86400, minimum 60).
type DNSZoneSpec struct {
	Name string     `yaml:"name" json:"name"`
	SOA  DNSSOASpec `yaml:"soa,omitempty" json:"soa"`
}

// DNSSOASpec is a zone's start of authority.
type DNSSOASpec struct {
	MName   string `yaml:"mname,omitempty" json:"mname"`
	RName   string `yaml:"rname,omitempty" json:"rname"`
	Serial  uint32 `yaml:"serial,omitempty" json:"serial"`
	Refresh uint32 `yaml:"refresh,omitempty" json:"refresh"`
	Retry   uint32 `yaml:"retry,omitempty" json:"retry"`
	Expire  uint32 `yaml:"expire,omitempty" json:"expire"`
	Minimum uint32 `yaml:"minimum,omitempty" json:"minimum"`
}

// DNSRecordSpec is one record: A/AAAA (value an address), PTR/CNAME (value
// a name).
type DNSRecordSpec struct {
	Name  string `yaml:"name" json:"name"`
	Type  string `yaml:"type" json:"type"`
	Value string `yaml:"value" json:"value"`
	// TTL in seconds (default 60).
	TTL uint32 `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// BindingInfo is one binding as the API shows it.
type BindingInfo struct {
	BindingSpec
	// Kind here is static, gateway or gleaned.
	// AgeSec is the time since a gleaned binding was last seen.
	AgeSec float64 `json:"age_sec,omitempty"`
}

// PeepholeStats are the responders' counters, summed over workers.
type PeepholeStats struct {
	ARP ResponderStats `json:"arp"`
	ND  ResponderStats `json:"nd"`
	DNS ResponderStats `json:"dns"`
	// Gleaned is the number of gleaned bindings now in the table.
	Gleaned int `json:"gleaned"`
}

// ResponderStats counts what one responder did.
type ResponderStats struct {
	Answered  uint64 `json:"answered"`
	Malformed uint64 `json:"malformed"`
	// Passed counts queries left for the forwarding path, by reason
	// (not_request, unknown_target, outside_zone, too_big, ...).
	Passed map[string]uint64 `json:"passed,omitempty"`
	// Negative counts answers that were NXDOMAIN or NODATA (DNS only).
	NXDomain uint64 `json:"nxdomain,omitempty"`
	// Gleaned counts bindings learned or refreshed from traffic (ARP, ND).
	Gleaned uint64 `json:"gleaned,omitempty"`
	NoData  uint64 `json:"nodata,omitempty"`
}

// PeepholeControl is the part of Control that edits the responders' tables.
// Every change is persisted to the state file.
type PeepholeControl interface {
	// Bindings lists static, gateway and gleaned bindings.
	Bindings() []BindingInfo
	// AddBinding adds a static or gateway binding; errors are *FieldError
	// (ip, mac, vlan, kind, port) or wrap ErrExists.
	AddBinding(b BindingSpec) (BindingInfo, error)
	// DelBinding removes the binding of ip in vlan (static, gateway or
	// gleaned); ErrNotFound when there is none.
	DelBinding(vlan uint16, ip string) error
	// FlushGleaned removes every gleaned binding and says how many.
	FlushGleaned() int
	// DNS returns the zones and records.
	DNS() DNSSpec
	// AddDNSZone adds a zone (ErrExists if present); AddDNSRecord adds a
	// record to a zone. Errors naming a field are *FieldError.
	AddDNSZone(z DNSZoneSpec) (DNSZoneSpec, error)
	// DelDNSZone removes a zone and every record in it; ErrNotFound.
	DelDNSZone(name string) error
	AddDNSRecord(r DNSRecordSpec) (DNSRecordSpec, error)
	// DelDNSRecord removes records matching name and type, and value when
	// it is not empty; ErrNotFound when none matched.
	DelDNSRecord(r DNSRecordSpec) error
	// PeepholeStats returns the responders' counters.
	PeepholeStats() PeepholeStats
}
