package main

import (
	"encoding/json"
	"strings"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

func TestARPList(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, `
IP         MAC                VLAN  KIND     PORT  AGE
10.0.10.1  02:00:00:00:0a:01  10    gateway  -     -
10.0.10.5  02:00:00:00:00:01  10    static   eth0  -
10.0.20.7  02:00:00:00:00:03  20    gleaned  eth1  43s
`},
		{"vlan", []string{"--vlan", "20"}, `
IP         MAC                VLAN  KIND     PORT  AGE
10.0.20.7  02:00:00:00:00:03  20    gleaned  eth1  43s
`},
		{"vlan zero filters too", []string{"--vlan", "0"}, `
IP  MAC  VLAN  KIND  PORT  AGE
`},
		{"kind", []string{"--kind", "static"}, `
IP         MAC                VLAN  KIND    PORT  AGE
10.0.10.5  02:00:00:00:00:01  10    static  eth0  -
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, d.run(append([]string{"arp", "list"}, tc.args...)...).ok(t), tc.want)
		})
	}
	t.Run("json", func(t *testing.T) {
		var want []vswitch.BindingInfo
		for _, b := range d.ctl.Bindings() {
			if !strings.Contains(b.IP, ":") {
				want = append(want, b)
			}
		}
		sameJSON(t, d.run("arp", "ls", "-o", "json").ok(t), want)
	})
	t.Run("bad vlan", func(t *testing.T) {
		d.run("arp", "list", "--vlan", "4095").fails(t, 2, "invalid --vlan: 4095 is not in 0..4094")
		d.run("arp", "list", "--vlan", "x").fails(t, 2, `invalid argument "x" for "--vlan" flag`)
	})
	t.Run("bad kind", func(t *testing.T) {
		d.run("arp", "list", "--kind", "dynamic").fails(t, 2, `invalid --kind: "dynamic"`)
	})
}

func TestNDList(t *testing.T) {
	d := startDaemon(t)
	golden(t, d.run("nd", "list").ok(t), `
IP              MAC                VLAN  KIND     PORT  AGE
2001:db8:10::1  02:00:00:00:0a:01  10    gateway  -     -
`)
	out := d.run("nd", "show", "-o", "json").ok(t)
	var bs []vswitch.BindingInfo
	if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) != 1 || bs[0].IP != "2001:db8:10::1" {
		t.Errorf("json %q (%v)", out, err)
	}
}

func TestARPAdd(t *testing.T) {
	d := startDaemon(t)
	t.Run("every flag", func(t *testing.T) {
		golden(t, d.run("arp", "add", "10.0.10.9", "02:AA:00:00:00:09", "--vlan", "10", "--kind", "gateway", "--port", "eth0").ok(t), `
IP         MAC                VLAN  KIND     PORT  AGE
10.0.10.9  02:aa:00:00:00:09  10    gateway  eth0  -
`)
		var got vswitch.BindingInfo
		for _, b := range d.ctl.Bindings() {
			if b.IP == "10.0.10.9" {
				got = b
			}
		}
		want := vswitch.BindingSpec{IP: "10.0.10.9", MAC: "02:aa:00:00:00:09", VLAN: 10, Kind: "gateway", Port: "eth0"}
		if got.BindingSpec != want {
			t.Errorf("daemon has %+v, want %+v", got.BindingSpec, want)
		}
	})
	t.Run("json defaults", func(t *testing.T) {
		var info vswitch.BindingInfo
		if err := json.Unmarshal([]byte(d.run("-o", "json", "arp", "add", "192.0.2.1", "02:00:00:00:00:21").ok(t)), &info); err != nil {
			t.Fatal(err)
		}
		if info.IP != "192.0.2.1" || info.VLAN != 0 || info.Kind != "static" || info.Port != "" {
			t.Errorf("info %+v", info)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		d.run("arp", "add", "10.0.10.5", "02:00:00:00:00:22", "--vlan", "10").fails(t, 1, "add binding 10.0.10.5 vlan 10")
	})
	t.Run("daemon rejects port", func(t *testing.T) {
		d.run("arp", "add", "10.0.10.6", "02:00:00:00:00:22", "--port", "eth9").fails(t, 1, `invalid --port: port: no port "eth9"`)
	})
	t.Run("daemon rejects ip", func(t *testing.T) {
		d.run("arp", "add", "224.0.0.5", "02:00:00:00:00:22").fails(t, 1, "invalid IP: ip: 224.0.0.5 is not a unicast address")
	})
	t.Run("daemon rejects mac", func(t *testing.T) {
		d.run("arp", "add", "10.0.0.6", "01:00:5e:00:00:01").fails(t, 1, "invalid MAC: mac:")
	})
}

func TestNDAdd(t *testing.T) {
	d := startDaemon(t)
	out := d.run("nd", "add", "2001:DB8:20::0:5", "02:00:00:00:00:25", "--vlan", "20").ok(t)
	golden(t, out, `
IP              MAC                VLAN  KIND    PORT  AGE
2001:db8:20::5  02:00:00:00:00:25  20    static  -     -
`)
}

func TestBindingBadArguments(t *testing.T) {
	d := startDaemon(t)
	before := len(d.ctl.Bindings())
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"arp no args", []string{"arp", "add"}, "accepts 2 arg(s), received 0"},
		{"arp one arg", []string{"arp", "add", "10.0.0.1"}, "accepts 2 arg(s), received 1"},
		{"arp bad ip", []string{"arp", "add", "10.0.0", "02:00:00:00:00:01"}, `invalid IP: "10.0.0" is not an IPv4 address`},
		{"arp ipv6", []string{"arp", "add", "2001:db8::1", "02:00:00:00:00:01"}, `invalid IP: 2001:db8::1 is an IPv6 address; IPv6 bindings are under "vswitchctl nd"`},
		{"nd ipv4", []string{"nd", "add", "10.0.0.1", "02:00:00:00:00:01"}, `invalid IP: 10.0.0.1 is an IPv4 address; IPv4 bindings are under "vswitchctl arp"`},
		{"nd bad ip", []string{"nd", "add", "2001:db8::g", "02:00:00:00:00:01"}, `invalid IP: "2001:db8::g" is not an IPv6 address`},
		{"bad mac", []string{"arp", "add", "10.0.0.1", "02:00:00"}, `invalid MAC: "02:00:00" is not a MAC address`},
		{"long mac", []string{"arp", "add", "10.0.0.1", "02:00:00:00:00:00:00:01"}, "invalid MAC"},
		{"vlan", []string{"arp", "add", "10.0.0.1", "02:00:00:00:00:01", "--vlan", "4095"}, "invalid --vlan: 4095 is not in 0..4094"},
		{"vlan not a number", []string{"nd", "add", "2001:db8::1", "02:00:00:00:00:01", "--vlan", "x"}, `invalid argument "x" for "--vlan" flag`},
		{"kind", []string{"arp", "add", "10.0.0.1", "02:00:00:00:00:01", "--kind", "gleaned"}, `invalid --kind: "gleaned" is not one of static, gateway`},
		{"del no ip", []string{"arp", "del"}, "accepts 1 arg(s), received 0"},
		{"del ipv6 with arp", []string{"arp", "del", "2001:db8:10::1"}, "invalid IP: 2001:db8:10::1 is an IPv6 address"},
		{"del ipv4 with nd", []string{"nd", "del", "10.0.10.1", "--vlan", "10"}, "invalid IP: 10.0.10.1 is an IPv4 address"},
		{"del bad ip", []string{"nd", "rm", "x"}, `invalid IP: "x"`},
		{"del vlan", []string{"arp", "del", "10.0.10.1", "--vlan", "5000"}, "invalid --vlan: 5000"},
		{"flush with args", []string{"arp", "flush", "all"}, `unknown command "all" for "vswitchctl arp flush"`},
		{"unknown subcommand", []string{"nd", "lsit"}, `unknown command "lsit" for "vswitchctl nd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.run(tc.args...).fails(t, 2, tc.want)
			if n := len(d.ctl.Bindings()); n != before {
				t.Errorf("daemon has %d bindings, had %d: a bad command reached it", n, before)
			}
		})
	}
}

