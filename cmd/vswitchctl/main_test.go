package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// daemon is an API server backed by the sample fake switch.
type daemon struct {
	ctl    *apitest.Control
	socket string
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, apitest.NewSample())
}

// startDaemonWith serves ctl.
func startDaemonWith(t *testing.T, ctl *apitest.Control) *daemon {
	t.Helper()
	// A short dir: sun_path is 107 bytes and t.TempDir grows with test names.
	dir, err := os.MkdirTemp("", "vsctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemon{ctl: ctl, socket: filepath.Join(dir, "api.sock")}
	srv := api.NewServer(d.ctl, zaptest.NewLogger(t))
	if err := srv.Serve(d.socket, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return d
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs vswitchctl in-process against the daemon.
func (d *daemon) run(args ...string) result {
	var out, errOut bytes.Buffer
	code := run(append([]string{"--socket", d.socket}, args...), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr not empty:\n%s", r.stderr)
	}
	return r.stdout
}

// fails checks the exit code and that stderr is "vswitchctl: ..." holding want.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr:\n%s", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "vswitchctl: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want \"vswitchctl: ...%s...\"", r.stderr, want)
	}
}

// sameJSON checks that out is the pretty form of want's JSON encoding: the
// API's JSON, indented.
func sameJSON(t *testing.T, out string, want any) {
	t.Helper()
	w, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(w)+"\n" {
		t.Errorf("json output:\n%s\nwant:\n%s", out, w)
	}
}

func golden(t *testing.T, got, want string) {
	t.Helper()
	want = strings.TrimPrefix(want, "\n")
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatus(t *testing.T) {
	d := startDaemon(t)
	t.Run("table", func(t *testing.T) {
		golden(t, d.run("status").ok(t), `
VERSION      test
PID          4242
STARTED      `+apitest.Started.Local().Format(time.RFC3339)+`
UPTIME       1h2m3s
WORKERS      2
POLL MODE    adaptive
PORTS        2
FDB ENTRIES  3
GENERATION   5
`)
	})
	t.Run("json", func(t *testing.T) {
		out := d.run("-o", "json", "status").ok(t)
		sameJSON(t, out, d.ctl.Status())
		var st vswitch.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || !reflect.DeepEqual(st, d.ctl.Status()) {
			t.Errorf("decoded %+v (%v), want %+v", st, err, d.ctl.Status())
		}
	})
}

func TestVersion(t *testing.T) {
	d := startDaemon(t)
	t.Run("table", func(t *testing.T) {
		out := d.run("version").ok(t)
		for _, want := range []string{"Client: " + vswitch.Version + " (go", "Server: " + vswitch.Version + " (go", "api v1"} {
			if !strings.Contains(out, want) {
				t.Errorf("output %q lacks %q", out, want)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		var v versionOutput
		if err := json.Unmarshal([]byte(d.run("-o", "json", "version").ok(t)), &v); err != nil {
			t.Fatal(err)
		}
		if v.Client.Version != vswitch.Version || v.Server == nil || v.Server.API != "v1" {
			t.Errorf("version %+v", v)
		}
	})
	t.Run("daemon down", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"--socket", "/nonexistent/vs.sock", "version"}, &out, &errOut)
		if code != 1 || !strings.Contains(out.String(), "Client: ") || !strings.Contains(errOut.String(), "cannot reach vswitchd") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
		out.Reset()
		errOut.Reset()
		if code := run([]string{"--socket", "/nonexistent/vs.sock", "version", "--client"}, &out, &errOut); code != 0 || strings.Contains(out.String(), "Server") {
			t.Errorf("--client: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	})
}

const portTable = `
NAME  TYPE   INTERFACE  IFINDEX  MAC                STATE  XDP     BIND      QUEUES  RING  WORKERS  VLAN
eth0  afxdp  eth0       2        02:00:00:00:01:01  up     native  copy      0       2048  0        access 10
eth1  afxdp  eth1       3        02:00:00:00:01:02  up     native  zerocopy  0,1     2048  0,1      trunk 10,20 native 1
`

func TestPortList(t *testing.T) {
	d := startDaemon(t)
	t.Run("table", func(t *testing.T) { golden(t, d.run("port", "list").ok(t), portTable) })
	t.Run("alias", func(t *testing.T) { golden(t, d.run("port", "ls").ok(t), portTable) })
	t.Run("json", func(t *testing.T) { sameJSON(t, d.run("port", "list", "-o", "json").ok(t), d.ctl.Ports()) })
}

func TestPortAdd(t *testing.T) {
	d := startDaemon(t)
	t.Run("every flag", func(t *testing.T) {
		out := d.run("port", "add", "up1", "--interface", "eth5", "--xdp-mode", "skb", "--bind", "copy", "--queues", "2", "--ring-size", "1024",
			"--vlan-mode", "trunk", "--vlan-allowed", "10,20", "--vlan-allowed", "30", "--vlan-native", "5", "--spoof-guard").ok(t)
		golden(t, out, `
NAME  TYPE   INTERFACE  IFINDEX  MAC                STATE  XDP  BIND  QUEUES  RING  WORKERS  VLAN
up1   afxdp  eth5       4        02:00:00:00:01:03  up     skb  copy  0,1     1024  0,1      trunk 10,20,30 native 5
`)
		ports := d.ctl.Ports()
		got := ports[len(ports)-1].PortSpec
		want := vswitch.PortSpec{Name: "up1", Interface: "eth5", Type: "afxdp", XDPMode: "skb", Bind: "copy", Queues: 2, RingSize: 1024,
			VLAN: &vswitch.VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20, 30}, Native: 5}, SpoofGuard: true}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("daemon got spec %+v, want %+v", got, want)
		}
	})
	t.Run("access json", func(t *testing.T) {
		out := d.run("-o", "json", "port", "add", "acc", "--interface", "eth6", "--vlan-mode", "access", "--vlan-tag", "30").ok(t)
		var info vswitch.PortInfo
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatal(err)
		}
		if info.Name != "acc" || info.VLAN == nil || info.VLAN.Tag != 30 || info.State != "up" {
			t.Errorf("info %+v", info)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		d.run("port", "add", "eth0", "--interface", "eth9").fails(t, 1, `add port "eth0": already exists`)
	})
}

func TestPortAddBadArguments(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"--interface", "eth5"}, "accepts 1 arg(s), received 0"},
		{"two names", []string{"a", "b", "--interface", "eth5"}, "accepts 1 arg(s), received 2"},
		{"no interface", []string{"p"}, "required flag --interface not set"},
		{"long interface", []string{"p", "--interface", "a-very-long-interface"}, "invalid --interface: interface:"},
		{"bad name", []string{"p/1", "--interface", "eth5"}, "invalid NAME: name:"},
		{"xdp mode", []string{"p", "--interface", "eth5", "--xdp-mode", "turbo"}, `invalid --xdp-mode: xdp_mode: "turbo" is not one of native, skb`},
		{"bind", []string{"p", "--interface", "eth5", "--bind", "fast"}, "invalid --bind: bind:"},
		{"queues", []string{"p", "--interface", "eth5", "--queues", "-1"}, "invalid --queues: queues:"},
		{"ring size", []string{"p", "--interface", "eth5", "--ring-size", "100"}, "invalid --ring-size: ring_size: 100 is not a power of two"},
		{"queues not a number", []string{"p", "--interface", "eth5", "--queues", "two"}, `invalid argument "two" for "--queues" flag`},
		{"vlan mode", []string{"p", "--interface", "eth5", "--vlan-mode", "hybrid"}, "invalid --vlan-mode: vlan.mode:"},
		{"access without tag", []string{"p", "--interface", "eth5", "--vlan-mode", "access"}, "invalid --vlan-tag: vlan.tag: 0 is not in 1..4094"},
		{"access tag too big", []string{"p", "--interface", "eth5", "--vlan-mode", "access", "--vlan-tag", "4095"}, "invalid --vlan-tag"},
		{"tag over 16 bits", []string{"p", "--interface", "eth5", "--vlan-mode", "access", "--vlan-tag", "70000"}, `invalid argument "70000" for "--vlan-tag" flag`},
		{"tag without mode", []string{"p", "--interface", "eth5", "--vlan-tag", "10"}, "--vlan-tag needs --vlan-mode"},
		{"access with allowed", []string{"p", "--interface", "eth5", "--vlan-mode", "access", "--vlan-tag", "10", "--vlan-allowed", "20"}, "invalid --vlan-mode: vlan: access mode takes only tag"},
		{"trunk with tag", []string{"p", "--interface", "eth5", "--vlan-mode", "trunk", "--vlan-tag", "10"}, "invalid --vlan-tag"},
		{"allowed zero", []string{"p", "--interface", "eth5", "--vlan-mode", "trunk", "--vlan-allowed", "10,0"}, "invalid --vlan-allowed: vlan.allowed[1]"},
		{"allowed too big", []string{"p", "--interface", "eth5", "--vlan-mode", "trunk", "--vlan-allowed", "5000"}, "invalid --vlan-allowed: 5000"},
		{"native too big", []string{"p", "--interface", "eth5", "--vlan-mode", "trunk", "--vlan-native", "4095"}, "invalid --vlan-native"},
		{"unknown flag", []string{"p", "--interface", "eth5", "--vlan", "10"}, "unknown flag: --vlan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.run(append([]string{"port", "add"}, tc.args...)...).fails(t, 2, tc.want)
			if n := len(d.ctl.Ports()); n != 2 {
				t.Errorf("daemon has %d ports: a bad command reached it", n)
			}
		})
	}
}

