//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

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
	want := strconv.Itoa(wcpu)
	netnstest.Eventually(t, 5*time.Second, 20*time.Millisecond, "one worker thread alone on its CPU", func() (bool, string) {
		masks, err := threadCPUs(d.PID)
		if err != nil {
			return false, err.Error()
		}
		on := 0
		for tid, m := range masks {
			switch {
			case m == want:
				on++
			case strings.Contains(","+expandCPUList(m)+",", ","+want+","):
				return false, fmt.Sprintf("thread %d may run on worker cpu %s (mask %s); all: %v", tid, want, m, masks)
			}
		}
		return on == 1, fmt.Sprintf("%d threads pinned to cpu %s, want 1: %v", on, want, masks)
	})
	// The daemon still works with its control plane moved.
	st := d.stats(t)
	if len(st.Workers) != 1 || st.Workers[0].CPU != wcpu {
		t.Fatalf("stats workers %+v, want one on cpu %d", st.Workers, wcpu)
	}
}

// threadCPUs reads Cpus_allowed_list of every thread of pid.
func threadCPUs(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		tid, _ := strconv.Atoi(e.Name())
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[tid] = strings.TrimSpace(v)
			}
		}
	}
	return out, nil
}

// expandCPUList turns "0-2,5" into "0,1,2,5".
func expandCPUList(s string) string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			return s
		}
		for c := a; c <= b; c++ {
			out = append(out, strconv.Itoa(c))
		}
	}
	return strings.Join(out, ",")
}
