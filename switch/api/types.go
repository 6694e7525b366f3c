package api

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"

	vswitch "github.com/vswitch/vswitch/switch"
)

// APIVersion is the path prefix version of this API.
const APIVersion = "v1"

// VersionInfo is the body of GET /v1/version: the daemon's build.
type VersionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	API       string `json:"api"`
}

// FlushResult is the body of DELETE /v1/fdb and DELETE /v1/bindings/gleaned.
type FlushResult struct {
	Flushed int `json:"flushed"`
}

// ErrorResponse is the body of every error answer. Field is set when the
// error is a *vswitch.FieldError, so a client can point at its own flag.
type ErrorResponse struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// FDBFilter selects FDB entries. The zero value selects all.
type FDBFilter struct {
	Port string  // only entries on this port, if not empty
	VLAN *uint16 // only entries in this VLAN, if not nil
}

// Match reports whether e passes the filter.
func (f FDBFilter) Match(e vswitch.FDBEntry) bool {
	if f.Port != "" && e.Port != f.Port {
		return false
	}
	if f.VLAN != nil && e.VLAN != *f.VLAN {
		return false
	}
	return true
}

func (f FDBFilter) query() url.Values {
	q := url.Values{}
	if f.Port != "" {
		q.Set("port", f.Port)
	}
	if f.VLAN != nil {
		q.Set("vlan", strconv.FormatUint(uint64(*f.VLAN), 10))
	}
	return q
}

// parseFDBFilter reads the filter from a query string; a bad vlan is a
// *vswitch.FieldError so it maps to 400 like any other bad input.
func parseFDBFilter(q url.Values) (FDBFilter, error) {
	f := FDBFilter{Port: q.Get("port")}
	vlan, err := parseVLAN(q)
	f.VLAN = vlan
	return f, err
}

// Address families of BindingFilter.Family.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// BindingFilter selects bindings. The zero value selects all.
type BindingFilter struct {
	Family string  // FamilyIPv4 or FamilyIPv6, if not empty
	VLAN   *uint16 // only bindings in this VLAN, if not nil
	Kind   string  // static, gateway or gleaned, if not empty
}

// Match reports whether b passes the filter. A binding whose IP does not
// parse matches no family.
func (f BindingFilter) Match(b vswitch.BindingInfo) bool {
	if f.VLAN != nil && b.VLAN != *f.VLAN {
		return false
	}
	if f.Kind != "" && b.Kind != f.Kind {
		return false
	}
	if f.Family != "" {
		ip, err := netip.ParseAddr(b.IP)
		if err != nil || (f.Family == FamilyIPv4) != ip.Unmap().Is4() {
			return false
		}
	}
	return true
}

func (f BindingFilter) query() url.Values {
	q := url.Values{}
	if f.Family != "" {
		q.Set("family", f.Family)
	}
	if f.VLAN != nil {
		q.Set("vlan", strconv.FormatUint(uint64(*f.VLAN), 10))
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	return q
}

// parseBindingFilter reads the filter from a query string; a bad value is
// a *vswitch.FieldError naming the parameter.
func parseBindingFilter(q url.Values) (BindingFilter, error) {
	f := BindingFilter{Family: q.Get("family"), Kind: q.Get("kind")}
	switch f.Family {
	case "", FamilyIPv4, FamilyIPv6:
	default:
		return f, &vswitch.FieldError{Field: "family", Msg: fmt.Sprintf("%q is not one of ipv4, ipv6", f.Family)}
	}
	switch f.Kind {
	case "", "static", "gateway", "gleaned":
	default:
		return f, &vswitch.FieldError{Field: "kind", Msg: fmt.Sprintf("%q is not one of static, gateway, gleaned", f.Kind)}
	}
	vlan, err := parseVLAN(q)
	f.VLAN = vlan
	return f, err
}

// parseVLAN reads the optional vlan parameter.
func parseVLAN(q url.Values) (*uint16, error) {
	s := q.Get("vlan")
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v > 4095 {
		return nil, &vswitch.FieldError{Field: "vlan", Msg: fmt.Sprintf("%q is not a VLAN ID in 0..4095", s)}
	}
	vlan := uint16(v)
	return &vlan, nil
}
