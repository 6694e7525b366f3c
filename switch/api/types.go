package api

import (
	"fmt"
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

// FlushResult is the body of DELETE /v1/fdb.
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
	if s := q.Get("vlan"); s != "" {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil || v > 4095 {
			return f, &vswitch.FieldError{Field: "vlan", Msg: fmt.Sprintf("%q is not a VLAN ID in 0..4095", s)}
		}
		vlan := uint16(v)
		f.VLAN = &vlan
	}
	return f, nil
}
