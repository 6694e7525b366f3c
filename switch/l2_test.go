package vswitch

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vswitch/vswitch/pipeline"
)

// Golden frames for the L2 stage, built with gopacket.

// untagged is the vlan argument of the frame builders for a frame without
// an 802.1Q tag; any other value is the tag's VID (0 = priority tag).
const untagged = -1

var (
	macA = pipeline.MAC{0x02, 0xaa, 0, 0, 0, 1}
	macB = pipeline.MAC{0x02, 0xbb, 0, 0, 0, 2}
	macC = pipeline.MAC{0x02, 0xcc, 0, 0, 0, 3}
)

func serializeFrame(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// l2Header returns the Ethernet header and, for vlan >= 0, the 802.1Q tag
// of a frame carrying ethertype et.
func l2Header(src, dst pipeline.MAC, vlan int, et layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(src[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: et}
	if vlan < 0 {
		return []gopacket.SerializableLayer{eth}
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return []gopacket.SerializableLayer{eth, &layers.Dot1Q{Priority: 3, VLANIdentifier: uint16(vlan), Type: et}}
}

// udpFrame returns an IPv4/UDP frame with payload bytes of payload; 22
// bytes make an untagged 64-byte frame (without FCS).
func udpFrame(tb testing.TB, src, dst pipeline.MAC, vlan, payload int, srcPort uint16) []byte {
	tb.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(srcPort), DstPort: 4789}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	ls := append(l2Header(src, dst, vlan, layers.EthernetTypeIPv4), ip, udp, gopacket.Payload(make([]byte, payload)))
	return serializeFrame(tb, ls...)
}

// arpRequest returns a broadcast ARP request from src.
func arpRequest(tb testing.TB, src pipeline.MAC, vlan int) []byte {
	tb.Helper()
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: src[:], SourceProtAddress: []byte{192, 0, 2, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 2}}
	ls := append(l2Header(src, pipeline.BroadcastMAC, vlan, layers.EthernetTypeARP), arp)
	return serializeFrame(tb, ls...)
}

// testPort is one port of a test port table.
type testPort struct {
	index uint16
	vlan  *VLANSpec
}

// newPortTable builds a port table the way Switch.publish does: one
// portEntry per port, compiled VLAN policy, in byIndex and in list.
func newPortTable(ports ...testPort) *portTable {
	t := &portTable{gen: 1}
	for _, p := range ports {
		e := &portEntry{index: p.index, name: "p" + string(rune('0'+p.index%10)), vlan: compileVLAN(p.vlan)}
		t.byIndex[p.index] = e
		t.list = append(t.list, e)
	}
	return t
}

// l2Harness is ParseStage + IngressStage + L2Stage over an FDB and port table, as a
// worker runs them.
type l2Harness struct {
	fdb   *FDB
	ports atomic.Pointer[portTable]
	clock atomic.Uint32
	pipe  *pipeline.Pipeline
	batch pipeline.Batch
}

func newL2Harness(ports ...testPort) *l2Harness {
	h := &l2Harness{fdb: NewFDB(DefaultFDBSize)}
	h.ports.Store(newPortTable(ports...))
	h.clock.Store(100)
	h.pipe = pipeline.NewPipeline(pipeline.ParseStage{}, NewIngressStage(&h.ports), NewL2Stage(h.fdb, &h.clock))
	return h
}

// in is one received frame.
type in struct {
	port  uint16
	frame []byte
}

// run processes the frames as one batch and returns the packets.
func (h *l2Harness) run(t *testing.T, frames ...in) []pipeline.Packet {
	t.Helper()
	b := &h.batch
	b.Len = len(frames)
	for i, f := range frames {
		p := &b.Pkts[i]
		p.Data = f.frame
		p.Addr = uint64(i) * 4096
		p.InPort = f.port
		p.Reset()
	}
	h.pipe.Process(b)
	checkOneVerdict(t, b)
	return b.Packets()
}

// checkOneVerdict checks that every packet ended in exactly one
// well-formed verdict: a forward names an output port and no drop reason,
// a flood names neither, a drop names its reason.
func checkOneVerdict(t *testing.T, b *pipeline.Batch) {
	t.Helper()
	for i, p := range b.Packets() {
		switch p.Verdict {
		case pipeline.VerdictForward:
			if p.OutPort == pipeline.NoPort || p.OutPort == p.InPort || p.Reason != pipeline.DropNone {
				t.Errorf("pkt %d: forward with OutPort %d InPort %d reason %v", i, p.OutPort, p.InPort, p.Reason)
			}
		case pipeline.VerdictFlood:
			if p.OutPort != pipeline.NoPort || p.Reason != pipeline.DropNone {
				t.Errorf("pkt %d: flood with OutPort %d reason %v", i, p.OutPort, p.Reason)
			}
		case pipeline.VerdictDrop:
			if p.Reason == pipeline.DropNone || p.Reason >= pipeline.NumDropReasons {
				t.Errorf("pkt %d: drop without a reason (%d)", i, p.Reason)
			}
		default:
			t.Errorf("pkt %d: verdict %v; the L2 pipeline forwards, floods or drops", i, p.Verdict)
		}
	}
}

type want struct {
	verdict pipeline.Verdict
	out     uint16 // VerdictForward
	reason  pipeline.DropReason
	vlan    uint16 // classified VLAN (forward and flood)
}

func flood(vlan uint16) want             { return want{verdict: pipeline.VerdictFlood, vlan: vlan} }
func fwd(out, vlan uint16) want          { return want{verdict: pipeline.VerdictForward, out: out, vlan: vlan} }
func dropped(r pipeline.DropReason) want { return want{verdict: pipeline.VerdictDrop, reason: r} }

func (w want) check(t *testing.T, i int, p *pipeline.Packet) {
	t.Helper()
	switch {
	case p.Verdict != w.verdict:
		t.Errorf("pkt %d: verdict %v (reason %v), want %v (reason %v)", i, p.Verdict, p.Reason, w.verdict, w.reason)
	case w.verdict == pipeline.VerdictDrop && p.Reason != w.reason:
		t.Errorf("pkt %d: drop reason %v, want %v", i, p.Reason, w.reason)
	case w.verdict == pipeline.VerdictForward && p.OutPort != w.out:
		t.Errorf("pkt %d: forwarded to %d, want %d", i, p.OutPort, w.out)
	case w.verdict != pipeline.VerdictDrop && p.VLAN != w.vlan:
		t.Errorf("pkt %d: classified into VLAN %d, want %d", i, p.VLAN, w.vlan)
	}
}

func TestL2Stage(t *testing.T) {
	plain := []testPort{{index: 1}, {index: 2}, {index: 3}}
	vlans := []testPort{
		{index: 1, vlan: &VLANSpec{Mode: "access", Tag: 10}},
		{index: 2, vlan: &VLANSpec{Mode: "access", Tag: 20}},
		{index: 3, vlan: &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}, Native: 30}},
		{index: 4, vlan: &VLANSpec{Mode: "access", Tag: 10}},
	}
	mcast := pipeline.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}

	tests := []struct {
		name  string
		ports []testPort
		// batches run in order against the same FDB; want has one entry
		// per frame of each batch.
		batches [][]in
		want    [][]want
	}{
		{
			name:    "unknown_unicast_floods",
			ports:   plain,
			batches: [][]in{{{1, udpFrame(t, macA, macB, untagged, 22, 1)}}},
			want:    [][]want{{flood(0)}},
		},
		{
			name:    "broadcast_floods",
			ports:   plain,
			batches: [][]in{{{1, arpRequest(t, macA, untagged)}}},
			want:    [][]want{{flood(0)}},
		},
		{
			name:  "multicast_destination_floods",
			ports: plain,
			batches: [][]in{
				{{2, udpFrame(t, mcast, macB, untagged, 22, 1)}}, // bad source: not learned
				{{1, udpFrame(t, macA, mcast, untagged, 22, 1)}},
			},
			want: [][]want{{dropped(pipeline.DropBadSrcMAC)}, {flood(0)}},
		},
		{
			name:  "learned_unicast_forwards",
			ports: plain,
			batches: [][]in{
				{{1, udpFrame(t, macA, macB, untagged, 22, 1)}}, // learns A on 1
				{{2, udpFrame(t, macB, macA, untagged, 22, 1)}}, // A known; learns B on 2
				{{1, udpFrame(t, macA, macB, untagged, 22, 1)}},
				{{3, udpFrame(t, macC, macB, untagged, 22, 1)}},
			},
			want: [][]want{{flood(0)}, {fwd(1, 0)}, {fwd(2, 0)}, {fwd(2, 0)}},
		},
		{
			name:  "learned_within_one_batch",
			ports: plain,
			batches: [][]in{{
				{1, arpRequest(t, macA, untagged)},
				{2, udpFrame(t, macB, macA, untagged, 22, 1)},
				{1, udpFrame(t, macA, macB, untagged, 22, 1)},
			}},
			want: [][]want{{flood(0), fwd(1, 0), fwd(2, 0)}},
		},
		{
			name:  "mac_move",
			ports: plain,
			batches: [][]in{
				{{1, arpRequest(t, macA, untagged)}},
				{{3, arpRequest(t, macA, untagged)}}, // A moved to 3
				{{2, udpFrame(t, macB, macA, untagged, 22, 1)}},
			},
			want: [][]want{{flood(0)}, {flood(0)}, {fwd(3, 0)}},
		},
		{
			name:  "hairpin_dropped",
			ports: plain,
			batches: [][]in{
				{{1, arpRequest(t, macA, untagged)}},
				{{1, udpFrame(t, macB, macA, untagged, 22, 1)}},
			},
			want: [][]want{{flood(0)}, {dropped(pipeline.DropHairpin)}},
		},
		{
			name:  "bad_source_mac_dropped",
			ports: plain,
			batches: [][]in{{
				{1, udpFrame(t, mcast, macB, untagged, 22, 1)},
				{1, udpFrame(t, pipeline.BroadcastMAC, macB, untagged, 22, 1)},
				{1, udpFrame(t, pipeline.MAC{}, macB, untagged, 22, 1)},
				{1, udpFrame(t, pipeline.MAC{0x03, 0, 0, 0, 0, 0}, macB, untagged, 22, 1)}, // group bit, locally administered
			}},
			want: [][]want{{dropped(pipeline.DropBadSrcMAC), dropped(pipeline.DropBadSrcMAC),
				dropped(pipeline.DropBadSrcMAC), dropped(pipeline.DropBadSrcMAC)}},
		},
		{
			name:  "unknown_in_port_dropped",
			ports: plain,
			batches: [][]in{{
				{7, udpFrame(t, macA, macB, untagged, 22, 1)},
				{MaxPorts, udpFrame(t, macA, macB, untagged, 22, 1)},
				{pipeline.NoPort, udpFrame(t, macA, macB, untagged, 22, 1)},
			}},
			want: [][]want{{dropped(pipeline.DropUnknownPort), dropped(pipeline.DropUnknownPort), dropped(pipeline.DropUnknownPort)}},
		},
		{
			name:  "parse_errors_pass_through",
			ports: plain,
			batches: [][]in{{
				{1, udpFrame(t, macA, macB, untagged, 22, 1)[:20]},
				{1, make([]byte, 10)},
			}},
			want: [][]want{{dropped(pipeline.DropTruncated), dropped(pipeline.DropTruncated)}},
		},
		{
			name:  "vlan_classification",
			ports: vlans,
			batches: [][]in{{
				{1, udpFrame(t, macA, macB, untagged, 22, 1)}, // access 10
				{2, udpFrame(t, macB, macA, untagged, 22, 1)}, // access 20: A unknown there
				{3, udpFrame(t, macC, macA, 10, 22, 1)},       // trunk, tagged 10: A known
				{3, udpFrame(t, macC, macA, untagged, 22, 1)}, // trunk native 30
				{3, udpFrame(t, macC, macA, 0, 22, 1)},        // trunk priority tag: native 30
				{1, udpFrame(t, macA, macC, 0, 22, 1)},        // access priority tag: 10, C known on 3
			}},
			want: [][]want{{flood(10), flood(20), fwd(1, 10), flood(30), flood(30), fwd(3, 10)}},
		},
		{
			name:  "vlan_not_allowed_dropped",
			ports: vlans,
			batches: [][]in{{
				{3, udpFrame(t, macC, macA, 40, 22, 1)}, // trunk: 40 not allowed
				{1, udpFrame(t, macA, macB, 10, 22, 1)}, // access: tagged, even with its own VID
				{1, udpFrame(t, macA, macB, 20, 22, 1)}, // access: tagged
			}},
			want: [][]want{{dropped(pipeline.DropVLANNotAllowed), dropped(pipeline.DropVLANNotAllowed),
				dropped(pipeline.DropVLANNotAllowed)}},
		},
		{
			name:  "vlan_isolation",
			ports: vlans,
			batches: [][]in{
				{{1, arpRequest(t, macA, untagged)}},            // A learned in VLAN 10 on 1
				{{2, udpFrame(t, macB, macA, untagged, 22, 1)}}, // VLAN 20: must not find A
				{{3, udpFrame(t, macC, macA, 20, 22, 1)}},       // trunk VLAN 20: same
				{{4, udpFrame(t, macC, macA, untagged, 22, 1)}}, // VLAN 10 on another port: found
			},
			want: [][]want{{flood(10)}, {flood(20)}, {flood(20)}, {fwd(1, 10)}},
		},
		{
			name:  "same_mac_in_two_vlans",
			ports: vlans,
			batches: [][]in{
				{{1, arpRequest(t, macA, untagged)}},            // A in 10 on 1
				{{2, arpRequest(t, macA, untagged)}},            // A in 20 on 2: no move
				{{3, udpFrame(t, macC, macA, 10, 22, 1)}},       // -> 1
				{{3, udpFrame(t, macC, macA, 20, 22, 1)}},       // -> 2
				{{4, udpFrame(t, macB, macA, untagged, 22, 1)}}, // VLAN 10 -> 1
			},
			want: [][]want{{flood(10)}, {flood(20)}, {fwd(1, 10)}, {fwd(2, 20)}, {fwd(1, 10)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newL2Harness(tt.ports...)
			for bi, frames := range tt.batches {
				pkts := h.run(t, frames...)
				for i := range pkts {
					tt.want[bi][i].check(t, i, &pkts[i])
				}
			}
		})
	}
}

