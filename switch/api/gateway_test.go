package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/api/apitest"
)

func startRouter(t *testing.T) (*apitest.Control, *api.Client, string) {
	t.Helper()
	ctl := apitest.NewSample()
	ctl.EnableRouter()
	cl, path := start(t, ctl)
	return ctl, cl, path
}

func routeList(rs []pipeline.RouteInfo) string {
	var s []string
	for _, r := range rs {
		via := "connected"
		if !r.Connected {
			via = r.Via.String()
		}
		s = append(s, r.Prefix.String()+" "+via+" "+r.Interface)
	}
	return strings.Join(s, ", ")
}

func TestRouteEndpoints(t *testing.T) {
	_, cl, _ := startRouter(t)
	ctx := context.Background()

	t.Run("list", func(t *testing.T) {
		rs, err := cl.Routes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := "10.0.1.0/24 connected vlan10, 10.0.2.0/24 connected vlan20, 10.9.0.0/16 10.0.2.1 vlan20"
		if got := routeList(rs); got != want {
			t.Errorf("routes %s, want %s", got, want)
		}
	})
	t.Run("add", func(t *testing.T) {
		r, err := cl.AddRoute(ctx, vswitch.RouteSpec{Prefix: "10.8.1.7/16", Via: "10.0.1.1"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Prefix.String() != "10.8.0.0/16" || r.Via.String() != "10.0.1.1" || r.Interface != "vlan10" || r.VLAN != 10 || r.Connected {
			t.Errorf("added %+v", r)
		}
	})
	t.Run("add duplicate", func(t *testing.T) {
		_, err := cl.AddRoute(ctx, vswitch.RouteSpec{Prefix: "10.9.0.0/16", Via: "10.0.1.1"})
		wantAPIError(t, err, http.StatusConflict, vswitch.ErrExists, "add route 10.9.0.0/16: already exists")
		if errors.Is(err, vswitch.ErrNoRouter) {
			t.Error("a duplicate route unwraps to ErrNoRouter")
		}
	})
	for _, tc := range []struct {
		name  string
		spec  vswitch.RouteSpec
		field string
		msg   string
	}{
		{"bad prefix", vswitch.RouteSpec{Prefix: "10.9.0.0/33", Via: "10.0.1.1"}, "prefix", `prefix: "10.9.0.0/33" is not a prefix`},
		{"bad via", vswitch.RouteSpec{Prefix: "10.7.0.0/16", Via: "x"}, "via", `via: "x" is not an address`},
		{"via of other family", vswitch.RouteSpec{Prefix: "10.7.0.0/16", Via: "2001:db8::1"}, "via", "not an address of the prefix's family"},
		{"via unreached", vswitch.RouteSpec{Prefix: "10.7.0.0/16", Via: "10.0.3.1"}, "via", "10.0.3.1 is in no connected prefix"},
		{"connected prefix", vswitch.RouteSpec{Prefix: "10.0.1.0/24", Via: "10.0.2.1"}, "prefix", "10.0.1.0/24 is a connected prefix"},
	} {
		t.Run("add "+tc.name, func(t *testing.T) {
			_, err := cl.AddRoute(ctx, tc.spec)
			wantAPIError(t, err, http.StatusBadRequest, nil, tc.msg)
			wantField(t, err, tc.field)
		})
	}
	t.Run("del", func(t *testing.T) {
		if err := cl.DelRoute(ctx, "10.8.0.0/16"); err != nil {
			t.Fatal(err)
		}
		rs, _ := cl.Routes(ctx)
		if len(rs) != 3 {
			t.Errorf("routes after delete: %s", routeList(rs))
		}
	})
	t.Run("del missing", func(t *testing.T) {
		err := cl.DelRoute(ctx, "10.8.0.0/16")
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, "delete route 10.8.0.0/16: not found")
	})
	t.Run("del bad prefix", func(t *testing.T) {
		err := cl.DelRoute(ctx, "nope")
		wantAPIError(t, err, http.StatusBadRequest, nil, `prefix: "nope" is not a prefix`)
		wantField(t, err, "prefix")
	})
	t.Run("del no prefix", func(t *testing.T) {
		err := cl.DelRoute(ctx, "")
		wantAPIError(t, err, http.StatusBadRequest, nil, "prefix: is required")
		wantField(t, err, "prefix")
	})
}

func ruleTexts(acl vswitch.ACLInfo) string {
	var s []string
	for i, r := range acl.Rules {
		if r.Index != i {
			s = append(s, "BAD INDEX")
		}
		s = append(s, r.Text)
	}
	return strings.Join(s, "; ")
}

func TestACLEndpoints(t *testing.T) {
	_, cl, _ := startRouter(t)
	ctx := context.Background()
	const ssh, dns = "allow tcp any:any -> 10.0.2.0/24:22", "deny udp 10.0.1.0/24:any -> any:53"

	t.Run("show", func(t *testing.T) {
		acl, err := cl.ACL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := ruleTexts(acl); got != ssh+"; "+dns {
			t.Errorf("rules %s", got)
		}
		if acl.Default != "allow" || !acl.Established || acl.Rules[0].Hits != 5 || acl.Rules[1].Hits != 10 || acl.DefaultHits != 100 {
			t.Errorf("acl %+v", acl)
		}
	})
	t.Run("insert", func(t *testing.T) {
		acl, err := cl.AddACLRule(ctx, 1, vswitch.ACLRuleSpec{Action: "deny", Proto: "ICMP", Src: "10.0.1.5"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ruleTexts(acl), ssh+"; deny icmp 10.0.1.5/32:any -> any:any; "+dns; got != want {
			t.Errorf("rules %s, want %s", got, want)
		}
		if r := acl.Rules[1]; r.Proto != "icmp" || r.Src != "10.0.1.5/32" || r.Hits != 0 {
			t.Errorf("inserted rule %+v", r)
		}
	})
	t.Run("append", func(t *testing.T) {
		acl, err := cl.AddACLRule(ctx, -1, vswitch.ACLRuleSpec{Action: "allow", Proto: "udp", DstPorts: "1000-2000"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(acl.Rules); n != 4 || acl.Rules[3].Text != "allow udp any:any -> any:1000-2000" {
			t.Errorf("rules %s", ruleTexts(acl))
		}
	})
	for _, tc := range []struct {
		name  string
		index int
		spec  vswitch.ACLRuleSpec
		field string
		msg   string
	}{
		{"action", -1, vswitch.ACLRuleSpec{Action: "drop"}, "rule.action", `rule.action: "drop" is not one of allow, deny`},
		{"proto", -1, vswitch.ACLRuleSpec{Action: "deny", Proto: "sctpx"}, "rule.proto", `"sctpx" is not tcp`},
		{"src", -1, vswitch.ACLRuleSpec{Action: "deny", Src: "10.0.0.0/40"}, "rule.src", `"10.0.0.0/40" is not an address or prefix`},
		{"ports", -1, vswitch.ACLRuleSpec{Action: "deny", Proto: "tcp", DstPorts: "9-1"}, "rule.dst_ports", `"9-1" is not a port`},
		{"ports without tcp", -1, vswitch.ACLRuleSpec{Action: "deny", DstPorts: "53"}, "rule.dst_ports", "ports need proto tcp or udp"},
		{"index past the end", 9, vswitch.ACLRuleSpec{Action: "deny"}, "index", "index: 9 is past the end of the 4 rules"},
	} {
		t.Run("add bad "+tc.name, func(t *testing.T) {
			_, err := cl.AddACLRule(ctx, tc.index, tc.spec)
			wantAPIError(t, err, http.StatusBadRequest, nil, tc.msg)
			wantField(t, err, tc.field)
		})
	}
	t.Run("del", func(t *testing.T) {
		acl, err := cl.DelACLRule(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ruleTexts(acl), ssh+"; "+dns+"; allow udp any:any -> any:1000-2000"; got != want {
			t.Errorf("rules %s, want %s", got, want)
		}
	})
	t.Run("del missing", func(t *testing.T) {
		_, err := cl.DelACLRule(ctx, 3)
		wantAPIError(t, err, http.StatusNotFound, vswitch.ErrNotFound, "delete acl rule 3: not found")
	})
	t.Run("default", func(t *testing.T) {
		acl, err := cl.SetACLDefault(ctx, "deny")
		if err != nil || acl.Default != "deny" {
			t.Errorf("acl %+v %v", acl, err)
		}
		_, err = cl.SetACLDefault(ctx, "reject")
		wantAPIError(t, err, http.StatusBadRequest, nil, `default: "reject" is not one of allow, deny`)
		wantField(t, err, "default")
	})
}

func TestFlowEndpoints(t *testing.T) {
	_, cl, _ := startRouter(t)
	ctx := context.Background()

	t.Run("list", func(t *testing.T) {
		fs, err := cl.Flows(ctx, 0)
		if err != nil || len(fs) != 2 || fs[0].Verdict != "forward" || fs[1].Reason != "acl_deny" {
			t.Errorf("flows %+v %v", fs, err)
		}
	})
	t.Run("limit", func(t *testing.T) {
		fs, err := cl.Flows(ctx, 1)
		if err != nil || len(fs) != 1 || fs[0].Worker != 0 {
			t.Errorf("flows %+v %v", fs, err)
		}
	})
	t.Run("stats", func(t *testing.T) {
		st, err := cl.FlowStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total.Hits != 1000 || st.Total.Misses != 100 || len(st.Workers) != 2 || st.Generation != 7 || st.Route.Routed != 1000 || st.Solicitations != 8 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("flush", func(t *testing.T) {
		n, err := cl.FlushFlows(ctx)
		if err != nil || n != 2 {
			t.Errorf("flushed %d %v", n, err)
		}
		fs, err := cl.Flows(ctx, 0)
		if err != nil || fs == nil || len(fs) != 0 {
			t.Errorf("flows after flush %#v %v (want [] not null)", fs, err)
		}
		if st, _ := cl.FlowStats(ctx); st.Generation != 8 {
			t.Errorf("generation %d after flush, want 8", st.Generation)
		}
	})
}

func TestTraceEndpoint(t *testing.T) {
	_, cl, _ := startRouter(t)
	ctx := context.Background()

	t.Run("forward", func(t *testing.T) {
		tr, err := cl.Trace(ctx, vswitch.TraceRequest{InPort: "eth0", Src: "10.0.1.5", Dst: "10.9.3.4", Proto: "tcp", DstPort: 443})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Key != "in_port=eth0 vlan=10 proto=6 10.0.1.5:12345 > 10.9.3.4:443" || tr.Cache != "miss (no entry)" ||
			tr.Verdict != "forward" || tr.OutPortName != "eth1" || tr.Entry == nil || tr.Same != nil {
			t.Errorf("trace %+v", tr)
		}
		if len(tr.Events) == 0 || tr.Events[0].Stage != "route" || !strings.Contains(tr.Events[0].Detail, "10.9.3.4") {
			t.Errorf("events %+v", tr.Events)
		}
	})
	t.Run("no route", func(t *testing.T) {
		tr, err := cl.Trace(ctx, vswitch.TraceRequest{InPort: "eth0", Src: "10.0.1.5", Dst: "192.0.2.1"})
		if err != nil || tr.Verdict != "drop" || tr.Reason != "no_route" || tr.Events[0].Detail != "no route to 192.0.2.1" {
			t.Errorf("trace %+v %v", tr, err)
		}
	})
	for _, tc := range []struct {
		name  string
		req   vswitch.TraceRequest
		field string
	}{
		{"in_port", vswitch.TraceRequest{InPort: "eth9", Src: "10.0.1.5", Dst: "10.0.2.7"}, "in_port"},
		{"src", vswitch.TraceRequest{InPort: "eth0", Src: "x", Dst: "10.0.2.7"}, "src"},
		{"dst family", vswitch.TraceRequest{InPort: "eth0", Src: "10.0.1.5", Dst: "2001:db8::1"}, "dst"},
	} {
		t.Run("bad "+tc.name, func(t *testing.T) {
			_, err := cl.Trace(ctx, tc.req)
			wantAPIError(t, err, http.StatusBadRequest, nil, tc.field+":")
			wantField(t, err, tc.field)
		})
	}
}

func TestGatewayNoRouter(t *testing.T) {
	cl, _ := start(t, apitest.NewSample())
	ctx := context.Background()
	msg := vswitch.ErrNoRouter.Error()
	for name, call := range map[string]func() error{
		"routes": func() error { _, err := cl.Routes(ctx); return err },
		"add route": func() error {
			_, err := cl.AddRoute(ctx, vswitch.RouteSpec{Prefix: "10.9.0.0/16", Via: "10.0.1.1"})
			return err
		},
		"del route":   func() error { return cl.DelRoute(ctx, "10.9.0.0/16") },
		"acl":         func() error { _, err := cl.ACL(ctx); return err },
		"add rule":    func() error { _, err := cl.AddACLRule(ctx, -1, vswitch.ACLRuleSpec{Action: "deny"}); return err },
		"del rule":    func() error { _, err := cl.DelACLRule(ctx, 0); return err },
		"default":     func() error { _, err := cl.SetACLDefault(ctx, "deny"); return err },
		"flows":       func() error { _, err := cl.Flows(ctx, 0); return err },
		"flush flows": func() error { _, err := cl.FlushFlows(ctx); return err },
		"flow stats":  func() error { _, err := cl.FlowStats(ctx); return err },
		"trace":       func() error { _, err := cl.Trace(ctx, vswitch.TraceRequest{InPort: "eth0"}); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantAPIError(t, err, http.StatusConflict, vswitch.ErrNoRouter, msg)
			if errors.Is(err, vswitch.ErrExists) {
				t.Errorf("%v unwraps to ErrExists", err)
			}
		})
	}
}

// TestGatewayBadQuery sends what the typed client never does: query and
// path values that are not numbers.
func TestGatewayBadQuery(t *testing.T) {
	_, _, path := startRouter(t)
	hc := rawClient(t, path)
	for _, tc := range []struct {
		method, url, body, want string
	}{
		{"GET", "/v1/flows?limit=x", "", `"field":"limit"`},
		{"GET", "/v1/flows?limit=-1", "", `"field":"limit"`},
		{"POST", "/v1/acl/rules?index=first", `{"action":"deny"}`, `"field":"index"`},
		{"DELETE", "/v1/acl/rules/-2", "", `"field":"index"`},
		{"DELETE", "/v1/acl/rules/one", "", `"field":"index"`},
		{"POST", "/v1/routes", `{"prefix":"10.7.0.0/16","gateway":"10.0.1.1"}`, `unknown field \"gateway\"`},
		{"PUT", "/v1/acl/default", ``, "empty body"},
	} {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, "http://vswitchd"+tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
				t.Errorf("%d %s, want 400 holding %s", resp.StatusCode, b, tc.want)
			}
		})
	}
}
