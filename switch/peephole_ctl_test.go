package vswitch

import (
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/gopacket/layers"
	"go.uber.org/zap"

	"github.com/vswitch/vswitch/pipeline"
)

// ctlSwitch is a Switch with its control state and one worker's pipeline,
// but no workers, sockets or kernel: enough to test the peephole control
// methods and what the pipeline does with their tables.
func ctlSwitch(t *testing.T, yaml string, ports ...testPort) (*Switch, *pipeline.Pipeline) {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	sw := &Switch{cfg: cfg, log: zap.NewNop(), fdb: NewFDB(1024), live: map[string]*afxdpPort{}, persist: true}
	sw.ports.Store(newPortTable(ports...))
	for _, p := range ports {
		spec := PortSpec{Interface: "p" + string(rune('0'+p.index%10)), VLAN: p.vlan}
		sw.live[spec.Interface] = livePort(p.index, spec)
	}
	if err := sw.initPeephole(cfg.Peephole); err != nil {
		t.Fatal(err)
	}
	return sw, sw.pipelineFor(0)
}

// arpFor is an ARP request from macA (10.0.0.1) for target.
func arpFor(t *testing.T, target net.IP) []byte {
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macA[:], SourceProtAddress: []byte{10, 0, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: target.To4()}
	return serializeFrame(t, append(l2Header(macA, pipeline.BroadcastMAC, -1, layers.EthernetTypeARP), arp)...)
}

// runOne puts frame through pipe as received on port in.
func runOne(pipe *pipeline.Pipeline, in uint16, frame []byte) pipeline.Packet {
	var b pipeline.Batch
	b.Len = 1
	p := &b.Pkts[0]
	p.Data = append([]byte(nil), frame...)
	p.InPort = in
	p.Reset()
	pipe.Process(&b)
	return *p
}

func TestAddBindingAnswersARP(t *testing.T) {
	sw, pipe := ctlSwitch(t, "", testPort{index: 1}, testPort{index: 2})
	req := arpFor(t, net.IPv4(10, 0, 0, 2))
	if p := runOne(pipe, 1, req); p.Verdict != pipeline.VerdictFlood {
		t.Fatalf("ARP for an unbound address: %v, want flood", p.Verdict)
	}
	if _, err := sw.AddBinding(BindingSpec{IP: "10.0.0.2", MAC: "02:00:00:00:00:02"}); err != nil {
		t.Fatal(err)
	}
	p := runOne(pipe, 1, req)
	if p.Verdict != pipeline.VerdictReply {
		t.Fatalf("ARP for a bound address: %v, want reply", p.Verdict)
	}
	if got := pipeline.MAC(p.Data[22:28]); got != (pipeline.MAC{2, 0, 0, 0, 0, 2}) {
		t.Fatalf("reply sender MAC %s", got)
	}
	if st := sw.PeepholeStats(); st.ARP.Answered != 1 || st.ARP.Passed["unknown_target"] != 1 {
		t.Fatalf("stats %+v", st.ARP)
	}
	// Deleting it makes the switch flood again.
	if err := sw.DelBinding(0, "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if p := runOne(pipe, 1, req); p.Verdict != pipeline.VerdictFlood {
		t.Fatalf("after delete: %v, want flood", p.Verdict)
	}
}

func TestAddBindingErrors(t *testing.T) {
	sw, _ := ctlSwitch(t, "peephole: {bindings: [{ip: 10.0.0.2, mac: '02:00:00:00:00:02'}]}")
	for _, tt := range []struct {
		b     BindingSpec
		field string
	}{
		{BindingSpec{IP: "10.0.0", MAC: "02:00:00:00:00:03"}, "ip"},
		{BindingSpec{IP: "10.0.0.3", MAC: "ff:ff:ff:ff:ff:ff"}, "mac"},
		{BindingSpec{IP: "10.0.0.3", MAC: "02:00:00:00:00:03", VLAN: 5000}, "vlan"},
		{BindingSpec{IP: "10.0.0.3", MAC: "02:00:00:00:00:03", Kind: "gleaned"}, "kind"},
		{BindingSpec{IP: "10.0.0.3", MAC: "02:00:00:00:00:03", Port: "a/b"}, "port"},
	} {
		_, err := sw.AddBinding(tt.b)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("AddBinding(%+v) = %v, want a field error on %s", tt.b, err, tt.field)
		}
	}
	// The same binding again is a no-op; another MAC for the address is a conflict.
	if _, err := sw.AddBinding(BindingSpec{IP: "10.0.0.2", MAC: "02:00:00:00:00:02"}); err != nil {
		t.Errorf("re-adding the same binding: %v", err)
	}
	if _, err := sw.AddBinding(BindingSpec{IP: "10.0.0.2", MAC: "02:00:00:00:00:09"}); !errors.Is(err, ErrExists) {
		t.Errorf("conflicting binding: %v, want ErrExists", err)
	}
	if err := sw.DelBinding(0, "10.0.0.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a missing binding: %v", err)
	}
	if err := sw.DelBinding(0, "nope"); !IsFieldError(err) {
		t.Errorf("deleting a bad address: %v", err)
	}
	if n := len(sw.Bindings()); n != 1 {
		t.Errorf("%d bindings, want 1", n)
	}
}

