package pipeline

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

// tailed returns a packet over a copy of frame whose bytes from head on are
// left as a tail: Data has the full length but zeros there.
func tailed(frame []byte, head int) *Packet {
	buf := make([]byte, len(frame)+8)
	copy(buf, frame[:head])
	p := &Packet{Data: buf[:len(frame)]}
	p.Reset()
	p.Tail = frame[head:]
	return p
}

// TestPacketTail: the parser decides on the head alone; a checksum over the
// payload fills the tail in first; Materialize puts the tail at the end of
// Data even after Data moved; Reset forgets a tail.
func TestPacketTail(t *testing.T) {
	ip := ipv4(layers.IPProtocolUDP)
	frame := serialize(t, eth(layers.EthernetTypeIPv4), ip, udp(ip), payload(1400))

	p := tailed(frame, 192)
	if !p.Parse() {
		t.Fatalf("parse of the head failed: %v", p.Reason)
	}
	if p.Tail == nil {
		t.Fatal("Parse materialized the tail; it must read headers only")
	}
	if !p.L4ChecksumValid() {
		t.Fatal("checksum over a tailed frame is wrong: the payload was not filled in")
	}
	if p.Tail != nil || !bytes.Equal(p.Data, frame) {
		t.Fatal("after the checksum the frame is not whole")
	}

	// A VLAN pop moves the start of Data; the tail still ends the frame.
	p = tailed(frame, 192)
	p.Data = p.Data[4:]
	p.Materialize()
	if !bytes.Equal(p.Data[len(p.Data)-(len(frame)-192):], frame[192:]) {
		t.Fatal("tail not at the end of the moved frame")
	}
	p.Materialize() // a no-op now
	if p.Tail != nil {
		t.Fatal("tail still set")
	}

	// A parked frame outlives the batch, and with it the tail's buffer.
	p = tailed(frame, 192)
	p.Parse()
	if !NewParkQueue(4).Park(p, 0, netip.MustParseAddr("192.0.2.1"), 0) {
		t.Fatal("park refused")
	}
	if p.Tail != nil || !bytes.Equal(p.Data, frame) {
		t.Fatal("parked frame is not whole")
	}

	p = tailed(frame, 192)
	p.Reset()
	if p.Tail != nil {
		t.Fatal("Reset kept the tail")
	}
}
