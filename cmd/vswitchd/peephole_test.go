//go:build integration

package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vswitch/vswitch/switch/netnstest"
)

// The peephole responders (ARP, IPv6 ND, DNS answered inside the switch)
// against real clients: arping, ndisc6, dig, and a real dnsmasq behind the
// switch for the names the switch does not own. Each test proves "answered
// by the switch" twice: the answer is what the config binds, and a capture
// on the host that owns the address shows the request never reached it.

// Deadlines of the peephole tests; every wait polls.
const (
	answerTimeout = 20 * time.Second // first answer after the daemon comes up
	digTimeout    = 5 * time.Second  // one dig run: +tries=1 +time=2
)

// gwMAC is the MAC of the gateway bindings: an address the switch owns and
// no host has.
const gwMAC = "02:00:00:00:00:fe"

// peepholePort is one port of a peephole test config.
type peepholePort struct {
	h          *host
	spoofGuard bool
}

// writePeepholeConfig renders a config with the given ports and the
// peephole section (YAML text under "peephole:", indented by two) into the
// daemon's config file. The shared daemonConf has no spoof_guard, hence a
// renderer of its own.
func (d *daemon) writePeepholeConfig(t *testing.T, ports []peepholePort, peephole string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "api_socket: %s\n", strconv.Quote(d.socket))
	fmt.Fprintf(&b, "state_file: %s\n", strconv.Quote(d.state))
	fmt.Fprintf(&b, "log_level: info\n")
	fmt.Fprintf(&b, "workers:\n  count: 1\n  poll_mode: adaptive\n")
	b.WriteString("ports:\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "  - name: %s\n    interface: %s\n", p.h.port, p.h.link.Host)
		if p.spoofGuard {
			b.WriteString("    spoof_guard: true\n")
		}
	}
	b.WriteString("peephole:\n")
	for _, l := range strings.Split(strings.TrimRight(peephole, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	writeFile(t, d.config, b.String())
	t.Logf("config %s:\n%s", d.config, b.String())
}

// startPeephole starts a daemon on ports with the given peephole section.
func startPeephole(t *testing.T, ports []peepholePort, peephole string) *daemon {
	t.Helper()
	d := newDaemonFiles(t, daemonConf{})
	d.writePeepholeConfig(t, ports, peephole)
	d.start(t)
	return d
}

// peepholeStats is the "peephole" object of `vswitchctl -o json stats`,
// decoded here rather than through the daemon's types so that a renamed
// field shows up as a test failure, not as a compile error elsewhere.
type peepholeStats struct {
	ARP     responderStats `json:"arp"`
	ND      responderStats `json:"nd"`
	DNS     responderStats `json:"dns"`
	Gleaned int            `json:"gleaned"`
}

type responderStats struct {
	Answered  uint64            `json:"answered"`
	Malformed uint64            `json:"malformed"`
	Passed    map[string]uint64 `json:"passed"`
	NXDomain  uint64            `json:"nxdomain"`
	NoData    uint64            `json:"nodata"`
}

// statsDoc is the part of the stats JSON these tests read.
type statsDoc struct {
	Ports []struct {
		Name    string            `json:"name"`
		DropsBy map[string]uint64 `json:"drops_by_reason"`
	} `json:"ports"`
	Workers []struct {
		DropsBy map[string]uint64 `json:"drops_by_reason"`
	} `json:"workers"`
	Peephole *peepholeStats `json:"peephole"`
}

func (d *daemon) peepholeStats(t *testing.T) (statsDoc, peepholeStats) {
	t.Helper()
	var st statsDoc
	d.JSON(t, &st, "stats")
	if st.Peephole == nil {
		t.Fatalf("vswitchctl -o json stats has no \"peephole\" object")
	}
	return st, *st.Peephole
}

// workerDrops sums one drop reason over the workers.
func (s statsDoc) workerDrops(reason string) uint64 {
	var n uint64
	for _, w := range s.Workers {
		n += w.DropsBy[reason]
	}
	return n
}

// portDrops is one port's count of a drop reason.
func (s statsDoc) portDrops(port, reason string) uint64 {
	for _, p := range s.Ports {
		if p.Name == port {
			return p.DropsBy[reason]
		}
	}
	return 0
}

// binding is one row of `vswitchctl -o json arp list` / `nd list`.
type binding struct {
	IP   string `json:"ip"`
	MAC  string `json:"mac"`
	VLAN uint16 `json:"vlan"`
	Kind string `json:"kind"`
	Port string `json:"port"`
}

func (d *daemon) bindings(t *testing.T, family string) []binding {
	t.Helper()
	var bs []binding
	d.JSON(t, &bs, family, "list")
	return bs
}

func findBinding(bs []binding, ip string) (binding, bool) {
	for _, b := range bs {
		if b.IP == ip {
			return b, true
		}
	}
	return binding{}, false
}

// arpingReplies match an answer line of the two arpings Debian ships:
// Thomas Habets' (package arping: "58 bytes from MAC (IP): index=0 ...")
// and iputils' ("Unicast reply from IP [MAC] ...").
var (
	arpingHabets  = regexp.MustCompile(`(?i)bytes from ([0-9a-f:]{17}) \(([0-9.]+)\)`)
	arpingIputils = regexp.MustCompile(`(?i)Unicast reply from ([0-9.]+) \[([0-9a-f:]{17})\]`)
)

// arpingMAC runs one arping from h for ip and returns the MAC of the reply
// ("" and the output when none came).
func arpingMAC(h *host, ip string) (string, netnstest.Result) {
	r := h.ns.Exec(10*time.Second, "arping", "-c", "1", "-w", "2", "-I", h.link.Peer, ip)
	for _, m := range arpingHabets.FindAllStringSubmatch(r.Stdout, -1) {
		if m[2] == ip {
			return strings.ToLower(m[1]), r
		}
	}
	for _, m := range arpingIputils.FindAllStringSubmatch(r.Stdout, -1) {
		if m[1] == ip {
			return strings.ToLower(m[2]), r
		}
	}
	return "", r
}

// waitARPAnswer polls arping until ip resolves to wantMAC.
func waitARPAnswer(t *testing.T, h *host, ip, wantMAC string) {
	t.Helper()
	netnstest.Eventually(t, answerTimeout, 100*time.Millisecond, "arping "+ip+" from "+h.ns.Name+" answered with "+wantMAC, func() (bool, string) {
		mac, r := arpingMAC(h, ip)
		return mac == strings.ToLower(wantMAC), r.String()
	})
}

// ndiscReply matches ndisc6's answer line.
var ndiscReply = regexp.MustCompile(`(?i)Target link-layer address: ([0-9a-f:]+)`)

// waitNDAnswer polls ndisc6 until ip resolves to wantMAC.
func waitNDAnswer(t *testing.T, h *host, ip, wantMAC string) {
	t.Helper()
	netnstest.Eventually(t, answerTimeout, 100*time.Millisecond, "ndisc6 "+ip+" from "+h.ns.Name+" answered with "+wantMAC, func() (bool, string) {
		r := h.ns.Exec(10*time.Second, "ndisc6", "-1", "-n", "-r", "1", "-w", "1000", ip, h.link.Peer)
		m := ndiscReply.FindStringSubmatch(r.Stdout)
		return m != nil && strings.EqualFold(m[1], wantMAC), r.String()
	})
}

// enableIPv6 turns IPv6 on for h's interface without duplicate address
// detection (a tentative link-local address would make ndisc6 solicit from
// "::", a DAD probe) and adds cidr.
func enableIPv6(t *testing.T, h *host, cidr string) {
	t.Helper()
	h.ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+h.link.Peer+".accept_dad=0")
	h.link.EnableIPv6(t)
	h.ns.AddAddr(t, h.link.Peer, cidr)
}

