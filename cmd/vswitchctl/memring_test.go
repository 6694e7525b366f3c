package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

func startMemringDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, apitest.NewSampleMemring())
}

const memringTable = `
NAME  INDEX  STATE     PID  QUEUE-PAIRS  RING-SIZE  FRAME-SIZE  HUGEPAGES  UIDS  GIDS     VLAN       BAD-DESC  CORRUPT
vm1   3      attached  777  2            512        2048        yes        1000  100,101  access 10  12        1
vm2   4      detached  -    1            1024       2048        -          -     -        -          0         0
`

func TestMemringList(t *testing.T) {
	d := startMemringDaemon(t)
	t.Run("table", func(t *testing.T) { golden(t, d.run("memring", "list").ok(t), memringTable) })
	t.Run("alias", func(t *testing.T) { golden(t, d.run("memring", "ls").ok(t), memringTable) })
	t.Run("json", func(t *testing.T) {
		out := d.run("-o", "json", "memring", "list").ok(t)
		var got []memringPort
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		ports := d.ctl.Ports()
		want := []memringPort{{PortInfo: ports[2], MemringBadDesc: 12, MemringCorrupt: 1}, {PortInfo: ports[3]}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("json decoded to %+v, want %+v", got, want)
		}
		// The counters keep the names they have in the stats API.
		for _, key := range []string{`"memring_bad_desc": 12`, `"memring_corrupt": 1`, `"state": "attached"`, `"peer_pid": 777`} {
			if !strings.Contains(out, key) {
				t.Errorf("json lacks %s:\n%s", key, out)
			}
		}
	})
	t.Run("detach shows at once", func(t *testing.T) {
		if err := d.ctl.DetachMemring("vm1"); err != nil {
			t.Fatal(err)
		}
		out := d.run("memring", "list").ok(t)
		if !strings.Contains(out, "vm1   3      detached  -    2") {
			t.Errorf("vm1 not shown detached:\n%s", out)
		}
	})
	t.Run("none", func(t *testing.T) {
		d := startDaemon(t)
		golden(t, d.run("memring", "list").ok(t), `
NAME  INDEX  STATE  PID  QUEUE-PAIRS  RING-SIZE  FRAME-SIZE  HUGEPAGES  UIDS  GIDS  VLAN  BAD-DESC  CORRUPT
`)
		if out := d.run("-o", "json", "memring", "list").ok(t); out != "[]\n" {
			t.Errorf("json output %q, want []", out)
		}
	})
	t.Run("extra argument", func(t *testing.T) {
		d.run("memring", "list", "vm1").fails(t, 2, `unknown command "vm1" for "vswitchctl memring list"`)
	})
}

func TestPortListShowsMemring(t *testing.T) {
	d := startMemringDaemon(t)
	golden(t, d.run("port", "list").ok(t), `
NAME  TYPE     INTERFACE  IFINDEX  MAC                STATE     XDP     BIND      QUEUES  RING  WORKERS  VLAN
eth0  afxdp    eth0       2        02:00:00:00:01:01  up        native  copy      0       2048  0        access 10
eth1  afxdp    eth1       3        02:00:00:00:01:02  up        native  zerocopy  0,1     2048  0,1      trunk 10,20 native 1
vm1   memring  -          -        -                  attached  -       -         0,1     512   0,1      access 10
vm2   memring  -          -        -                  detached  -       -         -       1024  -        -
`)
}

