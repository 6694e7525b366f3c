package main

import (
	"encoding/json"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

// startRouter serves the sample fake with its sample router.
func startRouter(t *testing.T) *daemon {
	t.Helper()
	ctl := apitest.NewSample()
	ctl.EnableRouter()
	return startDaemonWith(t, ctl)
}

const routeTable = `
PREFIX       VIA        INTERFACE  VLAN
10.0.1.0/24  connected  vlan10     10
10.0.2.0/24  connected  vlan20     20
10.9.0.0/16  10.0.2.1   vlan20     20
`

func TestRouteShow(t *testing.T) {
	d := startRouter(t)
	t.Run("table", func(t *testing.T) { golden(t, d.run("route", "show").ok(t), routeTable) })
	t.Run("alias", func(t *testing.T) { golden(t, d.run("route", "ls").ok(t), routeTable) })
	t.Run("json", func(t *testing.T) {
		want, _ := d.ctl.Routes()
		sameJSON(t, d.run("route", "show", "-o", "json").ok(t), want)
	})
}

func TestRouteAddDel(t *testing.T) {
	d := startRouter(t)
	t.Run("add", func(t *testing.T) {
		golden(t, d.run("route", "add", "10.8.0.0/16", "via", "10.0.1.1").ok(t), `
PREFIX       VIA       INTERFACE  VLAN
10.8.0.0/16  10.0.1.1  vlan10     10
`)
		if rs, _ := d.ctl.Routes(); len(rs) != 4 {
			t.Errorf("daemon has %d routes, want 4", len(rs))
		}
	})
	t.Run("add json", func(t *testing.T) {
		out := d.run("-o", "json", "route", "add", "10.7.0.0/16", "via", "10.0.2.9").ok(t)
		var r struct{ Prefix, Via, Interface string }
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Prefix != "10.7.0.0/16" || r.Via != "10.0.2.9" || r.Interface != "vlan20" {
			t.Errorf("json %q (%v)", out, err)
		}
	})
	t.Run("add duplicate", func(t *testing.T) {
		d.run("route", "add", "10.9.0.0/16", "via", "10.0.1.1").fails(t, 1, "add route 10.9.0.0/16: already exists")
	})
	t.Run("daemon rejects via", func(t *testing.T) {
		d.run("route", "add", "10.6.0.0/16", "via", "10.3.3.3").fails(t, 1, "invalid ADDR: via: 10.3.3.3 is in no connected prefix")
	})
	t.Run("daemon rejects prefix", func(t *testing.T) {
		d.run("route", "add", "10.0.1.0/24", "via", "10.0.2.1").fails(t, 1, "invalid PREFIX: prefix: 10.0.1.0/24 is a connected prefix")
	})
	t.Run("del", func(t *testing.T) {
		if out := d.run("route", "del", "10.8.0.0/16").ok(t); out != "deleted route 10.8.0.0/16\n" {
			t.Errorf("output %q", out)
		}
		if out := d.run("-o", "json", "route", "rm", "10.7.0.0/16").ok(t); out != "" {
			t.Errorf("json output %q, want none", out)
		}
		golden(t, d.run("route", "show").ok(t), routeTable)
	})
	t.Run("del missing", func(t *testing.T) {
		d.run("route", "del", "10.8.0.0/16").fails(t, 1, "delete route 10.8.0.0/16: not found")
	})
}

const aclTable = `
INDEX  ACTION  RULE                                 HITS
0      allow   allow tcp any:any -> 10.0.2.0/24:22  5
1      deny    deny udp 10.0.1.0/24:any -> any:53   10
default: allow (100 hits)
established: on (40 hits, 3 connections)
`

func TestACLShow(t *testing.T) {
	d := startRouter(t)
	golden(t, d.run("acl", "show").ok(t), aclTable)
	want, _ := d.ctl.ACL()
	sameJSON(t, d.run("acl", "list", "-o", "json").ok(t), want)
}

func TestACLEdit(t *testing.T) {
	d := startRouter(t)
	t.Run("add every keyword", func(t *testing.T) {
		golden(t, d.run("acl", "add", "deny", "proto", "tcp", "src", "10.0.1.66", "dst", "10.0.2.0/24", "sport", "1024-65535", "dport", "80").ok(t), `
INDEX  ACTION  RULE                                                HITS
0      allow   allow tcp any:any -> 10.0.2.0/24:22                 5
1      deny    deny udp 10.0.1.0/24:any -> any:53                  10
2      deny    deny tcp 10.0.1.66/32:1024-65535 -> 10.0.2.0/24:80  0
default: allow (100 hits)
established: on (40 hits, 3 connections)
`)
	})
	t.Run("insert", func(t *testing.T) {
		var acl vswitch.ACLInfo
		if err := json.Unmarshal([]byte(d.run("-o", "json", "acl", "add", "--index", "0", "allow", "proto", "icmp").ok(t)), &acl); err != nil {
			t.Fatal(err)
		}
		if len(acl.Rules) != 4 || acl.Rules[0].Text != "allow icmp any:any -> any:any" || acl.Rules[1].Hits != 5 {
			t.Errorf("acl %+v", acl)
		}
	})
	t.Run("del", func(t *testing.T) {
		if out := d.run("acl", "del", "0").ok(t); out != "deleted acl rule 0\n" {
			t.Errorf("output %q", out)
		}
		if out := d.run("acl", "rm", "2").ok(t); out != "deleted acl rule 2\n" {
			t.Errorf("output %q", out)
		}
		golden(t, d.run("acl", "show").ok(t), aclTable)
	})
	t.Run("del missing", func(t *testing.T) {
		d.run("acl", "del", "7").fails(t, 1, "delete acl rule 7: not found")
	})
	t.Run("default", func(t *testing.T) {
		if out := d.run("acl", "default", "deny").ok(t); out != "default: deny\n" {
			t.Errorf("output %q", out)
		}
		if acl, _ := d.ctl.ACL(); acl.Default != "deny" {
			t.Errorf("daemon default %q", acl.Default)
		}
	})
	t.Run("daemon rejects", func(t *testing.T) {
		d.run("acl", "add", "deny", "proto", "sctpx").fails(t, 1, `invalid proto: rule.proto: "sctpx" is not tcp`)
		d.run("acl", "add", "deny", "dport", "53").fails(t, 1, "invalid dport: rule.dst_ports: ports need proto tcp or udp")
		d.run("acl", "add", "deny", "src", "10.0.0.0/40").fails(t, 1, "invalid src: rule.src:")
		d.run("acl", "add", "--index", "9", "deny").fails(t, 1, "invalid --index: index: 9 is past the end")
	})
}

func TestFlows(t *testing.T) {
	d := startRouter(t)
	t.Run("show", func(t *testing.T) {
		golden(t, d.run("flows", "show").ok(t), `
WORKER  KEY                                                        ACTIONS                                                                           IDLE  VALID
0       in_port=eth0 vlan=10 proto=6 10.0.1.5:40000 > 10.0.2.7:22  set_eth(src=02:76:73:00:00:01,dst=02:00:00:00:00:03),dec_ttl,vlan=20,output:eth1  2s    yes
1       in_port=eth0 vlan=10 proto=17 10.0.1.5:5353 > 10.0.2.7:53  drop(acl_deny)                                                                    31s   no
`)
	})
	t.Run("limit json", func(t *testing.T) {
		want, _ := d.ctl.Flows(1)
		sameJSON(t, d.run("flows", "show", "--limit", "1", "-o", "json").ok(t), want)
	})
	t.Run("stats", func(t *testing.T) {
		golden(t, d.run("flows", "stats").ok(t), `
WORKER  ENTRIES  CAPACITY  HITS  MISSES  INSERTS  EVICTIONS  REVALIDATIONS  EXPIRED  INVALIDATED
0       1        65536     900   100     90       1          4              6        2
1       1        65536     100   0       10       0          0              1        0
total   2        131072    1000  100     100      1          4              7        2
hit ratio: 90.9%
generation: 7
route: routed 1000, no route 3, ttl exceeded 2, icmp sent 4, icmp rate-limited 1, parked 5, flooded 6
parked: 1 now, solicitations 8, released 4, timeouts 1
local: 11, echo replies 9
`)
		want, _ := d.ctl.FlowStats()
		sameJSON(t, d.run("flows", "stats", "-o", "json").ok(t), want)
	})
	t.Run("flush", func(t *testing.T) {
		if out := d.run("flows", "flush").ok(t); out != "flushed 2 flows\n" {
			t.Errorf("output %q", out)
		}
		sameJSON(t, d.run("flows", "flush", "-o", "json").ok(t), api.FlushResult{Flushed: 0})
		golden(t, d.run("flows", "show").ok(t), "\nWORKER  KEY  ACTIONS  IDLE  VALID\n")
	})
}

func TestTrace(t *testing.T) {
	d := startRouter(t)
	t.Run("static route, miss", func(t *testing.T) {
		golden(t, d.run("trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "10.9.3.4", "--proto", "tcp", "--dport", "443").ok(t), `
key: in_port=eth0 vlan=10 proto=6 10.0.1.5:12345 > 10.9.3.4:443
worker: 0
cache: miss (no entry)
route: forward  10.9.3.4 via 10.0.2.1 (02:00:00:00:00:03) out port 1 on vlan20 (vlan 20), TTL-1
acl: allow  default allow
verdict: forward out eth1 (port 1)
entry: set_eth(src=02:76:73:00:00:01,dst=02:00:00:00:00:03),dec_ttl,vlan=20,output:1 (cacheable)
`)
	})
	t.Run("cached flow, hit", func(t *testing.T) {
		golden(t, d.run("trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "10.0.2.7", "--proto", "tcp", "--sport", "40000", "--dport", "22").ok(t), `
key: in_port=eth0 vlan=10 proto=6 10.0.1.5:40000 > 10.0.2.7:22
worker: 0
cache: hit
cached: set_eth(src=02:76:73:00:00:01,dst=02:00:00:00:00:03),dec_ttl,vlan=20,output:1
route: forward  10.0.2.7 via 10.0.2.7 (02:00:00:00:00:03) out port 1 on vlan20 (vlan 20), TTL-1
acl: allow  default allow
verdict: forward out eth1 (port 1)
entry: set_eth(src=02:76:73:00:00:01,dst=02:00:00:00:00:03),dec_ttl,vlan=20,output:1 (cacheable)
entry equals cached: yes
`)
	})
	t.Run("no route", func(t *testing.T) {
		golden(t, d.run("trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "192.0.2.1").ok(t), `
key: in_port=eth0 vlan=10 proto=17 10.0.1.5:12345 > 192.0.2.1:80
worker: 0
cache: miss (no entry)
route: drop  no route to 192.0.2.1
verdict: drop (no_route)
entry: drop (no_route) (cacheable)
`)
	})
	t.Run("json", func(t *testing.T) {
		req := vswitch.TraceRequest{InPort: "eth1", Src: "10.0.2.7", Dst: "10.0.1.5", VLAN: 20, TTL: 9}
		want, err := d.ctl.Trace(req)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, d.run("-o", "json", "trace", "--in-port", "eth1", "--src", "10.0.2.7", "--dst", "10.0.1.5", "--vlan", "20", "--ttl", "9").ok(t), want)
	})
	t.Run("daemon rejects port", func(t *testing.T) {
		d.run("trace", "--in-port", "eth9", "--src", "10.0.1.5", "--dst", "10.0.2.7").fails(t, 1, `invalid --in-port: in_port: "eth9" is not a port`)
	})
}

func TestGatewayBadArguments(t *testing.T) {
	d := startRouter(t)
	routes, _ := d.ctl.Routes()
	acl, _ := d.ctl.ACL()
	trace := []string{"trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "10.0.2.7"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"route add no args", []string{"route", "add"}, "accepts 3 arg(s), received 0"},
		{"route add no via", []string{"route", "add", "10.8.0.0/16", "10.0.1.1"}, "accepts 3 arg(s), received 2"},
		{"route add gw", []string{"route", "add", "10.8.0.0/16", "gw", "10.0.1.1"}, `invalid argument "gw": want "via"`},
		{"route add bad prefix", []string{"route", "add", "10.8.0.0", "via", "10.0.1.1"}, `invalid PREFIX: "10.8.0.0" is not a prefix`},
		{"route add bad addr", []string{"route", "add", "10.8.0.0/16", "via", "10.0.1"}, `invalid ADDR: "10.0.1" is not an IP address`},
		{"route del bad prefix", []string{"route", "del", "x"}, `invalid PREFIX: "x"`},
		{"route unknown", []string{"route", "shwo"}, `unknown command "shwo" for "vswitchctl route"`},
		{"acl add nothing", []string{"acl", "add"}, "requires at least 1 arg(s)"},
		{"acl add bad action", []string{"acl", "add", "reject", "proto", "tcp"}, `invalid ACTION: "reject" is not one of allow, deny`},
		{"acl add unknown keyword", []string{"acl", "add", "deny", "proto", "udp", "port", "53"}, `unknown keyword "port"`},
		{"acl add missing value", []string{"acl", "add", "deny", "src"}, "keyword src needs a value"},
		{"acl add keyword twice", []string{"acl", "add", "deny", "src", "10.0.0.1", "src", "10.0.0.2"}, "keyword src given twice"},
		{"acl add negative index", []string{"acl", "add", "--index", "-1", "deny"}, "invalid --index: -1 is negative"},
		{"acl add bad index", []string{"acl", "add", "--index", "x", "deny"}, `invalid argument "x" for "--index" flag`},
		{"acl del bad index", []string{"acl", "del", "one"}, `invalid INDEX: "one"`},
		{"acl del negative", []string{"acl", "del", "-1"}, `unknown shorthand flag: '1' in -1`},
		{"acl default bad", []string{"acl", "default", "drop"}, `invalid ACTION: "drop"`},
		{"flows limit", []string{"flows", "show", "--limit", "-2"}, "invalid --limit: -2 is negative"},
		{"flows limit not a number", []string{"flows", "show", "--limit", "all"}, `invalid argument "all" for "--limit" flag`},
		{"flows flush args", []string{"flows", "flush", "now"}, `unknown command "now" for "vswitchctl flows flush"`},
		{"trace no in-port", []string{"trace", "--src", "10.0.1.5", "--dst", "10.0.2.7"}, "--in-port is required"},
		{"trace no dst", []string{"trace", "--in-port", "eth0", "--src", "10.0.1.5"}, "--dst is required"},
		{"trace bad src", []string{"trace", "--in-port", "eth0", "--src", "10.0.1", "--dst", "10.0.2.7"}, `invalid --src: "10.0.1"`},
		{"trace mixed families", []string{"trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "2001:db8::1"}, "invalid --dst: 2001:db8::1 is not of --src's address family"},
		{"trace proto", append(trace, "--proto", "sctp"), `invalid --proto: "sctp"`},
		{"trace vlan", append(trace, "--vlan", "4095"), "invalid --vlan: 4095 is not in 0..4094"},
		{"trace sport", append(trace, "--sport", "70000"), `invalid argument "70000" for "--sport" flag`},
		{"trace ttl", append(trace, "--ttl", "256"), `invalid argument "256" for "--ttl" flag`},
		{"trace src-mac", append(trace, "--src-mac", "02:00"), `invalid --src-mac: "02:00"`},
		{"trace args", append(trace, "extra"), `unknown command "extra" for "vswitchctl trace"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.run(tc.args...).fails(t, 2, tc.want)
		})
	}
	if rs, _ := d.ctl.Routes(); len(rs) != len(routes) {
		t.Errorf("daemon has %d routes, had %d: a bad command reached it", len(rs), len(routes))
	}
	if a, _ := d.ctl.ACL(); len(a.Rules) != len(acl.Rules) || a.Default != acl.Default {
		t.Errorf("daemon ACL %+v, had %+v: a bad command reached it", a, acl)
	}
}

func TestGatewayNoRouter(t *testing.T) {
	d := startDaemon(t) // the sample has no router
	for _, a := range [][]string{
		{"route", "show"}, {"route", "add", "10.9.0.0/16", "via", "10.0.1.1"}, {"route", "del", "10.9.0.0/16"},
		{"acl", "show"}, {"acl", "add", "deny"}, {"acl", "del", "0"}, {"acl", "default", "deny"},
		{"flows", "show"}, {"flows", "flush"}, {"flows", "stats"},
		{"trace", "--in-port", "eth0", "--src", "10.0.1.5", "--dst", "10.0.2.7"},
		{"-o", "json", "route", "show"},
	} {
		t.Run(a[0]+" "+a[1], func(t *testing.T) {
			r := d.run(a...)
			r.fails(t, 1, "no router configured (router.interfaces is empty): the gateway commands need router.interfaces in vswitchd's config")
			if r.stdout != "" {
				t.Errorf("stdout %q, want none", r.stdout)
			}
		})
	}
}