func TestBindingDel(t *testing.T) {
	d := startDaemon(t)
	if out := d.run("arp", "del", "10.0.10.5", "--vlan", "10").ok(t); out != "deleted 10.0.10.5 in VLAN 10\n" {
		t.Errorf("output %q", out)
	}
	if out := d.run("-o", "json", "nd", "rm", "2001:db8:10:0::1", "--vlan", "10").ok(t); out != "" {
		t.Errorf("json output %q, want none", out)
	}
	d.run("arp", "del", "10.0.10.1").fails(t, 1, "delete binding 10.0.10.1 vlan 0: not found")
	if n := len(d.ctl.Bindings()); n != 2 {
		t.Errorf("%d bindings left, want 2", n)
	}
}

func TestBindingFlush(t *testing.T) {
	d := startDaemon(t)
	if out := d.run("arp", "flush").ok(t); out != "flushed 1 gleaned bindings\n" {
		t.Errorf("output %q", out)
	}
	sameJSON(t, d.run("nd", "flush", "-o", "json").ok(t), api.FlushResult{Flushed: 0})
	if n := len(d.ctl.Bindings()); n != 3 {
		t.Errorf("%d bindings left, want the 3 static and gateway ones", n)
	}
}

const dnsTable = `
ZONE          MNAME            RNAME                    SERIAL  REFRESH  RETRY  EXPIRE  MINIMUM
example.test  ns.example.test  hostmaster.example.test  7       3600     600    86400   60

NAME              TYPE   VALUE            TTL
gw.example.test   A      10.0.10.1        60
gw.example.test   AAAA   2001:db8:10::1   300
www.example.test  CNAME  gw.example.test  60
`

