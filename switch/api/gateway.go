package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// This file holds the gateway's endpoints and their client methods:
// routes, the ACL, the flow caches and packet trace. Validation is the
// Control's; the handlers only check what the query string and path
// carry, and map errors. Without a router every endpoint answers 409
// Conflict with vswitch.ErrNoRouter's message: the request is fine, the
// daemon's configuration is not.
//
// Endpoints (the list in doc.go does not hold them yet):
//
//	GET    /v1/routes             []pipeline.RouteInfo
//	POST   /v1/routes             body vswitch.RouteSpec -> 201 pipeline.RouteInfo
//	DELETE /v1/routes             204 (query: prefix)
//	GET    /v1/acl                vswitch.ACLInfo
//	POST   /v1/acl/rules          body vswitch.ACLRuleSpec -> 201 vswitch.ACLInfo (query: index; none appends)
//	DELETE /v1/acl/rules/{index}  vswitch.ACLInfo
//	PUT    /v1/acl/default        body ACLDefaultRequest -> vswitch.ACLInfo
//	GET    /v1/flows              []vswitch.FlowInfo (query: limit; 0 or none: all)
//	DELETE /v1/flows              FlushResult
//	GET    /v1/flows/stats        vswitch.FlowStats
//	POST   /v1/trace              body vswitch.TraceRequest -> vswitch.TraceInfo

// ACLDefaultRequest is the body of PUT /v1/acl/default.
type ACLDefaultRequest struct {
	Action string `json:"action"`
}

func (s *Server) gatewayRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/routes", s.getRoutes)
	mux.HandleFunc("POST /v1/routes", s.addRoute)
	mux.HandleFunc("DELETE /v1/routes", s.delRoute)
	mux.HandleFunc("GET /v1/acl", s.getACL)
	mux.HandleFunc("POST /v1/acl/rules", s.addACLRule)
	mux.HandleFunc("DELETE /v1/acl/rules/{index}", s.delACLRule)
	mux.HandleFunc("PUT /v1/acl/default", s.setACLDefault)
	mux.HandleFunc("GET /v1/flows", s.getFlows)
	mux.HandleFunc("DELETE /v1/flows", s.flushFlows)
	mux.HandleFunc("GET /v1/flows/stats", s.getFlowStats)
	mux.HandleFunc("POST /v1/trace", s.trace)
}

// parseIndex reads a non-negative integer named field; "" is def.
func parseIndex(field, v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &vswitch.FieldError{Field: field, Msg: strconv.Quote(v) + " is not a non-negative integer"}
	}
	return n, nil
}

func (s *Server) getRoutes(w http.ResponseWriter, r *http.Request) {
	routes, err := s.ctl.Routes()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if routes == nil {
		routes = []pipeline.RouteInfo{} // [] rather than null: clients range over it
	}
	writeJSON(w, http.StatusOK, routes)
}

