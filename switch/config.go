package vswitch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vswitch/vswitch/switch/xsk"
)

// Poll modes of the workers.
const (
	PollBusy      = "busy"      // spin on the rings, 100% of a core
	PollAdaptive  = "adaptive"  // spin while traffic flows, block in poll(2) when idle
	PollInterrupt = "interrupt" // always block in poll(2) between batches
)

// Config is the declarative daemon configuration (the Spec). The daemon turns
// it into live objects; vswitchctl edits the runtime part (ports), which is
// persisted to StateFile.
type Config struct {
	// APISocket is the unix socket path of the control API.
	APISocket string `yaml:"api_socket" json:"api_socket"`
	// APISocketMode is the permission of the socket file (octal, default 0600).
	APISocketMode uint32 `yaml:"api_socket_mode" json:"api_socket_mode"`
	// StateFile records runtime changes (ports added or deleted through the
	// API). When it exists it wins over Ports of the config file.
	StateFile string `yaml:"state_file" json:"state_file"`
	// MetricsAddr enables the Prometheus endpoint (host:port); empty = off.
	MetricsAddr string `yaml:"metrics_addr" json:"metrics_addr"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level" json:"log_level"`

	Workers WorkerSpec `yaml:"workers" json:"workers"`
	FDB     FDBSpec    `yaml:"fdb" json:"fdb"`
	Ports   []PortSpec `yaml:"ports" json:"ports"`
	// MemringSocket is the unix socket containers attach memring ports
	// through; MemringSocketMode its permission (default 0660). Who may
	// attach to which port is checked by peer credentials.
	MemringSocket     string `yaml:"memring_socket" json:"memring_socket"`
	MemringSocketMode uint32 `yaml:"memring_socket_mode" json:"memring_socket_mode"`
	// Peephole configures the ARP, ND and DNS responders.
	Peephole PeepholeSpec `yaml:"peephole" json:"peephole"`
	// Router makes the switch the gateway of its segments.
	Router RouterSpec `yaml:"router" json:"router"`
}

// WorkerSpec configures the poll-mode workers.
type WorkerSpec struct {
	// Count is the number of workers (default 1).
	Count int `yaml:"count" json:"count"`
	// CPUs pins worker i to CPUs[i]; empty means not pinned.
	CPUs []int `yaml:"cpus" json:"cpus"`
	// PollMode is busy, adaptive (default) or interrupt.
	PollMode string `yaml:"poll_mode" json:"poll_mode"`
	// IdleSpins is how many empty polls adaptive mode makes before it
	// blocks (default 2000).
	IdleSpins int `yaml:"idle_spins" json:"idle_spins"`
	// ControlCPUs is where vswitchd runs everything that is not a worker:
	// the API, housekeeping and the Go runtime's own threads. Empty: the
	// CPUs the daemon was started on minus the workers' CPUs (all of them
	// when that leaves none).
	ControlCPUs []int `yaml:"control_cpus" json:"control_cpus"`
}

// FDBSpec configures the L2 forwarding database.
type FDBSpec struct {
	// Size is the number of entries (power of two, default 65536).
	Size int `yaml:"size" json:"size"`
	// Aging is how long a learned entry lives without traffic (default 300s).
	Aging time.Duration `yaml:"aging" json:"aging"`
}

// PortSpec configures one port.
type PortSpec struct {
	// Name is the port's name in the switch (default: the interface name).
	Name string `yaml:"name" json:"name"`
	// Interface is the Linux network interface to attach to.
	Interface string `yaml:"interface" json:"interface"`
	// Type is afxdp (default: a Linux interface) or memring (shared-memory
	// rings a colocated container attaches to through memring_socket).
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// XDPMode is native (default) or skb (generic XDP).
	XDPMode string `yaml:"xdp_mode,omitempty" json:"xdp_mode,omitempty"`
	// Bind is auto (default: zero-copy if the driver can, else copy), copy or zerocopy.
	Bind string `yaml:"bind,omitempty" json:"bind,omitempty"`
	// Queues limits the port to its first N queues; 0 = all queues of the link.
	Queues int `yaml:"queues,omitempty" json:"queues,omitempty"`
	// RingSize is descriptors per AF_XDP ring (RX, TX, fill and completion)
	// of each queue: a power of two in 64..4096, default DefaultRingSize.
	// It also bounds the frames the kernel holds for the queue: a larger
	// ring absorbs longer bursts, a smaller one keeps fewer frames in
	// flight (and in the CPU caches).
	RingSize int `yaml:"ring_size,omitempty" json:"ring_size,omitempty"`
	// VLAN sets the port's VLAN mode; nil means trunk of all VLANs with
	// untagged frames in VLAN 0 (a plain switch port).
	VLAN *VLANSpec `yaml:"vlan,omitempty" json:"vlan,omitempty"`
	// SpoofGuard lets the port claim (as ARP sender, ND target or IP
	// source) only the addresses bound to it in peephole.bindings.
	SpoofGuard bool `yaml:"spoof_guard,omitempty" json:"spoof_guard,omitempty"`
	// Memring configures a memring port (type memring only).
	Memring *MemringSpec `yaml:"memring,omitempty" json:"memring,omitempty"`
}

