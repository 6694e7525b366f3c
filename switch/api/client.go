package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
)

// ErrUnreachable is wrapped by every Client error that comes from failing
// to connect to the socket, as opposed to an answer from the daemon.
var ErrUnreachable = errors.New("cannot reach vswitchd")

// maxResponseBytes bounds what the client reads; a full 16M-entry FDB dump
// is the largest legitimate answer.
const maxResponseBytes = 1 << 30

// Error is an error answer of the daemon. Error() is the daemon's message.
// It unwraps to vswitch.ErrNotFound (404), vswitch.ErrExists (409) or a
// *vswitch.FieldError (400 naming a field), so errors.Is and errors.As work
// on the client side as on the server side.
type Error struct {
	StatusCode int
	Message    string
	Field      string
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error {
	switch {
	case e.StatusCode == http.StatusNotFound:
		return vswitch.ErrNotFound
	case e.StatusCode == http.StatusConflict:
		return vswitch.ErrExists
	case e.StatusCode == http.StatusBadRequest && e.Field != "":
		return &vswitch.FieldError{Field: e.Field, Msg: e.Message}
	}
	return nil
}

// Client calls the control API of one daemon. It is safe for concurrent use.
type Client struct {
	socketPath string
	hc         *http.Client
}

// NewClient returns a client for the daemon listening on socketPath. It
// does not connect until the first call.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		// Every request goes to the one socket, whatever the URL's host.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4, // one host: the socket
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{socketPath: socketPath, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Close releases idle connections. The client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Status returns the daemon's summary.
func (c *Client) Status(ctx context.Context) (vswitch.Status, error) {
	var st vswitch.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &st)
	return st, err
}

// Version returns the daemon's build.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, nil, &v)
	return v, err
}

// Ports lists the configured ports.
func (c *Client) Ports(ctx context.Context) ([]vswitch.PortInfo, error) {
	var ports []vswitch.PortInfo
	err := c.do(ctx, http.MethodGet, "/v1/ports", nil, nil, &ports)
	return ports, err
}

// AddPort adds a port; the daemon fills defaults and validates spec.
func (c *Client) AddPort(ctx context.Context, spec vswitch.PortSpec) (vswitch.PortInfo, error) {
	var info vswitch.PortInfo
	err := c.do(ctx, http.MethodPost, "/v1/ports", nil, spec, &info)
	return info, err
}

// DelPort deletes the port named name.
func (c *Client) DelPort(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/ports/"+url.PathEscape(name), nil, nil, nil)
}

// FDB lists the forwarding database entries that pass filter.
func (c *Client) FDB(ctx context.Context, filter FDBFilter) ([]vswitch.FDBEntry, error) {
	var entries []vswitch.FDBEntry
	err := c.do(ctx, http.MethodGet, "/v1/fdb", filter.query(), nil, &entries)
	return entries, err
}

// FlushFDB removes the learned FDB entries and returns how many it removed.
func (c *Client) FlushFDB(ctx context.Context) (int, error) {
	var res FlushResult
	err := c.do(ctx, http.MethodDelete, "/v1/fdb", nil, nil, &res)
	return res.Flushed, err
}

// Stats returns every counter of the switch.
func (c *Client) Stats(ctx context.Context) (vswitch.Stats, error) {
	var st vswitch.Stats
	err := c.do(ctx, http.MethodGet, "/v1/stats", nil, nil, &st)
	return st, err
}

// Bindings lists the static, gateway and gleaned bindings that pass filter.
func (c *Client) Bindings(ctx context.Context, filter BindingFilter) ([]vswitch.BindingInfo, error) {
	var out []vswitch.BindingInfo
	err := c.do(ctx, http.MethodGet, "/v1/bindings", filter.query(), nil, &out)
	return out, err
}

// AddBinding adds a static or gateway binding; the daemon validates spec.
func (c *Client) AddBinding(ctx context.Context, spec vswitch.BindingSpec) (vswitch.BindingInfo, error) {
	var info vswitch.BindingInfo
	err := c.do(ctx, http.MethodPost, "/v1/bindings", nil, spec, &info)
	return info, err
}