func TestDNSList(t *testing.T) {
	d := startDaemon(t)
	t.Run("table", func(t *testing.T) { golden(t, d.run("dns", "list").ok(t), dnsTable) })
	t.Run("alias", func(t *testing.T) { golden(t, d.run("dns", "ls").ok(t), dnsTable) })
	t.Run("json", func(t *testing.T) { sameJSON(t, d.run("dns", "list", "-o", "json").ok(t), d.ctl.DNS()) })
}

func TestDNSZone(t *testing.T) {
	d := startDaemon(t)
	t.Run("add every flag", func(t *testing.T) {
		out := d.run("dns", "zone", "add", "Lab.Example.", "--mname", "ns1.lab.example", "--rname", "ops.lab.example",
			"--serial", "9", "--refresh", "100", "--retry", "50", "--expire", "1000", "--minimum", "30").ok(t)
		golden(t, out, `
ZONE         MNAME            RNAME            SERIAL  REFRESH  RETRY  EXPIRE  MINIMUM
lab.example  ns1.lab.example  ops.lab.example  9       100      50     1000    30
`)
	})
	t.Run("add json defaults", func(t *testing.T) {
		var z vswitch.DNSZoneSpec
		if err := json.Unmarshal([]byte(d.run("-o", "json", "dns", "zone", "add", "10.10.in-addr.arpa").ok(t)), &z); err != nil {
			t.Fatal(err)
		}
		want := vswitch.DNSZoneSpec{Name: "10.10.in-addr.arpa", SOA: vswitch.DNSSOASpec{MName: "ns.10.10.in-addr.arpa",
			RName: "hostmaster.10.10.in-addr.arpa", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 60}}
		if z != want {
			t.Errorf("zone %+v, want %+v", z, want)
		}
	})
	t.Run("add duplicate", func(t *testing.T) {
		d.run("dns", "zone", "add", "example.test").fails(t, 1, `add zone "example.test": already exists`)
	})
	t.Run("del", func(t *testing.T) {
		if out := d.run("dns", "zone", "del", "lab.example").ok(t); out != "deleted zone lab.example\n" {
			t.Errorf("output %q", out)
		}
		if out := d.run("-o", "json", "dns", "zone", "rm", "example.test").ok(t); out != "" {
			t.Errorf("json output %q, want none", out)
		}
		if dns := d.ctl.DNS(); len(dns.Zones) != 1 || len(dns.Records) != 0 {
			t.Errorf("dns after deleting zones: %+v", dns)
		}
	})
	t.Run("del missing", func(t *testing.T) {
		d.run("dns", "zone", "del", "nope.test").fails(t, 1, `delete zone "nope.test": not found`)
	})
}

