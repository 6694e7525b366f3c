package peephole

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

// Kind says where a binding came from.
type Kind uint8

const (
	// KindStatic is a binding from configuration.
	KindStatic Kind = iota + 1
	// KindGateway is an address the switch itself owns; ND answers for it
	// carry the Router flag.
	KindGateway
	// KindGleaned is a binding learned from observed ARP/ND. Such bindings
	// live in a GleanTable and only come from traffic: Add rejects them.
	KindGleaned
)

func (k Kind) String() string {
	switch k {
	case KindStatic:
		return "static"
	case KindGateway:
		return "gateway"
	case KindGleaned:
		return "gleaned"
	}
	return "invalid"
}

// MaxVLAN is the highest VLAN ID a binding may name; 0 is the untagged
// segment, 4095 is reserved by 802.1Q.
const MaxVLAN = 4094

// Binding maps an IP address in one segment (VLAN) to a MAC address.
type Binding struct {
	VLAN uint16
	IP   netip.Addr // IPv4 or IPv6; an IPv4-mapped IPv6 address is stored as IPv4
	MAC  pipeline.MAC
	Kind Kind
	// LastSeen is when a gleaned binding was last observed; zero for static
	// and gateway bindings.
	LastSeen time.Time
}

// Errors of the control-plane API.
var (
	ErrBadVLAN       = errors.New("VLAN ID out of range")
	ErrBadIP         = errors.New("address not bindable")
	ErrBadMAC        = errors.New("MAC address not a unicast address")
	ErrBadKind       = errors.New("binding kind not supported")
	ErrBindingExists = errors.New("binding exists with different contents")
	ErrNoSuchBinding = errors.New("binding not found")
)

// key is the lookup key: a fixed-size address (IPv4 as v4-mapped IPv6)
// and the VLAN ID. No strings, so hashing it never allocates. The datapath
// looks IPv4 up by v4Index instead, a uint64 the map hashes faster.
type key struct {
	addr [16]byte
	vlan uint16
}

// entry is what the datapath needs from a binding.
type entry struct {
	mac     pipeline.MAC
	router  bool
	gleaned bool // from the GleanTable, never in a snapshot
}

// snapshot is an immutable view of the table. Readers load it once per
// batch; writers build a new one and swap it in.
type snapshot struct {
	m        map[key]entry    // IPv6 bindings
	m4       map[uint64]entry // IPv4 bindings by v4Index, for the map's fast 64-bit path
	bindings map[key]Binding  // every binding, for the control plane
}

// BindingTable is the binding table of static and gateway bindings.
//
// Reads (the datapath) are lock-free and allocation-free: they load an
// immutable snapshot map through an atomic.Pointer. Writes (the control
// plane) are serialized by a mutex, copy the snapshot, change the copy and
// swap it in, so a write costs O(bindings) — fine for configuration rates.
// Gleaned bindings (learned from traffic, with aging) live in a separate
// fixed-size lock-free GleanTable attached with SetGlean; Lookup, List and
// Len see only the static and gateway bindings.
//
// The zero BindingTable is not usable; use NewBindingTable.
type BindingTable struct {
	mu    sync.Mutex // serializes writers
	snap  atomic.Pointer[snapshot]
	glean atomic.Pointer[GleanTable]
}

// SetGlean attaches g as the table of gleaned bindings: the ARP and ND
// stages learn into it and answer from it after the static and gateway
// bindings. nil (the default) turns gleaning off. Call it before the
// stages run; a stage picks a change up at its next batch.
func (t *BindingTable) SetGlean(g *GleanTable) { t.glean.Store(g) }

// Gleaned returns the attached GleanTable, or nil.
func (t *BindingTable) Gleaned() *GleanTable { return t.glean.Load() }

// NewBindingTable returns an empty table.
func NewBindingTable() *BindingTable {
	t := &BindingTable{}
	t.snap.Store(&snapshot{m: map[key]entry{}, m4: map[uint64]entry{}, bindings: map[key]Binding{}})
	return t
}

func keyOf(vlan uint16, ip netip.Addr) key {
	return key{addr: ip.As16(), vlan: vlan}
}

// v4Index is the IPv4 datapath key: VLAN in the high half, address low.
func v4Index(vlan uint16, ip [4]byte) uint64 {
	return uint64(vlan)<<32 | uint64(binary.BigEndian.Uint32(ip[:]))
}

// validate checks b and returns it in canonical form.
func validate(b Binding) (Binding, error) {
	if b.VLAN > MaxVLAN {
		return b, fmt.Errorf("validate binding: VLAN %d: %w", b.VLAN, ErrBadVLAN)
	}
	if !b.IP.IsValid() {
		return b, fmt.Errorf("validate binding: no address: %w", ErrBadIP)
	}
	b.IP = b.IP.Unmap()
	if b.IP.Zone() != "" || b.IP.IsUnspecified() || b.IP.IsMulticast() || b.IP.IsLoopback() ||
		b.IP == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return b, fmt.Errorf("validate binding: %s: %w", b.IP, ErrBadIP)
	}
	if b.MAC.IsZero() || b.MAC.IsMulticast() {
		return b, fmt.Errorf("validate binding: %s: %w", b.MAC, ErrBadMAC)
	}
	if b.Kind != KindStatic && b.Kind != KindGateway {
		return b, fmt.Errorf("validate binding: kind %s: %w", b.Kind, ErrBadKind)
	}
	b.LastSeen = time.Time{}
	return b, nil
}

