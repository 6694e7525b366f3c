package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
)

// dnsTypes are the record types the DNS responder stores.
var dnsTypes = []string{"A", "AAAA", "PTR", "CNAME"}

// maxTTL is the largest TTL RFC 2181 allows.
const maxTTL = 1<<31 - 1

// zoneFields and recordFields name the argument or flag behind a field in
// the daemon's errors.
var (
	zoneFields = map[string]string{
		"name": "NAME", "soa.mname": "--mname", "soa.rname": "--rname", "soa.serial": "--serial",
		"soa.refresh": "--refresh", "soa.retry": "--retry", "soa.expire": "--expire", "soa.minimum": "--minimum",
	}
	recordFields = map[string]string{"name": "NAME", "type": "TYPE", "value": "VALUE", "ttl": "--ttl"}
)

func newDNSCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("dns", "List and edit the local DNS zones the switch answers for")
	cmd.AddCommand(newDNSListCmd(o), newDNSZoneCmd(o), newDNSAddCmd(o), newDNSDelCmd(o))
	return cmd
}

func newDNSListCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "show"},
		Short:   "List the zones and their records",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			d, err := cl.DNS(cmd.Context())
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, d)
			}
			if err := printZones(o, d.Zones); err != nil {
				return err
			}
			fmt.Fprintln(o.out)
			return printRecords(o, d.Records)
		},
	}
}

func printZones(o *options, zones []vswitch.DNSZoneSpec) error {
	t := newTable(o.out, "ZONE", "MNAME", "RNAME", "SERIAL", "REFRESH", "RETRY", "EXPIRE", "MINIMUM")
	for _, z := range zones {
		s := z.SOA
		t.row(z.Name, s.MName, s.RName, s.Serial, s.Refresh, s.Retry, s.Expire, s.Minimum)
	}
	return t.flush()
}

func printRecords(o *options, records []vswitch.DNSRecordSpec) error {
	t := newTable(o.out, "NAME", "TYPE", "VALUE", "TTL")
	for _, r := range records {
		t.row(r.Name, r.Type, r.Value, r.TTL)
	}
	return t.flush()
}

func newDNSZoneCmd(o *options) *cobra.Command {
	cmd := newGroupCmd("zone", "Add and delete local zones")
	cmd.AddCommand(newDNSZoneAddCmd(o), newDNSZoneDelCmd(o))
	return cmd
}

func newDNSZoneAddCmd(o *options) *cobra.Command {
	var soa vswitch.DNSSOASpec
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Make the switch authoritative for a zone",
		Long: "zone add makes the switch answer for NAME and every name below it. SOA\n" +
			"fields not given get defaults: mname ns.NAME, rname hostmaster.NAME, serial 1,\n" +
			"refresh 3600, retry 600, expire 86400, minimum 60 (the TTL of negative answers).",
		Example: "  vswitchctl dns zone add lab.example\n" +
			"  vswitchctl dns zone add 10.10.in-addr.arpa --minimum 30",
		Args: args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkDNSName(a[0]); err != nil {
				return usageErrorf("invalid NAME: %q %v", a[0], err)
			}
			for _, f := range []struct{ flag, v string }{{"mname", soa.MName}, {"rname", soa.RName}} {
				if f.v == "" {
					continue
				}
				if err := checkDNSName(f.v); err != nil {
					return usageErrorf("invalid --%s: %q %v", f.flag, f.v, err)
				}
			}
			cl := o.client()
			defer cl.Close()
			z, err := cl.AddDNSZone(cmd.Context(), vswitch.DNSZoneSpec{Name: a[0], SOA: soa})
			if err != nil {
				return fieldArgError(err, zoneFields)
			}
			if o.output == outputJSON {
				return printJSON(o.out, z)
			}
			return printZones(o, []vswitch.DNSZoneSpec{z})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&soa.MName, "mname", "", "SOA primary name server (default ns.NAME)")
	fl.StringVar(&soa.RName, "rname", "", "SOA mailbox of the zone's admin, as a name (default hostmaster.NAME)")
	fl.Uint32Var(&soa.Serial, "serial", 0, "SOA serial (default 1)")
	fl.Uint32Var(&soa.Refresh, "refresh", 0, "SOA refresh, seconds (default 3600)")
	fl.Uint32Var(&soa.Retry, "retry", 0, "SOA retry, seconds (default 600)")
	fl.Uint32Var(&soa.Expire, "expire", 0, "SOA expire, seconds (default 86400)")
	fl.Uint32Var(&soa.Minimum, "minimum", 0, "SOA minimum: TTL of negative answers, seconds (default 60)")
	return cmd
}

func newDNSZoneDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a zone and every record in it",
		Args:    args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			d, err := dnsData(cmd, o)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, z := range d.Zones {
				names = append(names, z.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			cl := o.client()
			defer cl.Close()
			if err := cl.DelDNSZone(cmd.Context(), a[0]); err != nil {
				return fieldArgError(err, zoneFields)
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted zone %s\n", a[0])
			}
			return nil
		},
	}
}

