//go:build integration

package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/affinity"
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

// TestThreadPlacement: with the worker pinned to the last CPU, the worker's
// thread runs there alone and every other thread of the daemon (API, Go
// runtime) is kept off it, so nothing wakes up on the busy-polling CPU.
func TestThreadPlacement(t *testing.T) {
	netnstest.RequirePriv(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	wcpu := runtime.NumCPU() - 1
	a := newHost(t, "p0", "10.210.12.1")
	d := startDaemon(t, daemonConf{pollMode: vswitch.PollBusy, cpus: fmt.Sprintf("[%d]", wcpu),
		ports: []portConf{a.portConf("")}})
	netnstest.Eventually(t, 5*time.Second, 20*time.Millisecond, "one worker thread alone on its CPU", func() (bool, string) {
		masks, err := threadCPUs(d.PID)
		if err != nil {
			return false, err.Error()
		}
		on := 0
		for tid, cpus := range masks {
			switch {
			case len(cpus) == 1 && cpus[0] == wcpu:
				on++
			case slices.Contains(cpus, wcpu):
				return false, fmt.Sprintf("thread %d may run on worker cpu %d (cpus %v); all: %v", tid, wcpu, cpus, masks)
			}
		}
		return on == 1, fmt.Sprintf("%d threads pinned to cpu %d, want 1: %v", on, wcpu, masks)
	})
	// The daemon still works with its control plane moved.
	st := d.stats(t)
	if len(st.Workers) != 1 || st.Workers[0].CPU != wcpu {
		t.Fatalf("stats workers %+v, want one on cpu %d", st.Workers, wcpu)
	}
}

// threadCPUs returns the CPUs every thread of pid may run on.
func threadCPUs(pid int) (map[int][]int, error) {
	out := map[int][]int{}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread exited
		}
		out[tid] = affinity.List(&set)
	}
	return out, nil
}
