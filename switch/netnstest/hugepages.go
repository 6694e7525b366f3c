package netnstest

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const nrHugepages = "/proc/sys/vm/nr_hugepages"

// ReserveHugepages makes sure at least n default-size (2 MiB) huge pages
// are free, raising vm.nr_hugepages if needed. restore puts the knob back
// to what it was (a no-op when nothing was raised). Tests and benchmarks
// use it so that memring regions land on huge pages as they do on a host
// an operator prepared.
func ReserveHugepages(n int) (restore func() error, err error) {
	restore = func() error { return nil }
	free, err := meminfoField("HugePages_Free:")
	if err != nil || free >= n {
		return restore, err
	}
	b, err := os.ReadFile(nrHugepages)
	if err != nil {
		return restore, err
	}
	total, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return restore, fmt.Errorf("%s: %w", nrHugepages, err)
	}
	want := total + n - free
	if err := os.WriteFile(nrHugepages, []byte(strconv.Itoa(want)), 0o644); err != nil {
		return restore, err
	}
	restore = func() error { return os.WriteFile(nrHugepages, []byte(strconv.Itoa(total)), 0o644) }
	if got, err := meminfoField("HugePages_Free:"); err != nil || got < n {
		return restore, fmt.Errorf("asked the kernel for %d huge pages, %d free (%v)", want, got, err)
	}
	return restore, nil
}

// HugepagesForRun is ReserveHugepages for a benchmark: a failure is
// reported to log under who's name (memring regions then fall back to
// normal pages) rather than ending the run. The caller defers the returned
// function, which puts vm.nr_hugepages back and reports a failure to.
func HugepagesForRun(n int, log io.Writer, who string) (restore func()) {
	undo, err := ReserveHugepages(n)
	if err != nil {
		fmt.Fprintf(log, "%s: huge pages (memring regions fall back to normal pages): %v\n", who, err)
	}
	return func() {
		if err := undo(); err != nil {
			fmt.Fprintf(log, "%s: restore vm.nr_hugepages: %v\n", who, err)
		}
	}
}

// meminfoField reads one numeric field of /proc/meminfo.
func meminfoField(key string) (int, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no %s", key)
}