// TestL2StageLearns checks what the stage writes into the FDB: source MAC,
// classified VLAN, input port and the switch clock.
func TestL2StageLearns(t *testing.T) {
	h := newL2Harness(testPort{index: 1, vlan: &VLANSpec{Mode: "access", Tag: 10}},
		testPort{index: 5, vlan: &VLANSpec{Mode: "trunk", Allowed: []uint16{10, 20}}})
	h.clock.Store(1234)
	h.run(t, in{1, arpRequest(t, macA, untagged)}, in{5, udpFrame(t, macB, macA, 20, 22, 1)},
		in{5, udpFrame(t, macC, macA, 40, 22, 1)}, // dropped: not learned
		in{1, udpFrame(t, pipeline.MAC{}, macA, untagged, 22, 1)})
	got := records(h.fdb)
	want := map[uint64]FDBRecord{
		fdbKey(macA, 10): {MAC: macA, VLAN: 10, Port: 1, Seen: 1234},
		fdbKey(macB, 20): {MAC: macB, VLAN: 20, Port: 5, Seen: 1234},
	}
	if len(got) != len(want) {
		t.Fatalf("FDB holds %d entries, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("entry %v = %+v, want %+v", w.MAC, got[k], w)
		}
	}
	// The frames themselves are not rewritten: tags stay for the TX path.
	pkts := h.batch.Packets()
	if pkts[1].Flags&pipeline.FlagVLAN == 0 || pkts[0].Flags&pipeline.FlagVLAN != 0 {
		t.Errorf("FlagVLAN changed: %#x %#x", pkts[0].Flags, pkts[1].Flags)
	}
}

