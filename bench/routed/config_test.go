package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	vswitch "github.com/vswitch/vswitch/switch"
)

// routedYAML mirrors the router config schema the harness writes against
// (the sketch; peephole and ports as in package switch). Decoding
// with KnownFields catches a misspelt key in the renderer.
type routedYAML struct {
	APISocket string `yaml:"api_socket"`
	StateFile string `yaml:"state_file"`
	Workers   struct {
		Count    int    `yaml:"count"`
		CPUs     []int  `yaml:"cpus"`
		PollMode string `yaml:"poll_mode"`
	} `yaml:"workers"`
	Ports []struct {
		Name      string `yaml:"name"`
		Interface string `yaml:"interface"`
		VLAN      struct {
			Mode string `yaml:"mode"`
			Tag  uint16 `yaml:"tag"`
		} `yaml:"vlan"`
	} `yaml:"ports"`
	Router struct {
		MAC        string `yaml:"mac"`
		Interfaces []struct {
			Name      string   `yaml:"name"`
			VLAN      uint16   `yaml:"vlan"`
			Addresses []string `yaml:"addresses"`
		} `yaml:"interfaces"`
		FlowCache struct {
			Entries     int    `yaml:"entries"`
			IdleTimeout string `yaml:"idle_timeout"`
		} `yaml:"flow_cache"`
		ACL struct {
			Default string `yaml:"default"`
			Rules   []struct {
				Action   string `yaml:"action"`
				Proto    string `yaml:"proto"`
				DstPorts string `yaml:"dst_ports"`
			} `yaml:"rules"`
		} `yaml:"acl"`
	} `yaml:"router"`
	Peephole struct {
		Bindings []vswitch.BindingSpec `yaml:"bindings"`
	} `yaml:"peephole"`
}

func testConfig(acl bool) DaemonConfig {
	t := &Topology{Names: NewNames(12345)}
	v := &vswitchdRouter{cpu: 1, acl: acl}
	return v.daemonConfig(t, "/tmp/vsr-test")
}

func decodeStrict(t *testing.T, text string) routedYAML {
	t.Helper()
	var c routedYAML
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("generated config does not parse: %v\n%s", err, text)
	}
	return c
}

func TestDaemonConfigRender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		acl   bool
		rules int
	}{
		{"route", false, 0},
		{"route-acl1000", true, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.acl)
			c := decodeStrict(t, cfg.Render())
			n := NewNames(12345)
			if len(c.Ports) != 2 || c.Ports[0].Interface != n.P0 || c.Ports[1].Interface != n.P1 ||
				c.Ports[0].VLAN.Mode != "access" || c.Ports[0].VLAN.Tag != 1 || c.Ports[1].VLAN.Tag != 2 {
				t.Errorf("ports: %+v", c.Ports)
			}
			if c.Workers.Count != 1 || len(c.Workers.CPUs) != 1 || c.Workers.CPUs[0] != 1 || c.Workers.PollMode != "busy" {
				t.Errorf("workers: %+v", c.Workers)
			}
			r := c.Router
			if r.MAC != "02:00:5e:10:00:01" {
				t.Errorf("router mac %q", r.MAC)
			}
			if len(r.Interfaces) != 2 || r.Interfaces[0].VLAN != 1 || r.Interfaces[0].Addresses[0] != "10.78.1.254/24" ||
				r.Interfaces[1].VLAN != 2 || r.Interfaces[1].Addresses[0] != "10.78.2.254/24" {
				t.Errorf("router interfaces: %+v", r.Interfaces)
			}
			if r.FlowCache.Entries != 262144 || r.FlowCache.IdleTimeout != "30s" {
				t.Errorf("flow cache: %+v", r.FlowCache)
			}
			if r.ACL.Default != "allow" {
				t.Errorf("acl default %q", r.ACL.Default)
			}
			if len(r.ACL.Rules) != tc.rules {
				t.Fatalf("%d ACL rules, want %d", len(r.ACL.Rules), tc.rules)
			}
			for i, rule := range r.ACL.Rules {
				if want := fmt.Sprint(10000 + i); rule.Action != "deny" || rule.Proto != "udp" || rule.DstPorts != want {
					t.Fatalf("rule %d: %+v, want deny udp dst_ports %s", i, rule, want)
				}
			}
			b := c.Peephole.Bindings
			if len(b) != 2 || b[0].IP != "10.78.2.2" || b[0].MAC != SinkMAC.String() || b[0].VLAN != 2 || b[0].Port != "p1" {
				t.Errorf("bindings: %+v", b)
			}
		})
	}
}

