package vswitch

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/vswitch/vswitch/pipeline"
)

func TestCompileVLAN(t *testing.T) {
	tests := []struct {
		name     string
		spec     *VLANSpec
		mode     uint8
		tag      uint16
		native   uint16
		allowAll bool
		carries  []uint16
		notCarry []uint16
	}{
		{name: "none", spec: nil, mode: vlanNone, allowAll: true, carries: []uint16{0, 1, 4094, 4095}},
		{name: "access", spec: &VLANSpec{Mode: "access", Tag: 10}, mode: vlanAccess, tag: 10},
		{name: "trunk_all", spec: &VLANSpec{Mode: "trunk"}, mode: vlanTrunk, allowAll: true, carries: []uint16{1, 63, 64, 4094}},
		{name: "trunk_allowed", spec: &VLANSpec{Mode: "trunk", Allowed: []uint16{1, 63, 64, 100, 4094}, Native: 5},
			mode: vlanTrunk, native: 5, carries: []uint16{1, 63, 64, 100, 4094}, notCarry: []uint16{0, 2, 5, 62, 65, 99, 101, 4093, 4095}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileVLAN(tt.spec)
			if p.mode != tt.mode || p.tag != tt.tag || p.native != tt.native || p.allowAll != tt.allowAll {
				t.Fatalf("compileVLAN = mode %d tag %d native %d allowAll %v; want %d %d %d %v",
					p.mode, p.tag, p.native, p.allowAll, tt.mode, tt.tag, tt.native, tt.allowAll)
			}
			for _, id := range tt.carries {
				if !p.carries(id) {
					t.Errorf("does not carry VLAN %d", id)
				}
			}
			for _, id := range tt.notCarry {
				if p.carries(id) {
					t.Errorf("carries VLAN %d", id)
				}
			}
		})
	}
}

func TestVLANIngress(t *testing.T) {
	none := (*VLANSpec)(nil)
	access := &VLANSpec{Mode: "access", Tag: 10}
	trunk := &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}}
	trunkAll := &VLANSpec{Mode: "trunk"}
	trunkNative := &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}
	trunkAllNative := &VLANSpec{Mode: "trunk", Native: 30}

	tests := []struct {
		name   string
		spec   *VLANSpec
		tagged bool
		vid    uint16
		want   uint16
		ok     bool
	}{
		{"none/untagged", none, false, 0, 0, true},
		{"none/tagged", none, true, 42, 42, true},
		{"none/priority_tag", none, true, 0, 0, true},
		{"none/tagged_4094", none, true, 4094, 4094, true},

		{"access/untagged", access, false, 0, 10, true},
		{"access/priority_tag", access, true, 0, 10, true},
		{"access/tagged_own_vlan_dropped", access, true, 10, 0, false},
		{"access/tagged_other_vlan_dropped", access, true, 20, 0, false},

		{"trunk/allowed", trunk, true, 10, 10, true},
		{"trunk/allowed2", trunk, true, 20, 20, true},
		{"trunk/not_allowed", trunk, true, 30, 30, false},
		{"trunk/untagged_no_native_dropped", trunk, false, 0, 0, false},
		{"trunk/priority_tag_no_native_dropped", trunk, true, 0, 0, false},

		{"trunk_all/untagged", trunkAll, false, 0, 0, true},
		{"trunk_all/priority_tag", trunkAll, true, 0, 0, true},
		{"trunk_all/tagged", trunkAll, true, 999, 999, true},

		{"trunk_native/untagged", trunkNative, false, 0, 30, true},
		{"trunk_native/priority_tag", trunkNative, true, 0, 30, true},
		{"trunk_native/tagged_native", trunkNative, true, 30, 30, true},
		{"trunk_native/tagged_allowed", trunkNative, true, 20, 20, true},
		{"trunk_native/not_allowed", trunkNative, true, 40, 40, false},

		{"trunk_all_native/untagged", trunkAllNative, false, 0, 30, true},
		{"trunk_all_native/tagged", trunkAllNative, true, 7, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileVLAN(tt.spec)
			got, ok := p.ingress(tt.tagged, tt.vid)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("ingress(tagged=%v, vid=%d) = %d, %v; want %d, %v", tt.tagged, tt.vid, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestVLANEgress(t *testing.T) {
	none := (*VLANSpec)(nil)
	access := &VLANSpec{Mode: "access", Tag: 10}
	trunk := &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}}
	trunkAll := &VLANSpec{Mode: "trunk"}
	trunkNative := &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}

	tests := []struct {
		name   string
		spec   *VLANSpec
		id     uint16
		member bool
		tagged bool
	}{
		{"none/vlan0_untagged", none, 0, true, false},
		{"none/vlan10_tagged", none, 10, true, true},

		{"access/own_untagged", access, 10, true, false},
		{"access/other", access, 20, false, false},
		{"access/vlan0", access, 0, false, false},

		{"trunk/allowed_tagged", trunk, 20, true, true},
		{"trunk/not_allowed", trunk, 30, false, true},
		{"trunk/vlan0", trunk, 0, false, false},

		{"trunk_all/vlan0_untagged", trunkAll, 0, true, false},
		{"trunk_all/any_tagged", trunkAll, 4094, true, true},

		{"trunk_native/native_untagged", trunkNative, 30, true, false},
		{"trunk_native/allowed_tagged", trunkNative, 10, true, true},
		{"trunk_native/vlan0", trunkNative, 0, false, false},
		{"trunk_native/not_allowed", trunkNative, 40, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileVLAN(tt.spec)
			member, tagged := p.egress(tt.id)
			if member != tt.member || (member && tagged != tt.tagged) {
				t.Fatalf("egress(%d) = member %v tagged %v; want %v %v", tt.id, member, tagged, tt.member, tt.tagged)
			}
		})
	}
}

