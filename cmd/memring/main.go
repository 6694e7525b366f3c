// Command memring is a memring client for tests and benchmarks: it attaches
// to a switch's memring port like a container would and pings (ping),
// answers ARP and ICMP echo (respond), generates or counts traffic (gen,
// sink), or measures the rings process to process with no switch in between
// (pair-bench). Command construction lives in root.go so tests can run every
// command in-process.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