// TestL2StageWithinBatch: verdicts inside one batch are those of learning
// and looking up packet by packet, in order, although the stage remembers
// its last learn and lookup: a destination learned mid-batch is forwarded
// to from then on, a station moving mid-batch is followed, and repeats of
// one flow keep their verdict.
func TestL2StageWithinBatch(t *testing.T) {
	h := newL2Harness(testPort{index: 1}, testPort{index: 2}, testPort{index: 3})
	pkts := h.run(t,
		in{1, udpFrame(t, macA, macB, untagged, 22, 1)}, // B unknown: flood
		in{1, udpFrame(t, macA, macB, untagged, 22, 2)}, // still unknown
		in{2, arpRequest(t, macB, untagged)},            // learns B on 2; broadcast
		in{1, udpFrame(t, macA, macB, untagged, 22, 4)}, // B known now: 2
		in{1, udpFrame(t, macA, macB, untagged, 22, 5)}, // repeat: 2
		in{3, udpFrame(t, macB, macA, untagged, 22, 6)}, // B moves to 3; A known on 1
		in{1, udpFrame(t, macA, macB, untagged, 22, 7)}, // follows B to 3
		in{3, udpFrame(t, macB, macA, untagged, 22, 8)}, // A on 1
	)
	want := []struct {
		v   pipeline.Verdict
		out uint16
	}{
		{pipeline.VerdictFlood, pipeline.NoPort}, {pipeline.VerdictFlood, pipeline.NoPort},
		{pipeline.VerdictFlood, pipeline.NoPort}, {pipeline.VerdictForward, 2}, {pipeline.VerdictForward, 2},
		{pipeline.VerdictForward, 1}, {pipeline.VerdictForward, 3}, {pipeline.VerdictForward, 1},
	}
	for i, w := range want {
		if pkts[i].Verdict != w.v || w.v == pipeline.VerdictForward && pkts[i].OutPort != w.out {
			t.Errorf("packet %d: %v out %d, want %v out %d", i, pkts[i].Verdict, pkts[i].OutPort, w.v, w.out)
		}
	}
}

