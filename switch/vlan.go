package vswitch

import "github.com/vswitch/vswitch/pipeline"

// vlanPolicy is a port's compiled 802.1Q behaviour.
//
// A port without VLAN config carries untagged frames as VLAN 0 and tagged
// frames in their own VLAN, so plain switching and trunking both work out
// of the box.
type vlanPolicy struct {
	mode     uint8 // vlanNone, vlanAccess, vlanTrunk
	tag      uint16
	native   uint16
	allowAll bool
	allowed  [64]uint64 // bitmap of VLAN IDs a trunk carries tagged
}

const (
	vlanNone uint8 = iota
	vlanAccess
	vlanTrunk
)

func compileVLAN(s *VLANSpec) vlanPolicy {
	if s == nil {
		return vlanPolicy{mode: vlanNone, allowAll: true}
	}
	if s.Mode == "access" {
		return vlanPolicy{mode: vlanAccess, tag: s.Tag}
	}
	p := vlanPolicy{mode: vlanTrunk, native: s.Native, allowAll: len(s.Allowed) == 0}
	for _, id := range s.Allowed {
		p.allowed[id>>6] |= 1 << (id & 63)
	}
	return p
}

func (v *vlanPolicy) carries(id uint16) bool {
	return v.allowAll || v.allowed[id>>6]&(1<<(id&63)) != 0
}

// ingress classifies a received frame into a VLAN. tagged/vid describe the
// frame's own 802.1Q tag (VID 0 is a priority tag: untagged).
func (v *vlanPolicy) ingress(tagged bool, vid uint16) (uint16, bool) {
	if vid == 0 {
		tagged = false
	}
	switch v.mode {
	case vlanAccess:
		if tagged {
			return 0, false
		}
		return v.tag, true
	case vlanTrunk:
		if !tagged {
			if v.native != 0 {
				return v.native, true
			}
			return 0, v.allowAll
		}
		if vid == v.native && v.native != 0 {
			return vid, true
		}
		return vid, v.carries(vid)
	default:
		if !tagged {
			return 0, true
		}
		return vid, true
	}
}

// egress says whether a frame of VLAN id may leave by this port and whether
// it leaves tagged.
func (v *vlanPolicy) egress(id uint16) (member, tagged bool) {
	switch v.mode {
	case vlanAccess:
		return id == v.tag, false
	case vlanTrunk:
		if id == 0 {
			return v.native == 0 && v.allowAll, false
		}
		if id == v.native {
			return true, false
		}
		return v.carries(id), true
	default:
		return true, id != 0
	}
}

// portEntry is the immutable per-port data that stages and the TX path read.
type portEntry struct {
	index uint16
	name  string
	vlan  vlanPolicy
}

// portTable is an immutable snapshot of the ports, swapped atomically on
// every change; a worker loads it once per batch.
type portTable struct {
	byIndex [MaxPorts]*portEntry
	list    []*portEntry
	gen     uint64
}

// MaxPorts is the largest number of ports a switch has at once.
const MaxPorts = 256

func (t *portTable) get(i uint16) *portEntry {
	if int(i) >= len(t.byIndex) {
		return nil
	}
	return t.byIndex[i]
}

var _ = pipeline.MaxBatch