// dig runs one dig query from h and returns its output.
func dig(h *host, server string, args ...string) netnstest.Result {
	a := append([]string{"dig", "+tries=1", "+time=2", "@" + server}, args...)
	return h.ns.Exec(digTimeout+5*time.Second, a...)
}

// digStatus matches dig's header line.
var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// waitDig polls dig until it gets a reply whose output matches every
// pattern, and returns that output.
func waitDig(t *testing.T, h *host, server string, want []string, args ...string) string {
	t.Helper()
	var out string
	netnstest.Eventually(t, answerTimeout, 100*time.Millisecond, fmt.Sprintf("dig @%s %s", server, strings.Join(args, " ")), func() (bool, string) {
		r := dig(h, server, args...)
		if !r.OK() {
			return false, r.String()
		}
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(r.Stdout) {
				return false, fmt.Sprintf("output does not match %q:\n%s", w, r.Stdout)
			}
		}
		out = r.Stdout
		return true, ""
	})
	return out
}

// startDnsmasq runs a real dnsmasq on h's address, logging every query to
// stderr, answering other.example (and, to tell its answers apart from the
// switch's, vs.test) itself. It must not be asked anything in the switch's
// zones.
func startDnsmasq(t *testing.T, h *host, addresses ...string) *netnstest.Proc {
	t.Helper()
	dir := t.TempDir()
	args := []string{
		"--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=53", "--listen-address=" + h.ip, "--bind-interfaces", "--except-interface=lo",
		"--log-queries", "--log-facility=-", "--user=root",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"),
	}
	for _, a := range addresses {
		args = append(args, "--address="+a)
	}
	p := netnstest.Start(t, h.ns, "dnsmasq", args...)
	if err := p.WaitOutput("started", 10*time.Second); err != nil {
		t.Fatalf("dnsmasq in %s: %v", h.ns.Name, err)
	}
	h.ns.WaitListen(t, 53, 10*time.Second)
	return p
}