func TestPortDel(t *testing.T) {
	d := startDaemon(t)
	if out := d.run("port", "del", "eth0").ok(t); out != "deleted port eth0\n" {
		t.Errorf("output %q", out)
	}
	if out := d.run("-o", "json", "port", "rm", "eth1").ok(t); out != "" {
		t.Errorf("json output %q, want none", out)
	}
	if n := len(d.ctl.Ports()); n != 0 {
		t.Errorf("%d ports left", n)
	}
	d.run("port", "del", "nope").fails(t, 1, `delete port "nope": not found`)
	d.run("port", "del").fails(t, 2, "accepts 1 arg(s), received 0")
}

func TestFDBShow(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, `
MAC                VLAN  PORT  TYPE     AGE
02:00:00:00:00:01  10    eth0  learned  2s
02:00:00:00:00:02  10    eth1  learned  12s
02:00:00:00:00:03  20    eth1  static   -
`},
		{"port", []string{"--port", "eth0"}, `
MAC                VLAN  PORT  TYPE     AGE
02:00:00:00:00:01  10    eth0  learned  2s
`},
		{"vlan", []string{"--vlan", "20"}, `
MAC                VLAN  PORT  TYPE    AGE
02:00:00:00:00:03  20    eth1  static  -
`},
		{"vlan zero filters too", []string{"--vlan", "0"}, `
MAC  VLAN  PORT  TYPE  AGE
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, d.run(append([]string{"fdb", "show"}, tc.args...)...).ok(t), tc.want)
		})
	}
	t.Run("json", func(t *testing.T) {
		out := d.run("fdb", "show", "-o", "json", "--port", "eth1").ok(t)
		sameJSON(t, out, d.ctl.FDB()[1:])
	})
	t.Run("bad vlan", func(t *testing.T) {
		d.run("fdb", "show", "--vlan", "4096").fails(t, 2, "invalid --vlan")
		d.run("fdb", "show", "--vlan", "x").fails(t, 2, `invalid argument "x" for "--vlan" flag`)
	})
}

func TestFDBFlush(t *testing.T) {
	d := startDaemon(t)
	if out := d.run("fdb", "flush").ok(t); out != "flushed 2 entries\n" {
		t.Errorf("output %q", out)
	}
	sameJSON(t, d.run("fdb", "flush", "-o", "json").ok(t), map[string]int{"flushed": 0})
}

func TestStats(t *testing.T) {
	d := startDaemon(t)
	t.Run("table", func(t *testing.T) {
		golden(t, d.run("stats").ok(t), `
PORT  RX-PKTS  RX-BYTES  RX-PPS  TX-PKTS  TX-BYTES  TX-PPS  DROPS
eth0  1000     64000     100     900      57600     90      7
eth1  2000     128000    200     1900     121600    190     0

PORT  XSK-RX-DROPPED  XSK-RX-RING-FULL  XSK-FILL-RING-EMPTY  XSK-TX-INVALID
eth0  1               2                 3                    4
eth1  0               0                 0                    0

WORKER  CPU  RX-PKTS  TX-PKTS  FORWARDED  FLOODED  REPLIED  DROPS  POLLS  BUSY%  RX-PPS  TX-PPS
0       2    1500     1400     1300       90       10       7      50000  12.5   150     140
1       -    1500     1400     1400       0        0        0      40000  7.2    150     140

DROPS-AT   REASON         COUNT
port eth0  no_fdb         5
port eth0  vlan_filtered  2
worker 0   no_fdb         5
worker 0   vlan_filtered  2

RESPONDER  ANSWERED  PASSED  MALFORMED  NXDOMAIN  NODATA  GLEANED
arp        40        9       1          -         -       5
nd         12        2       0          -         -       2
dns        30        9       2          4         1       -

PASSED-BY  REASON          COUNT
arp        not_request     6
arp        unknown_target  3
nd         unknown_target  2
dns        outside_zone    9

GLEANED BINDINGS  1
`)
	})
	t.Run("one port", func(t *testing.T) {
		golden(t, d.run("stats", "--port", "eth1").ok(t), `
PORT  RX-PKTS  RX-BYTES  RX-PPS  TX-PKTS  TX-BYTES  TX-PPS  DROPS
eth1  2000     128000    200     1900     121600    190     0

PORT  XSK-RX-DROPPED  XSK-RX-RING-FULL  XSK-FILL-RING-EMPTY  XSK-TX-INVALID
eth1  0               0                 0                    0
`)
	})
	t.Run("json", func(t *testing.T) {
		out := d.run("-o", "json", "stats").ok(t)
		sameJSON(t, out, d.ctl.Stats())
	})
	t.Run("json one port", func(t *testing.T) {
		var st vswitch.Stats
		if err := json.Unmarshal([]byte(d.run("-o", "json", "stats", "--port", "eth0").ok(t)), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Ports) != 1 || st.Ports[0].Name != "eth0" || st.Ports[0].DropsBy["no_fdb"] != 5 || st.Workers != nil {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("unknown port", func(t *testing.T) {
		d.run("stats", "--port", "nope").fails(t, 1, `show stats of port "nope": not found`)
	})
}

func TestGlobalErrors(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad output", []string{"-o", "xml", "status"}, 2, `invalid argument "xml" for "-o, --output" flag: must be table or json`},
		{"bad output long", []string{"status", "--output=yaml"}, 2, `"-o, --output" flag`},
		{"unknown command", []string{"stauts"}, 2, `unknown command "stauts" for "vswitchctl" (did you mean "status"?)`},
		{"unknown subcommand", []string{"port", "lsit"}, 2, `unknown command "lsit" for "vswitchctl port"`},
		{"extra argument", []string{"status", "now"}, 2, `unknown command "now" for "vswitchctl status"`},
		{"unknown flag", []string{"status", "--verbose"}, 2, "unknown flag: --verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := d.run(tc.args...)
			r.fails(t, tc.code, tc.want)
			if !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("usage error without a help hint: %q", r.stderr)
			}
		})
	}
	t.Run("daemon down", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run([]string{"--socket", "/nonexistent/vs.sock", "port", "list"}, &out, &errOut)
		r := result{out.String(), errOut.String(), code}
		r.fails(t, 1, "cannot reach vswitchd at /nonexistent/vs.sock: is it running?")
	})
	t.Run("group without subcommand prints help", func(t *testing.T) {
		if out := d.run("port").ok(t); !strings.Contains(out, "Available Commands:") {
			t.Errorf("output %q", out)
		}
	})
}

func TestSocketFromEnvironment(t *testing.T) {
	d := startDaemon(t)
	t.Setenv(socketEnv, d.socket)
	var out, errOut bytes.Buffer
	if code := run([]string{"status"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// The flag still wins over the environment.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"--socket", "/nonexistent/vs.sock", "status"}, &out, &errOut); code != 1 {
		t.Errorf("--socket did not override %s: exit %d", socketEnv, code)
	}
	t.Setenv(socketEnv, "")
	if got := newRootCmd(&out, &errOut).PersistentFlags().Lookup("socket").DefValue; got != vswitch.DefaultAPISocket {
		t.Errorf("default socket %q, want %q", got, vswitch.DefaultAPISocket)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run([]string{"completion", shell}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "vswitchctl") {
				t.Errorf("exit %d, %d bytes, stderr %q", code, out.Len(), errOut.String())
			}
		})
	}
	t.Run("port names", func(t *testing.T) {
		d := startDaemon(t)
		// __complete reports its directive on stderr, so only stdout counts.
		out := d.run("__complete", "port", "del", "").stdout
		if !strings.Contains(out, "eth0\neth1\n") {
			t.Errorf("completion %q lacks the port names", out)
		}
	})
	t.Run("output values", func(t *testing.T) {
		var out, errOut bytes.Buffer
		run([]string{"__complete", "status", "-o", ""}, &out, &errOut)
		if !strings.Contains(out.String(), "table\njson\n") {
			t.Errorf("completion %q", out.String())
		}
	})
}
