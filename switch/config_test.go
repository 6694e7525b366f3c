package vswitch

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, in := range []string{"", "   \n\t\n", "{}"} {
		c, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", in, err)
		}
		want := &Config{
			APISocket: DefaultAPISocket, APISocketMode: 0o600, StateFile: DefaultStateFile, LogLevel: "info",
			MemringSocket: DefaultMemringSocket, MemringSocketMode: 0o660,
			Workers:  WorkerSpec{Count: 1, PollMode: PollAdaptive, IdleSpins: DefaultIdleSpins},
			FDB:      FDBSpec{Size: DefaultFDBSize, Aging: DefaultFDBAging},
			Peephole: defaultPeephole(),
			Router:   defaultRouter(),
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("ParseConfig(%q) =\n%+v\nwant\n%+v", in, c, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	const in = `
api_socket: /tmp/vs.sock
api_socket_mode: 0o660
state_file: /tmp/vs/state.json
metrics_addr: 127.0.0.1:9100
log_level: debug
workers:
  count: 2
  cpus: [2, 3]
  poll_mode: busy
fdb:
  size: 4096
  aging: 90s
ports:
  - interface: veth0
  - name: uplink
    interface: eth1
    xdp_mode: skb
    bind: copy
    queues: 4
    ring_size: 2048
    vlan:
      mode: trunk
      allowed: [10, 20]
      native: 30
  - interface: veth2
    vlan: {mode: access, tag: 10}
`
	c, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		APISocket: "/tmp/vs.sock", APISocketMode: 0o660, StateFile: "/tmp/vs/state.json",
		MetricsAddr: "127.0.0.1:9100", LogLevel: "debug",
		MemringSocket: DefaultMemringSocket, MemringSocketMode: 0o660,
		Workers: WorkerSpec{Count: 2, CPUs: []int{2, 3}, PollMode: PollBusy, IdleSpins: DefaultIdleSpins},
		FDB:     FDBSpec{Size: 4096, Aging: 90 * time.Second},
		Ports: []PortSpec{
			{Name: "veth0", Interface: "veth0", Type: "afxdp", XDPMode: "native", Bind: "auto", RingSize: DefaultRingSize},
			{Name: "uplink", Interface: "eth1", Type: "afxdp", XDPMode: "skb", Bind: "copy", Queues: 4, RingSize: 2048,
				VLAN: &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}},
			{Name: "veth2", Interface: "veth2", Type: "afxdp", XDPMode: "native", Bind: "auto", RingSize: DefaultRingSize,
				VLAN: &VLANSpec{Mode: "access", Tag: 10}},
		},
		Peephole: defaultPeephole(),
		Router:   defaultRouter(),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ParseConfig =\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseConfigPeephole(t *testing.T) {
	const in = `
ports:
  - {interface: veth0, spoof_guard: true}
peephole:
  responders: [dns]
  glean: {disabled: true}
  bindings:
    - {ip: 10.1.0.2, mac: "02:00:00:00:00:02", port: veth0}
    - {ip: "fd00::1", mac: "02:00:00:00:00:fe", kind: gateway, vlan: 7}
  dns:
    zones: [{name: vs.test}]
    records:
      - {name: web.vs.test, type: a, value: 10.1.0.2}
      - {name: www.vs.test, type: CNAME, value: web.vs.test, ttl: 5}
`
	c, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := PeepholeSpec{
		Responders: []string{ResponderDNS},
		Glean:      GleanSpec{Disabled: true, Size: DefaultGleanSize, Aging: DefaultGleanAging},
		Bindings: []BindingSpec{
			{IP: "10.1.0.2", MAC: "02:00:00:00:00:02", Kind: "static", Port: "veth0"},
			{IP: "fd00::1", MAC: "02:00:00:00:00:fe", Kind: "gateway", VLAN: 7},
		},
		DNS: DNSSpec{
			Zones: []DNSZoneSpec{{Name: "vs.test", SOA: DNSSOASpec{MName: "ns.vs.test", RName: "hostmaster.vs.test",
				Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 60}}},
			Records: []DNSRecordSpec{
				{Name: "web.vs.test", Type: "A", Value: "10.1.0.2", TTL: DefaultDNSTTL},
				{Name: "www.vs.test", Type: "CNAME", Value: "web.vs.test", TTL: 5},
			},
		},
	}
	if !reflect.DeepEqual(c.Peephole, want) {
		t.Fatalf("peephole =\n%+v\nwant\n%+v", c.Peephole, want)
	}
	if !c.Ports[0].SpoofGuard {
		t.Fatal("spoof_guard not parsed")
	}
	off, err := ParseConfig([]byte("peephole: {responders: []}"))
	if err != nil {
		t.Fatal(err)
	}
	if len(off.Peephole.Responders) != 0 {
		t.Fatalf("responders: [] became %v, want none", off.Peephole.Responders)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	if _, err := LoadConfig(t.TempDir() + "/nope.yaml"); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("LoadConfig of a missing file: %v", err)
	}
}

// TestParseConfigFieldErrors checks that every validation error is a
// *FieldError that names the offending field.
func TestParseConfigFieldErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		field string
	}{
		{"socket_mode", "api_socket_mode: 0o1777", "api_socket_mode"},
		{"log_level", "log_level: verbose", "log_level"},
		{"workers_count_neg", "workers: {count: -1}", "workers.count"},
		{"workers_count_big", "workers: {count: 65}", "workers.count"},
		{"workers_cpus_len", "workers: {count: 2, cpus: [1]}", "workers.cpus"},
		{"workers_cpu_neg", "workers: {count: 2, cpus: [1, -1]}", "workers.cpus[1]"},
		{"workers_cpu_big", "workers: {cpus: [1024]}", "workers.cpus[0]"},
		{"control_cpu_neg", "workers: {control_cpus: [0, -2]}", "workers.control_cpus[1]"},
		{"control_cpu_big", "workers: {control_cpus: [4096]}", "workers.control_cpus[0]"},
		{"poll_mode", "workers: {poll_mode: spin}", "workers.poll_mode"},
		{"idle_spins", "workers: {idle_spins: -5}", "workers.idle_spins"},
		{"fdb_size_not_pow2", "fdb: {size: 1000}", "fdb.size"},
		{"fdb_size_small", "fdb: {size: 32}", "fdb.size"},
		{"fdb_size_big", "fdb: {size: 33554432}", "fdb.size"},
		{"fdb_size_neg", "fdb: {size: -64}", "fdb.size"},
		{"fdb_aging_short", "fdb: {aging: 500ms}", "fdb.aging"},
		{"fdb_aging_neg", "fdb: {aging: -10s}", "fdb.aging"},
		{"port_no_interface", "ports: [{name: a}]", "ports[0].interface"},
		{"port_long_interface", "ports: [{interface: abcdefghijklmnop}]", "ports[0].interface"},
		{"port_name_chars", "ports: [{interface: eth0, name: 'a b'}]", "ports[0].name"},
		{"port_name_long", "ports: [{interface: eth0, name: " + strings.Repeat("n", 65) + "}]", "ports[0].name"},
		{"port_name_unicode", "ports: [{interface: eth0, name: 'pört'}]", "ports[0].name"},
		{"port_type", "ports: [{interface: eth0, type: tap}]", "ports[0].type"},
		{"port_xdp_mode", "ports: [{interface: eth0, xdp_mode: hw}]", "ports[0].xdp_mode"},
		{"port_bind", "ports: [{interface: eth0, bind: fast}]", "ports[0].bind"},
		{"port_queues_neg", "ports: [{interface: eth0, queues: -1}]", "ports[0].queues"},
		{"port_queues_big", "ports: [{interface: eth0, queues: 257}]", "ports[0].queues"},
		{"port_ring_small", "ports: [{interface: eth0, ring_size: 32}]", "ports[0].ring_size"},
		{"port_ring_big", "ports: [{interface: eth0, ring_size: 8192}]", "ports[0].ring_size"},
		{"port_ring_pow2", "ports: [{interface: eth0, ring_size: 1000}]", "ports[0].ring_size"},
		{"port_ring_neg", "ports: [{interface: eth0, ring_size: -512}]", "ports[0].ring_size"},
		{"memring_ring_size", "ports: [{name: m, type: memring, ring_size: 512}]", "ports[0].type"},
		{"vlan_mode", "ports: [{interface: eth0, vlan: {mode: hybrid}}]", "ports[0].vlan.mode"},
		{"vlan_mode_empty", "ports: [{interface: eth0, vlan: {tag: 3}}]", "ports[0].vlan.mode"},
		{"vlan_access_tag0", "ports: [{interface: eth0}, {interface: eth1, vlan: {mode: access}}]", "ports[1].vlan.tag"},
		{"vlan_access_tag_big", "ports: [{interface: eth0}, {interface: eth1, vlan: {mode: access, tag: 4095}}]", "ports[1].vlan.tag"},
		{"vlan_access_allowed", "ports: [{interface: eth0, vlan: {mode: access, tag: 5, allowed: [6]}}]", "ports[0].vlan"},
		{"vlan_access_native", "ports: [{interface: eth0, vlan: {mode: access, tag: 5, native: 6}}]", "ports[0].vlan"},
		{"vlan_trunk_tag", "ports: [{interface: eth0}, {interface: eth1, vlan: {mode: trunk, tag: 5}}]", "ports[1].vlan.tag"},
		{"vlan_trunk_allowed0", "ports: [{interface: eth0, vlan: {mode: trunk, allowed: [5, 0]}}]", "ports[0].vlan.allowed[1]"},
		{"vlan_trunk_allowed_big", "ports: [{interface: eth0, vlan: {mode: trunk, allowed: [4095]}}]", "ports[0].vlan.allowed[0]"},
		{"vlan_trunk_native_big", "ports: [{interface: eth0, vlan: {mode: trunk, native: 4095}}]", "ports[0].vlan.native"},
		{"dup_name", "ports: [{interface: eth0, name: up}, {interface: eth1, name: up}]", "ports[1].name"},
		{"dup_name_defaulted", "ports: [{interface: eth0}, {interface: eth1, name: eth0}]", "ports[1].name"},
		{"dup_interface", "ports: [{interface: eth0, name: a}, {interface: eth0, name: b}]", "ports[1].interface"},
		{"memring_socket_mode", "memring_socket_mode: 0o4777", "memring_socket_mode"},
		{"memring_interface", "ports: [{name: m, type: memring, interface: eth0}]", "ports[0].interface"},
		{"memring_no_name", "ports: [{type: memring}]", "ports[0].name"},
		{"memring_bind", "ports: [{name: m, type: memring, bind: copy}]", "ports[0].type"},
		{"memring_qp", "ports: [{name: m, type: memring, memring: {queue_pairs: 17}}]", "ports[0].memring.queue_pairs"},
		{"memring_ring", "ports: [{name: m, type: memring, memring: {ring_size: 100}}]", "ports[0].memring.ring_size"},
		{"memring_frame", "ports: [{name: m, type: memring, memring: {frame_size: 1024}}]", "ports[0].memring.frame_size"},
		{"memring_vlan", "ports: [{name: m, type: memring, vlan: {mode: access}}]", "ports[0].vlan.tag"},
		{"afxdp_memring", "ports: [{interface: eth0, memring: {}}]", "ports[0].memring"},
		{"ph_responder", "peephole: {responders: [arp, dhcp]}", "peephole.responders[1]"},
		{"ph_responder_twice", "peephole: {responders: [dns, dns]}", "peephole.responders[1]"},
		{"ph_glean_size", "peephole: {glean: {size: 100}}", "peephole.glean.size"},
		{"ph_glean_aging", "peephole: {glean: {aging: 10ms}}", "peephole.glean.aging"},
		{"ph_binding_ip", "peephole: {bindings: [{ip: 10.0.0.300, mac: '02:00:00:00:00:01'}]}", "peephole.bindings[0].ip"},
		{"ph_binding_ip_mcast", "peephole: {bindings: [{ip: 224.0.0.1, mac: '02:00:00:00:00:01'}]}", "peephole.bindings[0].ip"},
		{"ph_binding_ip_zone", "peephole: {bindings: [{ip: 'fe80::1%eth0', mac: '02:00:00:00:00:01'}]}", "peephole.bindings[0].ip"},
		{"ph_binding_mac", "peephole: {bindings: [{ip: 10.0.0.1, mac: '02:00:00:00:01'}]}", "peephole.bindings[0].mac"},
		{"ph_binding_mac_mcast", "peephole: {bindings: [{ip: 10.0.0.1, mac: '01:00:5e:00:00:01'}]}", "peephole.bindings[0].mac"},
		{"ph_binding_vlan", "peephole: {bindings: [{ip: 10.0.0.1, mac: '02:00:00:00:00:01', vlan: 4095}]}", "peephole.bindings[0].vlan"},
		{"ph_binding_kind", "peephole: {bindings: [{ip: 10.0.0.1, mac: '02:00:00:00:00:01', kind: gleaned}]}", "peephole.bindings[0].kind"},
		{"ph_binding_port", "peephole: {bindings: [{ip: 10.0.0.1, mac: '02:00:00:00:00:01', port: 'a b'}]}", "peephole.bindings[0].port"},
		{"ph_binding_twice", "peephole: {bindings: [{ip: 10.0.0.1, mac: '02:00:00:00:00:01'}, {ip: 10.0.0.1, mac: '02:00:00:00:00:02'}]}", "peephole.bindings[1].ip"},
		{"ph_zone_name", "peephole: {dns: {zones: [{name: 'a..b'}]}}", "peephole.dns.zones[0].name"},
		{"ph_zone_twice", "peephole: {dns: {zones: [{name: a.test}, {name: A.test.}]}}", "peephole.dns.zones[1].name"},
		{"ph_zone_rname", "peephole: {dns: {zones: [{name: a.test, soa: {rname: 'x..y'}}]}}", "peephole.dns.zones[0].soa.rname"},
		{"ph_record_type", "peephole: {dns: {zones: [{name: a.test}], records: [{name: w.a.test, type: MX, value: x}]}}", "peephole.dns.records[0].type"},
		{"ph_record_value", "peephole: {dns: {zones: [{name: a.test}], records: [{name: w.a.test, type: A, value: '::1'}]}}", "peephole.dns.records[0].value"},
		{"ph_record_outside", "peephole: {dns: {zones: [{name: a.test}], records: [{name: w.b.test, type: A, value: 10.0.0.1}]}}", "peephole.dns.records[0].name"},
		{"ph_record_ttl", "peephole: {dns: {zones: [{name: a.test}], records: [{name: w.a.test, type: A, value: 10.0.0.1, ttl: 4294967295}]}}", "peephole.dns.records[0].ttl"},
		{"ph_record_cname_clash", "peephole: {dns: {zones: [{name: a.test}], records: [{name: w.a.test, type: A, value: 10.0.0.1}, {name: w.a.test, type: CNAME, value: v.a.test}]}}", "peephole.dns.records[1].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, want an error naming %s", tt.yaml, c, tt.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !IsFieldError(err) {
				t.Fatalf("error %q (%T) is not a *FieldError", err, err)
			}
			if fe.Field != tt.field {
				t.Fatalf("error %q names field %q, want %q", err, fe.Field, tt.field)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Fatalf("error %q does not start with the field", err)
			}
		})
	}
}

