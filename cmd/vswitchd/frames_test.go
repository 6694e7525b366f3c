//go:build integration

package main

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frame builders for what the tests inject with a raw socket. vlan 0
// means untagged.

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ethLayers returns the Ethernet header, plus an 802.1Q tag when vlan != 0,
// for a payload of type et.
func ethLayers(vlan uint16, src, dst net.HardwareAddr, et layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}
	if vlan == 0 {
		return []gopacket.SerializableLayer{eth}
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return []gopacket.SerializableLayer{eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: et}}
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpRequest is a broadcast "who-has dstIP tell srcIP".
func arpRequest(t *testing.T, vlan uint16, src net.HardwareAddr, srcIP, dstIP string) []byte {
	t.Helper()
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: src, SourceProtAddress: net.ParseIP(srcIP).To4(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: net.ParseIP(dstIP).To4(),
	}
	return serialize(t, append(ethLayers(vlan, src, broadcastMAC, layers.EthernetTypeARP), arp)...)
}

// icmpEcho is an ICMP echo request.
func icmpEcho(t *testing.T, vlan uint16, src, dst net.HardwareAddr, srcIP, dstIP string, seq uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP(srcIP).To4(), DstIP: net.ParseIP(dstIP).To4()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x7654, Seq: seq}
	ls := append(ethLayers(vlan, src, dst, layers.EthernetTypeIPv4), ip, icmp, gopacket.Payload("vswitch integration test"))
	return serialize(t, ls...)
}
