package netnstest

import (
	"os"
	"strconv"
	"testing"
)

func TestNamesFitIFNAMSIZ(t *testing.T) {
	// The longest name a helper builds is base + role + VLAN suffix, with
	// the counter at its largest two-digit value (the suite makes a few
	// dozen links; 1295 is far beyond).
	counter.Store(36*36 - 3)
	for i := 0; i < 2; i++ {
		name := LinkBase() + "n" + ".4094"
		if len(name) > 15 {
			t.Errorf("link name %q is %d bytes, IFNAMSIZ allows 15", name, len(name))
		}
	}
}

func TestNSNameIsRecognisedAsOurs(t *testing.T) {
	name := NSName()
	m := staleNS.FindStringSubmatch(name)
	if m == nil {
		t.Fatalf("staleNS does not match %q", name)
	}
	if m[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("staleNS captured pid %q from %q, want %d", m[1], name, os.Getpid())
	}
	for _, other := range []string{"vsb9b3-src", "vnettest-", "vnettest-12-", "x-vnettest-1-2", "vnettest-1-2-3", "vnettest-proc-1-2"} {
		if staleNS.MatchString(other) {
			t.Errorf("staleNS matches %q, which this package did not make", other)
		}
	}
}

func TestStaleDirNames(t *testing.T) {
	for name, want := range map[string]bool{
		"vnettest-proc-123-456": true, "vnettest-tmp-123-456": true,
		"vnettest-123-4": false, "vnettest-proc-x-1": false, "vsw-123": false, "vnettest-tmp-123-456-x": false,
	} {
		if got := staleDir.MatchString(name); got != want {
			t.Errorf("staleDir.MatchString(%q) = %v, want %v", name, got, want)
		}
	}
}
