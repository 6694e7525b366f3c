// Package netnstest builds throwaway network topologies for privileged
// integration tests: network namespaces, veth pairs whose root-side ends
// become vswitchd ports, commands run inside a namespace, and vswitchd
// processes started, probed and stopped by PID.
//
// Everything a Lab creates has a name derived from the test process's PID
// and a counter, so parallel test binaries never collide, and everything is
// removed by a t.Cleanup registered at creation time, whether the test
// passes, fails or calls t.FailNow. Processes are only ever signalled by
// the PID this package started them with. Sweep removes what an earlier
// test binary that died without cleaning up (a -timeout panic, SIGKILL)
// left behind, recognising it by the same naming scheme.
//
// Synchronisation is by polling with a deadline (a socket that answers, a
// port that listens, a counter that moved), never by fixed sleeps.
//
// The package is for tests only: it calls t.Fatal and must not be
// imported by product code.
package netnstest
