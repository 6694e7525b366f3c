package main

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
)

// batchSize is frames per Recv or Reserve.
const batchSize = 64

// frameMin is the shortest frame we send (Ethernet minimum without FCS).
const frameMin = 60

// idleSpins is how many empty polls a station makes before it sleeps on the
// eventfd: short enough to give the CPU back, long enough that ping RTTs
// are not eventfd round trips.
const idleSpins = 2000

// station is an IPv4 host on a memring port: it answers ARP requests for
// its address and ICMP echo requests to it, and hands every other frame to
// the command. It uses queue pair 0 from one goroutine.
type station struct {
	c   *memring.Conn
	tx  *memring.Tx
	rx  *memring.Rx
	mac pipeline.MAC
	ip  [4]byte

	frames [][]byte
	lens   []int
	idle   int

	counters stationCounters
}

// stationCounters are a station's totals.
type stationCounters struct {
	RxFrames     uint64 `json:"rx_frames"`
	TxFrames     uint64 `json:"tx_frames"`
	ARPReplied   uint64 `json:"arp_replied"`
	EchoReplied  uint64 `json:"echo_replied"`
	Malformed    uint64 `json:"malformed"`
	Ignored      uint64 `json:"ignored"`
	TxRingFull   uint64 `json:"tx_ring_full"`
	Disconnected bool   `json:"disconnected,omitempty"`
}

func newStation(c *memring.Conn, mac pipeline.MAC, ip [4]byte) *station {
	tx, rx := c.Queue(0)
	return &station{c: c, tx: tx, rx: rx, mac: mac, ip: ip,
		frames: make([][]byte, batchSize), lens: make([]int, batchSize)}
}

// poll receives one batch, answers what it can, calls other for the rest
// (the frame is valid only during the call) and returns how many frames it
// received. With wait it sleeps on the eventfd (up to wait) once it has
// been idle a while.
func (s *station) poll(wait time.Duration, other func(p *pipeline.Packet)) (int, error) {
	n, err := s.rx.Recv(s.frames)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		select {
		case <-s.c.Closed():
			s.counters.Disconnected = true
			return 0, memring.ErrClosed
		default:
		}
		if s.idle++; wait > 0 && s.idle > idleSpins {
			if err := s.c.Wait(0, wait); err == memring.ErrClosed {
				s.counters.Disconnected = true
				return 0, err
			}
		}
		return 0, nil
	}
	s.idle = 0
	s.counters.RxFrames += uint64(n)
	reserved := s.tx.Reserve(n)
	out := 0
	var p pipeline.Packet
	for _, f := range s.frames[:n] {
		p = pipeline.Packet{Data: f}
		if !p.Parse() {
			s.counters.Malformed++
			continue
		}
		if out < reserved {
			if l := s.answer(&p, s.tx.Buffer(out)); l > 0 {
				s.lens[out] = l
				out++
				if p.Flags&pipeline.FlagARP != 0 {
					s.counters.ARPReplied++
				} else {
					s.counters.EchoReplied++
				}
				continue
			}
		} else if s.wouldAnswer(&p) {
			s.counters.TxRingFull++
			continue
		}
		if other != nil {
			other(&p)
		} else {
			s.counters.Ignored++
		}
	}
	s.rx.Release()
	if out > 0 {
		if err := s.tx.Submit(s.lens[:out]); err != nil {
			return n, err
		}
		s.counters.TxFrames += uint64(out)
		s.c.Notify(0)
	} else {
		s.tx.Reserve(0) // drop the reservation
	}
	return n, nil
}

// wouldAnswer reports whether answer would reply to p.
func (s *station) wouldAnswer(p *pipeline.Packet) bool {
	var b [2048]byte
	return s.answer(p, b[:]) > 0
}

// answer writes the reply to p into buf when p is an ARP request for our
// address or an ICMP echo request to it, and returns the reply's length;
// 0 when p is something else.
func (s *station) answer(p *pipeline.Packet, buf []byte) int {
	if p.Flags&pipeline.FlagVLAN != 0 {
		return 0 // the tools speak untagged frames only
	}
	eth := p.Ethernet()
	if a := p.ARP(); a != nil {
		if a.Op() != pipeline.ARPRequest || a.TargetIP() != s.ip || a.HardwareType() != 1 ||
			a.ProtocolType() != pipeline.EtherTypeIPv4 {
			return 0
		}
		return buildARP(buf, pipeline.ARPReply, s.mac, a.SenderMAC(), s.ip, a.SenderMAC(), a.SenderIP())
	}
	ip := p.IPv4()
	if ip == nil || ip.Dst() != s.ip || p.L4Proto != pipeline.ProtoICMP || (eth.Dst() != s.mac && !eth.Dst().IsBroadcast()) {
		return 0
	}
	icmp := p.ICMP()
	if icmp == nil || icmp.Type() != 8 || icmp.Code() != 0 || p.Flags&pipeline.FlagFragment != 0 {
		return 0
	}
	// Copy the request up to the end of the datagram and turn it round.
	l := int(p.L3Off) + int(p.L3Len)
	if l > len(buf) {
		return 0
	}
	copy(buf, p.Data[:l])
	out := pipeline.Ethernet(buf)
	out.SetDst(eth.Src())
	out.SetSrc(s.mac)
	rip := pipeline.IPv4(buf[p.L3Off:l])
	src := ip.Src()
	rip.SetDst(src)
	rip.SetSrc(s.ip)
	rip.SetTTL(64)
	pipeline.ICMP(buf[p.L4Off:l]).SetTypeCode(0, 0)
	return padFrame(buf, l)
}

