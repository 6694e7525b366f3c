package main

import (
	"bytes"
	"os"
	"strconv"
)

// ourComms are the processes of the run: the harness (also the veth
// generator, which is this binary re-executed), vswitchd and vswitchctl.
var ourComms = map[string]bool{"memringe2e": true, "vswitchd": true, "vswitchctl": true, "ip": true}

// foreignTicks sums the CPU time (user + system, clock ticks) of every
// process that is not part of the run. The difference of two samples is
// what other work on the machine took from the measurement; kernel
// threads count too (kdamond, ksoftirqd of other traffic).
func foreignTicks() uint64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum uint64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || close < open || close+2 >= len(data) {
			continue
		}
		if ourComms[string(data[open+1:close])] {
			continue
		}
		f := bytes.Fields(data[close+2:])
		// After "(comm) ": state is field 0, utime 11, stime 12.
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(string(f[11]), 10, 64)
		s, _ := strconv.ParseUint(string(f[12]), 10, 64)
		sum += u + s
	}
	return sum
}

// foreignShare is the foreign CPU time between two samples as a
// percentage of one core over seconds (100 = a whole core taken).
func foreignShare(t0, t1 uint64, seconds float64) float64 {
	if seconds <= 0 || t1 < t0 {
		return 0
	}
	return float64(t1-t0) / 100 / seconds * 100 // USER_HZ is 100 on Linux
}