// TestPeepholeARPAndND: ARP and ND for bound addresses are answered by the
// switch with the bound MAC; the owner never sees the request; a gateway
// binding answers ND with the Router flag; ping works without B ever being
// asked for its MAC.
func TestPeepholeARPAndND(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping", "arping", "ndisc6", "tcpdump")
	a := newHost(t, "pa", "10.211.1.1")
	b := newHost(t, "pb", "10.211.1.2")
	enableIPv6(t, a, "fd00:211::1/64")
	enableIPv6(t, b, "fd00:211::2/64")
	bMAC := b.link.MAC.String()
	d := startPeephole(t, []peepholePort{{h: a}, {h: b}}, fmt.Sprintf(`responders: [arp, nd, dns]
bindings:
  - {ip: %s, mac: "%s", port: %s}
  - {ip: "fd00:211::2", mac: "%s", port: %s}
  - {ip: 10.211.1.254, mac: "%s", kind: gateway}
  - {ip: "fd00:211::fe", mac: "%s", kind: gateway}
`, b.ip, bMAC, b.port, bMAC, b.port, gwMAC, gwMAC))

	t.Run("arp-answered-by-switch", func(t *testing.T) {
		capt := startCapture(t, b, "arp")
		_, st0 := d.peepholeStats(t)
		waitARPAnswer(t, a, b.ip, bMAC)
		waitARPAnswer(t, a, "10.211.1.254", gwMAC)
		capt.syncTo(t, a, "10.211.1.99")
		if l := capt.lines(`who-has ` + regexp.QuoteMeta(b.ip) + ` `); len(l) > 0 {
			t.Errorf("B saw %d ARP requests for its bound address, want 0 (the switch answers):\n%s", len(l), strings.Join(l, "\n"))
		}
		_, st1 := d.peepholeStats(t)
		if st1.ARP.Answered < st0.ARP.Answered+2 {
			t.Errorf("peephole.arp.answered went %d -> %d after two answered arpings", st0.ARP.Answered, st1.ARP.Answered)
		}
	})

	t.Run("ping-without-asking-b", func(t *testing.T) {
		a.ns.Run(t, "ip", "neigh", "flush", "dev", a.link.Peer)
		capt := startCapture(t, b, "arp")
		a.ns.WaitPing(t, b.ip, firstPingTimeout)
		a.ns.PingOK(t, 3, b.ip)
		capt.syncTo(t, a, "10.211.1.98")
		if l := capt.lines(`who-has ` + regexp.QuoteMeta(b.ip) + ` `); len(l) > 0 {
			t.Errorf("B saw %d ARP requests for its address during A's pings, want 0:\n%s", len(l), strings.Join(l, "\n"))
		}
		neigh := a.ns.Run(t, "ip", "neigh", "show", b.ip, "dev", a.link.Peer)
		if !strings.Contains(strings.ToLower(neigh), bMAC) {
			t.Errorf("A's neighbour entry for %s = %q, want lladdr %s", b.ip, strings.TrimSpace(neigh), bMAC)
		}
	})

	t.Run("nd-answered-by-switch", func(t *testing.T) {
		capt := startCapture(t, b, "icmp6")
		_, st0 := d.peepholeStats(t)
		waitNDAnswer(t, a, "fd00:211::2", bMAC)
		// Marker: a solicitation for an unbound address is flooded; once
		// B has captured it, it has captured everything sent before.
		a.ns.Exec(10*time.Second, "ndisc6", "-1", "-n", "-r", "1", "-w", "500", "fd00:211::99", a.link.Peer)
		if err := capt.WaitOutput("who has fd00:211::99", 15*time.Second); err != nil {
			t.Fatalf("B never saw the marker solicitation: %v", err)
		}
		if l := capt.lines(`neighbor solicitation, who has fd00:211::2(,|$)`); len(l) > 0 {
			t.Errorf("B saw %d neighbour solicitations for its bound address, want 0:\n%s", len(l), strings.Join(l, "\n"))
		}
		_, st1 := d.peepholeStats(t)
		if st1.ND.Answered <= st0.ND.Answered {
			t.Errorf("peephole.nd.answered went %d -> %d after an answered ndisc6", st0.ND.Answered, st1.ND.Answered)
		}
	})

	t.Run("nd-gateway-router-flag", func(t *testing.T) {
		// ndisc6 does not print the advertisement's flags; tcpdump -v on A does.
		p := netnstest.Start(t, a.ns, "tcpdump", "-i", a.link.Peer, "-n", "-v", "-l", "--immediate-mode", "icmp6 and ip6[40] == 136")
		if err := p.WaitOutput("listening on", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		waitNDAnswer(t, a, "fd00:211::fe", gwMAC)
		na := regexp.MustCompile(`tgt is fd00:211::fe, Flags \[([a-z, ]*)\]`)
		var flags string
		netnstest.Eventually(t, 10*time.Second, 20*time.Millisecond, "captured NA for fd00:211::fe", func() (bool, string) {
			m := na.FindStringSubmatch(p.Stdout())
			if m == nil {
				return false, p.Stdout() + p.Stderr()
			}
			flags = m[1]
			return true, ""
		})
		if !strings.Contains(flags, "router") {
			t.Errorf("NA for the gateway fd00:211::fe has flags [%s], want router set", flags)
		}
		if !strings.Contains(flags, "solicited") {
			t.Errorf("NA for the gateway fd00:211::fe has flags [%s], want solicited set", flags)
		}
		// And a static (non-gateway) binding must not claim to be a router.
		waitNDAnswer(t, a, "fd00:211::2", bMAC)
		nb := regexp.MustCompile(`tgt is fd00:211::2, Flags \[([a-z, ]*)\]`)
		netnstest.Eventually(t, 10*time.Second, 20*time.Millisecond, "captured NA for fd00:211::2", func() (bool, string) {
			m := nb.FindStringSubmatch(p.Stdout())
			if m == nil {
				return false, p.Stdout()
			}
			flags = m[1]
			return true, ""
		})
		if strings.Contains(flags, "router") {
			t.Errorf("NA for the static binding fd00:211::2 has flags [%s], want no router flag", flags)
		}
	})
}

// TestPeepholeDNS: queries for the switch's zones are answered by the
// switch, whatever address they were sent to; everything else reaches the
// real resolver behind the switch, which sees nothing of the former.
func TestPeepholeDNS(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "dig", "dnsmasq", "ss")
	a := newHost(t, "pa", "10.211.2.1")
	b := newHost(t, "pb", "10.211.2.2")
	d := startPeephole(t, []peepholePort{{h: a}, {h: b}}, fmt.Sprintf(`bindings:
  - {ip: %s, mac: "%s", port: %s}
  - {ip: 10.211.2.254, mac: "%s", kind: gateway}
dns:
  zones:
    - name: vs.test
    - name: 2.211.10.in-addr.arpa
  records:
    - {name: web.vs.test, type: A, value: 10.211.2.80, ttl: 60}
    - {name: web.vs.test, type: AAAA, value: "fd00:211::80"}
    - {name: v4only.vs.test, type: A, value: 10.211.2.81}
    - {name: www.vs.test, type: CNAME, value: web.vs.test}
    - {name: 80.2.211.10.in-addr.arpa, type: PTR, value: web.vs.test}
`, b.ip, b.link.MAC, b.port, gwMAC))
	// dnsmasq on B answers vs.test with a different address: an answer
	// from it could not pass for the switch's.
	dm := startDnsmasq(t, b, "/other.example/10.211.2.77", "/vs.test/10.211.2.66")
	// An address nobody has, resolved statically on A: the switch answers
	// a query sent to it in place.
	a.ns.Run(t, "ip", "neigh", "replace", "10.211.2.53", "lladdr", "02:00:00:00:00:53", "dev", a.link.Peer, "nud", "permanent")

	_, st0 := d.peepholeStats(t)
	for _, server := range []string{b.ip, "10.211.2.254", "10.211.2.53"} {
		t.Run("server-"+server, func(t *testing.T) {
			t.Run("A", func(t *testing.T) {
				waitDig(t, a, server, []string{`status: NOERROR`, `flags: qr aa`, `(?m)^web\.vs\.test\.\s+60\s+IN\s+A\s+10\.211\.2\.80$`}, "web.vs.test", "A")
			})
			t.Run("AAAA", func(t *testing.T) {
				waitDig(t, a, server, []string{`status: NOERROR`, `(?m)^web\.vs\.test\.\s+\d+\s+IN\s+AAAA\s+fd00:211::80$`}, "web.vs.test", "AAAA")
			})
			t.Run("PTR", func(t *testing.T) {
				waitDig(t, a, server, []string{`status: NOERROR`, `(?m)^80\.2\.211\.10\.in-addr\.arpa\.\s+\d+\s+IN\s+PTR\s+web\.vs\.test\.$`}, "-x", "10.211.2.80")
			})
			t.Run("NXDOMAIN-with-SOA", func(t *testing.T) {
				out := waitDig(t, a, server, []string{`status: NXDOMAIN`, `AUTHORITY: 1`, `(?m)^vs\.test\.\s+\d+\s+IN\s+SOA\s+`}, "nope.vs.test", "A")
				if strings.Contains(out, "ANSWER SECTION") {
					t.Errorf("NXDOMAIN answer has an answer section:\n%s", out)
				}
			})
			t.Run("NODATA", func(t *testing.T) {
				// A type the responder serves, for a name without it. (Types
				// it does not serve, e.g. MX, it passes on as
				// unsupported_type.)
				waitDig(t, a, server, []string{`status: NOERROR`, `ANSWER: 0`, `(?m)^vs\.test\.\s+\d+\s+IN\s+SOA\s+`}, "v4only.vs.test", "AAAA")
			})
			t.Run("CNAME-chain", func(t *testing.T) {
				waitDig(t, a, server, []string{`status: NOERROR`,
					`(?m)^www\.vs\.test\.\s+\d+\s+IN\s+CNAME\s+web\.vs\.test\.$`,
					`(?m)^web\.vs\.test\.\s+\d+\s+IN\s+A\s+10\.211\.2\.80$`}, "www.vs.test", "A")
			})
		})
	}

	t.Run("outside-zone-reaches-dnsmasq", func(t *testing.T) {
		waitDig(t, a, b.ip, []string{`status: NOERROR`, `(?m)^other\.example\.\s+\d+\s+IN\s+A\s+10\.211\.2\.77$`}, "other.example", "A")
		if err := dm.WaitOutput("query[A] other.example from "+a.ip, 10*time.Second); err != nil {
			t.Errorf("dnsmasq did not log the outside-zone query: %v", err)
		}
		log := dm.Stdout() + dm.Stderr()
		for _, inZone := range []string{"vs.test", "in-addr.arpa"} {
			if strings.Contains(log, inZone) {
				t.Errorf("dnsmasq saw a query for %s, which the switch must answer itself; its log:\n%s", inZone, log)
			}
		}
	})

	t.Run("counters", func(t *testing.T) {
		_, st1 := d.peepholeStats(t)
		// 3 servers x 6 queries, of which 3 NXDOMAIN and 3 NODATA; retries
		// of waitDig may add more.
		if got := st1.DNS.Answered - st0.DNS.Answered; got < 18 {
			t.Errorf("peephole.dns.answered grew by %d, want >= 18", got)
		}
		if got := st1.DNS.NXDomain - st0.DNS.NXDomain; got < 3 {
			t.Errorf("peephole.dns.nxdomain grew by %d, want >= 3", got)
		}
		if got := st1.DNS.NoData - st0.DNS.NoData; got < 3 {
			t.Errorf("peephole.dns.nodata grew by %d, want >= 3", got)
		}
		if got := st1.DNS.Passed["outside_zone"] - st0.DNS.Passed["outside_zone"]; got < 1 {
			t.Errorf("peephole.dns.passed.outside_zone grew by %d, want >= 1 (other.example)", got)
		}
	})
}

