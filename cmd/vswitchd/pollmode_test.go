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

// idleCPU measures the daemon's CPU use (fraction of one core) over a
// window in which no traffic is sent. The window is a measurement
// interval, not a wait for something to happen.
func idleCPU(t *testing.T, d *daemon, window time.Duration) float64 {
	t.Helper()
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
	return float64(t1-t0) / clockTicks() / time.Since(start).Seconds()
}

// maxIdleCPU is the share of one core an idle adaptive or interrupt mode
// daemon may use: half-way between blocking and spinning.
const maxIdleCPU = 0.50

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
			// A functional check that the workers block when idle, with a
			// threshold loose enough for a shared VM: a spinning worker
			// uses a whole core, as busy mode shows (86-100% measured;
			// logged for calibration, not asserted: spinning is its job).
			// Blocking ones measured 8-40%, most of it not vswitchd's: a
			// bare Go program whose locked thread does nothing but
			// poll(2) with a 200 ms timeout used 11-17% on the same VM.
			cpu := idleCPU(t, d, 2*time.Second)
			t.Logf("idle CPU in %s mode: %.1f%% of one core", mode, 100*cpu)
			if mode != vswitch.PollBusy && cpu > maxIdleCPU {
				t.Errorf("idle vswitchd in %s mode used %.0f%% of a core over 2 s, want < %.0f%% (is it spinning?)", mode, 100*cpu, 100*maxIdleCPU)
			}
		})
	}
}
