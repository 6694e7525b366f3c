package e2e

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vswitch/vswitch/switch/affinity"
)

// cpuShareGap is the longest pause between two clock reads of a spinning
// thread that still counts as running: longer ones mean something else had
// the core (another task, or the hypervisor running another guest).
const cpuShareGap = 20 * time.Microsecond

// CPUShare runs one pinned, spinning thread per core, all at once, for d
// and returns the share of wall time (percent) each of them ran. On an
// idle machine of its own that is ~100; less means the core is shared, by
// tasks of this guest or by the hypervisor, which the guest's /proc/stat
// does not always show as steal. Every rate of a run scales with it.
func CPUShare(cores int, d time.Duration) []float64 {
	out := make([]float64, cores)
	var wg sync.WaitGroup
	for c := 0; c < cores; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The thread ends with the goroutine: its mask goes with it.
			if affinity.PinThread(c) != nil {
				out[c] = -1
				return
			}
			out[c] = spinShare(d)
		}()
	}
	wg.Wait()
	return out
}

// spinShare spins on the calling thread for d and returns the percentage of
// wall time not lost in gaps longer than cpuShareGap.
func spinShare(d time.Duration) float64 {
	start := time.Now()
	last := start
	var lost time.Duration
	for {
		now := time.Now()
		if g := now.Sub(last); g > cpuShareGap {
			lost += g
		}
		last = now
		if now.Sub(start) >= d {
			break
		}
	}
	el := last.Sub(start)
	return 100 * (1 - lost.Seconds()/el.Seconds())
}

// FormatCPUShare renders shares as "cpu0 31%, cpu1 29%" (failed probes: "?").
func FormatCPUShare(s []float64) string {
	if len(s) == 0 {
		return "not measured"
	}
	parts := make([]string, len(s))
	for i, v := range s {
		if v < 0 {
			parts[i] = fmt.Sprintf("cpu%d ?", i)
		} else {
			parts[i] = fmt.Sprintf("cpu%d %.0f%%", i, v)
		}
	}
	return strings.Join(parts, ", ")
}
