package apitest

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	vswitch "github.com/vswitch/vswitch/switch"
)

// This file holds the fake's half of vswitch.PeepholeControl: the binding
// table and the DNS zones, validated like the daemon validates them.

// maxVLAN is the highest VLAN a binding may name; 4095 is reserved.
const maxVLAN = 4094

// maxTTL is the largest TTL RFC 2181 allows.
const maxTTL = 1<<31 - 1

// defaultTTL is the TTL of a record added without one.
const defaultTTL = 60

func fieldErr(field, format string, a ...any) error {
	return &vswitch.FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// SetBindings replaces every binding, gleaned ones included, without
// validation: tests use it to set up tables the API cannot build. The fake
// takes ownership of b.
func (c *Control) SetBindings(b []vswitch.BindingInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bindings = b
}

// SetPeepholeStats replaces the responders' counters that Stats and
// PeepholeStats return; Gleaned is always the live count of gleaned
// bindings. The fake takes ownership of s's maps.
func (c *Control) SetPeepholeStats(s vswitch.PeepholeStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Peephole = s
}

// Bindings implements vswitch.PeepholeControl: copies, sorted by VLAN and
// address.
func (c *Control) Bindings() []vswitch.BindingInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.bindings)
	slices.SortFunc(out, func(a, b vswitch.BindingInfo) int {
		// SetBindings may hold addresses that do not parse; they sort first.
		ia, _ := netip.ParseAddr(a.IP)
		ib, _ := netip.ParseAddr(b.IP)
		return cmp.Or(cmp.Compare(a.VLAN, b.VLAN), ia.Compare(ib), cmp.Compare(a.IP, b.IP))
	})
	return out
}

// AddBinding implements vswitch.PeepholeControl. It canonicalizes the
// address and MAC, defaults the kind to static and refuses a different
// binding for the same address in the same VLAN; an identical one is a
// no-op.
func (c *Control) AddBinding(b vswitch.BindingSpec) (vswitch.BindingInfo, error) {
	ip, err := parseBindableIP(b.IP)
	if err != nil {
		return vswitch.BindingInfo{}, err
	}
	b.IP = ip.String()
	mac, err := net.ParseMAC(b.MAC)
	if err != nil || len(mac) != 6 {
		return vswitch.BindingInfo{}, fieldErr("mac", "%q is not a MAC address", b.MAC)
	}
	if mac[0]&1 != 0 || slices.Equal(mac, make(net.HardwareAddr, 6)) {
		return vswitch.BindingInfo{}, fieldErr("mac", "%s is not a unicast MAC address", mac)
	}
	b.MAC = mac.String()
	if b.VLAN > maxVLAN {
		return vswitch.BindingInfo{}, fieldErr("vlan", "%d is not in 0..%d", b.VLAN, maxVLAN)
	}
	switch b.Kind {
	case "":
		b.Kind = "static"
	case "static", "gateway":
	default:
		return vswitch.BindingInfo{}, fieldErr("kind", "%q is not one of static, gateway", b.Kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.Port != "" && !slices.ContainsFunc(c.ports, func(p vswitch.PortInfo) bool { return p.Name == b.Port }) {
		return vswitch.BindingInfo{}, fieldErr("port", "no port %q", b.Port)
	}
	for _, o := range c.bindings {
		if o.VLAN == b.VLAN && o.IP == b.IP {
			if o.BindingSpec == b {
				return o, nil // as the daemon: adding what is there is a no-op
			}
			return vswitch.BindingInfo{}, fmt.Errorf("add binding %s vlan %d: %s binding to %s: %w", b.IP, b.VLAN, o.Kind, o.MAC, vswitch.ErrExists)
		}
	}
	info := vswitch.BindingInfo{BindingSpec: b}
	c.bindings = append(c.bindings, info)
	c.status.Generation++
	return info, nil
}

// parseBindableIP parses a unicast address that a binding may hold.
func parseBindableIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ip, fieldErr("ip", "%q is not an IP address", s)
	}
	ip = ip.Unmap()
	if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ip, fieldErr("ip", "%s is not a unicast address", ip)
	}
	return ip, nil
}

