// Command vswitchctl is the operator CLI of vswitchd: it reads status,
// ports, the FDB and counters, and adds or deletes ports, over the daemon's
// unix-socket API. Command construction lives in root.go so tests can run
// every command in-process.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
