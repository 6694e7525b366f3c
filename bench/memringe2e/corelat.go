package main

import (
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/affinity"
)

// pingLine is one cache line that two cores hand back and forth.
type pingLine struct {
	v atomic.Uint64
	_ [56]byte
}

// spinUntil waits for l to hold v, giving up at deadline.
func spinUntil(l *atomic.Uint64, v uint64, deadline time.Time) bool {
	for k := 0; l.Load() != v; k++ {
		if k&0xffff == 0xffff && time.Now().After(deadline) {
			return false
		}
	}
	return true
}

var errRTTTimeout = errors.New("cross-core round trip: the other core did not answer within 2s")

// crossCoreRTT is the mean time, in ns, for a cache line written on core a
// to be seen on core b and an answer written there to be seen back on a,
// over n exchanges. Everything the memring path shares between the client
// and the switch (descriptors, indices, headers) pays this, so the figure
// says how far apart the host has put the guest's two cores at the moment
// (on this KVM host it moved between about 140 and 600 ns within minutes,
// 2026-12-04). Both cores should be otherwise idle.
func crossCoreRTT(a, b, n int) (float64, error) {
	// The harness pins itself to one core, and the runtime then runs one
	// goroutine at a time: both spinners need a P of their own.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
		defer runtime.SetDefaultGOMAXPROCS()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := affinity.Current()
	if err != nil {
		return 0, err
	}
	// The thread goes back to the scheduler with the mask it came with.
	defer unix.SchedSetaffinity(0, &orig)
	if err := affinity.PinLocked(a); err != nil {
		return 0, err
	}
	var ping, pong pingLine
	var stop atomic.Bool
	ready := make(chan error, 1)
	deadline := time.Now().Add(2 * time.Second)
	go func() {
		// Never unlocked: the thread pinned to b ends with the goroutine
		// instead of going back to the scheduler with b's mask.
		runtime.LockOSThread()
		if err := affinity.PinLocked(b); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for i := uint64(1); i <= uint64(n) && !stop.Load(); i++ {
			if !spinUntil(&ping.v, i, deadline) {
				return
			}
			pong.v.Store(i)
		}
	}()
	if err := <-ready; err != nil {
		return 0, err
	}
	defer stop.Store(true)
	start := time.Now()
	for i := uint64(1); i <= uint64(n); i++ {
		ping.v.Store(i)
		if !spinUntil(&pong.v, i, deadline) {
			return 0, errRTTTimeout
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), nil
}