// TestParseConfigDecodeErrors covers YAML the decoder refuses: unknown
// fields (a typo names itself) and wrong types.
func TestParseConfigDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error
	}{
		{"unknown_top", "api_sockt: /x", "api_sockt"},
		{"unknown_workers", "workers: {cuont: 2}", "cuont"},
		{"unknown_fdb", "fdb: {agging: 10s}", "agging"},
		{"unknown_port", "ports: [{interface: eth0, mtu: 9000}]", "mtu"},
		{"unknown_vlan", "ports: [{interface: eth0, vlan: {mode: trunk, allow: [1]}}]", "allow"},
		{"wrong_type", "workers: {count: many}", "many"},
		{"bad_duration", "fdb: {aging: forever}", "forever"},
		{"vlan_overflow", "ports: [{interface: eth0, vlan: {mode: access, tag: 65537}}]", "65537"},
		{"not_a_map", "- a\n- b", "parse config"},
		{"syntax", "workers: {count: 2", "parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, want an error", tt.yaml, c)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "parse config: ") {
				t.Fatalf("error %q does not start with \"parse config: \" and name %q", err, tt.want)
			}
		})
	}
}

// TestParseConfigNoDocument: a config file of nothing but comments, or an
// empty document, says nothing, like an empty file, and gives the defaults.
func TestParseConfigNoDocument(t *testing.T) {
	for _, in := range []string{"# vswitchd config\n# (all defaults)\n", "---\n", "--- # defaults\n", "null\n", "~"} {
		c, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", in, err)
		}
		if c.FDB.Size != DefaultFDBSize || c.Workers.Count != 1 {
			t.Fatalf("ParseConfig(%q) not defaulted: %+v", in, c)
		}
	}
}

