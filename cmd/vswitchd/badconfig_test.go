//go:build integration

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vswitch/vswitch/switch/netnstest"
)

// TestBadConfig: a config or flag the daemon cannot use makes it exit
// non-zero at once, naming the offending field; vswitchctl pointed at no
// daemon says so.
func TestBadConfig(t *testing.T) {
	netnstest.RequirePriv(t)
	bin := netnstest.BinDir(t)

	// runDaemon runs vswitchd to completion with a config; it must not
	// start, so a short deadline is plenty (a daemon that does start is
	// killed by the deadline and the test fails on the exit status).
	runDaemon := func(t *testing.T, config string, args ...string) netnstest.Result {
		t.Helper()
		dir := t.TempDir()
		sockDir := netnstest.ShortTempDir(t)
		path := filepath.Join(dir, "vswitchd.yaml")
		head := fmt.Sprintf("api_socket: %q\nstate_file: %q\n", filepath.Join(sockDir, "api.sock"), filepath.Join(dir, "state.json"))
		writeFile(t, path, head+config)
		return netnstest.Exec(20*time.Second, filepath.Join(bin, "vswitchd"), append([]string{"--config", path}, args...)...)
	}

	cases := []struct {
		name, config string
		args         []string
		wantField    string
	}{
		{name: "unknown-field", config: "workers:\n  count: 1\n  pollmode: busy\n", wantField: "pollmode"},
		{name: "unknown-top-level-field", config: "metrics_address: 127.0.0.1:9100\n", wantField: "metrics_address"},
		{name: "bad-poll-mode", config: "workers:\n  poll_mode: turbo\n", wantField: "workers.poll_mode"},
		{name: "bad-vlan-tag", config: "ports:\n  - name: p0\n    interface: vnonexist0\n    vlan: {mode: access, tag: 5000}\n", wantField: "ports[0].vlan.tag"},
		{name: "vlan-tag-zero", config: "ports:\n  - name: p0\n    interface: vnonexist0\n    vlan: {mode: access}\n", wantField: "ports[0].vlan.tag"},
		{name: "bad-vlan-mode", config: "ports:\n  - name: p0\n    interface: vnonexist0\n    vlan: {mode: hybrid}\n", wantField: "ports[0].vlan.mode"},
		{name: "duplicate-port-name", config: "ports:\n  - name: p0\n    interface: vnonexist0\n  - name: p0\n    interface: vnonexist1\n", wantField: "ports[1].name"},
		{name: "bad-fdb-size", config: "fdb:\n  size: 1000\n", wantField: "fdb.size"},
		// A CPU number the config accepts but this machine does not have.
		{name: "absent-control-cpu", config: "workers:\n  control_cpus: [1023]\n", wantField: "workers.control_cpus"},
		{name: "bad-metrics-addr", config: "", args: []string{"--metrics-addr", "127.0.0.1:notaport"}, wantField: "metrics-addr"},
		{name: "bad-log-level-flag", config: "", args: []string{"--log-level", "chatty"}, wantField: "log_level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runDaemon(t, c.config, c.args...)
			if r.OK() {
				t.Fatalf("vswitchd accepted a bad config/flag: %s", r)
			}
			if r.ExitCode <= 0 {
				t.Fatalf("vswitchd did not exit with an error status (exit code %d; killed by the deadline means it started): %s", r.ExitCode, r)
			}
			if !strings.Contains(r.Stderr, c.wantField) {
				t.Errorf("stderr does not name %q: %s", c.wantField, r)
			}
			t.Logf("exit %d: %s", r.ExitCode, strings.TrimSpace(lastLine(r.Stderr)))
		})
	}

	t.Run("vswitchctl-no-daemon", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "nobody.sock")
		ctl := netnstest.Ctl{Path: filepath.Join(bin, "vswitchctl"), Socket: sock}
		for _, args := range [][]string{{"status"}, {"-o", "json", "stats"}, {"port", "list"}} {
			r := ctl.Exec(args...)
			if r.OK() || r.ExitCode <= 0 {
				t.Errorf("vswitchctl %v without a daemon: want a non-zero exit: %s", args, r)
				continue
			}
			msg := strings.ToLower(r.Stderr)
			if !strings.Contains(r.Stderr, sock) || !(strings.Contains(msg, "cannot reach") || strings.Contains(msg, "no such file") || strings.Contains(msg, "not running") || strings.Contains(msg, "connect")) {
				t.Errorf("vswitchctl %v without a daemon: stderr should say it cannot reach vswitchd at %s: %s", args, sock, r)
			}
		}
	})
}

// lastLine is the last non-empty line of s: the error a failed command
// ended with, after its log lines.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
