package netnstest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ping runs ping -c count -W 2 -i 0.2 from the namespace. Extra arguments
// (e.g. "-I", ifname or "-W", "1") come before the address and override.
//
// Beware: once one reply has come, iputils ping waits only two round-trip
// times (not -W) for the rest, so on a loaded machine a late reply reads
// as a loss. Use PingOK to require answers.
func (ns *NS) Ping(count int, addr string, extra ...string) Result {
	args := []string{"ping", "-n", "-c", strconv.Itoa(count), "-W", "2", "-i", "0.2"}
	args = append(append(args, extra...), addr)
	return ns.Exec(time.Duration(count)*3*time.Second+10*time.Second, args...)
}

// WaitPing pings addr once at a time until a reply comes or timeout
// passes, and fails t with the last ping's output otherwise. The first
// ping after a topology comes up may be lost while ARP resolves and the
// switch learns; this retries instead of sleeping.
func (ns *NS) WaitPing(t testing.TB, addr string, timeout time.Duration, extra ...string) {
	t.Helper()
	var last Result
	err := Poll(timeout, 100*time.Millisecond, func() (bool, string) {
		last = ns.Ping(1, addr, extra...)
		return last.OK(), last.String()
	})
	if err != nil {
		t.Fatalf("from %s: no ping reply from %s: %v", ns.Name, addr, err)
	}
}

// pingSummary matches ping's "N packets transmitted, M received" line.
var pingSummary = regexp.MustCompile(`([0-9]+) packets transmitted, ([0-9]+) received`)

// PingOK sends count echo requests and fails t unless count replies come
// back within a generous deadline. It uses ping's -w deadline mode, which
// waits for late replies (machines running these tests are shared and
// latency spikes of hundreds of milliseconds happen) and, while waiting,
// keeps sending: so at least count requests go out, sometimes a few more.
// It returns the result and the number of requests transmitted.
func (ns *NS) PingOK(t testing.TB, count int, addr string, extra ...string) (Result, int) {
	t.Helper()
	deadline := count/2 + 15
	args := []string{"ping", "-n", "-c", strconv.Itoa(count), "-w", strconv.Itoa(deadline), "-i", "0.2"}
	args = append(append(args, extra...), addr)
	r := ns.Exec(time.Duration(deadline+10)*time.Second, args...)
	m := pingSummary.FindStringSubmatch(r.Stdout)
	if !r.OK() || m == nil {
		t.Fatalf("from %s: ping %s: want %d replies within %d s: %s", ns.Name, addr, count, deadline, r)
	}
	sent, _ := strconv.Atoi(m[1])
	if sent > count {
		t.Logf("from %s: ping %s: %d requests for %d replies (late or lost replies)", ns.Name, addr, sent, count)
	}
	return r, sent
}

// WaitListen polls `ss -ltn` in the namespace until a TCP socket listens
// on port.
func (ns *NS) WaitListen(t testing.TB, port int, timeout time.Duration) {
	t.Helper()
	suffix := ":" + strconv.Itoa(port)
	Eventually(t, timeout, 20*time.Millisecond, fmt.Sprintf("TCP port %d listening in %s", port, ns.Name), func() (bool, string) {
		r := ns.Exec(0, "ss", "-Hltn")
		if !r.OK() {
			return false, r.String()
		}
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && strings.HasSuffix(f[3], suffix) {
				return true, ""
			}
		}
		return false, r.Stdout
	})
}