// TestL2StageSkipsDecided checks that packets with a verdict from an
// earlier stage are neither learned from nor changed.
func TestL2StageSkipsDecided(t *testing.T) {
	h := newL2Harness(testPort{index: 1}, testPort{index: 2})
	st := NewL2Stage(h.fdb, &h.clock)
	if st.Name() != "l2" {
		t.Errorf("Name = %q", st.Name())
	}
	b := &pipeline.Batch{Len: 2}
	for i := range 2 {
		b.Pkts[i] = pipeline.Packet{Data: udpFrame(t, macA, macB, untagged, 22, 1), InPort: 1}
		b.Pkts[i].Reset()
		b.Pkts[i].Parse()
	}
	b.Pkts[0].Verdict = pipeline.VerdictReply
	b.Pkts[0].OutPort = 9
	st.Process(b)
	if p := b.Pkts[0]; p.Verdict != pipeline.VerdictReply || p.OutPort != 9 {
		t.Errorf("decided packet changed: %v out %d", p.Verdict, p.OutPort)
	}
	if b.Pkts[1].Verdict != pipeline.VerdictFlood {
		t.Errorf("undecided packet: %v", b.Pkts[1].Verdict)
	}
	if n := h.fdb.Len(); n != 1 {
		t.Errorf("FDB has %d entries, want 1", n)
	}
}