func newDNSAddCmd(o *options) *cobra.Command {
	var ttl uint32
	cmd := &cobra.Command{
		Use:   "add NAME TYPE VALUE",
		Short: "Add a record to a local zone",
		Long: "add adds one record. TYPE is A (VALUE an IPv4 address), AAAA (an IPv6\n" +
			"address), PTR or CNAME (a name). NAME must be inside a zone added with\n" +
			"`vswitchctl dns zone add`.",
		Example: "  vswitchctl dns add gw.lab.example A 10.0.10.1\n" +
			"  vswitchctl dns add 1.10.0.10.in-addr.arpa PTR gw.lab.example --ttl 300",
		Args: args(cobra.ExactArgs(3)),
		ValidArgsFunction: func(_ *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(a) == 1 {
				return dnsTypes, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			r := vswitch.DNSRecordSpec{Name: a[0], Type: a[1], Value: a[2], TTL: ttl}
			if err := checkRecord(&r, true); err != nil {
				return err
			}
			if ttl > maxTTL {
				return usageErrorf("invalid --ttl: %d is above %d", ttl, maxTTL)
			}
			cl := o.client()
			defer cl.Close()
			rec, err := cl.AddDNSRecord(cmd.Context(), r)
			if err != nil {
				return fieldArgError(err, recordFields)
			}
			if o.output == outputJSON {
				return printJSON(o.out, rec)
			}
			return printRecords(o, []vswitch.DNSRecordSpec{rec})
		},
	}
	cmd.Flags().Uint32Var(&ttl, "ttl", 0, "TTL in seconds (default 60)")
	return cmd
}

func newDNSDelCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME TYPE [VALUE]",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete the records of a name and type (only VALUE's, if given)",
		Args:    args(cobra.RangeArgs(2, 3)),
		ValidArgsFunction: func(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
			d, err := dnsData(cmd, o)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, r := range d.Records {
				var v string
				switch {
				case len(a) == 0:
					v = r.Name
				case len(a) == 1 && strings.EqualFold(r.Name, strings.TrimSuffix(a[0], ".")):
					v = r.Type
				case len(a) == 2 && strings.EqualFold(r.Name, strings.TrimSuffix(a[0], ".")) && strings.EqualFold(r.Type, a[1]):
					v = r.Value
				}
				if v != "" && (len(out) == 0 || out[len(out)-1] != v) {
					out = append(out, v)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			r := vswitch.DNSRecordSpec{Name: a[0], Type: a[1]}
			if len(a) == 3 {
				r.Value = a[2]
			}
			if err := checkRecord(&r, r.Value != ""); err != nil {
				return err
			}
			cl := o.client()
			defer cl.Close()
			if err := cl.DelDNSRecord(cmd.Context(), r); err != nil {
				return fieldArgError(err, recordFields)
			}
			if o.output == outputTable {
				fmt.Fprintf(o.out, "deleted %s\n", strings.Join(a, " "))
			}
			return nil
		},
	}
}

// dnsData asks the daemon for the zones and records, for completion.
func dnsData(cmd *cobra.Command, o *options) (vswitch.DNSSpec, error) {
	cl := o.client()
	defer cl.Close()
	return cl.DNS(cmd.Context())
}

// checkRecord checks NAME, TYPE and (if withValue) VALUE locally, so a
// typo fails before anything is sent and the error names the argument.
// It upper-cases r.Type.
func checkRecord(r *vswitch.DNSRecordSpec, withValue bool) error {
	if err := checkDNSName(r.Name); err != nil {
		return usageErrorf("invalid NAME: %q %v", r.Name, err)
	}
	typ := strings.ToUpper(r.Type)
	switch typ {
	case "A", "AAAA", "PTR", "CNAME":
		r.Type = typ
	default:
		return usageErrorf("invalid TYPE: %q is not one of %s", r.Type, strings.Join(dnsTypes, ", "))
	}
	if !withValue {
		return nil
	}
	switch typ {
	case "A", "AAAA":
		ip, err := netip.ParseAddr(r.Value)
		want4 := typ == "A"
		if err != nil || ip.Zone() != "" || ip.Is4() != want4 || ip.Is4In6() {
			fam := "IPv6"
			if want4 {
				fam = "IPv4"
			}
			return usageErrorf("invalid VALUE: %q is not an %s address (type %s)", r.Value, fam, typ)
		}
	default:
		if err := checkDNSName(r.Value); err != nil {
			return usageErrorf("invalid VALUE: %q %v", r.Value, err)
		}
	}
	return nil
}

// checkDNSName checks the syntax of a domain name (a trailing dot is
// allowed); the daemon checks again and decides about zones.
func checkDNSName(s string) error {
	n := strings.TrimSuffix(s, ".")
	switch {
	case n == "":
		return fmt.Errorf("is empty")
	case len(n) > 253:
		return fmt.Errorf("is longer than 253 bytes")
	case strings.ContainsAny(n, "\\ \t\"()"):
		return fmt.Errorf("has a blank, backslash, quote or parenthesis")
	}
	for _, l := range strings.Split(n, ".") {
		if len(l) == 0 || len(l) > 63 {
			return fmt.Errorf("has a label that is empty or longer than 63 bytes")
		}
	}
	return nil
}
