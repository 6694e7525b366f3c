package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *vswitch.FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Errorf("error %v does not unwrap to a FieldError for %s", err, field)
	}
}

func TestBindingEndpoints(t *testing.T) {
	ctl := apitest.NewSample()
	cl, _ := start(t, ctl)
	ctx := context.Background()
	vlan10, vlan20 := uint16(10), uint16(20)

	t.Run("list", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			filter api.BindingFilter
			want   []string
		}{
			{"all", api.BindingFilter{}, []string{"10.0.10.1", "10.0.10.5", "2001:db8:10::1", "10.0.20.7"}},
			{"ipv4", api.BindingFilter{Family: api.FamilyIPv4}, []string{"10.0.10.1", "10.0.10.5", "10.0.20.7"}},
			{"ipv6", api.BindingFilter{Family: api.FamilyIPv6}, []string{"2001:db8:10::1"}},
			{"vlan", api.BindingFilter{VLAN: &vlan20}, []string{"10.0.20.7"}},
			{"kind", api.BindingFilter{Kind: "gateway"}, []string{"10.0.10.1", "2001:db8:10::1"}},
			{"all three", api.BindingFilter{Family: api.FamilyIPv4, VLAN: &vlan10, Kind: "static"}, []string{"10.0.10.5"}},
			{"none", api.BindingFilter{Kind: "gleaned", VLAN: &vlan10}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bs, err := cl.Bindings(ctx, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if bs == nil {
					t.Error("bindings is nil; the server must send [] not null")
				}
				got := []string{}
				for _, b := range bs {
					got = append(got, b.IP)
				}
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Errorf("bindings %v, want %v", got, tc.want)
				}
			})
		}
	})
	t.Run("gleaned has an age", func(t *testing.T) {
		bs, err := cl.Bindings(ctx, api.BindingFilter{Kind: "gleaned"})
		if err != nil || len(bs) != 1 || bs[0].AgeSec != 42.5 || bs[0].Port != "eth1" {
			t.Errorf("gleaned %+v %v", bs, err)
		}
	})
	t.Run("add", func(t *testing.T) {
		info, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: "10.0.10.9", MAC: "02:AA:00:00:00:09", VLAN: 10, Port: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		want := vswitch.BindingInfo{BindingSpec: vswitch.BindingSpec{IP: "10.0.10.9", MAC: "02:aa:00:00:00:09", VLAN: 10, Kind: "static", Port: "eth0"}}
		if info != want {
			t.Errorf("info %+v, want %+v", info, want)
		}
	})
	t.Run("add ipv6 gateway", func(t *testing.T) {
		info, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: "2001:DB8::0:1", MAC: "02:00:00:00:00:0b", Kind: "gateway"})
		if err != nil || info.IP != "2001:db8::1" || info.Kind != "gateway" {
			t.Errorf("info %+v %v", info, err)
		}
	})
	t.Run("add duplicate", func(t *testing.T) {
		_, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: "10.0.10.1", MAC: "02:00:00:00:00:0c", VLAN: 10})
		wantAPIError(t, err, http.StatusConflict, vswitch.ErrExists, "add binding 10.0.10.1 vlan 10")
	})
	t.Run("add identical is a no-op", func(t *testing.T) {
		n := len(ctl.Bindings())
		if _, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: "10.0.10.1", MAC: "02:00:00:00:0A:01", VLAN: 10, Kind: "gateway"}); err != nil {
			t.Error(err)
		}
		if len(ctl.Bindings()) != n {
			t.Error("an identical binding was added twice")
		}
	})
	t.Run("add same ip other vlan", func(t *testing.T) {
		if _, err := cl.AddBinding(ctx, vswitch.BindingSpec{IP: "10.0.10.1", MAC: "02:00:00:00:00:0c", VLAN: 11}); err != nil {
			t.Error(err)
		}
	})
	for _, tc := range []struct {
		name  string
		spec  vswitch.BindingSpec
		field string
		msg   string
	}{
		{"bad ip", vswitch.BindingSpec{IP: "10.0.0", MAC: "02:00:00:00:00:01"}, "ip", `ip: "10.0.0" is not an IP address`},
		{"no ip", vswitch.BindingSpec{MAC: "02:00:00:00:00:01"}, "ip", "ip:"},
		{"multicast ip", vswitch.BindingSpec{IP: "224.0.0.1", MAC: "02:00:00:00:00:01"}, "ip", "not a unicast address"},
		{"bad mac", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "02:00:00"}, "mac", "mac:"},
		{"multicast mac", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "01:00:5e:00:00:01"}, "mac", "not a unicast MAC"},
		{"zero mac", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "00:00:00:00:00:00"}, "mac", "not a unicast MAC"},
		{"vlan", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "02:00:00:00:00:01", VLAN: 4095}, "vlan", "vlan: 4095 is not in 0..4094"},
		{"kind", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "02:00:00:00:00:01", Kind: "gleaned"}, "kind", `kind: "gleaned" is not one of static, gateway`},
		{"port", vswitch.BindingSpec{IP: "10.0.0.1", MAC: "02:00:00:00:00:01", Port: "eth9"}, "port", `port: no port "eth9"`},
	} {
		t.Run("add "+tc.name, func(t *testing.T) {
			_, err := cl.AddBinding(ctx, tc.spec)
			wantAPIError(t, err, http.StatusBadRequest, nil, tc.msg)
			wantField(t, err, tc.field)
		})
	}
	t.Run("del", func(t *testing.T) {
		if err := cl.DelBinding(ctx, 10, "10.0.10.9"); err != nil {
			t.Fatal(err)
		}
		if err := cl.DelBinding(ctx, 20, "10.0.20.7"); err != nil {
			t.Errorf("delete gleaned: %v", err)
		}
		if bs, _ := cl.Bindings(ctx, api.BindingFilter{Family: api.FamilyIPv4, VLAN: &vlan10}); len(bs) != 2 {
			t.Errorf("bindings after delete: %+v", bs)
		}
	})
	t.Run("del missing", func(t *testing.T) {
		err := cl.DelBinding(ctx, 11, "10.0.10.5")
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, "delete binding 10.0.10.5 vlan 11: not found")
	})
	t.Run("del bad ip", func(t *testing.T) {
		err := cl.DelBinding(ctx, 0, "nope")
		wantAPIError(t, err, http.StatusBadRequest, nil, "ip:")
		wantField(t, err, "ip")
	})
	t.Run("flush gleaned", func(t *testing.T) {
		ctl.SetBindings(append(ctl.Bindings(),
			vswitch.BindingInfo{BindingSpec: vswitch.BindingSpec{IP: "10.0.20.8", MAC: "02:00:00:00:00:08", VLAN: 20, Kind: "gleaned"}, AgeSec: 1},
			vswitch.BindingInfo{BindingSpec: vswitch.BindingSpec{IP: "2001:db8:20::8", MAC: "02:00:00:00:00:08", VLAN: 20, Kind: "gleaned"}, AgeSec: 2}))
		if st, _ := cl.Stats(ctx); st.Peephole.Gleaned != 2 {
			t.Errorf("stats say %d gleaned, want 2", st.Peephole.Gleaned)
		}
		n, err := cl.FlushGleaned(ctx)
		if err != nil || n != 2 {
			t.Errorf("flushed %d (%v), want 2", n, err)
		}
		if bs, _ := cl.Bindings(ctx, api.BindingFilter{Kind: "gleaned"}); len(bs) != 0 {
			t.Errorf("gleaned left: %+v", bs)
		}
		if n, err := cl.FlushGleaned(ctx); err != nil || n != 0 {
			t.Errorf("second flush: %d %v", n, err)
		}
	})
}