// TestL2StageFullBatch runs a full batch of mixed traffic and checks that
// every packet ends with exactly one verdict.
func TestL2StageFullBatch(t *testing.T) {
	h := newL2Harness(testPort{index: 0}, testPort{index: 1}, testPort{index: 2, vlan: &VLANSpec{Mode: "access", Tag: 7}})
	frames := make([]in, pipeline.MaxBatch)
	for i := range frames {
		src, dst := testMAC(i%9), testMAC((i+1)%9)
		switch i % 8 {
		case 0:
			frames[i] = in{uint16(i % 3), arpRequest(t, src, untagged)}
		case 1:
			frames[i] = in{uint16(i % 3), udpFrame(t, src, dst, i%5, 22, uint16(i))}
		case 2:
			frames[i] = in{uint16(i % 3), udpFrame(t, pipeline.MAC{}, dst, untagged, 22, 1)}
		case 3:
			frames[i] = in{9, udpFrame(t, src, dst, untagged, 22, 1)}
		case 4:
			frames[i] = in{uint16(i % 3), udpFrame(t, src, dst, untagged, 22, 1)[:30]}
		default:
			frames[i] = in{uint16(i % 3), udpFrame(t, src, dst, untagged, 22+i, uint16(i))}
		}
	}
	counts := map[pipeline.Verdict]int{}
	for range 3 { // learning makes later runs forward more
		for _, p := range h.run(t, frames...) {
			counts[p.Verdict]++
		}
	}
	if total := counts[pipeline.VerdictForward] + counts[pipeline.VerdictFlood] + counts[pipeline.VerdictDrop]; total != 3*pipeline.MaxBatch {
		t.Fatalf("verdicts %v add up to %d, want %d", counts, total, 3*pipeline.MaxBatch)
	}
	if counts[pipeline.VerdictForward] == 0 || counts[pipeline.VerdictFlood] == 0 || counts[pipeline.VerdictDrop] == 0 {
		t.Errorf("verdicts %v: expected forwards, floods and drops", counts)
	}
}
