package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUTimes is one core's cumulative jiffies from /proc/stat.
type CPUTimes struct {
	Busy  uint64 `json:"busy"`
	Total uint64 `json:"total"`
}

// ReadCPUTimes samples /proc/stat. Index i is core i. /proc/stat is not
// namespaced, so a sample taken inside a network namespace sees every core.
func ReadCPUTimes() ([]CPUTimes, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/stat: %w", err)
	}
	return ParseProcStat(data)
}

// ParseProcStat parses the per-core "cpuN" lines. Busy is everything but idle
// and iowait; guest time is already inside user/nice, so it is not added again.
func ParseProcStat(data []byte) ([]CPUTimes, error) {
	var out []CPUTimes
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n > 4096 {
			return nil, fmt.Errorf("parse /proc/stat: bad cpu field %q", f[0])
		}
		var v [8]uint64
		for i := 0; i < len(v) && i+1 < len(f); i++ {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("parse /proc/stat %s: %w", f[0], err)
			}
		}
		var t CPUTimes
		for _, x := range v {
			t.Total += x
		}
		t.Busy = t.Total - v[3] - v[4] // minus idle and iowait
		for len(out) <= n {
			out = append(out, CPUTimes{})
		}
		out[n] = t
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse /proc/stat: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parse /proc/stat: no cpu lines")
	}
	return out, nil
}

// BusyPercent returns each core's busy share between two samples.
func BusyPercent(a, b []CPUTimes) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		dt := b[i].Total - a[i].Total
		if dt == 0 || b[i].Total < a[i].Total {
			continue
		}
		out[i] = 100 * float64(b[i].Busy-a[i].Busy) / float64(dt)
	}
	return out
}
