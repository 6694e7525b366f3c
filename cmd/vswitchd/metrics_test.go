//go:build integration

package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/netnstest"
)

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

// metricValue finds one sample, e.g. name{port="p0"}, in an exposition.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sample %s in /metrics:\n%s", series, body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("sample %s: %v", series, err)
	}
	return v
}

// TestMetrics: the Prometheus endpoint serves the same counters as
// vswitchctl stats.
func TestMetrics(t *testing.T) {
	netnstest.RequirePriv(t)
	netnstest.RequireTools(t, "ping")
	a := newHost(t, "p0", "10.210.10.1")
	b := newHost(t, "p1", "10.210.10.2")
	addr := net.JoinHostPort("127.0.0.1", itoa(freeLoopbackPort(t)))
	d := startDaemon(t, daemonConf{ports: []portConf{a.portConf(""), b.portConf("")}}, "--metrics-addr", addr)
	url := "http://" + addr + "/metrics"

	a.ns.WaitPing(t, b.ip, firstPingTimeout)
	const pings = 10
	a.ns.PingOK(t, pings, b.ip)

	// The pings are over; bracket the scrape with two stats reads. Only
	// late stragglers (none expected) could make them differ.
	before := d.stats(t)
	body := scrape(t, url)
	after := d.stats(t)
	for _, h := range []*host{a, b} {
		for _, c := range []struct {
			metric string
			get    func(p portCounters) uint64
		}{
			{"vswitch_port_rx_packets_total", func(p portCounters) uint64 { return p.rx }},
			{"vswitch_port_tx_packets_total", func(p portCounters) uint64 { return p.tx }},
		} {
			series := c.metric + `{port="` + h.port + `"}`
			v := uint64(metricValue(t, body, series))
			lo, hi := c.get(counters(t, before, h.port)), c.get(counters(t, after, h.port))
			if v < lo || v > hi {
				t.Errorf("%s = %d, want within stats [%d, %d]", series, v, lo, hi)
			}
			if v < pings {
				t.Errorf("%s = %d after %d pings, want >= %d", series, v, pings, pings)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^vswitch_worker_forwarded_total\{worker="0"\} [1-9]`).MatchString(body) {
		t.Errorf("/metrics lacks a non-zero vswitch_worker_forwarded_total{worker=\"0\"}")
	}
}

type portCounters struct{ rx, tx uint64 }

func counters(t *testing.T, st vswitch.Stats, port string) portCounters {
	t.Helper()
	p := portStats(t, st, port)
	return portCounters{rx: p.RxPackets, tx: p.TxPackets}
}
