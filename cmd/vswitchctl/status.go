package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

func newStatusCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's status",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := o.client()
			defer cl.Close()
			st, err := cl.Status(cmd.Context())
			if err != nil {
				return err
			}
			if o.output == outputJSON {
				return printJSON(o.out, st)
			}
			t := newTable(o.out)
			t.row("VERSION", st.Version)
			t.row("PID", st.PID)
			t.row("STARTED", st.Started.Local().Format(time.RFC3339))
			t.row("UPTIME", seconds(st.UptimeSec))
			t.row("WORKERS", st.Workers)
			t.row("POLL MODE", st.PollMode)
			t.row("PORTS", st.Ports)
			t.row("FDB ENTRIES", st.FDBEntries)
			t.row("GENERATION", st.Generation)
			return t.flush()
		},
	}
}

// versionOutput is the JSON of `vswitchctl version`; Server is missing
// with --client.
type versionOutput struct {
	Client api.VersionInfo  `json:"client"`
	Server *api.VersionInfo `json:"server,omitempty"`
}

func newVersionCmd(o *options) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the daemon's versions",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionOutput{Client: api.VersionInfo{Version: vswitch.Version, GoVersion: runtime.Version(), API: api.APIVersion}}
			// Print the client's version even when the daemon is down: that
			// is when an operator most wants to know what they run.
			var srvErr error
			if !clientOnly {
				cl := o.client()
				defer cl.Close()
				sv, err := cl.Version(cmd.Context())
				if err == nil {
					v.Server = &sv
				}
				srvErr = err
			}
			if o.output == outputJSON {
				if err := printJSON(o.out, v); err != nil {
					return err
				}
				return srvErr
			}
			fmt.Fprintf(o.out, "Client: %s (%s, api %s)\n", v.Client.Version, v.Client.GoVersion, v.Client.API)
			if v.Server != nil {
				fmt.Fprintf(o.out, "Server: %s (%s, api %s)\n", v.Server.Version, v.Server.GoVersion, v.Server.API)
			}
			return srvErr
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show only the client's version; do not contact the daemon")
	return cmd
}
