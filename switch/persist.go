package vswitch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// state is what the daemon records of runtime changes.
type state struct {
	Ports []PortSpec `json:"ports"`
	// Peephole is nil in a state file written before the responders had
	// runtime tables; the config file's tables apply then.
	Peephole *statePeephole `json:"peephole,omitempty"`
	// Router holds the runtime routes and ACL; nil when the state file
	// predates them or there is no router.
	Router *stateRouter `json:"router,omitempty"`
}

// stateRouter is the runtime part of the router config.
type stateRouter struct {
	Routes []RouteSpec `json:"routes"`
	ACL    ACLSpec     `json:"acl"`
}

// statePeephole is the runtime part of the peephole config.
type statePeephole struct {
	Bindings []BindingSpec `json:"bindings"`
	DNS      DNSSpec       `json:"dns"`
}

// loadState reads the state file; a missing file is (nil, nil).
func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	// The state file is checked like a config file: every port valid, no
	// name or interface twice.
	c := &Config{Ports: st.Ports}
	if st.Peephole != nil {
		c.Peephole.Bindings, c.Peephole.DNS = st.Peephole.Bindings, st.Peephole.DNS
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return st, nil
}

// saveLocked writes the live port list atomically (temp file + rename).
// Caller holds sw.mu.
func (sw *Switch) saveLocked() error {
	if !sw.persist {
		return nil
	}
	st := state{Ports: []PortSpec{}, Peephole: &statePeephole{Bindings: sw.ph.spec.Bindings, DNS: sw.DNS()}}
	if sw.rt != nil {
		st.Router = &stateRouter{Routes: sw.rt.spec.Routes, ACL: sw.rt.spec.ACL}
		if st.Router.Routes == nil {
			st.Router.Routes = []RouteSpec{}
		}
	}
	if st.Peephole.Bindings == nil {
		st.Peephole.Bindings = []BindingSpec{}
	}
	for _, p := range sw.live {
		st.Ports = append(st.Ports, p.spec)
	}
	idx := map[string]uint16{}
	for _, p := range sw.live {
		idx[p.spec.Name] = p.index
	}
	sort.Slice(st.Ports, func(i, j int) bool { return idx[st.Ports[i].Name] < idx[st.Ports[j].Name] })
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	path := sw.cfg.StateFile
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