// addRoute answers the route as the router lists it (prefix masked, its
// interface and VLAN filled in).
func (s *Server) addRoute(w http.ResponseWriter, r *http.Request) {
	var spec vswitch.RouteSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.ctl.AddRoute(spec); err != nil {
		s.writeError(w, r, nameSubject(err, "add route %s", spec.Prefix))
		return
	}
	s.log.Info("route added", zap.String("prefix", spec.Prefix), zap.String("via", spec.Via))
	out := pipeline.RouteInfo{}
	if p, err := netip.ParsePrefix(spec.Prefix); err == nil {
		if routes, err := s.ctl.Routes(); err == nil {
			for _, rt := range routes {
				if !rt.Connected && rt.Prefix == p.Masked() {
					out = rt
				}
			}
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) delRoute(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	if prefix == "" {
		s.writeError(w, r, &vswitch.FieldError{Field: "prefix", Msg: "is required"})
		return
	}
	if err := s.ctl.DelRoute(prefix); err != nil {
		s.writeError(w, r, nameSubject(err, "delete route %s", prefix))
		return
	}
	s.log.Info("route deleted", zap.String("prefix", prefix))
	w.WriteHeader(http.StatusNoContent)
}

// writeACL sends the ACL with [] rather than null rules.
func writeACL(w http.ResponseWriter, code int, acl vswitch.ACLInfo) {
	if acl.Rules == nil {
		acl.Rules = []vswitch.ACLRuleInfo{}
	}
	writeJSON(w, code, acl)
}

func (s *Server) getACL(w http.ResponseWriter, r *http.Request) {
	acl, err := s.ctl.ACL()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeACL(w, http.StatusOK, acl)
}

func (s *Server) addACLRule(w http.ResponseWriter, r *http.Request) {
	index, err := parseIndex("index", r.URL.Query().Get("index"), -1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var spec vswitch.ACLRuleSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	acl, err := s.ctl.AddACLRule(index, spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("acl rule added", zap.Int("index", index), zap.Any("rule", spec))
	writeACL(w, http.StatusCreated, acl)
}

func (s *Server) delACLRule(w http.ResponseWriter, r *http.Request) {
	index, err := parseIndex("index", r.PathValue("index"), 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	acl, err := s.ctl.DelACLRule(index)
	if err != nil {
		s.writeError(w, r, nameSubject(err, "delete acl rule %d", index))
		return
	}
	s.log.Info("acl rule deleted", zap.Int("index", index))
	writeACL(w, http.StatusOK, acl)
}

func (s *Server) setACLDefault(w http.ResponseWriter, r *http.Request) {
	var req ACLDefaultRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	acl, err := s.ctl.SetACLDefault(req.Action)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("acl default set", zap.String("action", req.Action))
	writeACL(w, http.StatusOK, acl)
}

func (s *Server) getFlows(w http.ResponseWriter, r *http.Request) {
	limit, err := parseIndex("limit", r.URL.Query().Get("limit"), 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	flows, err := s.ctl.Flows(limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if flows == nil {
		flows = []vswitch.FlowInfo{}
	}
	writeJSON(w, http.StatusOK, flows)
}

func (s *Server) flushFlows(w http.ResponseWriter, r *http.Request) {
	n, err := s.ctl.FlushFlows()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("flows flushed", zap.Int("entries", n))
	writeJSON(w, http.StatusOK, FlushResult{Flushed: n})
}

func (s *Server) getFlowStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.ctl.FlowStats()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if st.Workers == nil {
		st.Workers = []pipeline.FlowCacheStats{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	var req vswitch.TraceRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := s.ctl.Trace(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if info.Events == nil {
		info.Events = []pipeline.TraceEvent{}
	}
	writeJSON(w, http.StatusOK, info)
}

// noRouterError is the daemon's ErrNoRouter answer on the client side. Its
// 409 alone would make *Error unwrap to vswitch.ErrExists; this unwraps to
// vswitch.ErrNoRouter instead, and errors.As still finds the *Error.
type noRouterError struct{ e *Error }

func (n *noRouterError) Error() string { return n.e.Error() }
func (n *noRouterError) Unwrap() error { return vswitch.ErrNoRouter }
func (n *noRouterError) As(target any) bool {
	if p, ok := target.(**Error); ok {
		*p = n.e
		return true
	}
	return false
}

// gatewayError recognises the daemon's "no router" answer (409 with
// ErrNoRouter's message, wrapped or not).
func gatewayError(err error) error {
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusConflict && strings.HasSuffix(e.Message, vswitch.ErrNoRouter.Error()) {
		return &noRouterError{e}
	}
	return err
}

// Routes lists the connected and static routes. Without a router the
// error unwraps to vswitch.ErrNoRouter, as every gateway method's does.
func (c *Client) Routes(ctx context.Context) ([]pipeline.RouteInfo, error) {
	var out []pipeline.RouteInfo
	err := c.do(ctx, http.MethodGet, "/v1/routes", nil, nil, &out)
	return out, gatewayError(err)
}

// AddRoute adds a static route and returns it as the router lists it.
func (c *Client) AddRoute(ctx context.Context, r vswitch.RouteSpec) (pipeline.RouteInfo, error) {
	var out pipeline.RouteInfo
	err := c.do(ctx, http.MethodPost, "/v1/routes", nil, r, &out)
	return out, gatewayError(err)
}

// DelRoute deletes the static route of prefix.
func (c *Client) DelRoute(ctx context.Context, prefix string) error {
	err := c.do(ctx, http.MethodDelete, "/v1/routes", url.Values{"prefix": {prefix}}, nil, nil)
	return gatewayError(err)
}

// ACL returns the ACL rules with their hit counters.
func (c *Client) ACL(ctx context.Context) (vswitch.ACLInfo, error) {
	var out vswitch.ACLInfo
	err := c.do(ctx, http.MethodGet, "/v1/acl", nil, nil, &out)
	return out, gatewayError(err)
}

// AddACLRule inserts r before position index, or appends it when index is
// negative, and returns the ACL after the change.
func (c *Client) AddACLRule(ctx context.Context, index int, r vswitch.ACLRuleSpec) (vswitch.ACLInfo, error) {
	var q url.Values
	if index >= 0 {
		q = url.Values{"index": {strconv.Itoa(index)}}
	}
	var out vswitch.ACLInfo
	err := c.do(ctx, http.MethodPost, "/v1/acl/rules", q, r, &out)
	return out, gatewayError(err)
}

// DelACLRule deletes the rule at index and returns the ACL after the
// change.
func (c *Client) DelACLRule(ctx context.Context, index int) (vswitch.ACLInfo, error) {
	var out vswitch.ACLInfo
	err := c.do(ctx, http.MethodDelete, "/v1/acl/rules/"+strconv.Itoa(index), nil, nil, &out)
	return out, gatewayError(err)
}

// SetACLDefault sets the action when no rule matches (allow or deny).
func (c *Client) SetACLDefault(ctx context.Context, action string) (vswitch.ACLInfo, error) {
	var out vswitch.ACLInfo
	err := c.do(ctx, http.MethodPut, "/v1/acl/default", nil, ACLDefaultRequest{Action: action}, &out)
	return out, gatewayError(err)
}

// Flows lists up to limit cached flows of every worker (0: all).
func (c *Client) Flows(ctx context.Context, limit int) ([]vswitch.FlowInfo, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out []vswitch.FlowInfo
	err := c.do(ctx, http.MethodGet, "/v1/flows", q, nil, &out)
	return out, gatewayError(err)
}

// FlushFlows invalidates every cached flow and returns how many were live.
func (c *Client) FlushFlows(ctx context.Context) (int, error) {
	var res FlushResult
	err := c.do(ctx, http.MethodDelete, "/v1/flows", nil, nil, &res)
	return res.Flushed, gatewayError(err)
}

// FlowStats returns the flow caches' counters, per worker and total.
func (c *Client) FlowStats(ctx context.Context) (vswitch.FlowStats, error) {
	var out vswitch.FlowStats
	err := c.do(ctx, http.MethodGet, "/v1/flows/stats", nil, nil, &out)
	return out, gatewayError(err)
}

// Trace runs the packet req describes through the gateway; nothing is
// sent and no flow is cached.
func (c *Client) Trace(ctx context.Context, req vswitch.TraceRequest) (vswitch.TraceInfo, error) {
	var out vswitch.TraceInfo
	err := c.do(ctx, http.MethodPost, "/v1/trace", nil, req, &out)
	return out, gatewayError(err)
}
