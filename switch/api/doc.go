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
//	GET    /v1/stats         vswitch.Stats (Peephole holds the responders' counters)
//	GET    /v1/bindings      []vswitch.BindingInfo (query: family=ipv4|ipv6, vlan, kind)
//	POST   /v1/bindings      body vswitch.BindingSpec -> 201 vswitch.BindingInfo
//	DELETE /v1/bindings      204 (query: ip, vlan; vlan defaults to 0)
//	DELETE /v1/bindings/gleaned  FlushResult
//	GET    /v1/dns           vswitch.DNSSpec
//	POST   /v1/dns/zones     body vswitch.DNSZoneSpec -> 201 vswitch.DNSZoneSpec
//	DELETE /v1/dns/zones/{name}  204
//	POST   /v1/dns/records   body vswitch.DNSRecordSpec -> 201 vswitch.DNSRecordSpec
//	DELETE /v1/dns/records   204 (query: name, type, value; no value deletes every value)
//
// Errors are ErrorResponse bodies: 400 for a *vswitch.FieldError or a bad
// request body, 404 for vswitch.ErrNotFound, 409 for vswitch.ErrExists, 413
// for an oversized body, 500 for anything else.
package api