// Add validates b and adds it. Adding a binding identical to an existing
// one is a no-op; a different binding for the same VLAN and address is
// ErrBindingExists (delete it first).
func (t *BindingTable) Add(b Binding) error {
	b, err := validate(b)
	if err != nil {
		return err
	}
	k := keyOf(b.VLAN, b.IP)
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if cur, ok := old.bindings[k]; ok {
		if cur == b {
			return nil
		}
		return fmt.Errorf("add binding %s vlan %d: %w", b.IP, b.VLAN, ErrBindingExists)
	}
	nw := old.clone()
	nw.bindings[k] = b
	nw.set(k, entry{mac: b.MAC, router: b.Kind == KindGateway})
	t.snap.Store(nw)
	return nil
}

// Del removes the binding of ip in vlan.
func (t *BindingTable) Del(vlan uint16, ip netip.Addr) error {
	k := keyOf(vlan, ip.Unmap())
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if _, ok := old.bindings[k]; !ok {
		return fmt.Errorf("delete binding %s vlan %d: %w", ip, vlan, ErrNoSuchBinding)
	}
	nw := old.clone()
	delete(nw.bindings, k)
	nw.del(k)
	t.snap.Store(nw)
	return nil
}

// Lookup returns the binding of ip in vlan. It reads the current snapshot
// without locking and does not allocate.
func (t *BindingTable) Lookup(vlan uint16, ip netip.Addr) (Binding, bool) {
	b, ok := t.snap.Load().bindings[keyOf(vlan, ip.Unmap())]
	return b, ok
}

// Resolve returns the MAC ip resolves to in vlan: a static or gateway
// binding first, else a gleaned one. It does not allocate.
func (t *BindingTable) Resolve(vlan uint16, ip netip.Addr) (pipeline.MAC, bool) {
	ip = ip.Unmap()
	if b, ok := t.snap.Load().bindings[keyOf(vlan, ip)]; ok {
		return b.MAC, true
	}
	g := t.glean.Load()
	if g == nil {
		return pipeline.MAC{}, false
	}
	if ip.Is4() {
		return g.lookup4(vlan, ip.As4())
	}
	return g.lookup6(vlan, ip.As16())
}

// List returns a copy of every binding, ordered by VLAN, then address.
// Control path only: it allocates.
func (t *BindingTable) List() []Binding {
	s := t.snap.Load()
	out := make([]Binding, 0, len(s.bindings))
	for _, b := range s.bindings {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		if a.VLAN != b.VLAN {
			return int(a.VLAN) - int(b.VLAN)
		}
		return a.IP.Compare(b.IP)
	})
	return out
}

// Len returns the number of bindings.
func (t *BindingTable) Len() int { return len(t.snap.Load().bindings) }

func (s *snapshot) clone() *snapshot {
	n := &snapshot{
		m:        make(map[key]entry, len(s.m)+1),
		m4:       make(map[uint64]entry, len(s.m4)+1),
		bindings: make(map[key]Binding, len(s.bindings)+1),
	}
	for k, v := range s.m {
		n.m[k] = v
	}
	for k, v := range s.m4 {
		n.m4[k] = v
	}
	for k, v := range s.bindings {
		n.bindings[k] = v
	}
	return n
}

// load returns the current snapshot for a datapath batch.
func (t *BindingTable) load() *snapshot { return t.snap.Load() }

// isV4 reports whether k holds a v4-mapped address.
func (k key) isV4() bool {
	return k.addr == [16]byte{10: 0xff, 11: 0xff, 12: k.addr[12], 13: k.addr[13], 14: k.addr[14], 15: k.addr[15]}
}

func (s *snapshot) set(k key, e entry) {
	if k.isV4() {
		s.m4[v4Index(k.vlan, [4]byte(k.addr[12:]))] = e
		return
	}
	s.m[k] = e
}

func (s *snapshot) del(k key) {
	if k.isV4() {
		delete(s.m4, v4Index(k.vlan, [4]byte(k.addr[12:])))
		return
	}
	delete(s.m, k)
}

// find6 looks up an IPv6 binding (a v4-mapped address finds nothing).
func (s *snapshot) find6(vlan uint16, addr [16]byte) (entry, bool) {
	e, ok := s.m[key{addr: addr, vlan: vlan}]
	return e, ok
}

// find4 looks up an IPv4 binding.
func (s *snapshot) find4(vlan uint16, ip [4]byte) (entry, bool) {
	e, ok := s.m4[v4Index(vlan, ip)]
	return e, ok
}

// segment returns the VLAN ID a packet's bindings are looked up in. The
// switch classifies every frame before the peephole stages run, so p.VLAN
// is the packet's segment whether it arrived tagged or not (an untagged
// frame on an access port carries the port's access VLAN, on a trunk its
// native VLAN); FlagVLAN only says whether a tag was on the wire.
func segment(p *pipeline.Packet) uint16 { return p.VLAN }