// FuzzParseConfig: ParseConfig never panics, and a config it accepts
// passes Validate again, stays the same under SetDefaults, and survives a
// YAML round trip.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"{}",
		"log_level: warn\nworkers: {count: 4, poll_mode: interrupt, idle_spins: 10}\n",
		"fdb: {size: 64, aging: 1s}\n",
		"api_socket_mode: 0o644\nports:\n  - interface: eth0\n    vlan: {mode: access, tag: 4094}\n",
		"ports: [{interface: a, name: b, xdp_mode: skb, bind: zerocopy, queues: 256, vlan: {mode: trunk, allowed: [1, 4094], native: 7}}]",
		"workers: {count: 2, cpus: [0, 1023]}",
		"ports: [{interface: eth0}, {interface: eth0}]",
		"fdb: {aging: 1h30m}",
		"a: &x [*x]",
		"ports: [{name: m1, type: memring, memring: {queue_pairs: 2, ring_size: 64, frame_size: 4096, uids: [1000], gids: [5]}}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a non-nil config", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		before := cloneConfig(c)
		c.SetDefaults()
		if !reflect.DeepEqual(before, c) {
			t.Fatalf("SetDefaults changed an accepted config:\n%+v\n%+v", before, c)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalizeConfig(c), normalizeConfig(c2)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, c2, out)
		}
	})
}

