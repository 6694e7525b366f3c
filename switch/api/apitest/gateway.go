package apitest

import (
	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// The fake has no router: every gateway control answers ErrNoRouter, as
// the daemon does without router.interfaces.

// Routes implements vswitch.GatewayControl.
func (c *Control) Routes() ([]pipeline.RouteInfo, error) { return nil, vswitch.ErrNoRouter }

// AddRoute implements vswitch.GatewayControl.
func (c *Control) AddRoute(vswitch.RouteSpec) error { return vswitch.ErrNoRouter }

// DelRoute implements vswitch.GatewayControl.
func (c *Control) DelRoute(string) error { return vswitch.ErrNoRouter }

// ACL implements vswitch.GatewayControl.
func (c *Control) ACL() (vswitch.ACLInfo, error) { return vswitch.ACLInfo{}, vswitch.ErrNoRouter }

// AddACLRule implements vswitch.GatewayControl.
func (c *Control) AddACLRule(int, vswitch.ACLRuleSpec) (vswitch.ACLInfo, error) {
	return vswitch.ACLInfo{}, vswitch.ErrNoRouter
}

// DelACLRule implements vswitch.GatewayControl.
func (c *Control) DelACLRule(int) (vswitch.ACLInfo, error) {
	return vswitch.ACLInfo{}, vswitch.ErrNoRouter
}

// SetACLDefault implements vswitch.GatewayControl.
func (c *Control) SetACLDefault(string) (vswitch.ACLInfo, error) {
	return vswitch.ACLInfo{}, vswitch.ErrNoRouter
}

// Flows implements vswitch.GatewayControl.
func (c *Control) Flows(int) ([]vswitch.FlowInfo, error) { return nil, vswitch.ErrNoRouter }

// FlushFlows implements vswitch.GatewayControl.
func (c *Control) FlushFlows() (int, error) { return 0, vswitch.ErrNoRouter }

// FlowStats implements vswitch.GatewayControl.
func (c *Control) FlowStats() (vswitch.FlowStats, error) {
	return vswitch.FlowStats{}, vswitch.ErrNoRouter
}

// Trace implements vswitch.GatewayControl.
func (c *Control) Trace(vswitch.TraceRequest) (vswitch.TraceInfo, error) {
	return vswitch.TraceInfo{}, vswitch.ErrNoRouter
}
