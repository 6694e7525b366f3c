package e2e

import (
	"os"
	"strings"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
)

// TestVswitchdConfigParses holds the harness to the daemon's config contract:
// the rendered file must pass the daemon's own parser and mean what we meant.
func TestVswitchdConfigParses(t *testing.T) {
	n := NewNames(4194304) // largest default pid_max
	c := VswitchdConfig{
		APISocket:   "/tmp/vsb-123/vswitchd.sock",
		StateFile:   "/tmp/vsb-123/state.json",
		WorkerCPU:   1,
		ControlCPUs: []int{0, 2},
		PollMode:    "busy",
		RingSize:    256,
		Ports:       []VswitchdPort{{"p0", n.P0}, {"p1", n.P1}},
	}
	text := c.Render()
	cfg, err := vswitch.ParseConfig(text)
	if err != nil {
		t.Fatalf("daemon rejects the config: %v\n%s", err, text)
	}
	if cfg.APISocket != c.APISocket || cfg.StateFile != c.StateFile {
		t.Errorf("paths %q %q", cfg.APISocket, cfg.StateFile)
	}
	if cfg.Workers.Count != 1 || len(cfg.Workers.CPUs) != 1 || cfg.Workers.CPUs[0] != 1 || cfg.Workers.PollMode != vswitch.PollBusy {
		t.Errorf("workers %+v", cfg.Workers)
	}
	if len(cfg.Workers.ControlCPUs) != 2 || cfg.Workers.ControlCPUs[0] != 0 || cfg.Workers.ControlCPUs[1] != 2 {
		t.Errorf("control cpus %v, want [0 2]", cfg.Workers.ControlCPUs)
	}
	if len(cfg.Ports) != 2 || cfg.Ports[0].Name != "p0" || cfg.Ports[0].Interface != n.P0 ||
		cfg.Ports[1].Name != "p1" || cfg.Ports[1].Interface != n.P1 {
		t.Errorf("ports %+v", cfg.Ports)
	}
	for _, p := range cfg.Ports {
		if p.RingSize != 256 {
			t.Errorf("port %s ring_size %d, want 256", p.Name, p.RingSize)
		}
	}
	if !strings.HasPrefix(string(text), "#") {
		t.Error("config has no header comment saying who wrote it")
	}
}

func TestNames(t *testing.T) {
	for _, pid := range []int{1, 4242, 4194304} {
		n := NewNames(pid)
		for _, ifn := range []string{n.P0, n.P1, n.S0, n.D1, n.Bridge} {
			if len(ifn) > 15 {
				t.Errorf("pid %d: interface name %q is longer than 15 bytes", pid, ifn)
			}
			if !strings.HasPrefix(ifn, NamePrefix) {
				t.Errorf("pid %d: %q lacks the prefix", pid, ifn)
			}
		}
		for _, ns := range []string{n.SrcNS, n.DstNS} {
			id, ok := leftoverID(ns)
			if !ok || id != n.ID {
				t.Errorf("leftoverID(%q) = %q, %v; want %q", ns, id, ok, n.ID)
			}
		}
	}
	if a, b := NewNames(100), NewNames(101); a.P0 == b.P0 || a.SrcNS == b.SrcNS {
		t.Error("different pids give the same names")
	}
	for _, s := range []string{"vsb-src", "other-src", "vsbabc", "vsbabc-foo"} {
		if _, ok := leftoverID(s); ok {
			t.Errorf("leftoverID(%q) accepted", s)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	good := func() Options {
		return Options{Cases: DefaultCases, Sizes: []int{64}, Flows: []int{1}, Reps: 1, Duration: 1e9,
			GenCPU: 0, SwCPU: 0, GenCommand: []string{"x", "gen"}}
	}
	o := good()
	if err := o.Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
	}{
		{"unknown case", func(o *Options) { o.Cases = []string{"vpp"} }},
		{"bad size", func(o *Options) { o.Sizes = []int{40} }},
		{"no reps", func(o *Options) { o.Reps = 0 }},
		{"bad cpu", func(o *Options) { o.GenCPU = 4096 }},
		{"no gen command", func(o *Options) { o.GenCommand = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mod(&o)
			if err := o.Validate(); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Fatal("own process reported dead")
	}
	if processAlive(1 << 30) { // above any pid_max
		t.Fatal("impossible pid reported alive")
	}
}
