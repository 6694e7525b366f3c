// Command vswitchctl is the operator CLI of vswitchd: it reads status,
// ports, the FDB and counters, adds or deletes ports (AF_XDP and memring),
// and edits the ARP/ND bindings (arp, nd) and local DNS zones (dns) the
// responders answer from, over the daemon's unix-socket API. Command
// construction lives in root.go so tests can run every command in-process.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
