package vswitch

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vswitch/vswitch/pipeline"
)

// Trace implements GatewayControl. It builds the described frame, parses
// and classifies it as its input port would, and has the worker that
// polls that port run it through its gateway stage (so the cache state
// reported is that worker's). The frame is a copy: nothing is sent and no
// cache entry is made.
func (sw *Switch) Trace(req TraceRequest) (TraceInfo, error) {
	if sw.rt == nil {
		return TraceInfo{}, ErrNoRouter
	}
	tbl := sw.ports.Load()
	var in *portEntry
	for _, e := range tbl.list {
		if e.name == req.InPort {
			in = e
		}
	}
	if in == nil {
		return TraceInfo{}, fieldErr("in_port", "%q is not a port", req.InPort)
	}
	frame, err := sw.traceFrame(req)
	if err != nil {
		return TraceInfo{}, err
	}
	buf := make([]byte, len(frame), 2048)
	copy(buf, frame)
	p := pipeline.Packet{Data: buf, InPort: in.index}
	p.Reset()
	if !p.Parse() {
		return TraceInfo{}, fmt.Errorf("trace: the frame does not parse: %s", p.Reason)
	}
	vlan, ok := in.vlan.ingress(p.Flags&pipeline.FlagVLAN != 0, p.VLAN)
	if !ok {
		return TraceInfo{}, fieldErr("vlan", "port %s does not carry VLAN %d", in.name, req.VLAN)
	}
	p.VLAN = vlan
	owner := sw.txOwner(in.index)
	if owner < 0 || owner >= len(sw.workers) {
		owner = 0
	}
	w := sw.workers[owner]
	var res pipeline.TraceResult
	w.do(func(w *Worker) { res = w.gw.stage.Trace(&p) })
	info := TraceInfo{Worker: owner, TraceResult: res}
	if res.OutPort >= 0 {
		if e := tbl.get(uint16(res.OutPort)); e != nil {
			info.OutPortName = e.name
		}
	}
	return info, nil
}

// traceFrame builds the frame a TraceRequest describes.
func (sw *Switch) traceFrame(req TraceRequest) ([]byte, error) {
	src, err := netip.ParseAddr(req.Src)
	if err != nil {
		return nil, fieldErr("src", "%q is not an IP address", req.Src)
	}
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil || dst.Is4() != src.Is4() {
		return nil, fieldErr("dst", "%q is not an IP address of src's family", req.Dst)
	}
	dmac := sw.rt.r.MAC()
	if req.DstMAC != "" {
		if dmac, err = pipeline.ParseMAC(req.DstMAC); err != nil {
			return nil, fieldErr("dst_mac", "%q is not a MAC address", req.DstMAC)
		}
	}
	smac := pipeline.MAC{0x02, 0, 0, 0, 0, 0x01}
	if req.SrcMAC != "" {
		if smac, err = pipeline.ParseMAC(req.SrcMAC); err != nil || smac.IsMulticast() {
			return nil, fieldErr("src_mac", "%q is not a unicast MAC address", req.SrcMAC)
		}
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = 64
	}
	sport, dport := req.SrcPort, req.DstPort
	if sport == 0 {
		sport = 12345
	}
	if dport == 0 {
		dport = 80
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(smac[:]), DstMAC: net.HardwareAddr(dmac[:]), EthernetType: layers.EthernetTypeIPv4}
	var ls []gopacket.SerializableLayer
	if req.VLAN != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: req.VLAN, Type: layers.EthernetTypeIPv4})
	} else {
		ls = append(ls, eth)
	}
	setType := func(t layers.EthernetType) {
		if req.VLAN != 0 {
			ls[1].(*layers.Dot1Q).Type = t
		} else {
			eth.EthernetType = t
		}
	}
	var netl gopacket.NetworkLayer
	proto := strings.ToLower(req.Proto)
	if proto == "" {
		proto = "udp"
	}
	if src.Is4() {
		ip := &layers.IPv4{Version: 4, TTL: ttl, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ls, netl = append(ls, ip), ip
		switch proto {
		case "udp":
			ip.Protocol = layers.IPProtocolUDP
		case "tcp":
			ip.Protocol = layers.IPProtocolTCP
		case "icmp":
			ip.Protocol = layers.IPProtocolICMPv4
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: sport, Seq: 1})
		default:
			return nil, fieldErr("proto", "%q is not one of udp, tcp, icmp for IPv4", req.Proto)
		}
	} else {
		setType(layers.EthernetTypeIPv6)
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ls, netl = append(ls, ip), ip
		switch proto {
		case "udp":
			ip.NextHeader = layers.IPProtocolUDP
		case "tcp":
			ip.NextHeader = layers.IPProtocolTCP
		case "icmpv6":
			ip.NextHeader = layers.IPProtocolICMPv6
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
			_ = icmp.SetNetworkLayerForChecksum(ip)
			ls = append(ls, icmp, &layers.ICMPv6Echo{Identifier: sport, SeqNumber: 1})
		default:
			return nil, fieldErr("proto", "%q is not one of udp, tcp, icmpv6 for IPv6", req.Proto)
		}
	}
	switch proto {
	case "udp":
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		_ = u.SetNetworkLayerForChecksum(netl)
		ls = append(ls, u)
	case "tcp":
		t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 65535}
		_ = t.SetNetworkLayerForChecksum(netl)
		ls = append(ls, t)
	}
	ls = append(ls, gopacket.Payload(make([]byte, 18)))
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("trace: build frame: %w", err)
	}
	return b.Bytes(), nil
}
