package vswitch

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// persistSwitch is the least of a Switch that saveLocked needs: the state
// file path, the live ports and the persist flag.
func persistSwitch(path string, ports ...*afxdpPort) *Switch {
	sw := &Switch{cfg: &Config{StateFile: path}, live: map[string]*afxdpPort{}, persist: true}
	var ph PeepholeSpec
	ph.SetDefaults()
	if err := sw.initPeephole(ph); err != nil {
		panic(err)
	}
	for _, p := range ports {
		sw.live[p.spec.Name] = p
	}
	return sw
}

func livePort(index uint16, spec PortSpec) *afxdpPort {
	spec.SetDefaults()
	return &afxdpPort{spec: spec, index: index}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "vswitch", "state.json") // directories made on save
	ports := []*afxdpPort{
		livePort(7, PortSpec{Interface: "veth7"}),
		livePort(0, PortSpec{Name: "uplink", Interface: "eth0", XDPMode: "skb", Bind: "copy", Queues: 2,
			VLAN: &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}}),
		livePort(3, PortSpec{Interface: "veth3", VLAN: &VLANSpec{Mode: "access", Tag: 10}}),
	}
	sw := persistSwitch(path, ports...)
	if err := sw.saveLocked(); err != nil {
		t.Fatalf("saveLocked: %v", err)
	}
	st, err := loadState(path)
	if err != nil {
		t.Fatalf("loadState: %v", err)
	}
	// Ports come back in index order, specs unchanged.
	want := []PortSpec{ports[1].spec, ports[2].spec, ports[0].spec}
	if st == nil || !reflect.DeepEqual(st.Ports, want) {
		t.Fatalf("loadState = %+v, want ports %+v", st, want)
	}
	// Saving again replaces the file and leaves no temporary file behind.
	delete(sw.live, "veth7")
	if err := sw.saveLocked(); err != nil {
		t.Fatal(err)
	}
	if st, err = loadState(path); err != nil || len(st.Ports) != 2 {
		t.Fatalf("after delete: %+v, %v", st, err)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "state.json" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("state directory holds %v, want only state.json", names)
	}
}

// TestStateNoPorts: deleting the last port must be recorded as an empty
// list, which wins over the config file's ports at the next start.
func TestStateNoPorts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := persistSwitch(path).saveLocked(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || string(raw["ports"]) != "[]" {
		t.Fatalf("state file %q: ports %q, %v; want []", data, raw["ports"], err)
	}
	st, err := loadState(path)
	if err != nil || st == nil || len(st.Ports) != 0 {
		t.Fatalf("loadState = %+v, %v; want an empty, non-nil state", st, err)
	}
}

func TestStateNotPersisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	sw := persistSwitch(path, livePort(0, PortSpec{Interface: "eth0"}))
	sw.persist = false
	if err := sw.saveLocked(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file written while persistence is off: %v", err)
	}
}

func TestStateSaveError(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sw := persistSwitch(filepath.Join(blocker, "state.json"), livePort(0, PortSpec{Interface: "eth0"}))
	if err := sw.saveLocked(); err == nil || !strings.HasPrefix(err.Error(), "save state: ") {
		t.Fatalf("saveLocked under a regular file: %v", err)
	}
}

func TestLoadState(t *testing.T) {
	tests := []struct {
		name  string
		json  string // "" = no file
		err   string // substring of the error; "" = success
		field string // FieldError.Field suffix, for validation errors
		ports []PortSpec
	}{
		{name: "missing_file"},
		{name: "corrupt", json: `{"ports": [{"interface": "eth0"`, err: "parse state"},
		{name: "not_json", json: "ports:\n  - interface: eth0\n", err: "parse state"},
		{name: "wrong_type", json: `{"ports": {"interface": "eth0"}}`, err: "parse state"},
		{name: "vlan_overflow", json: `{"ports": [{"interface": "eth0", "vlan": {"mode": "access", "tag": 70000}}]}`, err: "parse state"},
		{name: "empty_object", json: `{}`},
		{name: "defaults_filled", json: `{"ports": [{"interface": "eth0"}]}`,
			ports: []PortSpec{{Name: "eth0", Interface: "eth0", Type: "afxdp", XDPMode: "native", Bind: "auto", RingSize: DefaultRingSize}}},
		{name: "bad_interface", json: `{"ports": [{"interface": "eth0"}, {"name": "x"}]}`,
			err: "ports[1].interface", field: "ports[1].interface"},
		{name: "bad_vlan_tag", json: `{"ports": [{"interface": "eth0", "vlan": {"mode": "access", "tag": 5000}}]}`,
			err: "ports[0].vlan.tag", field: "ports[0].vlan.tag"},
		{name: "bad_bind", json: `{"ports": [{"interface": "eth0", "bind": "turbo"}]}`,
			err: "ports[0].bind", field: "ports[0].bind"},
		{name: "bad_name", json: `{"ports": [{"interface": "eth0", "name": "a/b"}]}`,
			err: "ports[0].name", field: "ports[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tt.json != "" {
				if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			st, err := loadState(path)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("loadState = %+v, want an error with %q", st, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name %q and the file", err, tt.err)
				}
				var fe *FieldError
				if tt.field != "" && (!errors.As(err, &fe) || !strings.HasSuffix(fe.Field, tt.field)) {
					t.Fatalf("error %q is not a FieldError naming %q", err, tt.field)
				}
				if st != nil {
					t.Fatalf("error with a non-nil state %+v", st)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadState: %v", err)
			}
			if tt.json == "" {
				if st != nil {
					t.Fatalf("missing file gave state %+v, want nil", st)
				}
				return
			}
			if st == nil || !reflect.DeepEqual(st.Ports, tt.ports) {
				t.Fatalf("loadState = %+v, want ports %+v", st, tt.ports)
			}
		})
	}
}

func TestLoadStateUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory is not a readable state file
	if _, err := loadState(dir); err == nil || !strings.HasPrefix(err.Error(), "read state: ") {
		t.Fatalf("loadState of a directory: %v", err)
	}
}