func TestDNSEndpoints(t *testing.T) {
	ctl := apitest.NewSample()
	cl, _ := start(t, ctl)
	ctx := context.Background()

	t.Run("list", func(t *testing.T) {
		d, err := cl.DNS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := vswitch.DNSSpec{
			Zones: []vswitch.DNSZoneSpec{{Name: "example.test", SOA: vswitch.DNSSOASpec{MName: "ns.example.test", RName: "hostmaster.example.test",
				Serial: 7, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 60}}},
			Records: []vswitch.DNSRecordSpec{
				{Name: "gw.example.test", Type: "A", Value: "10.0.10.1", TTL: 60},
				{Name: "gw.example.test", Type: "AAAA", Value: "2001:db8:10::1", TTL: 300},
				{Name: "www.example.test", Type: "CNAME", Value: "gw.example.test", TTL: 60},
			},
		}
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("dns %s\nwant %s", a, b)
		}
	})
	t.Run("add zone", func(t *testing.T) {
		z, err := cl.AddDNSZone(ctx, vswitch.DNSZoneSpec{Name: "Lab.Example.", SOA: vswitch.DNSSOASpec{RName: "ops.lab.example", Minimum: 30}})
		if err != nil {
			t.Fatal(err)
		}
		want := vswitch.DNSZoneSpec{Name: "lab.example", SOA: vswitch.DNSSOASpec{MName: "ns.lab.example", RName: "ops.lab.example",
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 30}}
		if z != want {
			t.Errorf("zone %+v, want %+v", z, want)
		}
	})
	t.Run("add zone duplicate", func(t *testing.T) {
		_, err := cl.AddDNSZone(ctx, vswitch.DNSZoneSpec{Name: "example.test."})
		wantAPIError(t, err, http.StatusConflict, vswitch.ErrExists, `add zone "example.test": already exists`)
	})
	t.Run("add zone bad name", func(t *testing.T) {
		_, err := cl.AddDNSZone(ctx, vswitch.DNSZoneSpec{Name: "a..b"})
		wantAPIError(t, err, http.StatusBadRequest, nil, "name:")
		wantField(t, err, "name")
		_, err = cl.AddDNSZone(ctx, vswitch.DNSZoneSpec{Name: "c.test", SOA: vswitch.DNSSOASpec{MName: "bad name"}})
		wantField(t, err, "soa.mname")
	})
	t.Run("add record", func(t *testing.T) {
		r, err := cl.AddDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "Host.Lab.Example", Type: "aaaa", Value: "2001:DB8::5"})
		if err != nil {
			t.Fatal(err)
		}
		if want := (vswitch.DNSRecordSpec{Name: "host.lab.example", Type: "AAAA", Value: "2001:db8::5", TTL: 60}); r != want {
			t.Errorf("record %+v, want %+v", r, want)
		}
		if _, err := cl.AddDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "host.lab.example", Type: "AAAA", Value: "2001:db8::6", TTL: 5}); err != nil {
			t.Error(err)
		}
		if _, err := cl.AddDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "5.0.0.10.in-addr.arpa", Type: "PTR", Value: "x.test"}); err == nil {
			t.Error("a PTR outside every zone was accepted")
		}
	})
	t.Run("add record duplicate", func(t *testing.T) {
		_, err := cl.AddDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "gw.example.test", Type: "A", Value: "10.0.10.1"})
		wantAPIError(t, err, http.StatusConflict, vswitch.ErrExists, "add record gw.example.test A 10.0.10.1: already exists")
	})
	for _, tc := range []struct {
		name  string
		rec   vswitch.DNSRecordSpec
		field string
		msg   string
	}{
		{"outside zones", vswitch.DNSRecordSpec{Name: "a.elsewhere", Type: "A", Value: "10.0.0.1"}, "name", "not in any local zone"},
		{"bad name", vswitch.DNSRecordSpec{Name: "a b.example.test", Type: "A", Value: "10.0.0.1"}, "name", "name:"},
		{"bad type", vswitch.DNSRecordSpec{Name: "a.example.test", Type: "MX", Value: "10 mx.example.test"}, "type", `type: "MX" is not one of A, AAAA, PTR, CNAME`},
		{"A with IPv6", vswitch.DNSRecordSpec{Name: "a.example.test", Type: "A", Value: "2001:db8::1"}, "value", "is not an IPv4 address"},
		{"AAAA with IPv4", vswitch.DNSRecordSpec{Name: "a.example.test", Type: "AAAA", Value: "10.0.0.1"}, "value", "is not an IPv6 address"},
		{"CNAME bad target", vswitch.DNSRecordSpec{Name: "a.example.test", Type: "CNAME", Value: ""}, "value", "value:"},
		{"ttl", vswitch.DNSRecordSpec{Name: "a.example.test", Type: "A", Value: "10.0.0.1", TTL: 1 << 31}, "ttl", "ttl: 2147483648 is above"},
		{"CNAME clash", vswitch.DNSRecordSpec{Name: "www.example.test", Type: "A", Value: "10.0.0.1"}, "name", "CNAME"},
		{"clash with CNAME", vswitch.DNSRecordSpec{Name: "gw.example.test", Type: "CNAME", Value: "x.example.test"}, "name", "CNAME"},
	} {
		t.Run("add record "+tc.name, func(t *testing.T) {
			_, err := cl.AddDNSRecord(ctx, tc.rec)
			wantAPIError(t, err, http.StatusBadRequest, nil, tc.msg)
			wantField(t, err, tc.field)
		})
	}
	t.Run("del record by value", func(t *testing.T) {
		if err := cl.DelDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "host.lab.example", Type: "AAAA", Value: "2001:db8:0::6"}); err != nil {
			t.Fatal(err)
		}
		d, _ := cl.DNS(ctx)
		if n := countRecords(d, "host.lab.example"); n != 1 {
			t.Errorf("%d records left at host.lab.example, want 1", n)
		}
	})
	t.Run("del record every value", func(t *testing.T) {
		if err := cl.DelDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "gw.example.test", Type: "a"}); err != nil {
			t.Fatal(err)
		}
		d, _ := cl.DNS(ctx)
		if n := countRecords(d, "gw.example.test"); n != 1 {
			t.Errorf("%d records left at gw.example.test, want the AAAA", n)
		}
	})
	t.Run("del record missing", func(t *testing.T) {
		err := cl.DelDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "gw.example.test", Type: "A", Value: "10.0.10.1"})
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, "delete record gw.example.test A 10.0.10.1: not found")
	})
	t.Run("del record bad type", func(t *testing.T) {
		err := cl.DelDNSRecord(ctx, vswitch.DNSRecordSpec{Name: "gw.example.test", Type: "TXT"})
		wantAPIError(t, err, http.StatusBadRequest, nil, "type:")
		wantField(t, err, "type")
	})
	t.Run("del zone", func(t *testing.T) {
		if err := cl.DelDNSZone(ctx, "lab.example"); err != nil {
			t.Fatal(err)
		}
		d, _ := cl.DNS(ctx)
		if len(d.Zones) != 1 || countRecords(d, "host.lab.example") != 0 {
			t.Errorf("dns after deleting the zone: %+v", d)
		}
	})
	t.Run("del zone missing", func(t *testing.T) {
		err := cl.DelDNSZone(ctx, "lab.example")
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, `delete zone "lab.example": not found`)
	})
	t.Run("empty dns sends empty lists", func(t *testing.T) {
		_, path := start(t, apitest.New())
		resp, err := rawClient(t, path).Get("http://x/v1/dns")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		if string(raw["zones"]) != "[]" || string(raw["records"]) != "[]" {
			t.Errorf("empty dns %s", raw)
		}
	})
}