// MemringSpec is a memring port's region geometry and who may attach.
type MemringSpec struct {
	// QueuePairs is the number of queue pairs (default 1, at most 16).
	QueuePairs int `yaml:"queue_pairs,omitempty" json:"queue_pairs,omitempty"`
	// RingSize is descriptors per ring (power of two, default 1024).
	RingSize int `yaml:"ring_size,omitempty" json:"ring_size,omitempty"`
	// FrameSize is bytes per buffer (power of two, default 2048).
	FrameSize int `yaml:"frame_size,omitempty" json:"frame_size,omitempty"`
	// UIDs and GIDs may attach (peer credentials); both empty = root only.
	UIDs []uint32 `yaml:"uids,omitempty" json:"uids,omitempty"`
	GIDs []uint32 `yaml:"gids,omitempty" json:"gids,omitempty"`
}

// VLANSpec is a port's 802.1Q mode.
type VLANSpec struct {
	// Mode is access or trunk.
	Mode string `yaml:"mode" json:"mode"`
	// Tag is the access VLAN (access mode).
	Tag uint16 `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Allowed lists the VLANs a trunk carries tagged; empty = all.
	Allowed []uint16 `yaml:"allowed,omitempty" json:"allowed,omitempty"`
	// Native is the VLAN of untagged frames on a trunk (0 = untagged frames
	// are dropped unless Allowed is empty).
	Native uint16 `yaml:"native,omitempty" json:"native,omitempty"`
}

// Default values.
const (
	DefaultAPISocket     = "/run/vswitch/vswitchd.sock"
	DefaultStateFile     = "/var/lib/vswitch/state.json"
	DefaultMemringSocket = "/run/vswitch/memring.sock"
	DefaultFDBSize       = 65536
	DefaultFDBAging      = 300 * time.Second
	DefaultIdleSpins     = 2000
)

// LoadConfig reads and validates a YAML config file. Unknown fields are
// errors, so a typo names itself.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data)
}

// ParseConfig decodes and validates a YAML config.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// io.EOF: no document at all, only comments; that is the defaults.
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("parse config: %w", err)
		}
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetDefaults fills empty fields with their defaults.
func (c *Config) SetDefaults() {
	if c.APISocket == "" {
		c.APISocket = DefaultAPISocket
	}
	if c.APISocketMode == 0 {
		c.APISocketMode = 0o600
	}
	if c.MemringSocket == "" {
		c.MemringSocket = DefaultMemringSocket
	}
	if c.MemringSocketMode == 0 {
		c.MemringSocketMode = 0o660
	}
	if c.StateFile == "" {
		c.StateFile = DefaultStateFile
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Workers.Count == 0 {
		c.Workers.Count = 1
	}
	if c.Workers.PollMode == "" {
		c.Workers.PollMode = PollAdaptive
	}
	if c.Workers.IdleSpins == 0 {
		c.Workers.IdleSpins = DefaultIdleSpins
	}
	if c.FDB.Size == 0 {
		c.FDB.Size = DefaultFDBSize
	}
	if c.FDB.Aging == 0 {
		c.FDB.Aging = DefaultFDBAging
	}
	for i := range c.Ports {
		c.Ports[i].SetDefaults()
	}
	c.Peephole.SetDefaults()
	c.Router.SetDefaults()
}

// Validate checks every field and returns a *FieldError naming the first bad one.
func (c *Config) Validate() error {
	if c.APISocketMode&^0o777 != 0 {
		return fieldErr("api_socket_mode", "%#o is not a permission mode", c.APISocketMode)
	}
	if c.MemringSocketMode&^0o777 != 0 {
		return fieldErr("memring_socket_mode", "%#o is not a permission mode", c.MemringSocketMode)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.Workers.Count < 1 || c.Workers.Count > 64 {
		return fieldErr("workers.count", "%d is not in 1..64", c.Workers.Count)
	}
	if len(c.Workers.CPUs) != 0 && len(c.Workers.CPUs) != c.Workers.Count {
		return fieldErr("workers.cpus", "has %d entries for %d workers", len(c.Workers.CPUs), c.Workers.Count)
	}
	for i, cpu := range c.Workers.CPUs {
		if cpu < 0 || cpu >= 1024 {
			return fieldErr(fmt.Sprintf("workers.cpus[%d]", i), "%d is not a CPU number", cpu)
		}
	}
	switch c.Workers.PollMode {
	case PollBusy, PollAdaptive, PollInterrupt:
	default:
		return fieldErr("workers.poll_mode", "%q is not one of busy, adaptive, interrupt", c.Workers.PollMode)
	}
	for i, cpu := range c.Workers.ControlCPUs {
		if cpu < 0 || cpu >= 1024 {
			return fieldErr(fmt.Sprintf("workers.control_cpus[%d]", i), "%d is not a CPU number", cpu)
		}
	}
	if c.Workers.IdleSpins < 0 {
		return fieldErr("workers.idle_spins", "must not be negative")
	}
	if c.FDB.Size < 64 || c.FDB.Size > 1<<24 || c.FDB.Size&(c.FDB.Size-1) != 0 {
		return fieldErr("fdb.size", "%d is not a power of two in 64..16777216", c.FDB.Size)
	}
	if c.FDB.Aging < time.Second {
		return fieldErr("fdb.aging", "%s is shorter than 1s", c.FDB.Aging)
	}
	names := map[string]bool{}
	ifaces := map[string]bool{}
	for i := range c.Ports {
		p := &c.Ports[i]
		prefix := fmt.Sprintf("ports[%d]", i)
		if err := p.Validate(prefix); err != nil {
			return err
		}
		if names[p.Name] {
			return fieldErr(prefix+".name", "duplicate port name %q", p.Name)
		}
		if p.Interface != "" && ifaces[p.Interface] {
			return fieldErr(prefix+".interface", "interface %q used by two ports", p.Interface)
		}
		names[p.Name] = true
		ifaces[p.Interface] = true
	}
	if err := c.Peephole.Validate("peephole"); err != nil {
		return err
	}
	if err := c.Router.Validate("router"); err != nil {
		return err
	}
	if c.Router.Enabled() {
		// Next hops are resolved from the bindings the ARP and ND
		// responders glean from the answers to the router's requests.
		if c.Peephole.Glean.Disabled {
			return fieldErr("peephole.glean.disabled", "the router resolves next hops by gleaning; it cannot be off")
		}
		for _, r := range []string{ResponderARP, ResponderND} {
			if !c.Peephole.has(r) {
				return fieldErr("peephole.responders", "the router needs the %s responder (it answers for the gateway addresses and gleans next hops)", r)
			}
		}
	}
	return nil
}

// SetDefaults fills the port's empty fields.
func (p *PortSpec) SetDefaults() {
	if p.Name == "" {
		p.Name = p.Interface
	}
	if p.Type == "" {
		p.Type = PortAFXDP
	}
	if p.Type == PortMemring {
		if p.Memring == nil {
			p.Memring = &MemringSpec{}
		}
		m := p.Memring
		if m.QueuePairs == 0 {
			m.QueuePairs = 1
		}
		if m.RingSize == 0 {
			m.RingSize = 1024
		}
		if m.FrameSize == 0 {
			m.FrameSize = 2048
		}
		return
	}
	if p.XDPMode == "" {
		p.XDPMode = "native"
	}
	if p.Bind == "" {
		p.Bind = "auto"
	}
	if p.RingSize == 0 {
		p.RingSize = DefaultRingSize
	}
}

// DefaultRingSize is an AF_XDP port's ring size when the config gives none.
// On the 2-core bench machine (2026-12-04, generator overloading the
// switch) 256-, 512- and 2048-descriptor rings forwarded the same within
// the run-to-run noise, so the default stays the socket layer's.
const DefaultRingSize = xsk.DefaultRingSize

// MaxRingSize bounds an AF_XDP port's rings: a queue can hold up to about
// three rings' worth of frames (fill, RX, TX), and a worker's UMEM has
// 32768, so 4096 leaves room for other ports on the same worker.
const MaxRingSize = 4096

// Port types.
const (
	PortAFXDP   = "afxdp"
	PortMemring = "memring"
)

// Validate checks the port spec; prefix names it in errors ("ports[2]").
func (p *PortSpec) Validate(prefix string) error {
	if prefix != "" {
		prefix += "."
	}
	if p.Type == PortMemring {
		return p.validateMemring(prefix)
	}
	if p.Interface == "" {
		return fieldErr(prefix+"interface", "is required")
	}
	if len(p.Interface) > 15 {
		return fieldErr(prefix+"interface", "%q is longer than 15 bytes", p.Interface)
	}
	if p.Name == "" || len(p.Name) > 64 {
		return fieldErr(prefix+"name", "must be 1..64 bytes")
	}
	if !validPortName(p.Name) {
		return fieldErr(prefix+"name", "%q has a character outside [A-Za-z0-9._-]", p.Name)
	}
	if p.Type != PortAFXDP {
		return fieldErr(prefix+"type", "%q is not a port type (afxdp, memring)", p.Type)
	}
	if p.Memring != nil {
		return fieldErr(prefix+"memring", "only for type memring")
	}
	switch p.XDPMode {
	case "native", "skb":
	default:
		return fieldErr(prefix+"xdp_mode", "%q is not one of native, skb", p.XDPMode)
	}
	switch p.Bind {
	case "auto", "copy", "zerocopy":
	default:
		return fieldErr(prefix+"bind", "%q is not one of auto, copy, zerocopy", p.Bind)
	}
	if p.Queues < 0 || p.Queues > 256 {
		return fieldErr(prefix+"queues", "%d is not in 0..256", p.Queues)
	}
	if n := p.RingSize; n < 64 || n > MaxRingSize || n&(n-1) != 0 {
		return fieldErr(prefix+"ring_size", "%d is not a power of two in 64..%d", n, MaxRingSize)
	}
	return p.validateVLAN(prefix)
}

// validateMemring checks a memring port: a name, no interface, the region
// geometry and the VLAN mode.
func (p *PortSpec) validateMemring(prefix string) error {
	if p.Interface != "" {
		return fieldErr(prefix+"interface", "a memring port has no interface")
	}
	if p.Name == "" || len(p.Name) > 64 || !validPortName(p.Name) || p.Name[0] == '.' || p.Name[0] == '-' || p.Name[0] == '_' {
		return fieldErr(prefix+"name", "%q: a memring port needs a name of 1..64 of [A-Za-z0-9._-], not starting with . _ or -", p.Name)
	}
	if p.XDPMode != "" || p.Bind != "" || p.Queues != 0 || p.RingSize != 0 {
		return fieldErr(prefix+"type", "memring ports take no xdp_mode, bind, queues or ring_size (their rings are memring.ring_size)")
	}
	m := p.Memring
	if m == nil {
		return fieldErr(prefix+"memring", "is required for type memring")
	}
	if m.QueuePairs < 1 || m.QueuePairs > 16 {
		return fieldErr(prefix+"memring.queue_pairs", "%d is not in 1..16", m.QueuePairs)
	}
	if n := m.RingSize; n < 64 || n > 32768 || n&(n-1) != 0 {
		return fieldErr(prefix+"memring.ring_size", "%d is not a power of two in 64..32768", n)
	}
	if n := m.FrameSize; n < 2048 || n > 16384 || n&(n-1) != 0 {
		return fieldErr(prefix+"memring.frame_size", "%d is not a power of two in 2048..16384", n)
	}
	return p.validateVLAN(prefix)
}

// validateVLAN checks the port's VLAN mode.
func (p *PortSpec) validateVLAN(prefix string) error {
	if v := p.VLAN; v != nil {
		switch v.Mode {
		case "access":
			if v.Tag < 1 || v.Tag > 4094 {
				return fieldErr(prefix+"vlan.tag", "%d is not in 1..4094", v.Tag)
			}
			if len(v.Allowed) != 0 || v.Native != 0 {
				return fieldErr(prefix+"vlan", "access mode takes only tag")
			}
		case "trunk":
			if v.Tag != 0 {
				return fieldErr(prefix+"vlan.tag", "trunk mode takes allowed and native, not tag")
			}
			for i, id := range v.Allowed {
				if id < 1 || id > 4094 {
					return fieldErr(fmt.Sprintf("%svlan.allowed[%d]", prefix, i), "%d is not in 1..4094", id)
				}
			}
			if v.Native > 4094 {
				return fieldErr(prefix+"vlan.native", "%d is not in 0..4094", v.Native)
			}
		default:
			return fieldErr(prefix+"vlan.mode", "%q is not one of access, trunk", v.Mode)
		}
	}
	return nil
}

// IsFieldError reports whether err is a validation error naming a field.
func IsFieldError(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe)
}
