//go:build integration

package main

import (
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestTwoWorkers: with two workers the two single-queue ports land on
// different workers, so every frame between them crosses a handoff ring;
// forwarding must work and both workers must count their share.
func TestTwoWorkers(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping")
	a := newHost(t, "p0", "10.210.11.1")
	b := newHost(t, "p1", "10.210.11.2")
	d := startDaemon(t, daemonConf{pollMode: vswitch.PollAdaptive, workers: 2,
		ports: []portConf{a.portConf(""), b.portConf("")}})
	var ports []vswitch.PortInfo
	d.JSON(t, &ports, "port", "list")
	if len(ports) != 2 || len(ports[0].Worker) != 1 || len(ports[1].Worker) != 1 || ports[0].Worker[0] == ports[1].Worker[0] {
		t.Fatalf("ports should be on different workers: %+v", ports)
	}
	a.ns.WaitPing(t, b.ip, firstPingTimeout)
	a.ns.PingOK(t, 10, b.ip)
	var st vswitch.Stats
	d.JSON(t, &st, "stats")
	if len(st.Workers) != 2 {
		t.Fatalf("stats has %d workers, want 2", len(st.Workers))
	}
	for _, w := range st.Workers {
		// Each worker receives on its own port and transmits what the
		// other handed over: at least the 10 echo requests or replies.
		if w.RxPackets < 10 || w.TxPackets < 10 {
			t.Errorf("worker %d rx %d tx %d, want >= 10 each", w.ID, w.RxPackets, w.TxPackets)
		}
	}
}