// send queues one frame built by build (which returns its length) and
// wakes the switch if it sleeps. false when the ring is full.
func (s *station) send(build func(buf []byte) int) (bool, error) {
	if s.tx.Reserve(1) == 0 {
		s.counters.TxRingFull++
		return false, nil
	}
	s.lens[0] = build(s.tx.Buffer(0))
	if err := s.tx.Submit(s.lens[:1]); err != nil {
		return false, err
	}
	s.counters.TxFrames++
	s.c.Notify(0)
	return true, nil
}

// padFrame zeroes buf[l:frameMin] and returns the padded length.
func padFrame(buf []byte, l int) int {
	if l >= frameMin {
		return l
	}
	clear(buf[l:frameMin])
	return frameMin
}

// buildARP writes an Ethernet ARP frame and returns its length.
func buildARP(buf []byte, op uint16, src, dst pipeline.MAC, spa [4]byte, tha pipeline.MAC, tpa [4]byte) int {
	eth := pipeline.Ethernet(buf)
	eth.SetDst(dst)
	eth.SetSrc(src)
	eth.SetEtherType(pipeline.EtherTypeARP)
	a := pipeline.ARP(buf[pipeline.EthernetHeaderLen:])
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], pipeline.EtherTypeIPv4)
	a[4], a[5] = 6, 4
	a.SetOp(op)
	a.SetSenderMAC(src)
	a.SetSenderIP(spa)
	a.SetTargetMAC(tha)
	a.SetTargetIP(tpa)
	return padFrame(buf, pipeline.EthernetHeaderLen+pipeline.ARPLen)
}

// buildIPv4 writes Ethernet and IPv4 headers for proto with payloadLen
// bytes of L4 after them (checksum computed) and returns the L4 offset.
func buildIPv4(buf []byte, src, dst pipeline.MAC, sip, dip [4]byte, proto uint8, payloadLen int) int {
	eth := pipeline.Ethernet(buf)
	eth.SetDst(dst)
	eth.SetSrc(src)
	eth.SetEtherType(pipeline.EtherTypeIPv4)
	ip := pipeline.IPv4(buf[pipeline.EthernetHeaderLen : pipeline.EthernetHeaderLen+pipeline.IPv4MinHeaderLen])
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(pipeline.IPv4MinHeaderLen+payloadLen))
	binary.BigEndian.PutUint16(ip[4:], 0)
	binary.BigEndian.PutUint16(ip[6:], pipeline.IPv4DontFragment)
	ip[8], ip[9] = 64, proto
	copy(ip[12:16], sip[:])
	copy(ip[16:20], dip[:])
	ip.UpdateChecksum()
	return pipeline.EthernetHeaderLen + pipeline.IPv4MinHeaderLen
}

// buildEcho writes an ICMP echo request with a payloadLen-byte body whose
// first 8 bytes are the send time, and returns the frame length.
func buildEcho(buf []byte, src, dst pipeline.MAC, sip, dip [4]byte, ident, seq uint16, payloadLen int, now time.Time) int {
	l4 := buildIPv4(buf, src, dst, sip, dip, pipeline.ProtoICMP, pipeline.ICMPHeaderLen+payloadLen)
	end := l4 + pipeline.ICMPHeaderLen + payloadLen
	icmp := pipeline.ICMP(buf[l4:end])
	icmp[0], icmp[1] = 8, 0
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[4:], ident)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	body := icmp[pipeline.ICMPHeaderLen:]
	for i := range body {
		body[i] = byte(i)
	}
	if len(body) >= 8 {
		binary.BigEndian.PutUint64(body, uint64(now.UnixNano()))
	}
	icmp.SetChecksum(^pipeline.Checksum(icmp, 0))
	return padFrame(buf, end)
}

// buildUDP writes a UDP frame of exactly size bytes (size >= 42) and
// returns size.
func buildUDP(buf []byte, size int, src, dst pipeline.MAC, sip, dip [4]byte, sport, dport uint16) int {
	payload := size - pipeline.EthernetHeaderLen - pipeline.IPv4MinHeaderLen
	l4 := buildIPv4(buf, src, dst, sip, dip, pipeline.ProtoUDP, payload)
	u := buf[l4:size]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(payload))
	binary.BigEndian.PutUint16(u[6:], 0) // no checksum (allowed for UDP over IPv4)
	for i := pipeline.UDPHeaderLen; i < len(u); i++ {
		u[i] = byte(i)
	}
	return size
}

// minUDPFrame is the shortest frame buildUDP can build.
const minUDPFrame = pipeline.EthernetHeaderLen + pipeline.IPv4MinHeaderLen + pipeline.UDPHeaderLen

// describe formats a station for messages.
func (s *station) describe() string {
	return fmt.Sprintf("%s %d.%d.%d.%d", s.mac, s.ip[0], s.ip[1], s.ip[2], s.ip[3])
}