// defaultPeephole is the peephole section of an empty config.
func defaultPeephole() PeepholeSpec {
	return PeepholeSpec{
		Responders: []string{ResponderARP, ResponderND, ResponderDNS},
		Glean:      GleanSpec{Size: DefaultGleanSize, Aging: DefaultGleanAging},
	}
}

func defaultRouter() RouterSpec {
	var r RouterSpec
	r.SetDefaults()
	return r
}

// normalizeConfig returns a copy of c with empty slices made nil: YAML
// writes a nil slice as [] and reads that back as an empty one.
func normalizeConfig(c *Config) *Config {
	n := cloneConfig(c)
	if len(n.Workers.CPUs) == 0 {
		n.Workers.CPUs = nil
	}
	if len(n.Workers.ControlCPUs) == 0 {
		n.Workers.ControlCPUs = nil
	}
	if len(n.Ports) == 0 {
		n.Ports = nil
	}
	for i := range n.Ports {
		if v := n.Ports[i].VLAN; v != nil && len(v.Allowed) == 0 {
			v.Allowed = nil
		}
		if m := n.Ports[i].Memring; m != nil {
			if len(m.UIDs) == 0 {
				m.UIDs = nil
			}
			if len(m.GIDs) == 0 {
				m.GIDs = nil
			}
		}
	}
	rt := &n.Router
	if len(rt.Interfaces) == 0 {
		rt.Interfaces = nil
	}
	if len(rt.Routes) == 0 {
		rt.Routes = nil
	}
	if len(rt.ACL.Rules) == 0 {
		rt.ACL.Rules = nil
	}
	for i := range rt.Interfaces {
		if len(rt.Interfaces[i].Addresses) == 0 {
			rt.Interfaces[i].Addresses = nil
		}
	}
	ph := &n.Peephole
	if len(ph.Bindings) == 0 {
		ph.Bindings = nil
	}
	if len(ph.DNS.Zones) == 0 {
		ph.DNS.Zones = nil
	}
	if len(ph.DNS.Records) == 0 {
		ph.DNS.Records = nil
	}
	return n
}

