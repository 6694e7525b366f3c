package apitest

import (
	"fmt"
	"slices"

	vswitch "github.com/vswitch/vswitch/switch"
)

// This file holds the fake's memring side: a sample with memring ports and
// attaching or detaching a client the way the daemon's memring socket would.

// NewSampleMemring returns NewSample plus two memring ports: vm1 (two queue
// pairs, uid 1000, access VLAN 10, attached by pid 777 on huge pages, with
// bad descriptors and a corrupt session counted) and vm2 (defaults,
// detached). It is a constructor of its own so NewSample's outputs stay as
// they are.
func NewSampleMemring() *Control {
	c := NewSample()
	gen := c.status.Generation
	for _, s := range []vswitch.PortSpec{
		{Name: "vm1", Type: vswitch.PortMemring, VLAN: &vswitch.VLANSpec{Mode: "access", Tag: 10},
			Memring: &vswitch.MemringSpec{QueuePairs: 2, RingSize: 512, UIDs: []uint32{1000}, GIDs: []uint32{100, 101}}},
		{Name: "vm2", Type: vswitch.PortMemring},
	} {
		if _, err := c.AddPort(s); err != nil {
			panic(err) // the sample is fixed; failing here is a bug in it
		}
	}
	if err := c.AttachMemring("vm1", 777, true); err != nil {
		panic(err)
	}
	c.stats.Ports = append(c.stats.Ports,
		vswitch.PortStats{Name: "vm1", RxPackets: 300, RxBytes: 19200, TxPackets: 250, TxBytes: 16000, RxPPS: 30, TxPPS: 25,
			Drops: 3, DropsBy: map[string]uint64{"no_fdb": 3}, MemringBadDesc: 12, MemringCorrupt: 1},
		vswitch.PortStats{Name: "vm2"},
	)
	c.status.Generation = gen
	return c
}

// AttachMemring marks memring port name attached by a client of process
// pid, as the daemon does when a client attaches: its queue pairs go round
// robin over the workers.
func (c *Control) AttachMemring(name string, pid int, hugepages bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.memringPortLocked(name)
	if err != nil {
		return err
	}
	p.State, p.PeerPID, p.Hugepages = "attached", pid, hugepages
	p.Queues, p.Worker = nil, nil
	for q := range p.Memring.QueuePairs {
		p.Queues = append(p.Queues, q)
		p.Worker = append(p.Worker, q%max(c.status.Workers, 1))
	}
	return nil
}

// DetachMemring marks memring port name detached, as when its client
// leaves or breaks its rings.
func (c *Control) DetachMemring(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.memringPortLocked(name)
	if err != nil {
		return err
	}
	p.State, p.PeerPID, p.Hugepages, p.Queues, p.Worker = "detached", 0, false, nil, nil
	return nil
}

// memringPortLocked returns the memring port named name; c.mu held.
func (c *Control) memringPortLocked(name string) (*vswitch.PortInfo, error) {
	i := slices.IndexFunc(c.ports, func(p vswitch.PortInfo) bool { return p.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("memring port %q: %w", name, vswitch.ErrNotFound)
	}
	if c.ports[i].Type != vswitch.PortMemring {
		return nil, fmt.Errorf("port %q is not a memring port", name)
	}
	return &c.ports[i], nil
}
