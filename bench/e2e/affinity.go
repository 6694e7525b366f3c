package e2e

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/switch/affinity"
)

// PinProcess binds every existing thread of this process to cpu and,
// unless nice is 0, sets its niceness (per thread on Linux). Threads the
// Go runtime starts later are cloned from these and inherit both, and so
// do child processes unless started pinned elsewhere.
func PinProcess(cpu, nice int) error {
	set, err := affinity.Set(cpu)
	if err != nil {
		return err
	}
	return affinity.EachThread(func(tid int) error {
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("pin to cpu %d: %w", cpu, err)
		}
		if nice != 0 {
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
				return fmt.Errorf("nice to %d: %w", nice, err)
			}
		}
		return nil
	})
}
