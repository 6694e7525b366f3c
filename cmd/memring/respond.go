package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/memring"
)

type respondOpts struct {
	portFlags
	outputFlag
	mac, ip string
}

func newRespondCmd() *cobra.Command {
	o := &respondOpts{}
	cmd := &cobra.Command{
		Use:   "respond --socket S --port P --mac M --ip A",
		Short: "Answer ARP requests and ICMP echo requests for an address until SIGTERM",
		Long: "respond attaches to a memring port and answers ARP requests for --ip and ICMP echo\n" +
			"requests to it, so that two memring clients can ping each other through the switch.\n" +
			"It runs until SIGTERM or SIGINT (or the switch ends the session) and then prints its\n" +
			"counters.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.portFlags.add(fs)
	o.outputFlag.add(fs)
	fs.StringVar(&o.mac, "mac", "", "this station's MAC address (required)")
	fs.StringVar(&o.ip, "ip", "", "this station's IPv4 address, optionally /len (required)")
	return cmd
}

func (o *respondOpts) run(cmd *cobra.Command) error {
	if err := o.check(); err != nil {
		return err
	}
	mac, err := parseMAC("mac", o.mac, true)
	if err != nil {
		return err
	}
	pfx, err := parseIPv4("ip", o.ip)
	if err != nil {
		return err
	}
	c, err := memring.Dial(o.socket, o.port)
	if err != nil {
		return err
	}
	defer c.Close()
	st := newStation(c, mac, pfx.Addr().As4())
	out := cmd.OutOrStdout()
	if !o.json {
		fmt.Fprintf(out, "responding as %s on port %s\n", st.describe(), o.port)
	}
	ctx := cmd.Context()
	var runErr error
	for ctx.Err() == nil {
		if _, err := st.poll(100*time.Millisecond, nil); err != nil {
			if !errors.Is(err, memring.ErrClosed) {
				runErr = err
			}
			break
		}
	}
	if o.json {
		writeJSON(out, st.counters)
	} else {
		k := st.counters
		fmt.Fprintf(out, "rx %d tx %d arp_replied %d echo_replied %d malformed %d ignored %d tx_ring_full %d disconnected %v\n",
			k.RxFrames, k.TxFrames, k.ARPReplied, k.EchoReplied, k.Malformed, k.Ignored, k.TxRingFull, k.Disconnected)
	}
	return runErr
}
