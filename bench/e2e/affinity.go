package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinCurrentThread locks the calling goroutine to its OS thread and binds
// that thread to cpu. The caller keeps the thread locked for its lifetime.
func pinCurrentThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin thread to cpu %d: %w", cpu, err)
	}
	return nil
}

// PinProcess binds every existing thread of this process to cpu and,
// unless nice is 0, sets its niceness (per thread on Linux). Threads the
// Go runtime starts later are cloned from these and inherit both, and so
// do child processes unless started pinned elsewhere.
func PinProcess(cpu, nice int) error {
	var set unix.CPUSet
	set.Set(cpu)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A thread may have exited since the listing: ESRCH is fine.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d to cpu %d: %w", tid, cpu, err)
		}
		if nice != 0 {
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
				return fmt.Errorf("nice thread %d to %d: %w", tid, nice, err)
			}
		}
	}
	return nil
}

// startPinned starts cmd so that the child begins life bound to cpu: the
// fork happens on this locked thread, whose mask is set to cpu just for the
// fork, and a child inherits its parent thread's affinity. So all of the
// child's threads stay on cpu with no window where they run elsewhere.
// cpu < 0 starts cmd unpinned.
func startPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get affinity: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	startErr := cmd.Start()
	// The thread must live on after the unlock: the child's parent-death
	// signal is tied to it. So restore its mask rather than retire it.
	if err := unix.SchedSetaffinity(0, &old); err != nil {
		return fmt.Errorf("restore affinity: %w (start: %v)", err, startErr)
	}
	return startErr
}
