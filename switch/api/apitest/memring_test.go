package apitest

import (
	"errors"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
)

func TestAddMemringPort(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		name string
		spec vswitch.PortSpec
		err  string // "" = accepted
	}{
		{"defaults", vswitch.PortSpec{Name: "m1", Type: vswitch.PortMemring}, ""},
		{"second without interface", vswitch.PortSpec{Name: "m2", Type: vswitch.PortMemring, Memring: &vswitch.MemringSpec{QueuePairs: 2}}, ""},
		{"duplicate", vswitch.PortSpec{Name: "m1", Type: vswitch.PortMemring}, `add port "m1": already exists`},
		{"interface", vswitch.PortSpec{Name: "m3", Type: vswitch.PortMemring, Interface: "eth0"}, "interface: a memring port has no interface"},
		{"bad ring size", vswitch.PortSpec{Name: "m3", Type: vswitch.PortMemring, Memring: &vswitch.MemringSpec{RingSize: 100}},
			"memring.ring_size: 100 is not a power of two in 64..32768"},
		{"memring on afxdp", vswitch.PortSpec{Name: "x", Interface: "eth0", Memring: &vswitch.MemringSpec{}}, "memring: only for type memring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := c.AddPort(tc.spec)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("AddPort = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.State != "detached" || info.Ifindex != 0 || info.MAC != "" || info.Queues != nil || info.PeerPID != 0 {
				t.Errorf("new memring port %+v, want detached without link fields", info)
			}
			if info.Memring == nil || info.Memring.RingSize != 1024 || info.Memring.FrameSize != 2048 {
				t.Errorf("defaults not filled: %+v", info.Memring)
			}
		})
	}
}

func TestAttachMemring(t *testing.T) {
	c := NewSampleMemring()
	before := c.Ports()
	if err := c.DetachMemring("vm1"); err != nil {
		t.Fatal(err)
	}
	if p := c.Ports()[2]; p.State != "detached" || p.PeerPID != 0 || p.Hugepages || p.Queues != nil {
		t.Errorf("after detach %+v", p)
	}
	if p := before[2]; p.State != "attached" || p.PeerPID != 777 || len(p.Queues) != 2 {
		t.Errorf("detach changed an earlier copy: %+v", p)
	}
	if err := c.AttachMemring("vm2", 9, false); err != nil {
		t.Fatal(err)
	}
	if p := c.Ports()[3]; p.State != "attached" || p.PeerPID != 9 || len(p.Queues) != 1 {
		t.Errorf("after attach %+v", p)
	}
	if err := c.AttachMemring("eth0", 9, false); err == nil {
		t.Error("attached an AF_XDP port")
	}
	if err := c.DetachMemring("nope"); !errors.Is(err, vswitch.ErrNotFound) {
		t.Errorf("detach of no port = %v", err)
	}
}

func TestSampleMemringKeepsSample(t *testing.T) {
	// NewSampleMemring is NewSample plus the memring ports: nothing of the
	// sample that golden outputs rest on changes.
	s, m := NewSample(), NewSampleMemring()
	if s.Status().Generation != m.Status().Generation {
		t.Errorf("generation %d, sample has %d", m.Status().Generation, s.Status().Generation)
	}
	if n := len(m.Ports()); n != 4 {
		t.Errorf("%d ports, want 4", n)
	}
	if n := len(m.Stats().Ports); n != 4 {
		t.Errorf("stats of %d ports, want 4", n)
	}
}