func TestMemringAdd(t *testing.T) {
	d := startMemringDaemon(t)
	last := func() vswitch.PortSpec {
		ports := d.ctl.Ports()
		return ports[len(ports)-1].PortSpec
	}
	t.Run("defaults", func(t *testing.T) {
		golden(t, d.run("memring", "add", "c1").ok(t), `
NAME  INDEX  STATE     PID  QUEUE-PAIRS  RING-SIZE  FRAME-SIZE  HUGEPAGES  UIDS  GIDS  VLAN  BAD-DESC  CORRUPT
c1    5      detached  -    1            1024       2048        -          -     -     -     0         0
`)
		want := vswitch.PortSpec{Name: "c1", Type: "memring", Memring: &vswitch.MemringSpec{QueuePairs: 1, RingSize: 1024, FrameSize: 2048}}
		if got := last(); !reflect.DeepEqual(got, want) {
			t.Errorf("daemon got spec %+v, want %+v", got, want)
		}
	})
	t.Run("every flag", func(t *testing.T) {
		d.run("memring", "add", "c2", "--queue-pairs", "4", "--ring-size", "4096", "--frame-size", "4096",
			"--uid", "1000,1001", "--uid", "1002", "--gid", "100", "--vlan-mode", "trunk", "--vlan-allowed", "10,20", "--vlan-native", "5", "--spoof-guard").ok(t)
		want := vswitch.PortSpec{Name: "c2", Type: "memring", SpoofGuard: true,
			VLAN:    &vswitch.VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 5},
			Memring: &vswitch.MemringSpec{QueuePairs: 4, RingSize: 4096, FrameSize: 4096, UIDs: []uint32{1000, 1001, 1002}, GIDs: []uint32{100}}}
		if got := last(); !reflect.DeepEqual(got, want) {
			t.Errorf("daemon got spec %+v, want %+v", got, want)
		}
	})
	t.Run("access json", func(t *testing.T) {
		out := d.run("-o", "json", "memring", "add", "c3", "--vlan-mode", "access", "--vlan-tag", "30").ok(t)
		var info vswitch.PortInfo
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatal(err)
		}
		if info.Name != "c3" || info.Type != "memring" || info.State != "detached" || info.VLAN == nil || info.VLAN.Tag != 30 || info.Memring == nil || info.Memring.QueuePairs != 1 {
			t.Errorf("info %+v", info)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		d.run("memring", "add", "vm1").fails(t, 1, `add port "vm1": already exists`)
		d.run("memring", "add", "eth0").fails(t, 1, `add port "eth0": already exists`)
	})
}

func TestMemringAddBadArguments(t *testing.T) {
	d := startMemringDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no name", nil, "accepts 1 arg(s), received 0"},
		{"two names", []string{"a", "b"}, "accepts 1 arg(s), received 2"},
		{"bad name", []string{"p/1"}, "invalid NAME: name:"},
		{"name starts with dot", []string{".p"}, "invalid NAME: name:"},
		{"queue pairs zero", []string{"p", "--queue-pairs", "0"}, "invalid --queue-pairs: memring.queue_pairs: 0 is not in 1..16"},
		{"queue pairs too many", []string{"p", "--queue-pairs", "17"}, "invalid --queue-pairs: memring.queue_pairs: 17 is not in 1..16"},
		{"queue pairs not a number", []string{"p", "--queue-pairs", "two"}, `invalid argument "two" for "--queue-pairs" flag`},
		{"ring size not a power of two", []string{"p", "--ring-size", "1000"}, "invalid --ring-size: memring.ring_size: 1000 is not a power of two"},
		{"ring size too small", []string{"p", "--ring-size", "32"}, "invalid --ring-size"},
		{"frame size", []string{"p", "--frame-size", "1024"}, "invalid --frame-size: memring.frame_size: 1024 is not a power of two in 2048..16384"},
		{"negative uid", []string{"p", "--uid", "-1"}, `invalid argument "-1" for "--uid" flag`},
		{"uid over 32 bits", []string{"p", "--uid", "4294967296"}, "invalid --uid: 4294967296 is not in 0..4294967295"},
		{"gid over 32 bits", []string{"p", "--gid", "1,4294967296"}, "invalid --gid: 4294967296"},
		{"gid not a number", []string{"p", "--gid", "wheel"}, `invalid argument "wheel" for "--gid" flag`},
		{"vlan mode", []string{"p", "--vlan-mode", "hybrid"}, "invalid --vlan-mode: vlan.mode:"},
		{"access without tag", []string{"p", "--vlan-mode", "access"}, "invalid --vlan-tag: vlan.tag: 0 is not in 1..4094"},
		{"tag without mode", []string{"p", "--vlan-tag", "10"}, "--vlan-tag needs --vlan-mode"},
		{"allowed too big", []string{"p", "--vlan-mode", "trunk", "--vlan-allowed", "5000"}, "invalid --vlan-allowed: 5000"},
		{"allowed zero", []string{"p", "--vlan-mode", "trunk", "--vlan-allowed", "10,0"}, "invalid --vlan-allowed: vlan.allowed[1]"},
		{"no interface flag", []string{"p", "--interface", "eth5"}, "unknown flag: --interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.run(append([]string{"memring", "add"}, tc.args...)...).fails(t, 2, tc.want)
			if n := len(d.ctl.Ports()); n != 4 {
				t.Errorf("daemon has %d ports: a bad command reached it", n)
			}
		})
	}
}

