package pipeline

// DropReason says why a packet was dropped. Every drop is counted by reason.
type DropReason uint8

// Drop reasons. Append new ones before NumDropReasons; the names are part of
// the stats API and the metrics labels.
const (
	DropNone           DropReason = iota
	DropTruncated                 // frame shorter than the headers it announces
	DropBadVLAN                   // more than one 802.1Q tag, or an 802.1ad outer tag
	DropBadARP                    // ARP header not Ethernet/IPv4 or truncated
	DropBadIPv4Header             // IPv4 version/IHL invalid
	DropBadIPv4Len                // IPv4 total length smaller than the header or past the frame
	DropBadIPv6Len                // IPv6 payload length past the frame
	DropBadIPv6Ext                // IPv6 extension header chain runs off the frame or loops too long
	DropBadL4                     // TCP/UDP/ICMP header truncated or inconsistent
	DropBadSrcMAC                 // source MAC is multicast/broadcast or zero
	DropVLANNotAllowed            // VLAN not allowed on the input port
	DropHairpin                   // destination is on the input port
	DropNoVerdict                 // no stage decided
	DropPortDown                  // output port is gone or down
	DropTxFull                    // output TX ring full
	DropNoFrame                   // no free frame to copy into
	DropTooBig                    // frame larger than the output port's frame size
	DropUnknownPort               // input or output port index not in the registry
	DropBadIPv6Header             // IPv6 version field is not 6
	DropSpoofed                   // a spoof-guarded port claimed an address not bound to it
	DropACLDenied                 // the gateway's ACL denied the flow
	DropNoRoute                   // no route to the destination
	DropTTLExceeded               // TTL or hop limit ran out (an ICMP time exceeded went back)
	DropNoNeighbor                // the next hop did not answer ARP/ND in time, or the park queue was full
	DropLocal                     // addressed to the switch itself and consumed (ARP/ND replies to its requests)
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"none", "truncated", "bad_vlan", "bad_arp", "bad_ipv4_header", "bad_ipv4_len",
	"bad_ipv6_len", "bad_ipv6_ext", "bad_l4", "bad_src_mac", "vlan_not_allowed",
	"hairpin", "no_verdict", "port_down", "tx_full", "no_frame", "too_big", "unknown_port",
	"bad_ipv6_header", "spoofed", "acl_denied", "no_route", "ttl_exceeded", "no_neighbor", "local",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "invalid"
}
