package metrics_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api/apitest"
	"github.com/vswitch/vswitch/switch/metrics"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func TestCollectorExportsStats(t *testing.T) {
	c := metrics.NewCollector(apitest.NewSample())
	want := `
# HELP vswitch_fdb_entries Entries in the L2 forwarding database.
# TYPE vswitch_fdb_entries gauge
vswitch_fdb_entries 3
# HELP vswitch_port_drops_total Frames of the port dropped, by reason.
# TYPE vswitch_port_drops_total counter
vswitch_port_drops_total{port="eth0",reason="no_fdb"} 5
vswitch_port_drops_total{port="eth0",reason="vlan_filtered"} 2
# HELP vswitch_port_rx_bytes_total Bytes received on the port.
# TYPE vswitch_port_rx_bytes_total counter
vswitch_port_rx_bytes_total{port="eth0"} 64000
vswitch_port_rx_bytes_total{port="eth1"} 128000
# HELP vswitch_port_rx_packets_total Frames received on the port.
# TYPE vswitch_port_rx_packets_total counter
vswitch_port_rx_packets_total{port="eth0"} 1000
vswitch_port_rx_packets_total{port="eth1"} 2000
# HELP vswitch_port_tx_packets_total Frames transmitted on the port.
# TYPE vswitch_port_tx_packets_total counter
vswitch_port_tx_packets_total{port="eth0"} 900
vswitch_port_tx_packets_total{port="eth1"} 1900
# HELP vswitch_port_xsk_tx_invalid_total Invalid TX descriptors the kernel rejected (tx_invalid_descs), summed over queues.
# TYPE vswitch_port_xsk_tx_invalid_total counter
vswitch_port_xsk_tx_invalid_total{port="eth0"} 4
vswitch_port_xsk_tx_invalid_total{port="eth1"} 0
# HELP vswitch_worker_busy_ratio Share of the last sampling interval the worker spent on frames (0..1).
# TYPE vswitch_worker_busy_ratio gauge
vswitch_worker_busy_ratio{worker="0"} 0.125
vswitch_worker_busy_ratio{worker="1"} 0.0725
# HELP vswitch_worker_drops_total Frames the worker dropped, by reason.
# TYPE vswitch_worker_drops_total counter
vswitch_worker_drops_total{reason="no_fdb",worker="0"} 5
vswitch_worker_drops_total{reason="vlan_filtered",worker="0"} 2
# HELP vswitch_worker_flooded_total Frames the worker flooded to every port of the VLAN.
# TYPE vswitch_worker_flooded_total counter
vswitch_worker_flooded_total{worker="0"} 90
vswitch_worker_flooded_total{worker="1"} 0
# HELP vswitch_worker_forwarded_total Frames the worker forwarded to one port.
# TYPE vswitch_worker_forwarded_total counter
vswitch_worker_forwarded_total{worker="0"} 1300
vswitch_worker_forwarded_total{worker="1"} 1400
# HELP vswitch_worker_polls_total Poll loop iterations of the worker.
# TYPE vswitch_worker_polls_total counter
vswitch_worker_polls_total{worker="0"} 50000
vswitch_worker_polls_total{worker="1"} 40000
`
	err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"vswitch_fdb_entries", "vswitch_port_drops_total", "vswitch_port_rx_bytes_total",
		"vswitch_port_rx_packets_total", "vswitch_port_tx_packets_total", "vswitch_port_xsk_tx_invalid_total",
		"vswitch_worker_busy_ratio", "vswitch_worker_drops_total", "vswitch_worker_flooded_total",
		"vswitch_worker_forwarded_total", "vswitch_worker_polls_total")
	if err != nil {
		t.Error(err)
	}
}

func TestCollectorEveryMetricPresent(t *testing.T) {
	c := metrics.NewCollector(apitest.NewSample())
	// 2 ports x 8 + eth0's 2 drop reasons; 2 workers x 9 + worker 0's 2
	// drop reasons; 5 switch-wide; 3 responders x 2 + 4 pass reasons + 2
	// gleaning responders + 3 peephole-wide.
	if n, want := testutil.CollectAndCount(c), 2*8+2+2*9+2+5+3*2+4+2+3; n != want {
		t.Errorf("collected %d series, want %d", n, want)
	}
	for _, name := range []string{
		"vswitch_port_tx_bytes_total", "vswitch_port_xsk_rx_dropped_total", "vswitch_port_xsk_rx_ring_full_total",
		"vswitch_port_xsk_fill_ring_empty_total", "vswitch_worker_rx_packets_total", "vswitch_worker_tx_packets_total",
		"vswitch_worker_replied_total", "vswitch_worker_sleeps_total", "vswitch_worker_sleep_seconds_total", "vswitch_ports", "vswitch_workers", "vswitch_config_generation", "vswitch_build_info",
	} {
		if testutil.CollectAndCount(c, name) == 0 {
			t.Errorf("%s not collected", name)
		}
	}
}

