package vswitch

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the control API. Handlers map them to HTTP status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// FieldError is a validation error that names the offending field, e.g.
// "ports[1].vlan.tag: must be 1..4094".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Control is what the API server and metrics exporter need from a running
// switch. Every method is safe for concurrent use.
type Control interface {
	Status() Status
	Ports() []PortInfo
	AddPort(spec PortSpec) (PortInfo, error)
	DelPort(name string) error
	FDB() []FDBEntry
	FlushFDB() int
	Stats() Stats
	PeepholeControl
	GatewayControl
}

// Status is the daemon-wide summary shown by `vswitchctl status`.
type Status struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	UptimeSec  float64   `json:"uptime_sec"`
	Workers    int       `json:"workers"`
	PollMode   string    `json:"poll_mode"`
	Ports      int       `json:"ports"`
	FDBEntries int       `json:"fdb_entries"`
	Generation uint64    `json:"generation"`
}

// PortInfo describes one configured port and its live state.
type PortInfo struct {
	PortSpec
	Index    int    `json:"index"`
	Ifindex  int    `json:"ifindex"`
	MAC      string `json:"mac"`
	Queues   []int  `json:"queue_ids"`
	BindMode string `json:"bind_mode"`         // copy or zerocopy, as the kernel accepted
	XDPMode  string `json:"attached_xdp_mode"` // native or skb
	Worker   []int  `json:"workers"`           // worker owning each queue
	State    string `json:"state"`             // up or down; memring: attached or detached
	// PeerPID is the attached memring client's process (memring ports).
	PeerPID int `json:"peer_pid,omitempty"`
	// Hugepages says whether the attached memring region is on huge pages.
	Hugepages bool `json:"hugepages,omitempty"`
}

// FDBEntry is one learned or static MAC address.
type FDBEntry struct {
	MAC    string  `json:"mac"`
	VLAN   uint16  `json:"vlan"`
	Port   string  `json:"port"`
	AgeSec float64 `json:"age_sec"`
	Static bool    `json:"static"`
}

// Stats holds every counter of the switch, per port and per worker.
// Counters are monotonic since daemon start; rates are computed over the last
// sampling interval.
type Stats struct {
	Time    time.Time     `json:"time"`
	Ports   []PortStats   `json:"ports"`
	Workers []WorkerStats `json:"workers"`
	// Peephole holds the ARP, ND and DNS responders' counters.
	Peephole PeepholeStats `json:"peephole"`
	// Gateway holds the flow caches' and route step's counters; nil
	// without a router.
	Gateway *FlowStats `json:"gateway,omitempty"`
}

// PortStats counts frames per port.
type PortStats struct {
	Name      string            `json:"name"`
	RxPackets uint64            `json:"rx_packets"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxPackets uint64            `json:"tx_packets"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     uint64            `json:"drops"`
	DropsBy   map[string]uint64 `json:"drops_by_reason,omitempty"`
	RxPPS     float64           `json:"rx_pps"`
	TxPPS     float64           `json:"tx_pps"`
	// Kernel-side XSK counters (getsockopt XDP_STATISTICS), summed over queues.
	XSKRxDropped     uint64 `json:"xsk_rx_dropped"`
	XSKRxRingFull    uint64 `json:"xsk_rx_ring_full"`
	XSKFillRingEmpty uint64 `json:"xsk_fill_ring_empty"`
	XSKTxInvalid     uint64 `json:"xsk_tx_invalid"`
	// memring ports: descriptors the client wrote that were invalid
	// (skipped, never followed) and sessions dropped for corrupt rings.
	MemringBadDesc uint64 `json:"memring_bad_desc,omitempty"`
	MemringCorrupt uint64 `json:"memring_corrupt,omitempty"`
}

// WorkerStats counts what one poll-mode worker did.
type WorkerStats struct {
	ID        int               `json:"id"`
	CPU       int               `json:"cpu"` // -1 when not pinned
	RxPackets uint64            `json:"rx_packets"`
	TxPackets uint64            `json:"tx_packets"`
	Forwarded uint64            `json:"forwarded"`
	Flooded   uint64            `json:"flooded"`
	Replied   uint64            `json:"replied"`
	Drops     uint64            `json:"drops"`
	DropsBy   map[string]uint64 `json:"drops_by_reason,omitempty"`
	Polls     uint64            `json:"polls"`
	// Sleeps counts the worker's waits in poll(2) (adaptive and interrupt
	// modes) and SleepNs the nanoseconds it spent in them.
	Sleeps  uint64 `json:"sleeps"`
	SleepNs uint64 `json:"sleep_ns"`
	// Pending counts frames the gateway parked while it resolved their
	// next hop; each later leaves as forwarded or dropped (no_neighbor).
	Pending uint64 `json:"pending"`
	// Batches is the number of non-empty RX polls: RxPackets/Batches is
	// the mean batch size.
	Batches uint64 `json:"batches"`
	// Kicks and KickErrors count TX sendto kicks and those that failed.
	Kicks      uint64 `json:"kicks"`
	KickErrors uint64 `json:"kick_errors"`
	// FreeFrames is how many UMEM frames sat on the worker's free stack at
	// its last housekeeping.
	FreeFrames uint64  `json:"free_frames"`
	BusyPct    float64 `json:"busy_pct"`
	RxPPS      float64 `json:"rx_pps"`
	TxPPS      float64 `json:"tx_pps"`
}