// DelBinding implements vswitch.PeepholeControl.
func (c *Control) DelBinding(vlan uint16, ip string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return fieldErr("ip", "%q is not an IP address", ip)
	}
	ip = addr.Unmap().String()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.bindings)
	c.bindings = slices.DeleteFunc(c.bindings, func(b vswitch.BindingInfo) bool { return b.VLAN == vlan && b.IP == ip })
	if len(c.bindings) == n {
		return vswitch.ErrNotFound // bare, as a daemon may return it: the server names the binding
	}
	c.status.Generation++
	return nil
}

// FlushGleaned implements vswitch.PeepholeControl.
func (c *Control) FlushGleaned() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.bindings)
	c.bindings = slices.DeleteFunc(c.bindings, func(b vswitch.BindingInfo) bool { return b.Kind == "gleaned" })
	return n - len(c.bindings)
}

// DNS implements vswitch.PeepholeControl: copies, zones by name, records
// by name, type and value. Both lists are empty rather than nil.
func (c *Control) DNS() vswitch.DNSSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := vswitch.DNSSpec{
		Zones:   append([]vswitch.DNSZoneSpec{}, c.zones...),
		Records: append([]vswitch.DNSRecordSpec{}, c.records...),
	}
	slices.SortFunc(d.Zones, func(a, b vswitch.DNSZoneSpec) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Records, func(a, b vswitch.DNSRecordSpec) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	return d
}

