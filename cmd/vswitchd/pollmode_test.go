//go:build integration

package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
func clockTicks() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// idleWindow is what the daemon did over a window in which no traffic is
// sent: its CPU use (fraction of one core, from /proc, logged only since a
// shared VM's steal and neighbours move it) and the time its workers spent
// blocked in poll(2), summed over workers (from its own counters, which the
// host's load cannot fake: a spinning worker never enters poll(2)). The
// window is a measurement interval, not a wait for something to happen.
type idleWindow struct {
	cpu     float64
	slept   time.Duration
	sleeps  uint64
	elapsed time.Duration
	workers int
}

func measureIdle(t *testing.T, d *daemon, window time.Duration) idleWindow {
	t.Helper()
	sleepTotals := func() (ns, n uint64, workers int) {
		var st vswitch.Stats
		d.JSON(t, &st, "stats")
		for _, w := range st.Workers {
			ns += w.SleepNs
			n += w.Sleeps
		}
		return ns, n, len(st.Workers)
	}
	ns0, n0, _ := sleepTotals()
	t0, err := netnstest.CPUTicks(d.PID)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(window)
	t1, err := netnstest.CPUTicks(d.PID)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	ns1, n1, workers := sleepTotals()
	return idleWindow{
		cpu:     float64(t1-t0) / clockTicks() / elapsed.Seconds(),
		slept:   time.Duration(ns1 - ns0),
		sleeps:  n1 - n0,
		elapsed: elapsed,
		workers: workers,
	}
}

// minIdleSleep is the share of an idle window that each adaptive or
// interrupt mode worker must spend blocked in poll(2). Measured: above
// 95%; a worker that spins would be at 0.
const minIdleSleep = 0.5

// TestPollModes: forwarding works in every poll mode, and an idle
// adaptive daemon blocks instead of spinning.
func TestPollModes(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping")
	for _, mode := range []string{vswitch.PollBusy, vswitch.PollAdaptive, vswitch.PollInterrupt} {
		t.Run(mode, func(t *testing.T) {
			a := newHost(t, "p0", "10.210.9.1")
			b := newHost(t, "p1", "10.210.9.2")
			d := startDaemon(t, daemonConf{pollMode: mode, ports: []portConf{a.portConf(""), b.portConf("")}})
			var st vswitch.Status
			d.JSON(t, &st, "status")
			if st.PollMode != mode {
				t.Errorf("status poll_mode = %q, want %q", st.PollMode, mode)
			}
			a.ns.WaitPing(t, b.ip, firstPingTimeout)
			a.ns.PingOK(t, 5, b.ip)
			b.ns.PingOK(t, 5, a.ip)
			// The workers must block when idle. Their own poll(2) time is
			// the measure; the process CPU share is logged for calibration
			// only (a busy worker uses a whole core, blocking ones 8-40% of
			// one on this shared VM, most of it steal and timer noise).
			iw := measureIdle(t, d, 2*time.Second)
			share := iw.slept.Seconds() / iw.elapsed.Seconds() / float64(iw.workers)
			t.Logf("idle %s mode: CPU %.1f%% of one core; workers blocked %.1f%% of the window in %d poll(2) waits",
				mode, 100*iw.cpu, 100*share, iw.sleeps)
			switch mode {
			case vswitch.PollBusy:
				if iw.sleeps != 0 {
					t.Errorf("busy mode workers blocked %d times in poll(2), want 0", iw.sleeps)
				}
			default:
				if share < minIdleSleep {
					t.Errorf("idle %s mode workers spent %.0f%% of the window in poll(2), want >= %.0f%% (are they spinning?)",
						mode, 100*share, 100*minIdleSleep)
				}
			}
		})
	}
}