func TestDNSControl(t *testing.T) {
	sw, _ := ctlSwitch(t, "")
	if _, err := sw.AddDNSRecord(DNSRecordSpec{Name: "w.vs.test", Type: "A", Value: "10.0.0.2"}); !IsFieldError(err) {
		t.Fatalf("record outside any zone: %v", err)
	}
	z, err := sw.AddDNSZone(DNSZoneSpec{Name: "vs.test"})
	if err != nil || z.SOA.MName != "ns.vs.test" || z.SOA.Minimum != 60 {
		t.Fatalf("AddDNSZone = %+v, %v", z, err)
	}
	if _, err := sw.AddDNSZone(DNSZoneSpec{Name: "VS.test."}); !errors.Is(err, ErrExists) {
		t.Fatalf("zone twice: %v", err)
	}
	if _, err := sw.AddDNSZone(DNSZoneSpec{Name: "a..b"}); !IsFieldError(err) || err.(*FieldError).Field != "name" {
		t.Fatalf("bad zone name: %v", err)
	}
	for _, tt := range []struct {
		r     DNSRecordSpec
		field string
	}{
		{DNSRecordSpec{Name: "w.vs.test", Type: "MX", Value: "x"}, "type"},
		{DNSRecordSpec{Name: "w.vs.test", Type: "AAAA", Value: "10.0.0.1"}, "value"},
		{DNSRecordSpec{Name: "w.other.test", Type: "A", Value: "10.0.0.1"}, "name"},
	} {
		_, err := sw.AddDNSRecord(tt.r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("AddDNSRecord(%+v) = %v, want a field error on %s", tt.r, err, tt.field)
		}
	}
	r, err := sw.AddDNSRecord(DNSRecordSpec{Name: "w.vs.test", Type: "aaaa", Value: "fd00::2"})
	if err != nil || r.Type != "AAAA" || r.TTL != DefaultDNSTTL {
		t.Fatalf("AddDNSRecord = %+v, %v", r, err)
	}
	want := DNSSpec{Zones: []DNSZoneSpec{z}, Records: []DNSRecordSpec{r}}
	if got := sw.DNS(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DNS() = %+v, want %+v", got, want)
	}
	if err := sw.DelDNSRecord(DNSRecordSpec{Name: "w.vs.test", Type: "A"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing record: %v", err)
	}
	if err := sw.DelDNSRecord(DNSRecordSpec{Name: "w.vs.test", Type: "AAAA"}); err != nil {
		t.Fatal(err)
	}
	if err := sw.DelDNSZone("vs.test"); err != nil {
		t.Fatal(err)
	}
	if err := sw.DelDNSZone("vs.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing zone: %v", err)
	}
}

// TestPeepholeStatePersists: runtime edits land in the state file, and a
// switch started on that state file has them (and not the config's).
func TestPeepholeStatePersists(t *testing.T) {
	sw, _ := ctlSwitch(t, "peephole: {bindings: [{ip: 10.0.0.9, mac: '02:00:00:00:00:09'}]}")
	if _, err := sw.AddBinding(BindingSpec{IP: "fd00::2", MAC: "02:00:00:00:00:02", Kind: "gateway", Port: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := sw.DelBinding(0, "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddDNSZone(DNSZoneSpec{Name: "vs.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddDNSRecord(DNSRecordSpec{Name: "w.vs.test", Type: "A", Value: "10.0.0.2", TTL: 7}); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(sw.cfg.StateFile)
	if err != nil || st == nil || st.Peephole == nil {
		t.Fatalf("loadState = %+v, %v", st, err)
	}
	again := &Switch{cfg: sw.cfg, log: zap.NewNop()}
	spec := sw.cfg.Peephole
	spec.Bindings, spec.DNS = st.Peephole.Bindings, st.Peephole.DNS
	if err := again.initPeephole(spec); err != nil {
		t.Fatal(err)
	}
	if got, want := again.Bindings(), sw.Bindings(); !reflect.DeepEqual(got, want) || len(got) != 1 {
		t.Fatalf("bindings after restart %+v, want %+v", got, want)
	}
	if got, want := again.DNS(), sw.DNS(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DNS after restart %+v, want %+v", got, want)
	}
}

// TestSpoofGuardFollowsBindings: a guarded port may send from an address
// bound to it, not from another; binding the address lets it through.
func TestSpoofGuardFollowsBindings(t *testing.T) {
	sw, pipe := ctlSwitch(t, "peephole: {bindings: [{ip: 192.0.2.1, mac: '02:aa:00:00:00:01', port: p1}]}",
		testPort{index: 1}, testPort{index: 2})
	sw.live["p1"].spec.SpoofGuard = true
	sw.mu.Lock()
	sw.refreshGuardLocked(nil)
	sw.mu.Unlock()
	good := udpFrame(t, macA, macB, -1, 22, 1) // 192.0.2.1 from macA
	if p := runOne(pipe, 1, good); p.Verdict == pipeline.VerdictDrop {
		t.Fatalf("bound source dropped: %v", p.Reason)
	}
	if p := runOne(pipe, 2, udpFrame(t, macC, macB, -1, 22, 1)); p.Verdict == pipeline.VerdictDrop {
		t.Fatalf("unguarded port dropped: %v", p.Reason)
	}
	spoof := udpFrame(t, macC, macB, -1, 22, 1) // someone else's MAC on p1
	if p := runOne(pipe, 1, spoof); p.Verdict != pipeline.VerdictDrop || p.Reason != pipeline.DropSpoofed {
		t.Fatalf("spoofed frame: %v %v, want drop spoofed", p.Verdict, p.Reason)
	}
	if err := sw.DelBinding(0, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if p := runOne(pipe, 1, good); p.Reason != pipeline.DropSpoofed {
		t.Fatalf("after unbinding: %v %v, want drop spoofed", p.Verdict, p.Reason)
	}
}