func TestCollectorExportsPeephole(t *testing.T) {
	ctl := apitest.NewSample()
	want := `
# HELP vswitch_peephole_answered_total Queries the responder answered itself.
# TYPE vswitch_peephole_answered_total counter
vswitch_peephole_answered_total{responder="arp"} 40
vswitch_peephole_answered_total{responder="dns"} 30
vswitch_peephole_answered_total{responder="nd"} 12
# HELP vswitch_peephole_dns_nodata_total DNS answers that were NODATA (the name exists, not with the asked type).
# TYPE vswitch_peephole_dns_nodata_total counter
vswitch_peephole_dns_nodata_total 1
# HELP vswitch_peephole_dns_nxdomain_total DNS answers that were NXDOMAIN (no such name in a local zone).
# TYPE vswitch_peephole_dns_nxdomain_total counter
vswitch_peephole_dns_nxdomain_total 4
# HELP vswitch_peephole_gleaned_bindings Gleaned IP-to-MAC bindings now in the table.
# TYPE vswitch_peephole_gleaned_bindings gauge
vswitch_peephole_gleaned_bindings 1
# HELP vswitch_peephole_gleaned_total Bindings the responder learned or refreshed from observed traffic.
# TYPE vswitch_peephole_gleaned_total counter
vswitch_peephole_gleaned_total{responder="arp"} 5
vswitch_peephole_gleaned_total{responder="nd"} 2
# HELP vswitch_peephole_malformed_total Queries the responder found malformed.
# TYPE vswitch_peephole_malformed_total counter
vswitch_peephole_malformed_total{responder="arp"} 1
vswitch_peephole_malformed_total{responder="dns"} 2
vswitch_peephole_malformed_total{responder="nd"} 0
# HELP vswitch_peephole_passed_total Queries the responder left to the forwarding path, by reason.
# TYPE vswitch_peephole_passed_total counter
vswitch_peephole_passed_total{reason="not_request",responder="arp"} 6
vswitch_peephole_passed_total{reason="outside_zone",responder="dns"} 9
vswitch_peephole_passed_total{reason="unknown_target",responder="arp"} 3
vswitch_peephole_passed_total{reason="unknown_target",responder="nd"} 2
`
	names := []string{"vswitch_peephole_answered_total", "vswitch_peephole_dns_nodata_total", "vswitch_peephole_dns_nxdomain_total",
		"vswitch_peephole_gleaned_bindings", "vswitch_peephole_gleaned_total", "vswitch_peephole_malformed_total", "vswitch_peephole_passed_total"}
	if err := testutil.CollectAndCompare(metrics.NewCollector(ctl), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Values are read on every scrape: a flush shows at once.
	ctl.FlushGleaned()
	want = "# HELP vswitch_peephole_gleaned_bindings Gleaned IP-to-MAC bindings now in the table.\n" +
		"# TYPE vswitch_peephole_gleaned_bindings gauge\nvswitch_peephole_gleaned_bindings 0\n"
	if err := testutil.CollectAndCompare(metrics.NewCollector(ctl), strings.NewReader(want), "vswitch_peephole_gleaned_bindings"); err != nil {
		t.Error(err)
	}
}

func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(metrics.NewCollector(apitest.NewSample()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestDropsWithoutReasonAreOther(t *testing.T) {
	for _, tc := range []struct {
		name string
		by   map[string]uint64
		want string
	}{
		{"no reasons", nil, `vswitch_port_drops_total{port="p",reason="other"} 10`},
		{"part named", map[string]uint64{"bad_len": 4}, `vswitch_port_drops_total{port="p",reason="bad_len"} 4
vswitch_port_drops_total{port="p",reason="other"} 6`},
		{"all named", map[string]uint64{"bad_len": 4, "other": 6}, `vswitch_port_drops_total{port="p",reason="bad_len"} 4
vswitch_port_drops_total{port="p",reason="other"} 6`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl := apitest.New()
			ctl.SetStats(vswitch.Stats{Ports: []vswitch.PortStats{{Name: "p", Drops: 10, DropsBy: tc.by}}})
			want := "# HELP vswitch_port_drops_total Frames of the port dropped, by reason.\n# TYPE vswitch_port_drops_total counter\n" + tc.want + "\n"
			if err := testutil.CollectAndCompare(metrics.NewCollector(ctl), strings.NewReader(want), "vswitch_port_drops_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func TestServeScrapesLiveValues(t *testing.T) {
	ctl := apitest.NewSample()
	srv, err := metrics.Serve("127.0.0.1:0", ctl, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	url := "http://" + srv.Addr + "/metrics"

	body := scrape(t, url)
	for _, want := range []string{
		`vswitch_port_rx_packets_total{port="eth0"} 1000`,
		`vswitch_worker_busy_ratio{worker="0"} 0.125`,
		`vswitch_fdb_entries 3`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}

	// Each scrape asks the Control again: no cached values.
	st := ctl.Stats()
	st.Ports = []vswitch.PortStats{{Name: "eth0", RxPackets: 1234}}
	ctl.SetStats(st)
	if body := scrape(t, url); !strings.Contains(body, `vswitch_port_rx_packets_total{port="eth0"} 1234`) {
		t.Error("second scrape does not show the new counter")
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, addr := range []string{ln.Addr().String(), "not-an-address"} {
		srv, err := metrics.Serve(addr, apitest.New(), zaptest.NewLogger(t))
		if err == nil {
			srv.Close()
			t.Errorf("Serve(%q) succeeded", addr)
			continue
		}
		if !strings.HasPrefix(err.Error(), "listen metrics: ") {
			t.Errorf("Serve(%q) = %v, want a listen metrics error", addr, err)
		}
	}
}

func TestDuplicateSeriesDoNotBlankTheScrape(t *testing.T) {
	// A daemon bug that reports one port twice yields duplicate series;
	// the scrape still serves everything else.
	ctl := apitest.NewSample()
	st := ctl.Stats()
	st.Ports = append(st.Ports, st.Ports[0])
	ctl.SetStats(st)
	ts := httptest.NewServer(metrics.Handler(ctl, zaptest.NewLogger(t)))
	defer ts.Close()
	defer http.DefaultClient.CloseIdleConnections()
	body := scrape(t, ts.URL)
	if !strings.Contains(body, `vswitch_worker_polls_total{worker="1"} 40000`) {
		t.Error("scrape with a duplicate series lost the other metrics")
	}
}

func TestServeStops(t *testing.T) {
	srv, err := metrics.Serve("127.0.0.1:0", apitest.New(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = http.Get("http://" + addr + "/metrics")
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("GET after Close = %v, want a connection error", err)
	}
}

func TestCollectorExportsMemring(t *testing.T) {
	ctl := apitest.NewSampleMemring()
	want := `
# HELP vswitch_port_attached 1 while a client is attached to the memring port, else 0.
# TYPE vswitch_port_attached gauge
vswitch_port_attached{port="vm1"} 1
vswitch_port_attached{port="vm2"} 0
# HELP vswitch_port_memring_bad_descriptors_total Invalid descriptors the memring port's clients wrote (skipped, never followed).
# TYPE vswitch_port_memring_bad_descriptors_total counter
vswitch_port_memring_bad_descriptors_total{port="vm1"} 12
vswitch_port_memring_bad_descriptors_total{port="vm2"} 0
# HELP vswitch_port_memring_corrupt_sessions_total Sessions of the memring port dropped because the client corrupted its rings.
# TYPE vswitch_port_memring_corrupt_sessions_total counter
vswitch_port_memring_corrupt_sessions_total{port="vm1"} 1
vswitch_port_memring_corrupt_sessions_total{port="vm2"} 0
# HELP vswitch_port_xsk_tx_invalid_total Invalid TX descriptors the kernel rejected (tx_invalid_descs), summed over queues.
# TYPE vswitch_port_xsk_tx_invalid_total counter
vswitch_port_xsk_tx_invalid_total{port="eth0"} 4
vswitch_port_xsk_tx_invalid_total{port="eth1"} 0
`
	names := []string{"vswitch_port_attached", "vswitch_port_memring_bad_descriptors_total",
		"vswitch_port_memring_corrupt_sessions_total", "vswitch_port_xsk_tx_invalid_total"}
	if err := testutil.CollectAndCompare(metrics.NewCollector(ctl), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(metrics.NewCollector(ctl), "vswitch_port_rx_packets_total"); n != 4 {
		t.Errorf("rx packets of %d ports, want all 4", n)
	}

	// Read on every scrape: a client leaving shows at once.
	if err := ctl.DetachMemring("vm1"); err != nil {
		t.Fatal(err)
	}
	want = "# HELP vswitch_port_attached 1 while a client is attached to the memring port, else 0.\n# TYPE vswitch_port_attached gauge\n" +
		"vswitch_port_attached{port=\"vm1\"} 0\nvswitch_port_attached{port=\"vm2\"} 0\n"
	if err := testutil.CollectAndCompare(metrics.NewCollector(ctl), strings.NewReader(want), "vswitch_port_attached"); err != nil {
		t.Error(err)
	}
}

func TestCollectorWithoutMemringPortsHasNoMemringSeries(t *testing.T) {
	c := metrics.NewCollector(apitest.NewSample())
	for _, name := range []string{"vswitch_port_attached", "vswitch_port_memring_bad_descriptors_total", "vswitch_port_memring_corrupt_sessions_total"} {
		if n := testutil.CollectAndCount(c, name); n != 0 {
			t.Errorf("%s: %d series without memring ports", name, n)
		}
	}
}

func TestCollectorLintMemring(t *testing.T) {
	problems, err := testutil.CollectAndLint(metrics.NewCollector(apitest.NewSampleMemring()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
