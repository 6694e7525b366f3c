//go:build integration

package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vswitch/vswitch/switch/netnstest"
)

// pingFails checks that from cannot reach addr: ping must get no reply.
func pingFails(t *testing.T, from *netnstest.NS, addr string, extra ...string) {
	t.Helper()
	// -W 1 per echo is enough to tell: the positive pings of the same
	// topology answer in well under a millisecond.
	r := from.Ping(3, addr, append([]string{"-W", "1"}, extra...)...)
	if r.OK() {
		t.Fatalf("from %s: ping %s got replies across VLANs, want none: %s", from.Name, addr, r)
	}
}

// TestVLANIsolation: access ports of different VLANs in one IP subnet do
// not reach each other; a trunk carries both VLANs tagged.
//
// The trunk host would ideally use vlan subinterfaces (ip link add ...
// type vlan), but kernels built without CONFIG_VLAN_8021Q (like the CI VM)
// cannot create them. So the trunk host speaks raw 802.1Q: it writes
// tagged ARP and ICMP frames with an AF_PACKET socket and reads the
// answers, tags included, with tcpdump -e. That is also exactly what a
// subinterface would put on the wire with TX VLAN offload off.
func TestVLANIsolation(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping", "tcpdump")
	a := newHost(t, "a10", "10.210.3.1")
	b := newHost(t, "b10", "10.210.3.2")
	c := newHost(t, "c20", "10.210.3.3")
	trunk := newHost(t, "dtrunk", "")
	startDaemon(t, daemonConf{ports: []portConf{
		a.portConf("{mode: access, tag: 10}"),
		b.portConf("{mode: access, tag: 10}"),
		c.portConf("{mode: access, tag: 20}"),
		trunk.portConf("{mode: trunk, allowed: [10, 20]}"),
	}})

	t.Run("access-same-vlan", func(t *testing.T) {
		a.ns.WaitPing(t, b.ip, firstPingTimeout)
		a.ns.PingOK(t, 3, b.ip)
	})
	t.Run("access-other-vlan", func(t *testing.T) {
		pingFails(t, a.ns, c.ip)
	})

	// The trunk host's addresses: one per VLAN, in the same subnet.
	const d10, d20 = "10.210.3.4", "10.210.3.5"
	tx, err := netnstest.NewRawSender(trunk.ns, trunk.link.Peer)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	send := func(t *testing.T, frame []byte) {
		t.Helper()
		if err := tx.Send(frame); err != nil {
			t.Fatalf("send from %s: %v", trunk.ns.Name, err)
		}
	}
	dcap := startCapture(t, trunk, "")
	ccap := startCapture(t, c, "arp or icmp")
	mac := trunk.link.MAC

	// trunkPing has the trunk host resolve dst in vlan (ARP, tagged) and
	// then ping it (ICMP, tagged), expecting tagged answers.
	trunkPing := func(t *testing.T, vlan uint16, src string, dst *host) {
		t.Helper()
		vl := "vlan " + itoa(int(vlan)) + ", "
		// Retry the ARP request while the switch settles; the reply
		// proves both directions of the trunk in this VLAN.
		var line string
		netnstest.Eventually(t, firstPingTimeout, 200*time.Millisecond, "tagged ARP reply from "+dst.ip, func() (bool, string) {
			send(t, arpRequest(t, vlan, mac, src, dst.ip))
			l := dcap.lines(regexp.QuoteMeta(vl) + `.*Reply ` + regexp.QuoteMeta(dst.ip) + ` is-at`)
			if len(l) == 0 {
				return false, "trunk capture:\n" + dcap.Stdout()
			}
			line = l[0]
			return true, ""
		})
		if !strings.Contains(line, dst.link.MAC.String()) {
			t.Errorf("ARP reply for %s names the wrong MAC (want %s): %s", dst.ip, dst.link.MAC, line)
		}
		for seq := uint16(1); seq <= 3; seq++ {
			send(t, icmpEcho(t, vlan, mac, dst.link.MAC, src, dst.ip, seq))
			dcap.waitLine(t, regexp.QuoteMeta(vl)+`.*`+regexp.QuoteMeta(dst.ip+" > "+src)+`: ICMP echo reply, id \d+, seq `+itoa(int(seq))+`,`, 10*time.Second)
		}
	}
	t.Run("trunk-vlan10", func(t *testing.T) { trunkPing(t, 10, d10, a) })
	t.Run("trunk-vlan20", func(t *testing.T) { trunkPing(t, 20, d20, c) })
	t.Run("trunk-vlan10-cannot-reach-vlan20", func(t *testing.T) {
		send(t, arpRequest(t, 10, mac, d10, c.ip))
		// Sync: a request in VLAN 20, sent after, reaches C; by then the
		// VLAN 10 one has been switched (in order) too. It asks for an
		// address nobody has, so the switch floods it rather than
		// answering from a binding it gleaned from C.
		const marker, nobody = "10.210.3.77", "10.210.3.250"
		send(t, arpRequest(t, 20, mac, marker, nobody))
		ccap.waitLine(t, `who-has `+regexp.QuoteMeta(nobody)+` tell `+marker, 10*time.Second)
		if l := ccap.lines(`who-has ` + regexp.QuoteMeta(c.ip) + ` tell ` + regexp.QuoteMeta(d10)); len(l) > 0 {
			t.Errorf("C (VLAN 20) received the trunk's VLAN 10 ARP request:\n%s", strings.Join(l, "\n"))
		}
		if l := dcap.lines(`vlan 10, .*Reply ` + regexp.QuoteMeta(c.ip)); len(l) > 0 {
			t.Errorf("C answered into VLAN 10:\n%s", strings.Join(l, "\n"))
		}
		if l := ccap.lines(`tell ` + regexp.QuoteMeta(d10)); len(l) > 0 {
			t.Errorf("C saw VLAN 10 traffic of the trunk:\n%s", strings.Join(l, "\n"))
		}
	})
}