// AddDNSZone implements vswitch.PeepholeControl: it canonicalizes the name
// (lower case, no trailing dot) and fills the SOA defaults.
func (c *Control) AddDNSZone(z vswitch.DNSZoneSpec) (vswitch.DNSZoneSpec, error) {
	name, err := canonicalName(z.Name)
	if err != nil {
		return z, fieldErr("name", "%q: %v", z.Name, err)
	}
	z.Name = name
	s := &z.SOA
	if s.MName == "" {
		s.MName = "ns." + name
	}
	if s.RName == "" {
		s.RName = "hostmaster." + name
	}
	if s.MName, err = canonicalName(s.MName); err != nil {
		return z, fieldErr("soa.mname", "%q: %v", z.SOA.MName, err)
	}
	if s.RName, err = canonicalName(s.RName); err != nil {
		return z, fieldErr("soa.rname", "%q: %v", z.SOA.RName, err)
	}
	for _, d := range []struct {
		v   *uint32
		def uint32
	}{{&s.Serial, 1}, {&s.Refresh, 3600}, {&s.Retry, 600}, {&s.Expire, 86400}, {&s.Minimum, 60}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.ContainsFunc(c.zones, func(o vswitch.DNSZoneSpec) bool { return o.Name == name }) {
		return z, fmt.Errorf("add zone %q: %w", name, vswitch.ErrExists)
	}
	c.zones = append(c.zones, z)
	c.status.Generation++
	return z, nil
}

// DelDNSZone implements vswitch.PeepholeControl. The records that the
// zone held go with it; records of a more specific zone below it stay.
func (c *Control) DelDNSZone(name string) error {
	cn, err := canonicalName(name)
	if err != nil {
		return fieldErr("name", "%q: %v", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.zones, func(z vswitch.DNSZoneSpec) bool { return z.Name == cn })
	if i < 0 {
		return vswitch.ErrNotFound
	}
	c.records = slices.DeleteFunc(c.records, func(r vswitch.DNSRecordSpec) bool { return c.zoneOf(r.Name) == cn })
	c.zones = slices.Delete(c.zones, i, i+1)
	c.status.Generation++
	return nil
}

// zoneOf returns the most specific zone holding name, or "". c.mu held.
func (c *Control) zoneOf(name string) string {
	best := ""
	for _, z := range c.zones {
		if (name == z.Name || strings.HasSuffix(name, "."+z.Name)) && len(z.Name) > len(best) {
			best = z.Name
		}
	}
	return best
}

// AddDNSRecord implements vswitch.PeepholeControl: the name must be in a
// zone; A takes an IPv4 address, AAAA an IPv6 one, PTR and CNAME a name; a
// CNAME shares its name with no other record.
func (c *Control) AddDNSRecord(r vswitch.DNSRecordSpec) (vswitch.DNSRecordSpec, error) {
	r, err := canonicalRecord(r, true)
	if err != nil {
		return r, err
	}
	if r.TTL > maxTTL {
		return r, fieldErr("ttl", "%d is above %d", r.TTL, maxTTL)
	}
	if r.TTL == 0 {
		r.TTL = defaultTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zoneOf(r.Name) == "" {
		return r, fieldErr("name", "%q is not in any local zone", r.Name)
	}
	for _, o := range c.records {
		if o.Name != r.Name {
			continue
		}
		if o.Type == r.Type && o.Value == r.Value {
			return r, fmt.Errorf("add record %s %s %s: %w", r.Name, r.Type, r.Value, vswitch.ErrExists)
		}
		if o.Type == "CNAME" || r.Type == "CNAME" {
			return r, fieldErr("name", "%q has a %s record; a CNAME shares its name with no other record", r.Name, o.Type)
		}
	}
	c.records = append(c.records, r)
	c.status.Generation++
	return r, nil
}

// DelDNSRecord implements vswitch.PeepholeControl.
func (c *Control) DelDNSRecord(r vswitch.DNSRecordSpec) error {
	r, err := canonicalRecord(r, r.Value != "")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.records)
	c.records = slices.DeleteFunc(c.records, func(o vswitch.DNSRecordSpec) bool {
		return o.Name == r.Name && o.Type == r.Type && (r.Value == "" || o.Value == r.Value)
	})
	if len(c.records) == n {
		return vswitch.ErrNotFound
	}
	c.status.Generation++
	return nil
}

// canonicalRecord checks and canonicalizes name, type and (if withValue)
// value.
func canonicalRecord(r vswitch.DNSRecordSpec, withValue bool) (vswitch.DNSRecordSpec, error) {
	name, err := canonicalName(r.Name)
	if err != nil {
		return r, fieldErr("name", "%q: %v", r.Name, err)
	}
	r.Name = name
	r.Type = strings.ToUpper(r.Type)
	switch r.Type {
	case "A", "AAAA", "PTR", "CNAME":
	default:
		return r, fieldErr("type", "%q is not one of A, AAAA, PTR, CNAME", r.Type)
	}
	if !withValue {
		return r, nil
	}
	switch r.Type {
	case "A", "AAAA":
		ip, err := netip.ParseAddr(r.Value)
		if err != nil || ip.Zone() != "" || (r.Type == "A") != ip.Is4() || ip.Is4In6() {
			return r, fieldErr("value", "%q is not an %s address", r.Value, map[string]string{"A": "IPv4", "AAAA": "IPv6"}[r.Type])
		}
		r.Value = ip.String()
	default:
		v, err := canonicalName(r.Value)
		if err != nil {
			return r, fieldErr("value", "%q: %v", r.Value, err)
		}
		r.Value = v
	}
	return r, nil
}

// canonicalName checks a domain name and returns it in lower case without
// a trailing dot. The root is not a name the switch serves.
func canonicalName(s string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(s, "."))
	if n == "" {
		return "", fmt.Errorf("is empty")
	}
	if len(n) > 253 {
		return "", fmt.Errorf("is longer than 253 bytes")
	}
	for _, l := range strings.Split(n, ".") {
		if len(l) == 0 || len(l) > 63 {
			return "", fmt.Errorf("has a label that is empty or longer than 63 bytes")
		}
		if strings.ContainsAny(l, "\\ \t\"()") {
			return "", fmt.Errorf("has a label with a blank, backslash, quote or parenthesis")
		}
	}
	return n, nil
}

// PeepholeStats implements vswitch.PeepholeControl. Gleaned is the live
// count of gleaned bindings.
func (c *Control) PeepholeStats() vswitch.PeepholeStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peepholeStats()
}

// peepholeStats returns the counters with the live gleaned count. c.mu held.
func (c *Control) peepholeStats() vswitch.PeepholeStats {
	s := c.stats.Peephole
	s.Gleaned = 0
	for _, b := range c.bindings {
		if b.Kind == "gleaned" {
			s.Gleaned++
		}
	}
	return s
}
