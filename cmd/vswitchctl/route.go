package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/pipeline"
	vswitch "github.com/vswitch/vswitch/switch"
)

// routeFields names the argument behind a route field in the daemon's
// errors.
var routeFields = map[string]string{"prefix": "PREFIX", "via": "ADDR"}

// gatewayError adds to the daemon's "no router" answer what to do about
// it; other errors pass unchanged. Every gateway command (route, acl,
// flows, trace) returns its call's error through it.
func gatewayError(err error) error {
	if errors.Is(err, vswitch.ErrNoRouter) {
		return fmt.Errorf("%w: the gateway commands need router.interfaces in vswitchd's config", err)
	}
	return err
}

func newRouteCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("route", "Show, add and delete the gateway's routes")
	cmd.AddCommand(newRouteShowCmd(o), newRouteAddCmd(o), newRouteDelCmd(o))
	return cmd
}

func newRouteShowCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Aliases: []string{"list", "ls"},
		Short:   "Show the connected and static routes",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			routes, err := cl.Routes(cmd.Context())
			if err != nil {
				return gatewayError(err)
			}
			if o.output == outputJSON {
				return printJSON(o.out, routes)
			}
			return printRoutes(o, routes)
		},
	}
}

func printRoutes(o *options, routes []pipeline.RouteInfo) error {
	t := newTable(o.out, "PREFIX", "VIA", "INTERFACE", "VLAN")
	for _, r := range routes {
		via := "connected"
		if !r.Connected {
			via = r.Via.String()
		}
		t.row(r.Prefix, via, dash(r.Interface), r.VLAN)
	}
	return t.flush()
}

// parsePrefixArg checks a PREFIX argument before it goes to the daemon.
func parsePrefixArg(s string) error {
	if p, err := netip.ParsePrefix(s); err != nil || p.Addr().Zone() != "" {
		return usageErrorf("invalid PREFIX: %q is not a prefix like 10.9.0.0/16", s)
	}
	return nil
}

func newRouteAddCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "add PREFIX via ADDR",
		Short:   "Add a static route",
		Long:    "add routes PREFIX to the neighbor ADDR, which must be in a connected prefix.",
		Example: "  vswitchctl route add 10.9.0.0/16 via 10.0.2.1",
		Args:    args(cobra.ExactArgs(3)),
		ValidArgsFunction: func(_ *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) == 1 {
				return []string{"via"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := parsePrefixArg(a[0]); err != nil {
				return err
			}
			if a[1] != "via" {
				return usageErrorf("invalid argument %q: want \"via\" (route add PREFIX via ADDR)", a[1])
			}
			if via, err := netip.ParseAddr(a[2]); err != nil || via.Zone() != "" {
				return usageErrorf("invalid ADDR: %q is not an IP address", a[2])
			}
			cl := o.client()
			defer cl.Close()
			r, err := cl.AddRoute(cmd.Context(), vswitch.RouteSpec{Prefix: a[0], Via: a[2]})
			if err != nil {
				return gatewayError(fieldArgError(err, routeFields))
			}
			if o.output == outputJSON {
				return printJSON(o.out, r)
			}
			return printRoutes(o, []pipeline.RouteInfo{r})
		},
	}
}

func newRouteDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del PREFIX",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a static route",
		Args:    args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return staticPrefixes(cmd, o), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := parsePrefixArg(a[0]); err != nil {
				return err
			}
			cl := o.client()
			defer cl.Close()
			if err := cl.DelRoute(cmd.Context(), a[0]); err != nil {
				return gatewayError(fieldArgError(err, routeFields))
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted route %s\n", a[0])
			}
			return nil
		},
	}
}

// staticPrefixes asks the daemon for the static routes to complete; a
// daemon that is down or has no router just completes nothing.
func staticPrefixes(cmd *cobra.Command, o *options) []string {
	cl := o.client()
	defer cl.Close()
	routes, err := cl.Routes(cmd.Context())
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range routes {
		if !r.Connected {
			out = append(out, r.Prefix.String())
		}
	}
	return out
}
