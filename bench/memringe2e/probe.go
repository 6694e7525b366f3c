package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"

	"github.com/vswitch/vswitch/bench/e2e"
	"github.com/vswitch/vswitch/pipeline"
)

// Probe frames carry the latency measurement: Ethernet + IPv4 + ICMP echo
// reply (type 0) whose payload starts with probeMagic, a 64-bit sequence
// number and the 64-bit send time in nanoseconds of the harness's monotonic
// clock. The same bytes go over both paths.
//
// ICMP, not UDP: the e2e topology's XDP sink on d1 drops every IPv4/UDP
// frame before the kernel stack, so an AF_PACKET receiver there would see
// none. An unsolicited echo reply passes the sink and is ignored by the
// destination namespace's kernel (no reply traffic competes with the
// probes), while the switch parses it as a full IPv4 frame.
const (
	probeMagic   = 0x56534c54 // "VSLT"
	probeIdent   = 0x7662     // ICMP identifier "vb"
	probeL4Off   = pipeline.EthernetHeaderLen + pipeline.IPv4MinHeaderLen
	probeBodyOff = probeL4Off + pipeline.ICMPHeaderLen // 42
	probeBodyLen = 4 + 8 + 8
	// probeMinSize is the smallest probe frame: headers and body fit in 64 B.
	probeMinSize = 64
)

// ErrNotProbe: a received frame is not one of our probes.
var ErrNotProbe = errors.New("not a probe frame")

// probeAddrs are the MACs and addresses a probe frame carries.
type probeAddrs struct {
	SrcMAC, DstMAC pipeline.MAC
	SrcIP, DstIP   [4]byte
}

// veth and memring probes both use the e2e topology's fixed addresses, so
// the frames are identical byte for byte on both paths.
func defaultProbeAddrs() probeAddrs {
	return probeAddrs{
		SrcMAC: pipeline.MAC(e2e.SrcMAC), DstMAC: pipeline.MAC(e2e.DstMAC),
		SrcIP: [4]byte(e2e.SrcIP.To4()), DstIP: [4]byte(e2e.DstIP.To4()),
	}
}

// reversed is a for the opposite direction (the priming frame).
func (a probeAddrs) reversed() probeAddrs {
	return probeAddrs{SrcMAC: a.DstMAC, DstMAC: a.SrcMAC, SrcIP: a.DstIP, DstIP: a.SrcIP}
}

// buildProbe writes a size-byte probe frame into buf (len(buf) >= size)
// and returns size. The ICMP checksum covers the whole payload, so a probe
// is a valid packet for anything that checks.
func buildProbe(buf []byte, size int, a probeAddrs, seq uint64, sendNs int64) (int, error) {
	if size < probeMinSize || size > len(buf) || size > e2e.MaxFrameSize {
		return 0, fmt.Errorf("%w: probe size %d (buffer %d)", e2e.ErrFrameSpec, size, len(buf))
	}
	f := buf[:size]
	eth := pipeline.Ethernet(f)
	eth.SetDst(a.DstMAC)
	eth.SetSrc(a.SrcMAC)
	eth.SetEtherType(pipeline.EtherTypeIPv4)
	ip := pipeline.IPv4(f[pipeline.EthernetHeaderLen:probeL4Off])
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(size-pipeline.EthernetHeaderLen))
	binary.BigEndian.PutUint16(ip[4:], uint16(seq))
	binary.BigEndian.PutUint16(ip[6:], pipeline.IPv4DontFragment)
	ip[8], ip[9] = 64, pipeline.ProtoICMP
	copy(ip[12:16], a.SrcIP[:])
	copy(ip[16:20], a.DstIP[:])
	ip.UpdateChecksum()
	icmp := pipeline.ICMP(f[probeL4Off:])
	icmp[0], icmp[1] = 0, 0 // echo reply
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[4:], probeIdent)
	binary.BigEndian.PutUint16(icmp[6:], uint16(seq))
	body := f[probeBodyOff:]
	binary.BigEndian.PutUint32(body[0:], probeMagic)
	binary.BigEndian.PutUint64(body[4:], seq)
	binary.BigEndian.PutUint64(body[12:], uint64(sendNs))
	for i := probeBodyLen; i < len(body); i++ {
		body[i] = byte(i)
	}
	binary.BigEndian.PutUint16(icmp[2:], ^pipeline.Checksum(icmp, 0))
	return size, nil
}

// parseProbe returns the sequence number and send time of a probe frame.
// It reads only the header fields it needs and the probe body: the
// receiver must not pay for a checksum the sender's side does not.
func parseProbe(f []byte) (seq uint64, sendNs int64, err error) {
	if len(f) < probeBodyOff+probeBodyLen ||
		binary.BigEndian.Uint16(f[12:]) != pipeline.EtherTypeIPv4 ||
		f[pipeline.EthernetHeaderLen] != 0x45 || f[pipeline.EthernetHeaderLen+9] != pipeline.ProtoICMP ||
		f[probeL4Off] != 0 || binary.BigEndian.Uint16(f[probeL4Off+4:]) != probeIdent ||
		binary.BigEndian.Uint32(f[probeBodyOff:]) != probeMagic {
		return 0, 0, ErrNotProbe
	}
	body := f[probeBodyOff:]
	return binary.BigEndian.Uint64(body[4:]), int64(binary.BigEndian.Uint64(body[12:])), nil
}

// LatencyStats summarises one-way latencies in microseconds.
type LatencyStats struct {
	Samples int     `json:"samples"`
	MinUs   float64 `json:"min_us"`
	MeanUs  float64 `json:"mean_us"`
	P50Us   float64 `json:"p50_us"`
	P90Us   float64 `json:"p90_us"`
	P99Us   float64 `json:"p99_us"`
	P999Us  float64 `json:"p999_us"`
	MaxUs   float64 `json:"max_us"`
}

// summarizeLatency sorts ns in place and returns its percentiles (nearest
// rank). An empty slice gives zero stats.
func summarizeLatency(ns []int64) LatencyStats {
	var s LatencyStats
	if len(ns) == 0 {
		return s
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	s.Samples = len(ns)
	s.MinUs, s.MaxUs = us(ns[0]), us(ns[len(ns)-1])
	s.MeanUs = sum / float64(len(ns)) / 1e3
	s.P50Us = us(percentile(ns, 50))
	s.P90Us = us(percentile(ns, 90))
	s.P99Us = us(percentile(ns, 99))
	s.P999Us = us(percentile(ns, 99.9))
	return s
}

// percentile is the nearest-rank p-th percentile of sorted xs.
func percentile(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9)) // 99.9% of 1000 is 999, not 1000
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// hw converts a pipeline MAC for net APIs.
func hw(m pipeline.MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }
