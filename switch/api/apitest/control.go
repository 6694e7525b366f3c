// Package apitest provides an in-memory vswitch.Control for tests of the
// control API, the metrics exporter and vswitchctl, so none of them needs
// root, a NIC or a running datapath.
package apitest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
)

// Control is a fake switch: ports, FDB, bindings, DNS zones and stats held
// in memory. The methods that change something behave like the daemon's
// (validation, ErrExists, ErrNotFound); stats are whatever the test sets.
// Safe for concurrent use.
type Control struct {
	mu        sync.Mutex
	status    vswitch.Status
	ports     []vswitch.PortInfo
	fdb       []vswitch.FDBEntry
	bindings  []vswitch.BindingInfo
	zones     []vswitch.DNSZoneSpec
	records   []vswitch.DNSRecordSpec
	stats     vswitch.Stats
	nextIndex int
}

var _ vswitch.Control = (*Control)(nil)

// Started is the fixed start time of every fake, so outputs are stable.
var Started = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// New returns an empty fake switch with one worker.
func New() *Control {
	return &Control{
		status: vswitch.Status{
			Version:   "test",
			PID:       4242,
			Started:   Started,
			UptimeSec: 3723,
			Workers:   1,
			PollMode:  vswitch.PollAdaptive,
		},
		nextIndex: 1,
	}
}

// NewSample returns a fake with two ports (eth0 access VLAN 10, eth1 trunk),
// three FDB entries, stats for both ports and two workers, four bindings
// (IPv4 gateway and static, IPv6 gateway, one gleaned IPv4), the zone
// example.test with three records, and responder counters.
func NewSample() *Control {
	c := New()
	c.status.Workers = 2
	c.status.Generation = 3
	for _, s := range []vswitch.PortSpec{
		{Name: "eth0", Interface: "eth0", VLAN: &vswitch.VLANSpec{Mode: "access", Tag: 10}},
		{Name: "eth1", Interface: "eth1", Bind: "zerocopy", Queues: 2, VLAN: &vswitch.VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 1}},
	} {
		if _, err := c.AddPort(s); err != nil {
			panic(err) // the sample is fixed; failing here is a bug in it
		}
	}
	c.fdb = []vswitch.FDBEntry{
		{MAC: "02:00:00:00:00:01", VLAN: 10, Port: "eth0", AgeSec: 1.5},
		{MAC: "02:00:00:00:00:02", VLAN: 10, Port: "eth1", AgeSec: 12},
		{MAC: "02:00:00:00:00:03", VLAN: 20, Port: "eth1", Static: true},
	}
	c.stats = vswitch.Stats{
		Time: Started.Add(time.Hour),
		Ports: []vswitch.PortStats{
			{Name: "eth0", RxPackets: 1000, RxBytes: 64000, TxPackets: 900, TxBytes: 57600,
				Drops: 7, DropsBy: map[string]uint64{"no_fdb": 5, "vlan_filtered": 2},
				RxPPS: 100, TxPPS: 90, XSKRxDropped: 1, XSKRxRingFull: 2, XSKFillRingEmpty: 3, XSKTxInvalid: 4},
			{Name: "eth1", RxPackets: 2000, RxBytes: 128000, TxPackets: 1900, TxBytes: 121600, RxPPS: 200, TxPPS: 190},
		},
		Workers: []vswitch.WorkerStats{
			{ID: 0, CPU: 2, RxPackets: 1500, TxPackets: 1400, Forwarded: 1300, Flooded: 90, Replied: 10,
				Drops: 7, DropsBy: map[string]uint64{"no_fdb": 5, "vlan_filtered": 2}, Polls: 50000, BusyPct: 12.5, RxPPS: 150, TxPPS: 140},
			{ID: 1, CPU: -1, RxPackets: 1500, TxPackets: 1400, Forwarded: 1400, Polls: 40000, BusyPct: 7.25, RxPPS: 150, TxPPS: 140},
		},
		Peephole: vswitch.PeepholeStats{
			ARP: vswitch.ResponderStats{Answered: 40, Malformed: 1, Gleaned: 5, Passed: map[string]uint64{"not_request": 6, "unknown_target": 3}},
			ND:  vswitch.ResponderStats{Answered: 12, Gleaned: 2, Passed: map[string]uint64{"unknown_target": 2}},
			DNS: vswitch.ResponderStats{Answered: 30, Malformed: 2, Passed: map[string]uint64{"outside_zone": 9}, NXDomain: 4, NoData: 1},
		},
	}
	// The peephole sample is part of the starting state, not a change.
	gen := c.status.Generation
	for _, b := range []vswitch.BindingSpec{
		{IP: "10.0.10.1", MAC: "02:00:00:00:0a:01", VLAN: 10, Kind: "gateway"},
		{IP: "10.0.10.5", MAC: "02:00:00:00:00:01", VLAN: 10, Port: "eth0"},
		{IP: "2001:db8:10::1", MAC: "02:00:00:00:0a:01", VLAN: 10, Kind: "gateway"},
	} {
		if _, err := c.AddBinding(b); err != nil {
			panic(err)
		}
	}
	c.bindings = append(c.bindings, vswitch.BindingInfo{
		BindingSpec: vswitch.BindingSpec{IP: "10.0.20.7", MAC: "02:00:00:00:00:03", VLAN: 20, Kind: "gleaned", Port: "eth1"},
		AgeSec:      42.5,
	})
	if _, err := c.AddDNSZone(vswitch.DNSZoneSpec{Name: "example.test", SOA: vswitch.DNSSOASpec{Serial: 7}}); err != nil {
		panic(err)
	}
	for _, r := range []vswitch.DNSRecordSpec{
		{Name: "gw.example.test", Type: "A", Value: "10.0.10.1"},
		{Name: "gw.example.test", Type: "AAAA", Value: "2001:db8:10::1", TTL: 300},
		{Name: "www.example.test", Type: "CNAME", Value: "gw.example.test"},
	} {
		if _, err := c.AddDNSRecord(r); err != nil {
			panic(err)
		}
	}
	c.status.Generation = gen
	return c
}

