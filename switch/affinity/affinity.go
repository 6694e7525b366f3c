// Package affinity places the threads of a process on CPUs: one thread (a
// poll-mode worker) or all of them (the control plane, a load generator).
//
// Linux keeps a CPU mask per thread. A new thread starts with the mask of
// the thread that created it, so once every existing thread of a Go process
// has a mask, the threads the runtime starts later inherit it. A worker that
// pins its own locked thread afterwards changes only that thread.
package affinity

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxCPU bounds the CPU numbers this package accepts (the size of
// unix.CPUSet).
const MaxCPU = 1024

// Set returns the CPU set holding cpus. It fails on a number outside
// 0..MaxCPU-1.
func Set(cpus ...int) (unix.CPUSet, error) {
	var s unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= MaxCPU {
			return s, fmt.Errorf("cpu %d is not in 0..%d", c, MaxCPU-1)
		}
		s.Set(c)
	}
	return s, nil
}

// List returns the CPUs of s in ascending order.
func List(s *unix.CPUSet) []int {
	var out []int
	for c := 0; c < MaxCPU; c++ {
		if s.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// Current returns the CPU mask of the calling thread.
func Current() (unix.CPUSet, error) {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return s, fmt.Errorf("get CPU affinity: %w", err)
	}
	return s, nil
}

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu. The caller keeps the thread locked for as long as it
// wants the pinning to hold.
func PinThread(cpu int) error {
	runtime.LockOSThread()
	return PinLocked(cpu)
}

// PinLocked binds the calling thread to cpu; the caller has already locked
// its goroutine to the thread.
func PinLocked(cpu int) error {
	set, err := Set(cpu)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin thread to cpu %d: %w", cpu, err)
	}
	return nil
}

// EachThread calls fn with the ID of every thread of this process. A
// thread that exits meanwhile makes fn fail with ESRCH, which is not an
// error here.
func EachThread(fn func(tid int) error) error {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := fn(tid); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}

// SetAllThreads sets the CPU mask of every thread of this process; threads
// started later inherit it. A thread the runtime starts while the masks
// change may have been cloned from one not yet done, so passes repeat
// until one finds every thread already on set.
func SetAllThreads(set *unix.CPUSet) error {
	for pass := 0; pass < 10; pass++ {
		changed := false
		err := EachThread(func(tid int) error {
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err != nil {
				return err
			}
			if cur == *set {
				return nil
			}
			changed = true
			return unix.SchedSetaffinity(tid, set)
		})
		if err != nil || !changed {
			return err
		}
	}
	return errors.New("set CPU affinity: threads kept appearing with other masks")
}

// StartPinned starts cmd so that the child begins life bound to cpu: the
// fork happens on this locked thread, whose mask is set to cpu just for the
// fork, and a child inherits its parent thread's affinity. So all of the
// child's threads stay on cpu with no window where they run elsewhere.
// cpu < 0 starts cmd unpinned.
func StartPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get affinity: %w", err)
	}
	set, err := Set(cpu)
	if err != nil {
		return err
	}
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
