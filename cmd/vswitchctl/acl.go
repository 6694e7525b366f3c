package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
)

// aclFields names the argument or flag behind an ACL field in the
// daemon's errors.
var aclFields = map[string]string{
	"rule.action": "ACTION", "rule.proto": "proto", "rule.src": "src", "rule.dst": "dst",
	"rule.src_ports": "sport", "rule.dst_ports": "dport", "index": "--index", "default": "ACTION",
}

// aclKeywords are the match keywords of `acl add`, in the order help,
// errors and completion show them.
var aclKeywords = []string{"proto", "src", "dst", "sport", "dport"}

func newACLCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("acl", "Show and edit the gateway's firewall of routed traffic")
	cmd.AddCommand(newACLShowCmd(o), newACLAddCmd(o), newACLDelCmd(o), newACLDefaultCmd(o))
	return cmd
}

func newACLShowCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Aliases: []string{"list", "ls"},
		Short:   "Show the rules in order, with their hit counters",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			acl, err := cl.ACL(cmd.Context())
			if err != nil {
				return gatewayError(err)
			}
			if o.output == outputJSON {
				return printJSON(o.out, acl)
			}
			return printACL(o, acl)
		},
	}
}

func printACL(o *options, acl vswitch.ACLInfo) error {
	t := newTable(o.out, "INDEX", "ACTION", "RULE", "HITS")
	for _, r := range acl.Rules {
		t.row(r.Index, r.Action, r.Text, r.Hits)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "default: %s (%d hits)\n", acl.Default, acl.DefaultHits)
	if acl.Established {
		fmt.Fprintf(o.out, "established: on (%d hits, %d connections)\n", acl.EstablishedHits, acl.EstablishedEntries)
	} else {
		fmt.Fprintln(o.out, "established: off")
	}
	return nil
}

// parseACLAction checks an ACTION argument.
func parseACLAction(s string) error {
	if s != "allow" && s != "deny" {
		return usageErrorf("invalid ACTION: %q is not one of allow, deny", s)
	}
	return nil
}

// parseACLRule reads `allow|deny [KEYWORD VALUE]...` into a rule spec.
func parseACLRule(a []string) (vswitch.ACLRuleSpec, error) {
	r := vswitch.ACLRuleSpec{Action: a[0]}
	if err := parseACLAction(a[0]); err != nil {
		return r, err
	}
	seen := map[string]bool{}
	for i := 1; i < len(a); i += 2 {
		kw := a[i]
		var field *string
		switch kw {
		case "proto":
			field = &r.Proto
		case "src":
			field = &r.Src
		case "dst":
			field = &r.Dst
		case "sport":
			field = &r.SrcPorts
		case "dport":
			field = &r.DstPorts
		default:
			return r, usageErrorf("unknown keyword %q: want one of %v", kw, aclKeywords)
		}
		if i+1 >= len(a) {
			return r, usageErrorf("keyword %s needs a value", kw)
		}
		if seen[kw] {
			return r, usageErrorf("keyword %s given twice", kw)
		}
		seen[kw] = true
		*field = a[i+1]
	}
	return r, nil
}

func newACLAddCmd(o *options) *cobra.Command {
	var index int
	cmd := &cobra.Command{
		Use:   "add allow|deny [proto P] [src X] [dst Y] [sport A[-B]] [dport C[-D]]",
		Short: "Add a rule, last or before --index",
		Long: "add appends a rule, or inserts it before the rule at --index. Keywords left out\n" +
			"match anything: proto is tcp, udp, icmp, icmpv6, any or a number; src and dst\n" +
			"are prefixes or addresses; sport and dport a port or a range lo-hi (tcp and\n" +
			"udp only). The first rule that matches decides.",
		Example: "  vswitchctl acl add allow proto tcp dst 10.0.2.0/24 dport 22\n" +
			"  vswitchctl acl add --index 0 deny src 10.0.1.66",
		Args: args(cobra.MinimumNArgs(1)),
		ValidArgsFunction: func(_ *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			switch {
			case len(a) == 0:
				return []string{"allow", "deny"}, cobra.ShellCompDirectiveNoFileComp
			case len(a)%2 == 1:
				return aclKeywords, cobra.ShellCompDirectiveNoFileComp
			case a[len(a)-1] == "proto":
				return []string{"tcp", "udp", "icmp", "icmpv6", "any"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			r, err := parseACLRule(a)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("index") && index < 0 {
				return usageErrorf("invalid --index: %d is negative", index)
			}
			cl := o.client()
			defer cl.Close()
			acl, err := cl.AddACLRule(cmd.Context(), index, r)
			if err != nil {
				return gatewayError(fieldArgError(err, aclFields))
			}
			if o.output == outputJSON {
				return printJSON(o.out, acl)
			}
			return printACL(o, acl)
		},
	}
	cmd.Flags().IntVar(&index, "index", -1, "insert before the rule at this index (default: append)")
	return cmd
}

func newACLDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del INDEX",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete the rule at INDEX (as `acl show` numbers them)",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			index, err := strconv.Atoi(a[0])
			if err != nil || index < 0 {
				return usageErrorf("invalid INDEX: %q is not a rule index (0, 1, ...)", a[0])
			}
			cl := o.client()
			defer cl.Close()
			if _, err := cl.DelACLRule(cmd.Context(), index); err != nil {
				return gatewayError(fieldArgError(err, aclFields))
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted acl rule %d\n", index)
			}
			return nil
		},
	}
}

func newACLDefaultCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:       "default allow|deny",
		Short:     "Set what happens to traffic no rule matches",
		Args:      args(cobra.ExactArgs(1)),
		ValidArgs: []string{"allow", "deny"},
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := parseACLAction(a[0]); err != nil {
				return err
			}
			cl := o.client()
			defer cl.Close()
			acl, err := cl.SetACLDefault(cmd.Context(), a[0])
			if err != nil {
				return gatewayError(fieldArgError(err, aclFields))
			}
			if o.output == outputJSON {
				return printJSON(o.out, acl)
			}
			fmt.Fprintf(o.out, "default: %s\n", acl.Default)
			return nil
		},
	}
}