func countRecords(d vswitch.DNSSpec, name string) int {
	n := 0
	for _, r := range d.Records {
		if r.Name == name {
			n++
		}
	}
	return n
}

func TestStatsCarryPeephole(t *testing.T) {
	ctl := apitest.NewSample()
	cl, _ := start(t, ctl)
	st, err := cl.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(st.Peephole)
	b, _ := json.Marshal(ctl.PeepholeStats())
	if string(a) != string(b) {
		t.Errorf("stats peephole %s, want %s", a, b)
	}
	if st.Peephole.DNS.NXDomain != 4 || st.Peephole.ARP.Passed["not_request"] != 6 || st.Peephole.Gleaned != 1 {
		t.Errorf("peephole %s", a)
	}
}

func TestPeepholeRequestErrors(t *testing.T) {
	_, path := start(t, apitest.NewSample())
	hc := rawClient(t, path)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg, field               string
	}{
		{"binding unknown field", "POST", "/v1/bindings", `{"ip":"10.0.0.1","mac":"02:00:00:00:00:01","router":true}`, 400, `unknown field "router"`, ""},
		{"binding too large", "POST", "/v1/bindings", `{"ip":"` + strings.Repeat("1", 100<<10) + `"}`, 413, "larger than", ""},
		{"binding empty body", "POST", "/v1/bindings", ``, 400, "empty body", ""},
		{"binding wrong type", "POST", "/v1/bindings", `{"ip":"10.0.0.1","vlan":"ten"}`, 400, "decode request body", ""},
		{"binding vlan over 16 bits", "POST", "/v1/bindings", `{"ip":"10.0.0.1","vlan":70000}`, 400, "decode request body", ""},
		{"binding trailing data", "POST", "/v1/bindings", `{} {}`, 400, "trailing data", ""},
		{"bindings bad family", "GET", "/v1/bindings?family=ipx", ``, 400, `family: "ipx" is not one of ipv4, ipv6`, "family"},
		{"bindings bad kind", "GET", "/v1/bindings?kind=dynamic", ``, 400, "kind:", "kind"},
		{"bindings bad vlan", "GET", "/v1/bindings?vlan=x", ``, 400, "vlan:", "vlan"},
		{"del binding without ip", "DELETE", "/v1/bindings?vlan=10", ``, 400, "ip: is required", "ip"},
		{"del binding bad vlan", "DELETE", "/v1/bindings?ip=10.0.0.1&vlan=-1", ``, 400, "vlan:", "vlan"},
		{"flush gleaned wrong method", "POST", "/v1/bindings/gleaned", ``, 405, "Method Not Allowed", ""},
		{"zone unknown field", "POST", "/v1/dns/zones", `{"name":"a.test","ttl":5}`, 400, `unknown field "ttl"`, ""},
		{"zone unknown soa field", "POST", "/v1/dns/zones", `{"name":"a.test","soa":{"minimum_ttl":5}}`, 400, `unknown field "minimum_ttl"`, ""},
		{"zone too large", "POST", "/v1/dns/zones", `{"name":"` + strings.Repeat("a", 100<<10) + `"}`, 413, "larger than", ""},
		{"zone serial negative", "POST", "/v1/dns/zones", `{"name":"a.test","soa":{"serial":-1}}`, 400, "decode request body", ""},
		{"record unknown field", "POST", "/v1/dns/records", `{"name":"a.example.test","type":"A","value":"10.0.0.1","class":"IN"}`, 400, `unknown field "class"`, ""},
		{"record empty body", "POST", "/v1/dns/records", ``, 400, "empty body", ""},
		{"del record without name", "DELETE", "/v1/dns/records?type=A", ``, 400, "name: is required", "name"},
		{"del record without type", "DELETE", "/v1/dns/records?name=gw.example.test", ``, 400, "type: is required", "type"},
		{"del zone without name", "DELETE", "/v1/dns/zones/", ``, 404, "Not Found", ""},
		{"dns wrong method", "PUT", "/v1/dns", ``, 405, "Method Not Allowed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			var body api.ErrorResponse
			dec := json.NewDecoder(resp.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("error body is not an ErrorResponse: %v", err)
			}
			if !strings.Contains(body.Error, tc.msg) {
				t.Errorf("error %q does not contain %q", body.Error, tc.msg)
			}
			if body.Field != tc.field {
				t.Errorf("field %q, want %q", body.Field, tc.field)
			}
		})
	}
}

