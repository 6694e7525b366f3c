package peephole

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/vswitch/vswitch/pipeline"
)

// fuzzProcess runs frame through the parser and stage s. When the parser
// rejects the frame its verdict is cleared anyway, so that the stage also
// sees half-filled parse fields and must survive them on its own checks.
func fuzzProcess(s pipeline.Stage, frame []byte, extra uint8) *pipeline.Packet {
	var b pipeline.Batch
	b.Len = 1
	p := &b.Pkts[0]
	p.Data = make([]byte, len(frame), len(frame)+int(extra))
	copy(p.Data, frame)
	p.Reset()
	p.Parse()
	p.Verdict, p.Reason = pipeline.VerdictNone, pipeline.DropNone
	s.Process(&b)
	return p
}

func FuzzARPStage(f *testing.F) {
	f.Add(arpFrame(f, arpRequest(0, nbrIP(nbrBound4))), uint8(0))
	f.Add(arpFrame(f, arpRequest(nbrVLAN, nbrIP(nbrBound4))), uint8(0))
	f.Add(arpFrame(f, arpRequest(0, nbrIP(nbrOther4))), uint8(0))
	f.Add(arpFrame(f, arpSpec{op: 2, srcMAC: nbrHostMAC, senderIP: nbrIP(nbrHost4), targetIP: nbrIP(nbrBound4)}), uint8(0))
	// Another host asks for nbrHost4, which the seeds before gleaned.
	f.Add(arpFrame(f, arpSpec{op: 1, srcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x77}, senderIP: net.IP{10, 0, 0, 30}, targetIP: nbrIP(nbrHost4)}), uint8(0))
	table, _, _ := glTables(f)
	f.Fuzz(func(t *testing.T, frame []byte, extra uint8) {
		s := NewARPStage(table)
		p := fuzzProcess(s, frame, extra)
		if p.Verdict == pipeline.VerdictNone {
			return
		}
		if p.Verdict != pipeline.VerdictReply {
			t.Fatalf("verdict %v", p.Verdict)
		}
		// A reply names a bound (or gleaned) address as its sender, from
		// that binding's MAC, in the packet's VLAN.
		a := pipeline.ARP(p.Data[p.L3Off:])
		var c nbrBatch
		c.load(table)
		e, ok := c.find4(segment(p), a.SenderIP())
		if !ok || e.mac != a.SenderMAC() || e.mac != pipeline.Ethernet(p.Data).Src() {
			t.Fatalf("reply for unbound target %v in vlan %d", a.SenderIP(), segment(p))
		}
		if a.Op() != pipeline.ARPReply || s.Stats().Answered != 1 {
			t.Fatalf("op %d stats %+v", a.Op(), s.Stats())
		}
	})
}

func FuzzNDStage(f *testing.F) {
	f.Add(nsFrame(f, nsRequest(0, nbrBound6)), uint8(8))
	f.Add(nsFrame(f, nsRequest(nbrVLAN, nbrBound6)), uint8(8))
	f.Add(nsFrame(f, nsRequest(0, nbrGw6)), uint8(8))
	f.Add(nsFrame(f, nsRequest(0, nbrOther6)), uint8(0))
	f.Add(nsFrame(f, nsSpec{src: nbrHost6, target: nbrBound6, noSLL: true}), uint8(8))
	f.Add(naGleanFrame(f, 0, naSpec{target: nbrOther6, tll: net.HardwareAddr{2, 0, 0, 0, 0, 0x77}, ethSrc: net.HardwareAddr{2, 0, 0, 0, 0, 0x77}, flags: 0x60}), uint8(0))
	f.Add(nsFrame(f, nsRequest(0, nbrOther6)), uint8(8)) // answered from what the NA seed gleaned
	table, _, _ := glTables(f)
	f.Fuzz(func(t *testing.T, frame []byte, extra uint8) {
		s := NewNDStage(table)
		p := fuzzProcess(s, frame, extra)
		if p.Verdict == pipeline.VerdictNone {
			return
		}
		if p.Verdict != pipeline.VerdictReply {
			t.Fatalf("verdict %v", p.Verdict)
		}
		l4 := int(p.L4Off)
		na := p.Data[l4:]
		target := [16]byte(na[8:24])
		var c nbrBatch
		c.load(table)
		e, ok := c.find6(segment(p), target)
		if !ok || pipeline.MAC(na[26:32]) != e.mac || pipeline.Ethernet(p.Data).Src() != e.mac ||
			(na[4]&ndFlagRouter != 0) != e.router {
			t.Fatalf("advertisement for unbound target %x in vlan %d", target, segment(p))
		}
		if na[0] != pipeline.ICMPv6NeighborAdvert || len(na) != ndNALen ||
			binary.BigEndian.Uint16(p.Data[p.L3Off+4:]) != ndNALen {
			t.Fatalf("bad advertisement %x", na)
		}
		q := pipeline.Packet{Data: p.Data}
		q.Reset()
		if !q.Parse() || !q.L4ChecksumValid() {
			t.Fatalf("advertisement does not parse or has a bad checksum: %x", p.Data)
		}
	})
}