// TestPeepholeGleaning: with no binding for C, C's gratuitous ARP teaches
// the switch C's address; then A's ARP for C is answered by the switch and
// C never sees it; arp flush forgets it again.
func TestPeepholeGleaning(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "arping", "tcpdump", "ping")
	a := newHost(t, "pa", "10.211.3.1")
	c := newHost(t, "pc", "10.211.3.3")
	d := startPeephole(t, []peepholePort{{h: a}, {h: c}}, "glean: {aging: 300s}\n")
	cMAC := c.link.MAC.String()

	t.Run("gratuitous-arp-gleaned", func(t *testing.T) {
		// A gratuitous ARP request (sender = target = C), written raw: the
		// arping options for it differ between the two arpings.
		tx, err := netnstest.NewRawSender(c.ns, c.link.Peer)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		netnstest.Eventually(t, answerTimeout, 200*time.Millisecond, "arp list shows "+c.ip+" gleaned", func() (bool, string) {
			if err := tx.Send(arpFrame(c.link.MAC, c.ip, c.ip)); err != nil {
				return false, "send gratuitous ARP: " + err.Error()
			}
			bs := d.bindings(t, "arp")
			b, ok := findBinding(bs, c.ip)
			return ok && b.Kind == "gleaned" && strings.EqualFold(b.MAC, cMAC), fmt.Sprintf("%+v", bs)
		})
		b, _ := findBinding(d.bindings(t, "arp"), c.ip)
		if b.Port != "" && b.Port != c.port {
			t.Errorf("gleaned binding %+v is on port %q, want %q", b, b.Port, c.port)
		}
		_, st := d.peepholeStats(t)
		if st.Gleaned < 1 {
			t.Errorf("peephole.gleaned = %d, want >= 1", st.Gleaned)
		}
	})

	t.Run("gleaned-answered-by-switch", func(t *testing.T) {
		capt := startCapture(t, c, "arp")
		waitARPAnswer(t, a, c.ip, cMAC)
		capt.syncTo(t, a, "10.211.3.99")
		if l := capt.lines(`who-has ` + regexp.QuoteMeta(c.ip) + ` `); len(l) > 0 {
			t.Errorf("C saw %d ARP requests for its gleaned address, want 0:\n%s", len(l), strings.Join(l, "\n"))
		}
	})

	t.Run("flush", func(t *testing.T) {
		out := d.Run(t, "arp", "flush")
		t.Logf("arp flush: %s", strings.TrimSpace(out))
		for _, b := range d.bindings(t, "arp") {
			if b.Kind == "gleaned" {
				t.Errorf("gleaned binding survived arp flush: %+v", b)
			}
		}
		// Now A's request is the forwarding path's again: C answers it
		// itself. (The request re-gleans A, not C.)
		capt := startCapture(t, c, "arp")
		if mac, r := arpingMAC(a, c.ip); mac != strings.ToLower(cMAC) {
			t.Errorf("after flush, arping %s: want C's own reply %s: %s", c.ip, cMAC, r)
		}
		if err := capt.WaitOutput("who-has "+c.ip+" ", 10*time.Second); err != nil {
			t.Errorf("after flush, C did not see A's ARP request: %v", err)
		}
	})
}