// TestDaemonConfigParsesInVswitchd holds the rendered config to the
// daemon's own parser. Until the router lands, the daemon rejects the
// router section as an unknown field: then the rest of the config (ports,
// workers, peephole bindings) must still parse, and the router part is
// only checked by TestDaemonConfigRender.
func TestDaemonConfigParsesInVswitchd(t *testing.T) {
	text := testConfig(true).Render()
	_, err := vswitch.ParseConfig([]byte(text))
	if err == nil {
		return
	}
	if !strings.Contains(err.Error(), "field router not found") {
		t.Fatalf("vswitchd rejects the generated config: %v", err)
	}
	t.Logf("router section not in this vswitchd yet (%v); checking the rest", err)
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "router")
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(doc); err != nil {
		t.Fatal(err)
	}
	if _, err := vswitch.ParseConfig(buf.Bytes()); err != nil {
		t.Fatalf("config without router section: %v\n%s", err, buf.String())
	}
}

func TestAbbreviated(t *testing.T) {
	text := Abbreviated(testConfig(true).Render())
	if n := strings.Count(text, "{action: deny"); n != 3 {
		t.Errorf("%d rules kept, want 3:\n%s", n, text)
	}
	if !strings.Contains(text, "997 more rules") || !strings.Contains(text, `"10999"`) {
		t.Errorf("abbreviation:\n%s", text)
	}
}

func TestNftRuleset(t *testing.T) {
	rs := nftRuleset()
	if n := strings.Count(rs, "udp dport "); n != denyCount {
		t.Errorf("%d rules, want %d", n, denyCount)
	}
	for _, want := range []string{"udp dport 10000 drop", "udp dport 10999 drop", "hook forward", "\t\taccept\n"} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	if strings.Contains(rs, "udp dport 11000") {
		t.Error("ruleset goes past 10999")
	}
}

func TestFlowPorts(t *testing.T) {
	for _, tc := range []struct {
		flows, src, dst int
		ok              bool
	}{
		{1, 1, 1, true}, {1000, 1000, 1, true}, {100000, 1000, 100, true},
		{0, 0, 0, false}, {1500, 0, 0, false},
	} {
		src, dst, err := flowPorts(tc.flows)
		if (err == nil) != tc.ok || src != tc.src || dst != tc.dst {
			t.Errorf("flowPorts(%d) = %d, %d, %v", tc.flows, src, dst, err)
		}
		if err == nil && src*dst != tc.flows {
			t.Errorf("flowPorts(%d): %d x %d", tc.flows, src, dst)
		}
		if err == nil && genDstPort+dst-1 >= denyFirst && genDstPort <= denyFirst+denyCount-1 {
			t.Errorf("flowPorts(%d): destination ports hit the denied range", tc.flows)
		}
	}
}

func TestLeftoverID(t *testing.T) {
	n := NewNames(99999)
	for _, ns := range []string{n.GenNS, n.RtrNS, n.SnkNS} {
		if id, ok := leftoverID(ns); !ok || id != n.ID {
			t.Errorf("leftoverID(%q) = %q, %t", ns, id, ok)
		}
	}
	for _, ns := range []string{"vsb1-src", "vsr", "other-gen", "vsrx-dst"} {
		if _, ok := leftoverID(ns); ok {
			t.Errorf("leftoverID(%q) claims it", ns)
		}
	}
	for _, name := range []string{n.G0, n.P0, n.P1, n.S1} {
		if len(name) > 15 {
			t.Errorf("interface name %q longer than 15 bytes", name)
		}
	}
}