func TestDNSRecord(t *testing.T) {
	d := startDaemon(t)
	t.Run("add", func(t *testing.T) {
		golden(t, d.run("dns", "add", "db.example.test", "a", "10.0.10.7", "--ttl", "120").ok(t), `
NAME             TYPE  VALUE      TTL
db.example.test  A     10.0.10.7  120
`)
	})
	t.Run("add json", func(t *testing.T) {
		var r vswitch.DNSRecordSpec
		if err := json.Unmarshal([]byte(d.run("-o", "json", "dns", "add", "db.example.test", "AAAA", "2001:db8::7").ok(t)), &r); err != nil {
			t.Fatal(err)
		}
		if want := (vswitch.DNSRecordSpec{Name: "db.example.test", Type: "AAAA", Value: "2001:db8::7", TTL: 60}); r != want {
			t.Errorf("record %+v, want %+v", r, want)
		}
	})
	t.Run("add duplicate", func(t *testing.T) {
		d.run("dns", "add", "gw.example.test", "A", "10.0.10.1").fails(t, 1, "already exists")
	})
	t.Run("daemon rejects name outside zones", func(t *testing.T) {
		d.run("dns", "add", "a.elsewhere", "A", "10.0.0.1").fails(t, 1, `invalid NAME: name: "a.elsewhere" is not in any local zone`)
	})
	t.Run("daemon rejects CNAME clash", func(t *testing.T) {
		d.run("dns", "add", "www.example.test", "A", "10.0.0.1").fails(t, 1, "invalid NAME: name:")
	})
	t.Run("del one value", func(t *testing.T) {
		if out := d.run("dns", "del", "db.example.test", "AAAA", "2001:db8::7").ok(t); out != "deleted db.example.test AAAA 2001:db8::7\n" {
			t.Errorf("output %q", out)
		}
	})
	t.Run("del every value", func(t *testing.T) {
		d.run("dns", "add", "db.example.test", "A", "10.0.10.8").ok(t)
		if out := d.run("-o", "json", "dns", "rm", "db.example.test", "a").ok(t); out != "" {
			t.Errorf("json output %q, want none", out)
		}
		for _, r := range d.ctl.DNS().Records {
			if r.Name == "db.example.test" {
				t.Errorf("record left: %+v", r)
			}
		}
	})
	t.Run("del missing", func(t *testing.T) {
		d.run("dns", "del", "gw.example.test", "PTR").fails(t, 1, "delete record gw.example.test PTR: not found")
	})
}