func TestClientSendsValidPeepholeJSON(t *testing.T) {
	// The server decodes strictly; a round trip with every field set proves
	// the client sends exactly the spec types' JSON.
	cl, _ := start(t, apitest.NewSample())
	ctx := context.Background()
	b := vswitch.BindingSpec{IP: "10.0.10.20", MAC: "02:00:00:00:00:20", VLAN: 10, Kind: "gateway", Port: "eth1"}
	if info, err := cl.AddBinding(ctx, b); err != nil || info.BindingSpec != b {
		t.Errorf("binding %+v (%v), sent %+v", info, err, b)
	}
	z := vswitch.DNSZoneSpec{Name: "z.test", SOA: vswitch.DNSSOASpec{MName: "m.z.test", RName: "r.z.test", Serial: 2, Refresh: 3, Retry: 4, Expire: 5, Minimum: 6}}
	if got, err := cl.AddDNSZone(ctx, z); err != nil || got != z {
		t.Errorf("zone %+v (%v), sent %+v", got, err, z)
	}
	r := vswitch.DNSRecordSpec{Name: "h.z.test", Type: "A", Value: "10.0.0.2", TTL: 9}
	if got, err := cl.AddDNSRecord(ctx, r); err != nil || got != r {
		t.Errorf("record %+v (%v), sent %+v", got, err, r)
	}
}