func TestMemringDel(t *testing.T) {
	d := startMemringDaemon(t)
	if out := d.run("memring", "del", "vm1").ok(t); out != "deleted memring port vm1\n" {
		t.Errorf("output %q", out)
	}
	if out := d.run("-o", "json", "memring", "rm", "vm2").ok(t); out != "" {
		t.Errorf("json output %q, want none", out)
	}
	for _, p := range d.ctl.Ports() {
		if p.Type == vswitch.PortMemring {
			t.Errorf("port %s left", p.Name)
		}
	}
	d.run("memring", "del", "eth0").fails(t, 1,
		`delete memring port "eth0": eth0 is a port of type afxdp, not memring (use 'vswitchctl port del eth0')`)
	if n := len(d.ctl.Ports()); n != 2 {
		t.Errorf("%d ports left, want eth0 and eth1 untouched", n)
	}
	d.run("memring", "del", "nope").fails(t, 1, `delete memring port "nope": not found`)
	d.run("memring", "del").fails(t, 2, "accepts 1 arg(s), received 0")
	d.run("memring", "del", "a", "b").fails(t, 2, "accepts 1 arg(s), received 2")

	// port del takes any kind of port.
	d = startMemringDaemon(t)
	d.run("port", "del", "vm1").ok(t)
}

func TestMemringStats(t *testing.T) {
	d := startMemringDaemon(t)
	t.Run("table", func(t *testing.T) {
		out := d.run("stats").ok(t)
		// AF_XDP socket counters only for AF_XDP ports; memring counters
		// only for memring ports.
		for _, want := range []string{`
PORT  XSK-RX-DROPPED  XSK-RX-RING-FULL  XSK-FILL-RING-EMPTY  XSK-TX-INVALID
eth0  1               2                 3                    4
eth1  0               0                 0                    0

PORT  MEMRING-BAD-DESC  MEMRING-CORRUPT
vm1   12                1
vm2   0                 0

WORKER`, "vm1   300      19200     30      250      16000     25      3\n", "port vm1   no_fdb         3\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stats lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("one memring port", func(t *testing.T) {
		golden(t, d.run("stats", "--port", "vm1").ok(t), `
PORT  RX-PKTS  RX-BYTES  RX-PPS  TX-PKTS  TX-BYTES  TX-PPS  DROPS
vm1   300      19200     30      250      16000     25      3

PORT  MEMRING-BAD-DESC  MEMRING-CORRUPT
vm1   12                1

DROPS-AT  REASON  COUNT
port vm1  no_fdb  3
`)
	})
	t.Run("no memring table without memring ports", func(t *testing.T) {
		if out := startDaemon(t).run("stats").ok(t); strings.Contains(out, "MEMRING") {
			t.Errorf("memring columns without memring ports:\n%s", out)
		}
		if out := d.run("stats", "--port", "eth0").ok(t); strings.Contains(out, "MEMRING") {
			t.Errorf("memring columns for an AF_XDP port:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) { sameJSON(t, d.run("-o", "json", "stats").ok(t), d.ctl.Stats()) })
}

func TestMemringCompletion(t *testing.T) {
	d := startMemringDaemon(t)
	// __complete reports its directive on stderr, so only stdout counts.
	out := d.run("__complete", "memring", "del", "").stdout
	if !strings.HasPrefix(out, "vm1\nvm2\n:") {
		t.Errorf("completion %q, want only the memring ports", out)
	}
	if out := d.run("__complete", "memring", "add", "p", "--vlan-mode", "").stdout; !strings.Contains(out, "access\ntrunk\n") {
		t.Errorf("--vlan-mode completion %q", out)
	}
	if out := d.run("__complete", "port", "del", "").stdout; !strings.Contains(out, "eth0\neth1\nvm1\nvm2\n") {
		t.Errorf("port del completion %q lacks memring ports", out)
	}
}
