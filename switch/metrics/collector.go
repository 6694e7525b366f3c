// Package metrics exports the switch's counters to Prometheus. It owns the
// metric names and the /metrics endpoint, and nothing else: every value is
// read from vswitch.Control at scrape time, so the exporter keeps no state
// and can never disagree with `vswitchctl stats`.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	vswitch "github.com/vswitch/vswitch/switch"
)

const namespace = "vswitch"

// otherReason labels drops that a port or worker counts in its total but
// not under any named reason, so the per-reason series still sum to it.
const otherReason = "other"

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	portRxPackets   = newDesc("port_rx_packets_total", "Frames received on the port.", "port")
	portRxBytes     = newDesc("port_rx_bytes_total", "Bytes received on the port.", "port")
	portTxPackets   = newDesc("port_tx_packets_total", "Frames transmitted on the port.", "port")
	portTxBytes     = newDesc("port_tx_bytes_total", "Bytes transmitted on the port.", "port")
	portDrops       = newDesc("port_drops_total", "Frames of the port dropped, by reason.", "port", "reason")
	portXSKRxDrop   = newDesc("port_xsk_rx_dropped_total", "Frames the kernel dropped before the AF_XDP RX ring (XDP_STATISTICS rx_dropped), summed over queues.", "port")
	portXSKRxFull   = newDesc("port_xsk_rx_ring_full_total", "Times the AF_XDP RX ring was full (rx_ring_full), summed over queues.", "port")
	portXSKFillEmpt = newDesc("port_xsk_fill_ring_empty_total", "Times the AF_XDP fill ring was empty (rx_fill_ring_empty_descs), summed over queues.", "port")
	portXSKTxInval  = newDesc("port_xsk_tx_invalid_total", "Invalid TX descriptors the kernel rejected (tx_invalid_descs), summed over queues.", "port")
	portMemBadDesc  = newDesc("port_memring_bad_descriptors_total", "Invalid descriptors the memring port's clients wrote (skipped, never followed).", "port")
	portMemCorrupt  = newDesc("port_memring_corrupt_sessions_total", "Sessions of the memring port dropped because the client corrupted its rings.", "port")
	portAttached    = newDesc("port_attached", "1 while a client is attached to the memring port, else 0.", "port")

	workerRxPackets = newDesc("worker_rx_packets_total", "Frames the worker took from its RX queues.", "worker")
	workerTxPackets = newDesc("worker_tx_packets_total", "Frames the worker transmitted.", "worker")
	workerForwarded = newDesc("worker_forwarded_total", "Frames the worker forwarded to one port.", "worker")
	workerFlooded   = newDesc("worker_flooded_total", "Frames the worker flooded to every port of the VLAN.", "worker")
	workerReplied   = newDesc("worker_replied_total", "Frames the worker answered itself (ARP, ND, DNS).", "worker")
	workerDrops     = newDesc("worker_drops_total", "Frames the worker dropped, by reason.", "worker", "reason")
	workerPolls     = newDesc("worker_polls_total", "Poll loop iterations of the worker.", "worker")
	workerSleeps    = newDesc("worker_sleeps_total", "Waits of the worker in poll(2) when it had no frames (adaptive and interrupt modes).", "worker")
	workerSleepSec  = newDesc("worker_sleep_seconds_total", "Time the worker spent waiting in poll(2).", "worker")
	workerBusy      = newDesc("worker_busy_ratio", "Share of the last sampling interval the worker spent on frames (0..1).", "worker")

	peepholeAnswered  = newDesc("peephole_answered_total", "Queries the responder answered itself.", "responder")
	peepholePassed    = newDesc("peephole_passed_total", "Queries the responder left to the forwarding path, by reason.", "responder", "reason")
	peepholeMalformed = newDesc("peephole_malformed_total", "Queries the responder found malformed.", "responder")
	peepholeNXDomain  = newDesc("peephole_dns_nxdomain_total", "DNS answers that were NXDOMAIN (no such name in a local zone).")
	peepholeNoData    = newDesc("peephole_dns_nodata_total", "DNS answers that were NODATA (the name exists, not with the asked type).")
	peepholeGleaned   = newDesc("peephole_gleaned_bindings", "Gleaned IP-to-MAC bindings now in the table.")
	peepholeGleans    = newDesc("peephole_gleaned_total", "Bindings the responder learned or refreshed from observed traffic.", "responder")

	flowCacheEvents  = newDesc("flow_cache_total", "Flow cache events summed over workers: hit, miss, insert, eviction, revalidation, expired, invalidated.", "event")
	flowCacheEntries = newDesc("flow_cache_entries", "Live flow cache entries summed over workers.")
	gatewayRouted    = newDesc("gateway_route_total", "Route step outcomes: routed, no_route, ttl_exceeded, parked, flooded, icmp_sent, icmp_rate_limited.", "outcome")
	gatewayParked    = newDesc("gateway_parked_packets", "Packets waiting for ARP/ND now.")

	fdbEntries = newDesc("fdb_entries", "Entries in the L2 forwarding database.")
	ports      = newDesc("ports", "Configured ports.")
	workers    = newDesc("workers", "Poll-mode workers.")
	generation = newDesc("config_generation", "Configuration generation; bumps on every change.")
	buildInfo  = newDesc("build_info", "Always 1; the labels say which build runs.", "version")

	allDescs = []*prometheus.Desc{
		portRxPackets, portRxBytes, portTxPackets, portTxBytes, portDrops,
		portXSKRxDrop, portXSKRxFull, portXSKFillEmpt, portXSKTxInval,
		portMemBadDesc, portMemCorrupt, portAttached,
		workerRxPackets, workerTxPackets, workerForwarded, workerFlooded, workerReplied,
		workerDrops, workerPolls, workerSleeps, workerSleepSec, workerBusy,
		peepholeAnswered, peepholePassed, peepholeMalformed, peepholeNXDomain, peepholeNoData, peepholeGleaned, peepholeGleans,
		fdbEntries, ports, workers, generation, buildInfo,
		flowCacheEvents, flowCacheEntries, gatewayRouted, gatewayParked,
	}
)