// arpFrame builds a broadcast ARP request from mac claiming senderIP and
// asking for targetIP (gratuitous when they are equal).
func arpFrame(mac net.HardwareAddr, senderIP, targetIP string) []byte {
	f := ethHeader(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, 0x0806)
	arp := make([]byte, 28)
	binary.BigEndian.PutUint16(arp[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(arp[2:], 0x0800) // IPv4
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:], 1) // request
	copy(arp[8:14], mac)
	copy(arp[14:18], net.ParseIP(senderIP).To4())
	copy(arp[24:28], net.ParseIP(targetIP).To4())
	return append(f, arp...)
}

// udpFrame builds an IPv4/UDP frame with a correct header checksum and no
// UDP checksum.
func udpFrame(dst, src net.HardwareAddr, srcIP, dstIP string) []byte {
	payload := []byte("spoof")
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:16], net.ParseIP(srcIP).To4())
	copy(ip[16:20], net.ParseIP(dstIP).To4())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return cat(ethHeader(dst, src, 0x0800), ip, udp, payload)
}

// TestPeepholeSpoofGuard: a guarded port may claim only the addresses
// bound to it. A foreign ARP claim and an IP packet from a foreign source
// are dropped as "spoofed" and not gleaned; the bound address still works.
func TestPeepholeSpoofGuard(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping", "tcpdump")
	a := newHost(t, "pa", "10.211.4.1")
	g := newHost(t, "pg", "10.211.4.4")
	d := startPeephole(t, []peepholePort{{h: a}, {h: g, spoofGuard: true}}, fmt.Sprintf(`bindings:
  - {ip: %s, mac: "%s", port: %s}
`, g.ip, g.link.MAC, g.port))

	// The bound address works (ARP claim from G for its own address,
	// IP from it), and costs no spoofed drop.
	g.ns.WaitPing(t, a.ip, firstPingTimeout)
	st0, _ := d.peepholeStats(t)
	g.ns.PingOK(t, 3, a.ip)
	st1, _ := d.peepholeStats(t)
	if n := st1.workerDrops("spoofed") - st0.workerDrops("spoofed"); n != 0 {
		t.Errorf("%d frames of G's own bound address counted as spoofed", n)
	}

	t.Run("foreign-claims-dropped", func(t *testing.T) {
		const foreign = "10.211.4.5"
		capt := startCapture(t, a, "arp or udp")
		tx, err := netnstest.NewRawSender(g.ns, g.link.Peer)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		st0, _ := d.peepholeStats(t)
		frames := map[string][]byte{
			"gratuitous-arp": arpFrame(g.link.MAC, foreign, foreign),
			"arp-request":    arpFrame(g.link.MAC, foreign, a.ip),
			"udp":            udpFrame(a.link.MAC, g.link.MAC, foreign, a.ip),
		}
		for name, f := range frames {
			if err := tx.Send(f); err != nil {
				t.Fatalf("send %s: %v", name, err)
			}
		}
		var st1 statsDoc
		netnstest.Eventually(t, 10*time.Second, 50*time.Millisecond, "spoofed drops counted", func() (bool, string) {
			st1, _ = d.peepholeStats(t)
			n := st1.workerDrops("spoofed") - st0.workerDrops("spoofed")
			return n >= uint64(len(frames)), fmt.Sprintf("worker drops_by_reason.spoofed grew by %d, want %d; port %s: %d -> %d",
				n, len(frames), g.port, st0.portDrops(g.port, "spoofed"), st1.portDrops(g.port, "spoofed"))
		})
		if n := st1.portDrops(g.port, "spoofed") - st0.portDrops(g.port, "spoofed"); n < uint64(len(frames)) {
			t.Logf("note: port %s drops_by_reason.spoofed grew by %d (the workers counted them)", g.port, n)
		}
		capt.syncTo(t, g, "10.211.4.99")
		for _, re := range []string{`tell ` + regexp.QuoteMeta(foreign) + `\b`, `who-has ` + regexp.QuoteMeta(foreign) + ` `, regexp.QuoteMeta(foreign) + `\.40000 >`} {
			if l := capt.lines(re); len(l) > 0 {
				t.Errorf("A received a spoofed frame from G (%q):\n%s", re, strings.Join(l, "\n"))
			}
		}
		if b, ok := findBinding(d.bindings(t, "arp"), foreign); ok {
			t.Errorf("spoofed claim was gleaned: %+v", b)
		}
	})

	t.Run("bound-address-still-works", func(t *testing.T) {
		g.ns.Run(t, "ip", "neigh", "flush", "dev", g.link.Peer)
		g.ns.WaitPing(t, a.ip, firstPingTimeout)
		a.ns.PingOK(t, 3, g.ip)
	})
}