// DelBinding deletes the binding of ip in vlan, whatever its kind.
func (c *Client) DelBinding(ctx context.Context, vlan uint16, ip string) error {
	q := url.Values{"ip": {ip}, "vlan": {strconv.FormatUint(uint64(vlan), 10)}}
	return c.do(ctx, http.MethodDelete, "/v1/bindings", q, nil, nil)
}

// FlushGleaned removes every gleaned binding, IPv4 and IPv6, and returns
// how many it removed.
func (c *Client) FlushGleaned(ctx context.Context) (int, error) {
	var res FlushResult
	err := c.do(ctx, http.MethodDelete, "/v1/bindings/gleaned", nil, nil, &res)
	return res.Flushed, err
}

// DNS returns the local zones and their records.
func (c *Client) DNS(ctx context.Context) (vswitch.DNSSpec, error) {
	var d vswitch.DNSSpec
	err := c.do(ctx, http.MethodGet, "/v1/dns", nil, nil, &d)
	return d, err
}

// AddDNSZone adds a zone and returns it with the SOA defaults filled.
func (c *Client) AddDNSZone(ctx context.Context, z vswitch.DNSZoneSpec) (vswitch.DNSZoneSpec, error) {
	var out vswitch.DNSZoneSpec
	err := c.do(ctx, http.MethodPost, "/v1/dns/zones", nil, z, &out)
	return out, err
}

// DelDNSZone deletes the zone named name and every record in it.
func (c *Client) DelDNSZone(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/dns/zones/"+url.PathEscape(name), nil, nil, nil)
}

// AddDNSRecord adds a record to its zone and returns it as stored.
func (c *Client) AddDNSRecord(ctx context.Context, r vswitch.DNSRecordSpec) (vswitch.DNSRecordSpec, error) {
	var out vswitch.DNSRecordSpec
	err := c.do(ctx, http.MethodPost, "/v1/dns/records", nil, r, &out)
	return out, err
}

// DelDNSRecord deletes the records of r.Name and r.Type whose value is
// r.Value, or all of them when r.Value is empty. r.TTL is ignored.
func (c *Client) DelDNSRecord(ctx context.Context, r vswitch.DNSRecordSpec) error {
	q := url.Values{"name": {r.Name}, "type": {r.Type}}
	if r.Value != "" {
		q.Set("value", r.Value)
	}
	return c.do(ctx, http.MethodDelete, "/v1/dns/records", q, nil, nil)
}

// do sends one request with in (if not nil) as its JSON body and decodes
// a successful answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// The host is a placeholder; DialContext ignores it. path is already
	// escaped, so it is joined as a string rather than set as URL.Path.
	u := "http://vswitchd" + path
	if q := query.Encode(); q != "" {
		u += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vswitch-api-client/"+vswitch.Version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read %s %s response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return responseError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// transportError says plainly when the daemon could not be reached at all,
// which is by far the most common failure of a CLI call.
func (c *Client) transportError(method, path string, err error) error {
	// The *net.OpError says what failed ("dial unix PATH: connect: ...");
	// the *url.Error around it only adds the made-up URL.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		if errors.Is(op, fs.ErrPermission) {
			return fmt.Errorf("%w at %s: permission denied: run as root or as a member of the socket's group (%w)", ErrUnreachable, c.socketPath, op)
		}
		return fmt.Errorf("%w at %s: is it running? (%w)", ErrUnreachable, c.socketPath, op)
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

func responseError(resp *http.Response, data []byte) error {
	e := &Error{StatusCode: resp.StatusCode}
	var body ErrorResponse
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message, e.Field = body.Error, body.Field
	} else if msg := strings.TrimSpace(string(data)); msg != "" && len(msg) < 512 {
		e.Message = msg
	} else {
		e.Message = resp.Status
	}
	return e
}
