package apitest

import (
	"bytes"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Main runs the tests of m, then fails the run if goroutines or file
// descriptors that the tests started are still there after a grace period:
// a server or client that a test forgot to close. Call it from TestMain.
func Main(m *testing.M) {
	// The runtime opens its poller's epoll and event fds on first use;
	// make that happen now so they are not counted as the tests' leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := goroutineIDs()
	fds := countFDs()
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(before, fds); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// permanent names goroutines that the runtime or standard library start
// once and keep for the life of the process; they are not leaks.
var permanent = []string{
	"os/signal.loop",
	"os/signal.signal_recv",
}

func checkLeaks(before map[string]bool, fds int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := leakedGoroutines(before)
		nfds := countFDs()
		if len(leaked) == 0 && nfds <= fds {
			return nil
		}
		if time.Now().After(deadline) {
			if len(leaked) > 0 {
				return fmt.Errorf("leak check: %d goroutines still running after the tests:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			}
			return fmt.Errorf("leak check: %d file descriptors open after the tests, %d before", nfds, fds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutineStacks returns the stack of every goroutine by its header line
// ("goroutine 7"), without the caller's own.
func goroutineStacks() map[string]string {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	stacks := map[string]string{}
	for i, g := range strings.Split(buf.String(), "\n\n") {
		g = strings.TrimSpace(g)
		if i == 0 || g == "" { // the first is the goroutine asking
			continue
		}
		id, _, _ := strings.Cut(g, " [")
		stacks[id] = g
	}
	return stacks
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range goroutineStacks() {
		ids[id] = true
	}
	return ids
}

func leakedGoroutines(before map[string]bool) []string {
	var leaked []string
outer:
	for id, stack := range goroutineStacks() {
		if before[id] {
			continue
		}
		for _, p := range permanent {
			if strings.Contains(stack, p) {
				continue outer
			}
		}
		leaked = append(leaked, stack)
	}
	return leaked
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0 // no procfs: skip the fd check rather than fail
	}
	return len(ents)
}
