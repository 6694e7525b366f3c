package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vswitch/vswitch/pipeline"
)

// Exit codes: 1 when the command ran and failed (ping: a request went
// unanswered), 2 when it was called wrong.
const (
	exitFailure = 1
	exitUsage   = 2
)

// errFailed is returned by a command that already said why it failed.
var errFailed = errors.New("failed")

// usageError marks a mistake in the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// flagErr is a usage error about one flag.
func flagErr(name, format string, args ...any) error {
	return &usageError{fmt.Errorf("--%s: %s", name, fmt.Sprintf(format, args...))}
}

// run executes the command line and returns the exit code. Errors go to
// errOut as "memring: <msg>".
func run(args []string, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(out, errOut)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, errFailed) {
		return exitFailure
	}
	fmt.Fprintf(errOut, "memring: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitFailure
}

// newRootCmd builds the command tree writing to out and errOut.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "memring",
		Short: "memring client: ping, respond, gen, sink, pair-bench",
		Long: "memring attaches to a vswitchd memring port over its control socket, as a container\n" +
			"would, to ping, answer pings, generate or count traffic; pair-bench measures the\n" +
			"shared-memory rings between two processes with no switch in between.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newPingCmd(), newRespondCmd(), newGenCmd(), newSinkCmd(), newPairBenchCmd())
	return root
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// portFlags are the flags of every command that attaches to a switch.
type portFlags struct {
	socket, port string
}

func (p *portFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&p.socket, "socket", "", "the switch's memring control socket (required)")
	fs.StringVar(&p.port, "port", "", "memring port name to attach to (required)")
}

func (p *portFlags) check() error {
	if p.socket == "" {
		return flagErr("socket", "required")
	}
	if p.port == "" {
		return flagErr("port", "required")
	}
	return nil
}

// outputFlag is -o text|json.
type outputFlag struct{ json bool }

func (o *outputFlag) add(fs *pflag.FlagSet) {
	fs.VarP(o, "output", "o", "output format: text or json")
}
func (o *outputFlag) String() string {
	if o.json {
		return "json"
	}
	return "text"
}
func (o *outputFlag) Set(s string) error {
	switch s {
	case "text":
		o.json = false
	case "json":
		o.json = true
	default:
		return fmt.Errorf("want text or json, not %q", s)
	}
	return nil
}
func (o *outputFlag) Type() string { return "format" }

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseMAC parses a unicast MAC address flag.
func parseMAC(flag, s string, unicast bool) (pipeline.MAC, error) {
	if s == "" {
		return pipeline.MAC{}, flagErr(flag, "required")
	}
	m, err := pipeline.ParseMAC(s)
	if err != nil {
		return m, flagErr(flag, "%q is not a MAC address", s)
	}
	if unicast && (m.IsMulticast() || m.IsZero()) {
		return m, flagErr(flag, "%s is not a unicast address", m)
	}
	return m, nil
}

// parseIPv4 parses an IPv4 address, with an optional /len; without one the
// prefix is /32.
func parseIPv4(flag, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, flagErr(flag, "required")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return p, flagErr(flag, "%q is not an IPv4 address or address/len", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if !p.Addr().Is4() {
		return p, flagErr(flag, "%s is not IPv4", s)
	}
	return p, nil
}