func TestDNSBadArguments(t *testing.T) {
	d := startDaemon(t)
	before := d.ctl.DNS()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"zone add no name", []string{"zone", "add"}, "accepts 1 arg(s), received 0"},
		{"zone add bad name", []string{"zone", "add", "a..b"}, `invalid NAME: "a..b" has a label that is empty`},
		{"zone add blank", []string{"zone", "add", "a b"}, `invalid NAME: "a b" has a blank`},
		{"zone add root", []string{"zone", "add", "."}, `invalid NAME: "." is empty`},
		{"zone add long label", []string{"zone", "add", strings.Repeat("x", 64) + ".test"}, "invalid NAME"},
		{"zone add mname", []string{"zone", "add", "z.test", "--mname", "a..b"}, "invalid --mname"},
		{"zone add rname", []string{"zone", "add", "z.test", "--rname", "x y"}, "invalid --rname"},
		{"zone add serial", []string{"zone", "add", "z.test", "--serial", "-1"}, `invalid argument "-1" for "--serial" flag`},
		{"zone add minimum", []string{"zone", "add", "z.test", "--minimum", "5000000000"}, `invalid argument "5000000000" for "--minimum" flag`},
		{"zone del no name", []string{"zone", "del"}, "accepts 1 arg(s), received 0"},
		{"zone unknown subcommand", []string{"zone", "list"}, `unknown command "list" for "vswitchctl dns zone"`},
		{"add too few", []string{"add", "a.example.test", "A"}, "accepts 3 arg(s), received 2"},
		{"add bad name", []string{"add", "a..example.test", "A", "10.0.0.1"}, "invalid NAME"},
		{"add bad type", []string{"add", "a.example.test", "MX", "mx.example.test"}, `invalid TYPE: "MX" is not one of A, AAAA, PTR, CNAME`},
		{"add A with IPv6", []string{"add", "a.example.test", "A", "2001:db8::1"}, `invalid VALUE: "2001:db8::1" is not an IPv4 address (type A)`},
		{"add AAAA with IPv4", []string{"add", "a.example.test", "AAAA", "10.0.0.1"}, `invalid VALUE: "10.0.0.1" is not an IPv6 address (type AAAA)`},
		{"add CNAME bad target", []string{"add", "a.example.test", "CNAME", "x..y"}, "invalid VALUE"},
		{"add ttl", []string{"add", "a.example.test", "A", "10.0.0.1", "--ttl", "2147483648"}, "invalid --ttl: 2147483648 is above 2147483647"},
		{"add ttl not a number", []string{"add", "a.example.test", "A", "10.0.0.1", "--ttl", "1h"}, `invalid argument "1h" for "--ttl" flag`},
		{"del too few", []string{"del", "a.example.test"}, "accepts between 2 and 3 arg(s), received 1"},
		{"del too many", []string{"del", "a.example.test", "A", "10.0.0.1", "x"}, "accepts between 2 and 3 arg(s), received 4"},
		{"del bad type", []string{"del", "a.example.test", "TXT"}, `invalid TYPE: "TXT"`},
		{"del bad value", []string{"del", "a.example.test", "A", "x"}, `invalid VALUE: "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.run(append([]string{"dns"}, tc.args...)...).fails(t, 2, tc.want)
			after := d.ctl.DNS()
			if len(after.Zones) != len(before.Zones) || len(after.Records) != len(before.Records) {
				t.Error("a bad command changed the daemon's DNS data")
			}
		})
	}
}

func TestStatsPeephole(t *testing.T) {
	d := startDaemon(t)
	t.Run("json has the counters", func(t *testing.T) {
		var st vswitch.Stats
		if err := json.Unmarshal([]byte(d.run("-o", "json", "stats").ok(t)), &st); err != nil {
			t.Fatal(err)
		}
		if st.Peephole.DNS.NXDomain != 4 || st.Peephole.ARP.Passed["unknown_target"] != 3 || st.Peephole.Gleaned != 1 {
			t.Errorf("peephole %+v", st.Peephole)
		}
	})
	t.Run("one port leaves them out", func(t *testing.T) {
		out := d.run("stats", "--port", "eth0").ok(t)
		if strings.Contains(out, "RESPONDER") || strings.Contains(out, "GLEANED") {
			t.Errorf("per-port stats show the responders:\n%s", out)
		}
	})
	t.Run("no passes", func(t *testing.T) {
		d.ctl.SetPeepholeStats(vswitch.PeepholeStats{ARP: vswitch.ResponderStats{Answered: 3}})
		d.ctl.FlushGleaned()
		out := d.run("stats").ok(t)
		want := `
RESPONDER  ANSWERED  PASSED  MALFORMED  NXDOMAIN  NODATA  GLEANED
arp        3         0       0          -         -       0
nd         0         0       0          -         -       0
dns        0         0       0          0         0       -

GLEANED BINDINGS  0
`
		if !strings.HasSuffix(out, strings.TrimPrefix(want, "\n")) || strings.Contains(out, "PASSED-BY") {
			t.Errorf("output ends:\n%s\nwant:\n%s", out[max(0, len(out)-len(want)-40):], want)
		}
	})
}

func TestPeepholeCompletion(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"arp del addresses", []string{"arp", "del", ""}, "10.0.10.1\n10.0.10.5\n10.0.20.7\n"},
		{"nd del addresses", []string{"nd", "del", ""}, "2001:db8:10::1\n"},
		{"arp add kind", []string{"arp", "add", "10.0.0.1", "02:00:00:00:00:01", "--kind", ""}, "static\ngateway\n"},
		{"arp add port", []string{"arp", "add", "10.0.0.1", "02:00:00:00:00:01", "--port", ""}, "eth0\neth1\n"},
		{"dns add type", []string{"dns", "add", "a.example.test", ""}, "A\nAAAA\nPTR\nCNAME\n"},
		{"dns zone del", []string{"dns", "zone", "del", ""}, "example.test\n"},
		{"dns del names", []string{"dns", "del", ""}, "gw.example.test\nwww.example.test\n"},
		{"dns del types", []string{"dns", "del", "gw.example.test", ""}, "A\nAAAA\n"},
		{"dns del values", []string{"dns", "del", "gw.example.test", "A", ""}, "10.0.10.1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// __complete reports its directive on stderr, so only stdout counts.
			out := d.run(append([]string{"__complete"}, tc.args...)...).stdout
			if !strings.HasPrefix(out, tc.want) {
				t.Errorf("completion %q, want %q first", out, tc.want)
			}
		})
	}
}