// SetStats replaces what Stats returns. The fake takes ownership of s.
func (c *Control) SetStats(s vswitch.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = s
}

// SetFDB replaces the FDB. The fake takes ownership of entries.
func (c *Control) SetFDB(entries []vswitch.FDBEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fdb = entries
}

// Status implements vswitch.Control; Ports and FDBEntries are live counts.
func (c *Control) Status() vswitch.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	st.Ports = len(c.ports)
	st.FDBEntries = len(c.fdb)
	return st
}

// Ports implements vswitch.Control.
func (c *Control) Ports() []vswitch.PortInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ports)
}

// AddPort implements vswitch.Control: it validates, refuses a duplicate
// name or interface, and makes up the live fields.
func (c *Control) AddPort(spec vswitch.PortSpec) (vswitch.PortInfo, error) {
	spec.SetDefaults()
	if err := spec.Validate(""); err != nil {
		return vswitch.PortInfo{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.ports {
		if p.Name == spec.Name {
			return vswitch.PortInfo{}, fmt.Errorf("add port %q: %w", spec.Name, vswitch.ErrExists)
		}
		if spec.Interface != "" && p.Interface == spec.Interface {
			return vswitch.PortInfo{}, fmt.Errorf("add port %q: interface %s is used by port %q: %w", spec.Name, spec.Interface, p.Name, vswitch.ErrExists)
		}
	}
	if spec.Type == vswitch.PortMemring {
		// A memring port has no link: no ifindex, MAC or queues until a
		// client attaches, and the fake never attaches one by itself.
		info := vswitch.PortInfo{PortSpec: spec, Index: c.nextIndex, State: "detached"}
		c.nextIndex++
		c.ports = append(c.ports, info)
		c.status.Generation++
		return info, nil
	}
	queues := max(spec.Queues, 1)
	info := vswitch.PortInfo{
		PortSpec: spec,
		Index:    c.nextIndex,
		Ifindex:  c.nextIndex + 1,
		MAC:      fmt.Sprintf("02:00:00:00:01:%02x", c.nextIndex),
		BindMode: spec.Bind,
		XDPMode:  spec.XDPMode,
		State:    "up",
	}
	if info.BindMode == "auto" {
		info.BindMode = "copy"
	}
	for q := range queues {
		info.Queues = append(info.Queues, q)
		info.Worker = append(info.Worker, q%max(c.status.Workers, 1))
	}
	c.nextIndex++
	c.ports = append(c.ports, info)
	c.status.Generation++
	return info, nil
}

// DelPort implements vswitch.Control; the port's FDB entries go with it.
func (c *Control) DelPort(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.ports, func(p vswitch.PortInfo) bool { return p.Name == name })
	if i < 0 {
		return vswitch.ErrNotFound // bare, as a daemon may return it: the server names the port
	}
	c.ports = slices.Delete(c.ports, i, i+1)
	c.fdb = slices.DeleteFunc(c.fdb, func(e vswitch.FDBEntry) bool { return e.Port == name })
	c.status.Generation++
	return nil
}

// FDB implements vswitch.Control.
func (c *Control) FDB() []vswitch.FDBEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.fdb)
}

// FlushFDB implements vswitch.Control: it drops the learned entries and
// keeps the static ones.
func (c *Control) FlushFDB() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.fdb)
	c.fdb = slices.DeleteFunc(c.fdb, func(e vswitch.FDBEntry) bool { return !e.Static })
	return n - len(c.fdb)
}

// Stats implements vswitch.Control; Peephole is PeepholeStats().
func (c *Control) Stats() vswitch.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Peephole = c.peepholeStats()
	return st
}
