package vswitch

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/affinity"
)

// Placement is where the daemon put its threads.
type Placement struct {
	// ControlCPUs runs everything but the workers.
	ControlCPUs []int
	// Overlap lists worker CPUs that are also control CPUs: their workers
	// share the CPU with the control plane.
	Overlap []int
	// GOMAXPROCS is the value the daemon fixed.
	GOMAXPROCS int
}

// PlaceThreads keeps the daemon's control plane off its workers' CPUs, like
// the main lcore of a DPDK application: every thread that exists now gets
// the control CPU set, and the Go runtime's later threads inherit it (a
// worker pins only its own locked thread). Without this, the runtime's
// monitor thread and the API goroutines wake up on a busy-polling worker's
// CPU and take their time slices from it.
//
// It also fixes GOMAXPROCS at one P per worker plus one, at least: each
// worker holds a P for good, and the runtime would otherwise size
// GOMAXPROCS from the narrower control set and leave the rest of the
// daemon without one. Call it before New, from the daemon only: it changes
// the whole process.
func PlaceThreads(spec WorkerSpec) (Placement, error) {
	var pl Placement
	cur, err := affinity.Current()
	if err != nil {
		return pl, err
	}
	var ctl unix.CPUSet
	if len(spec.ControlCPUs) > 0 {
		if ctl, err = affinity.Set(spec.ControlCPUs...); err != nil {
			return pl, fieldErr("workers.control_cpus", "%v", err)
		}
	} else {
		ctl = cur
		for _, c := range spec.CPUs {
			ctl.Clear(c)
		}
		if ctl.Count() == 0 {
			ctl = cur
		}
	}
	for _, c := range spec.CPUs {
		if ctl.IsSet(c) {
			pl.Overlap = append(pl.Overlap, c)
		}
	}
	if err := affinity.SetAllThreads(&ctl); err != nil {
		if len(spec.ControlCPUs) > 0 {
			return pl, fieldErr("workers.control_cpus", "cannot run the daemon's threads on CPUs %v: %v", spec.ControlCPUs, err)
		}
		return pl, fmt.Errorf("place control threads: %w", err)
	}
	pl.ControlCPUs = affinity.List(&ctl)
	want := max(runtime.GOMAXPROCS(0), spec.Count+1)
	runtime.GOMAXPROCS(want)
	pl.GOMAXPROCS = want
	return pl, nil
}
