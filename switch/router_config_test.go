package vswitch

import (
	"strings"
	"testing"
)

const routerBase = `router:
  interfaces:
    - {name: r1, vlan: 1, addresses: ["10.0.1.254/24", "fd00:1::fe/64"]}
    - {name: r2, vlan: 2, addresses: ["10.0.2.254/24"]}
`

func TestRouterConfigValid(t *testing.T) {
	c, err := ParseConfig([]byte(routerBase + `  routes:
    - {prefix: 10.9.0.0/16, via: 10.0.2.1}
  acl:
    default: deny
    established: true
    rules:
      - {action: allow, proto: tcp, dst: 10.0.2.0/24, dst_ports: "80"}
      - {action: deny, proto: udp, src: 10.0.1.7, src_ports: "1000-2000"}
  flow_cache: {entries: 1024, idle_timeout: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Router.compile("router")
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.ifaces) != 2 || len(cr.routes) != 1 || len(cr.acl.Rules) != 2 || cr.acl.DefaultAllow || !cr.acl.Established {
		t.Fatalf("compiled router: %+v", cr)
	}
	r := cr.acl.Rules[1]
	if r.SrcPorts.Lo != 1000 || r.SrcPorts.Hi != 2000 || r.Src.Bits() != 32 {
		t.Errorf("rule 1: %+v", r)
	}
	// ruleSpec is the inverse of rule for what the state file keeps.
	for i, spec := range c.Router.ACL.Rules {
		back, err := ruleSpec(cr.acl.Rules[i]).rule("x")
		if err != nil || back != cr.acl.Rules[i] {
			t.Errorf("rules[%d] %+v: round trip gave %+v, %v", i, spec, back, err)
		}
	}
}

func TestRouterConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ yaml, field string }{
		{`router: {routes: [{prefix: 10.9.0.0/16, via: 10.0.2.1}]}`, "router.interfaces"},
		{`router: {interfaces: [{name: r1, vlan: 5000, addresses: [10.0.1.254/24]}]}`, "router.interfaces[0].vlan"},
		{`router: {interfaces: [{name: r1, vlan: 1, addresses: [10.0.1.254]}]}`, "router.interfaces[0].addresses[0]"},
		{`router: {interfaces: [{name: r1, vlan: 1, addresses: [10.0.1.0/24]}]}`, "router.interfaces[0].addresses[0]"},
		{`router: {interfaces: [{name: r1, vlan: 1}]}`, "router.interfaces[0].addresses"},
		{`router: {interfaces: [{name: "", vlan: 1, addresses: [10.0.1.254/24]}]}`, "router.interfaces[0].name"},
		{`router: {mac: "01:00:00:00:00:01", interfaces: [{name: r1, vlan: 1, addresses: [10.0.1.254/24]}]}`, "router.mac"},
		{routerBase + "  routes: [{prefix: 10.9.0.0/16, via: 10.5.0.1}]\n", "router.routes[0].via"},
		{routerBase + "  routes: [{prefix: 10.9.0.0/16, via: fd00:1::1}]\n", "router.routes[0].via"},
		{routerBase + "  routes: [{prefix: bogus, via: 10.0.2.1}]\n", "router.routes[0].prefix"},
		{routerBase + "  acl: {default: maybe}\n", "router.acl.default"},
		{routerBase + "  acl: {rules: [{action: drop}]}\n", "router.acl.rules[0].action"},
		{routerBase + "  acl: {rules: [{action: deny, proto: xyz}]}\n", "router.acl.rules[0].proto"},
		{routerBase + "  acl: {rules: [{action: deny, src: 10.0.0.0/33}]}\n", "router.acl.rules[0].src"},
		{routerBase + "  acl: {rules: [{action: deny, src: 10.0.0.0/8, dst: fd00::/8}]}\n", "router.acl.rules[0].dst"},
		{routerBase + "  acl: {rules: [{action: deny, proto: tcp, dst_ports: 90-80}]}\n", "router.acl.rules[0].dst_ports"},
		{routerBase + "  acl: {rules: [{action: deny, proto: icmp, dst_ports: 80}]}\n", "router.acl.rules[0].dst_ports"},
		{routerBase + "  stages: [acl]\n", "router.stages"},
		{routerBase + "  stages: [route, nat]\n", "router.stages[1]"},
		{routerBase + "  flow_cache: {entries: -1}\n", "router.flow_cache.entries"},
		{routerBase + "  flow_cache: {idle_timeout: 10ms}\n", "router.flow_cache.idle_timeout"},
		{routerBase + "peephole: {glean: {disabled: true}}\n", "peephole.glean.disabled"},
		{routerBase + "peephole: {responders: [dns]}\n", "peephole.responders"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			t.Errorf("%q: accepted", tc.yaml)
			continue
		}
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%q: error %v, want a field error naming %s", tc.yaml, err, tc.field)
		}
	}
	// A duplicate VLAN is caught by the router's own checks and still
	// named under router.
	_, err := ParseConfig([]byte(`router: {interfaces: [{name: a, vlan: 1, addresses: [10.0.1.254/24]}, {name: b, vlan: 1, addresses: [10.0.2.254/24]}]}`))
	if err == nil || !strings.HasPrefix(err.Error(), "router.interfaces[1].vlan") {
		t.Errorf("duplicate VLAN: %v", err)
	}
}
