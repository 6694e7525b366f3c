package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
)

// socketEnv overrides the default API socket path.
const socketEnv = "VSWITCH_SOCKET"

// Exit codes: 1 when the command ran and failed, 2 when it was called wrong.
const (
	exitFailure = 1
	exitUsage   = 2
)

// run executes the command line args and returns the process exit code.
// Errors go to errOut as "vswitchctl: <msg>".
func run(args []string, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(out, errOut)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(errOut, "vswitchctl: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitFailure
}

// options are the global flags, shared by every command.
type options struct {
	socket string
	output outputFormat
	out    io.Writer
}

// client returns a client for the daemon; the caller closes it.
func (o *options) client() *api.Client { return api.NewClient(o.socket) }

// newRootCmd builds the whole command tree writing to out and errOut.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	o := &options{output: outputTable, out: out}
	root := newGroupCmd("vswitchctl", "Control a running vswitchd")
	root.Long = "vswitchctl talks to vswitchd over its unix-socket API to show status, ports, the\n" +
		"forwarding database and counters, to add or delete ports (AF_XDP and memring),\n" +
		"and to edit the ARP/ND bindings and DNS zones the switch answers from."
	root.SilenceUsage = true  // a failed call is not a reason to print the usage
	root.SilenceErrors = true // run prints errors once, in its own format
	root.SetOut(out)
	root.SetErr(errOut)
	// Flag errors (unknown flag, bad value) are the caller's mistake.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })

	socket := os.Getenv(socketEnv)
	if socket == "" {
		socket = vswitch.DefaultAPISocket
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.socket, "socket", socket, "path of vswitchd's API socket (env "+socketEnv+")")
	pf.VarP(&o.output, "output", "o", "output format: table or json")
	_ = root.RegisterFlagCompletionFunc("output", choices("table", "json"))

	root.AddCommand(
		newStatusCmd(o),
		newVersionCmd(o),
		newPortCmd(o),
		newMemringCmd(o),
		newFDBCmd(o),
		newStatsCmd(o),
		newBindingCmd(o, familyIPv4),
		newBindingCmd(o, familyIPv6),
		newDNSCmd(o),
		newRouteCmd(o),
		newACLCmd(o),
		newFlowsCmd(o),
		newTraceCmd(o),
	)
	return root
}

// usageError marks an error in how the command was called (exit 2), as
// opposed to a failure of the call itself (exit 1).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// args wraps one of cobra's Args validators so its errors are usage errors.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// newGroupCmd returns a command that only holds subcommands. Run bare it
// prints its help; with an unknown subcommand it fails, where cobra alone
// would print help and exit 0 for a typo below the root.
func newGroupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		// cobra sets this default only on its own unknown-command path.
		SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return &usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// choices completes a flag from a fixed list of values.
func choices(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// fieldArgError names the argument or flag behind a *vswitch.FieldError
// from the daemon ("invalid --port: port: no port \"p9\""); other errors
// pass unchanged. It stays a failure of the call (exit 1): the daemon, not
// the command line, found the problem.
func fieldArgError(err error, names map[string]string) error {
	var fe *vswitch.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	name, ok := names[fe.Field]
	if !ok {
		name = fe.Field
	}
	return fmt.Errorf("invalid %s: %w", name, err)
}
