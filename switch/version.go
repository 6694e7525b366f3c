package vswitch

// Version is the build's version. The Makefile sets it with
// -ldflags "-X github.com/vswitch/vswitch/switch.Version=..."; a plain
// `go build` leaves "dev".
var Version = "dev"