// TestPeepholeRuntimeEditsPersist: a record and a binding added with
// vswitchctl answer at once and again after a restart (state file).
func TestPeepholeRuntimeEditsPersist(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "arping", "dig")
	a := newHost(t, "pa", "10.211.5.1")
	b := newHost(t, "pb", "10.211.5.2")
	d := startPeephole(t, []peepholePort{{h: a}, {h: b}}, fmt.Sprintf(`bindings:
  - {ip: %s, mac: "%s", port: %s}
dns:
  zones:
    - name: vs.test
`, b.ip, b.link.MAC, b.port))

	const (
		addedIP  = "10.211.5.9"
		addedMAC = "02:00:00:00:00:09"
	)
	check := func(t *testing.T) {
		t.Helper()
		waitDig(t, a, b.ip, []string{`status: NOERROR`, `(?m)^added\.vs\.test\.\s+\d+\s+IN\s+A\s+10\.211\.5\.81$`}, "added.vs.test", "A")
		waitDig(t, a, b.ip, []string{`status: NOERROR`, `(?m)^added\.zone\.test\.\s+\d+\s+IN\s+A\s+10\.211\.5\.82$`}, "added.zone.test", "A")
		waitARPAnswer(t, a, addedIP, addedMAC)
	}

	t.Run("add", func(t *testing.T) {
		for _, args := range [][]string{
			{"dns", "add", "added.vs.test", "A", "10.211.5.81"},
			{"dns", "zone", "add", "zone.test"},
			{"dns", "add", "added.zone.test", "A", "10.211.5.82"},
			{"arp", "add", addedIP, addedMAC},
		} {
			out := d.Run(t, args...)
			t.Logf("vswitchctl %s: %s", strings.Join(args, " "), strings.TrimSpace(out))
		}
		check(t)
	})
	t.Run("restart-keeps-them", func(t *testing.T) {
		d.Terminate(t, exitTimeout)
		d.startTolerant(t)
		check(t)
	})
	t.Run("del-persists", func(t *testing.T) {
		d.Run(t, "dns", "del", "added.vs.test", "A")
		d.Run(t, "arp", "del", addedIP)
		d.Terminate(t, exitTimeout)
		d.startTolerant(t)
		// The name is in the zone still, so the switch answers NXDOMAIN.
		waitDig(t, a, b.ip, []string{`status: NXDOMAIN`}, "added.vs.test", "A")
		if _, ok := findBinding(d.bindings(t, "arp"), addedIP); ok {
			t.Errorf("binding %s is back after del and restart", addedIP)
		}
	})
}
