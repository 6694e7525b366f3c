package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
)

type pingOpts struct {
	portFlags
	mac, ip, target string
	count           int
	interval        time.Duration
	timeout         time.Duration
	size            int
}

func newPingCmd() *cobra.Command {
	o := &pingOpts{}
	cmd := &cobra.Command{
		Use:   "ping --socket S --port P --mac M --ip A/len --target T [-c N]",
		Short: "ARP for a target through the switch, then ICMP echo it",
		Long: "ping attaches to a memring port, resolves --target with its own ARP request, then\n" +
			"sends ICMP echo requests and prints each reply with its round-trip time. It answers\n" +
			"ARP requests and pings for its own --ip meanwhile. Exit status 0 when every request\n" +
			"was answered, 1 otherwise.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	fs := cmd.Flags()
	o.add(fs)
	fs.StringVar(&o.mac, "mac", "", "this station's MAC address (required)")
	fs.StringVar(&o.ip, "ip", "", "this station's IPv4 address/len (required)")
	fs.StringVar(&o.target, "target", "", "IPv4 address to ping, in --ip's subnet (required)")
	fs.IntVarP(&o.count, "count", "c", 3, "echo requests to send")
	fs.DurationVarP(&o.interval, "interval", "i", time.Second, "time between requests")
	fs.DurationVarP(&o.timeout, "timeout", "W", time.Second, "how long to wait for each reply (and for the ARP reply)")
	fs.IntVarP(&o.size, "size", "s", 56, "ICMP payload bytes")
	return cmd
}

func (o *pingOpts) run(cmd *cobra.Command) error {
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
	tgt, err := netip.ParseAddr(o.target)
	if o.target == "" {
		return flagErr("target", "required")
	}
	if err != nil || !tgt.Is4() {
		return flagErr("target", "%q is not an IPv4 address", o.target)
	}
	if !pfx.Masked().Contains(tgt) || tgt == pfx.Addr() {
		return flagErr("target", "%s is not another address in %s (no router here)", tgt, pfx.Masked())
	}
	if o.count < 1 {
		return flagErr("count", "must be at least 1")
	}
	if o.interval <= 0 {
		return flagErr("interval", "must be positive")
	}
	if o.timeout <= 0 {
		return flagErr("timeout", "must be positive")
	}
	if o.size < 8 || o.size > 1472 {
		return flagErr("size", "%d is not in 8..1472", o.size)
	}

	c, err := memring.Dial(o.socket, o.port)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	st := newStation(c, mac, pfx.Addr().As4())
	target := tgt.As4()
	ident := uint16(os.Getpid())

	// ARP: ask every timeout until answered, at most 3 times.
	var tmac pipeline.MAC
	resolved := false
	onARP := func(p *pipeline.Packet) {
		if a := p.ARP(); a != nil && a.Op() == pipeline.ARPReply && a.SenderIP() == target {
			tmac, resolved = a.SenderMAC(), true
		}
	}
	for try := 0; try < 3 && !resolved; try++ {
		if _, err := st.send(func(b []byte) int {
			return buildARP(b, pipeline.ARPRequest, mac, pipeline.BroadcastMAC, st.ip, pipeline.MAC{}, target)
		}); err != nil {
			return err
		}
		deadline := time.Now().Add(o.timeout)
		for !resolved && time.Now().Before(deadline) {
			if ctx.Err() != nil {
				return errFailed
			}
			if _, err := st.poll(time.Millisecond, onARP); err != nil {
				return fmt.Errorf("waiting for the ARP reply: %w", err)
			}
		}
	}
	if !resolved {
		fmt.Fprintf(out, "PING %s: no ARP reply from %s\n", o.target, o.target)
		return errFailed
	}
	fmt.Fprintf(out, "PING %s (%s) from %s: %d data bytes\n", o.target, tmac, st.describe(), o.size)

	sent, received := 0, 0
	var rtts []time.Duration
	var gotSeq int = -1
	var gotTTL uint8
	var gotAt time.Time
	onEcho := func(p *pipeline.Packet) {
		ip, icmp := p.IPv4(), p.ICMP()
		if ip == nil || icmp == nil || p.L4Proto != pipeline.ProtoICMP || icmp.Type() != 0 ||
			ip.Src() != target || ip.Dst() != st.ip || icmp.Ident() != ident || len(icmp) < pipeline.ICMPHeaderLen+8 {
			onARP(p)
			return
		}
		if pipeline.Checksum(icmp, 0) != 0xffff {
			return // corrupted on the way
		}
		gotSeq, gotTTL, gotAt = int(icmp.Seq()), ip.TTL(), time.Now()
	}
	for seq := 0; seq < o.count; seq++ {
		start := time.Now()
		if _, err := st.send(func(b []byte) int {
			return buildEcho(b, mac, tmac, st.ip, target, ident, uint16(seq), o.size, start)
		}); err != nil {
			return err
		}
		sent++
		gotSeq = -1
		deadline := start.Add(o.timeout)
		for gotSeq != seq && time.Now().Before(deadline) {
			if ctx.Err() != nil {
				break
			}
			if _, err := st.poll(time.Millisecond, onEcho); err != nil {
				if errors.Is(err, memring.ErrClosed) {
					fmt.Fprintln(out, "switch closed the session")
					return errFailed
				}
				return err
			}
		}
		if gotSeq == seq {
			received++
			rtt := gotAt.Sub(start)
			rtts = append(rtts, rtt)
			fmt.Fprintf(out, "%d bytes from %s: icmp_seq=%d ttl=%d time=%.3f ms\n",
				o.size+pipeline.ICMPHeaderLen, o.target, seq, gotTTL, float64(rtt)/1e6)
		} else {
			fmt.Fprintf(out, "no reply for icmp_seq=%d\n", seq)
		}
		if ctx.Err() != nil {
			break
		}
		if seq+1 < o.count {
			// Keep answering while waiting for the next send.
			next := start.Add(o.interval)
			for time.Now().Before(next) && ctx.Err() == nil {
				if _, err := st.poll(time.Millisecond, nil); err != nil {
					break
				}
			}
		}
	}
	loss := 100 * float64(sent-received) / float64(sent)
	fmt.Fprintf(out, "--- %s ping statistics ---\n%d packets transmitted, %d received, %.0f%% packet loss\n",
		o.target, sent, received, loss)
	if len(rtts) > 0 {
		lo, hi, sum := rtts[0], rtts[0], time.Duration(0)
		for _, r := range rtts {
			lo, hi, sum = min(lo, r), max(hi, r), sum+r
		}
		fmt.Fprintf(out, "rtt min/avg/max = %.3f/%.3f/%.3f ms\n",
			float64(lo)/1e6, float64(sum)/float64(len(rtts))/1e6, float64(hi)/1e6)
	}
	if received != o.count {
		return errFailed
	}
	return nil
}
