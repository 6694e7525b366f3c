// Package vswitch owns the switch side of the datapath: ports (AF_XDP),
// the poll-mode workers that drive them, the L2 forwarding database and
// learning stage, the port registry and the daemon wiring (config, API,
// persistence). It knows nothing of DNS or NAT protocol details; those are
// stages from other packages.
//
// The directory is named switch after its role; the package is named vswitch
// because switch is a Go keyword.
package vswitch