// cloneConfig returns a deep copy of c.
func cloneConfig(c *Config) *Config {
	n := *c
	n.Workers.CPUs = slices.Clone(c.Workers.CPUs)
	n.Workers.ControlCPUs = slices.Clone(c.Workers.ControlCPUs)
	n.Ports = slices.Clone(c.Ports)
	n.Router.Interfaces = slices.Clone(c.Router.Interfaces)
	for i := range n.Router.Interfaces {
		n.Router.Interfaces[i].Addresses = slices.Clone(c.Router.Interfaces[i].Addresses)
	}
	n.Router.Routes = slices.Clone(c.Router.Routes)
	n.Router.ACL.Rules = slices.Clone(c.Router.ACL.Rules)
	n.Router.Stages = slices.Clone(c.Router.Stages)
	for i := range n.Ports {
		if m := n.Ports[i].Memring; m != nil {
			mc := *m
			mc.UIDs, mc.GIDs = slices.Clone(m.UIDs), slices.Clone(m.GIDs)
			n.Ports[i].Memring = &mc
		}
		if v := n.Ports[i].VLAN; v != nil {
			vc := *v
			vc.Allowed = slices.Clone(v.Allowed)
			n.Ports[i].VLAN = &vc
		}
	}
	n.Peephole.Responders = slices.Clone(c.Peephole.Responders)
	n.Peephole.Bindings = slices.Clone(c.Peephole.Bindings)
	n.Peephole.DNS.Zones = slices.Clone(c.Peephole.DNS.Zones)
	n.Peephole.DNS.Records = slices.Clone(c.Peephole.DNS.Records)
	return &n
}
