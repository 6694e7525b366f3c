package vswitch

import (
	"errors"

	"github.com/vswitch/vswitch/pipeline"
)

// ErrNoRouter is returned by the gateway controls when no router is
// configured.
var ErrNoRouter = errors.New("no router configured (router.interfaces is empty)")

// GatewayControl is the control surface of the gateway: routes, the ACL,
// the flow caches and packet trace.
type GatewayControl interface {
	// Routes lists connected and static routes.
	Routes() ([]pipeline.RouteInfo, error)
	// AddRoute adds a static route; errors are *FieldError (prefix, via)
	// or wrap ErrExists.
	AddRoute(r RouteSpec) error
	// DelRoute removes the static route of prefix; ErrNotFound.
	DelRoute(prefix string) error
	// ACL returns the rules with their hit counters.
	ACL() (ACLInfo, error)
	// AddACLRule inserts a rule before position index (-1 or len: append).
	AddACLRule(index int, r ACLRuleSpec) (ACLInfo, error)
	// DelACLRule removes the rule at index; ErrNotFound.
	DelACLRule(index int) (ACLInfo, error)
	// SetACLDefault sets the action when no rule matches (allow, deny).
	SetACLDefault(action string) (ACLInfo, error)
	// Flows lists up to limit cached flows of every worker (0: all).
	Flows(limit int) ([]FlowInfo, error)
	// FlushFlows invalidates every cached flow and says how many were live.
	FlushFlows() (int, error)
	// FlowStats returns the flow caches' counters, per worker and total.
	FlowStats() (FlowStats, error)
	// Trace runs a described packet through the gateway and reports every
	// decision.
	Trace(req TraceRequest) (TraceInfo, error)
}

// ACLInfo is the ACL as running.
type ACLInfo struct {
	Default            string        `json:"default"`
	Established        bool          `json:"established"`
	Rules              []ACLRuleInfo `json:"rules"`
	DefaultHits        uint64        `json:"default_hits"`
	EstablishedHits    uint64        `json:"established_hits"`
	EstablishedEntries int           `json:"established_entries"`
}

// ACLRuleInfo is one rule with its position and hit counter.
type ACLRuleInfo struct {
	Index int `json:"index"`
	ACLRuleSpec
	Text string `json:"text"`
	Hits uint64 `json:"hits"`
}

// FlowInfo is one cached flow.
type FlowInfo struct {
	Worker  int    `json:"worker"`
	Key     string `json:"key"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	OutPort string `json:"out_port,omitempty"`
	Actions string `json:"actions"`
	IdleSec uint32 `json:"idle_sec"`
	Valid   bool   `json:"valid"`
}

// FlowStats are the flow caches' counters.
type FlowStats struct {
	Total   pipeline.FlowCacheStats   `json:"total"`
	Workers []pipeline.FlowCacheStats `json:"workers"`
	// Generation is the current generation cached entries must carry.
	Generation uint64              `json:"generation"`
	Route      pipeline.RouteStats `json:"route"`
	// Parked is how many packets wait for ARP/ND now; Solicitations,
	// Released and ParkTimeouts count requests sent, packets run again
	// after an answer, and packets dropped after waiting too long.
	Parked        int    `json:"parked"`
	Solicitations uint64 `json:"solicitations"`
	Released      uint64 `json:"released"`
	ParkTimeouts  uint64 `json:"park_timeouts"`
	EchoReplies   uint64 `json:"echo_replies"`
	Local         uint64 `json:"local"`
}

// TraceRequest describes a packet to trace. Empty fields get defaults:
// dst_mac the router's MAC, src_mac 02:00:00:00:00:01, proto udp, ports
// 12345 -> 80, ttl 64.
type TraceRequest struct {
	InPort string `json:"in_port"`
	SrcMAC string `json:"src_mac,omitempty"`
	DstMAC string `json:"dst_mac,omitempty"`
	// VLAN tags the frame (0: untagged).
	VLAN    uint16 `json:"vlan,omitempty"`
	Proto   string `json:"proto,omitempty"`
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	SrcPort uint16 `json:"src_port,omitempty"`
	DstPort uint16 `json:"dst_port,omitempty"`
	TTL     uint8  `json:"ttl,omitempty"`
}

// TraceInfo is the trace of one packet.
type TraceInfo struct {
	Worker int `json:"worker"`
	pipeline.TraceResult
	OutPortName string `json:"out_port_name,omitempty"`
}