// TestVLANRoundTrip checks that ingress and egress agree: a frame a port
// accepts into VLAN v may leave by the same kind of port in VLAN v, and
// leaves in the form it came in (tagged or not), except that a trunk sends
// its native VLAN untagged.
func TestVLANRoundTrip(t *testing.T) {
	specs := map[string]*VLANSpec{
		"none":         nil,
		"access":       {Mode: "access", Tag: 10},
		"trunk":        {Mode: "trunk", Allowed: []uint16{10, 20}},
		"trunk_all":    {Mode: "trunk"},
		"trunk_native": {Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30},
	}
	for name, s := range specs {
		p := compileVLAN(s)
		for _, tagged := range []bool{false, true} {
			for _, vid := range []uint16{0, 1, 10, 20, 30, 4094} {
				if !tagged && vid != 0 {
					continue
				}
				v, ok := p.ingress(tagged, vid)
				if !ok {
					continue
				}
				member, outTagged := p.egress(v)
				if !member {
					t.Errorf("%s: frame (tagged %v vid %d) accepted into VLAN %d cannot leave by such a port", name, tagged, vid, v)
				}
				wantTagged := tagged && vid != 0
				if p.mode == vlanTrunk && v == p.native {
					wantTagged = false // the native VLAN leaves untagged
				}
				if outTagged != wantTagged {
					t.Errorf("%s: frame (tagged %v vid %d) in VLAN %d leaves tagged=%v", name, tagged, vid, v, outTagged)
				}
			}
		}
	}
}

// TestIngressStageRuns: the stage classifies each run of frames with one
// (port, tag) once; across random batches of runs and switches between
// ports, tags, unknown ports and bad source MACs, every packet gets the
// verdict and VLAN that per-packet classification gives.
func TestIngressStageRuns(t *testing.T) {
	tbl := newPortTable(
		testPort{index: 0},
		testPort{index: 1, vlan: &VLANSpec{Mode: "access", Tag: 10}},
		testPort{index: 2, vlan: &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}},
	)
	var ports atomic.Pointer[portTable]
	ports.Store(tbl)
	st := NewIngressStage(&ports)
	tags := []int{untagged, 0, 10, 20, 30, 40}
	srcs := []pipeline.MAC{macA, {0x03, 0, 0, 0, 0, 1}, {}} // good, multicast, zero
	frames := map[[2]int][]byte{}
	frame := func(tag, src int) []byte {
		k := [2]int{tag, src}
		if frames[k] == nil {
			frames[k] = udpFrame(t, srcs[src], macB, tags[tag], 18, 1)
		}
		return frames[k]
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var b pipeline.Batch
	for round := 0; round < 500; round++ {
		b.Len = 0
		for b.Len < pipeline.MaxBatch {
			port, tag := uint16(rng.IntN(4)), rng.IntN(len(tags)) // port 3 is unknown
			for run := 1 + rng.IntN(8); run > 0 && b.Len < pipeline.MaxBatch; run-- {
				src := 0
				if rng.IntN(8) == 0 {
					src = 1 + rng.IntN(2)
				}
				p := &b.Pkts[b.Len]
				p.Data, p.InPort = frame(tag, src), port
				p.Reset()
				if !p.Parse() {
					t.Fatal("test frame does not parse")
				}
				b.Len++
			}
		}
		var want [pipeline.MaxBatch]pipeline.Packet
		for i := range b.Len {
			p := b.Pkts[i]
			in := tbl.get(p.InPort)
			switch vlan, ok := uint16(0), false; {
			case in == nil:
				p.Drop(pipeline.DropUnknownPort)
			case func() bool { vlan, ok = in.vlan.ingress(p.Flags&pipeline.FlagVLAN != 0, p.VLAN); return !ok }():
				p.Drop(pipeline.DropVLANNotAllowed)
			default:
				p.VLAN = vlan
				if p.Data[6]&1 != 0 || string(p.Data[6:12]) == string(make([]byte, 6)) {
					p.Drop(pipeline.DropBadSrcMAC)
				}
			}
			want[i] = p
		}
		st.Process(&b)
		for i := range b.Len {
			g, w := &b.Pkts[i], &want[i]
			if g.Verdict != w.Verdict || g.Reason != w.Reason || (w.Verdict == pipeline.VerdictNone && g.VLAN != w.VLAN) {
				t.Fatalf("round %d pkt %d (port %d, flags %#x, vid %d): verdict %v/%v vlan %d, want %v/%v vlan %d",
					round, i, g.InPort, g.Flags, w.VLAN, g.Verdict, g.Reason, g.VLAN, w.Verdict, w.Reason, w.VLAN)
			}
		}
	}
}
