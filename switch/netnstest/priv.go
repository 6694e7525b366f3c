package netnstest

import (
	"os"
	"os/exec"
	"testing"
)

// RequirePrivEnv is the environment variable that turns a privilege skip
// into a failure; CI sets it so that a misconfigured runner cannot pass by
// skipping everything.
const RequirePrivEnv = "VSWITCH_REQUIRE_PRIV"

// RequirePriv skips t unless the process is root and the tools the
// helpers call (ip, ethtool) are installed. With VSWITCH_REQUIRE_PRIV=1 it
// fails t instead of skipping.
func RequirePriv(t testing.TB) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root (network namespaces, veth, AF_XDP)"
	} else {
		for _, tool := range []string{"ip", "ethtool"} {
			if _, err := exec.LookPath(tool); err != nil {
				reason = "needs " + tool + " in PATH: " + err.Error()
				break
			}
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv(RequirePrivEnv) == "1" {
		t.Fatalf("%s, and %s=1 forbids skipping", reason, RequirePrivEnv)
	}
	t.Skip(reason)
}

// RequireTools skips (or, under VSWITCH_REQUIRE_PRIV=1, fails) t when one
// of the named programs is not installed.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(RequirePrivEnv) == "1" {
				t.Fatalf("needs %s in PATH (%v), and %s=1 forbids skipping", tool, err, RequirePrivEnv)
			}
			t.Skipf("needs %s in PATH: %v", tool, err)
		}
	}
}