// Collector is a prometheus.Collector that reads ctl.Status, ctl.Ports and
// ctl.Stats on every scrape and exports them as the vswitch_* metrics. The
// responders' counters come from Stats().Peephole, the same numbers
// `vswitchctl stats` shows. Ports says which ports are memring ports: only
// they get the memring series, and port_attached comes from their state.
type Collector struct {
	ctl vswitch.Control
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector for ctl.
func NewCollector(ctl vswitch.Control) *Collector { return &Collector{ctl: ctl} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.ctl.Status()
	portInfos := c.ctl.Ports()
	stats := c.ctl.Stats()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	gauge(fdbEntries, float64(st.FDBEntries))
	gauge(ports, float64(st.Ports))
	gauge(workers, float64(st.Workers))
	gauge(generation, float64(st.Generation))
	gauge(buildInfo, 1, vswitch.Version)

	memring := make(map[string]bool, len(portInfos))
	for _, p := range portInfos {
		memring[p.Name] = p.Type == vswitch.PortMemring
	}
	for _, p := range stats.Ports {
		counter(portRxPackets, p.RxPackets, p.Name)
		counter(portRxBytes, p.RxBytes, p.Name)
		counter(portTxPackets, p.TxPackets, p.Name)
		counter(portTxBytes, p.TxBytes, p.Name)
		for reason, n := range dropsByReason(p.Drops, p.DropsBy) {
			counter(portDrops, n, p.Name, reason)
		}
		// A memring port has no AF_XDP sockets, an AF_XDP port no rings
		// of a client: each gets only the series that mean something.
		if memring[p.Name] {
			counter(portMemBadDesc, p.MemringBadDesc, p.Name)
			counter(portMemCorrupt, p.MemringCorrupt, p.Name)
		} else {
			counter(portXSKRxDrop, p.XSKRxDropped, p.Name)
			counter(portXSKRxFull, p.XSKRxRingFull, p.Name)
			counter(portXSKFillEmpt, p.XSKFillRingEmpty, p.Name)
			counter(portXSKTxInval, p.XSKTxInvalid, p.Name)
		}
	}
	for _, p := range portInfos {
		if p.Type != vswitch.PortMemring {
			continue
		}
		attached := 0.0
		if p.State == "attached" {
			attached = 1
		}
		gauge(portAttached, attached, p.Name)
	}
	for _, w := range stats.Workers {
		id := strconv.Itoa(w.ID)
		counter(workerRxPackets, w.RxPackets, id)
		counter(workerTxPackets, w.TxPackets, id)
		counter(workerForwarded, w.Forwarded, id)
		counter(workerFlooded, w.Flooded, id)
		counter(workerReplied, w.Replied, id)
		for reason, n := range dropsByReason(w.Drops, w.DropsBy) {
			counter(workerDrops, n, id, reason)
		}
		counter(workerPolls, w.Polls, id)
		counter(workerSleeps, w.Sleeps, id)
		ch <- prometheus.MustNewConstMetric(workerSleepSec, prometheus.CounterValue, float64(w.SleepNs)/1e9, id)
		gauge(workerBusy, w.BusyPct/100, id)
	}

	if g := stats.Gateway; g != nil {
		t := g.Total
		for _, e := range []struct {
			name string
			v    uint64
		}{{"hit", t.Hits}, {"miss", t.Misses}, {"insert", t.Inserts}, {"eviction", t.Evictions},
			{"revalidation", t.Revalidations}, {"expired", t.Expired}, {"invalidated", t.Invalidated}} {
			counter(flowCacheEvents, e.v, e.name)
		}
		gauge(flowCacheEntries, float64(t.Entries))
		r := g.Route
		for _, e := range []struct {
			name string
			v    uint64
		}{{"routed", r.Routed}, {"no_route", r.NoRoute}, {"ttl_exceeded", r.TTLExceeded}, {"parked", r.Parked},
			{"flooded", r.Flooded}, {"icmp_sent", r.ICMPSent}, {"icmp_rate_limited", r.ICMPLimited}} {
			counter(gatewayRouted, e.v, e.name)
		}
		gauge(gatewayParked, float64(g.Parked))
	}
	ph := stats.Peephole
	for _, r := range []struct {
		name string
		s    vswitch.ResponderStats
	}{{"arp", ph.ARP}, {"nd", ph.ND}, {"dns", ph.DNS}} {
		counter(peepholeAnswered, r.s.Answered, r.name)
		counter(peepholeMalformed, r.s.Malformed, r.name)
		if r.name != "dns" { // DNS gleans nothing
			counter(peepholeGleans, r.s.Gleaned, r.name)
		}
		for reason, n := range r.s.Passed {
			counter(peepholePassed, n, r.name, reason)
		}
	}
	counter(peepholeNXDomain, ph.DNS.NXDomain)
	counter(peepholeNoData, ph.DNS.NoData)
	gauge(peepholeGleaned, float64(ph.Gleaned))
}

// dropsByReason returns the per-reason counts, with whatever the total
// holds beyond them under "other", so sum(drops_total) equals the total
// that `vswitchctl stats` shows.
func dropsByReason(total uint64, by map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(by)+1)
	var named uint64
	for reason, n := range by {
		out[reason] += n
		named += n
	}
	if total > named {
		out[otherReason] += total - named
	}
	return out
}
