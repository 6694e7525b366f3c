// Package api is vswitchd's control API: HTTP with JSON bodies on a unix
// socket, served from a vswitch.Control, and the typed Client that
// vswitchctl uses to call it.
//
// The package owns the wire format (paths, status codes, error bodies) and
// the socket's lifecycle (permissions, stale-socket recovery). It holds no
// switch state and must not: every request is answered by the Control.
//
// Endpoints:
//
//	GET    /v1/status        vswitch.Status
//	GET    /v1/version       VersionInfo
//	GET    /v1/ports         []vswitch.PortInfo
//	POST   /v1/ports         body vswitch.PortSpec -> 201 vswitch.PortInfo
//	DELETE /v1/ports/{name}  204
//	GET    /v1/fdb           []vswitch.FDBEntry (query: port, vlan)
//	DELETE /v1/fdb           FlushResult
//	GET    /v1/stats         vswitch.Stats
//
// Errors are ErrorResponse bodies: 400 for a *vswitch.FieldError or a bad
// request body, 404 for vswitch.ErrNotFound, 409 for vswitch.ErrExists, 413
// for an oversized body, 500 for anything else.
package api
