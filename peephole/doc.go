// Package peephole owns the responders that answer a request in the frame
// it arrived in: ARP, IPv6 Neighbor Discovery and (in the dns files) DNS.
// Each responder is a pipeline.Stage that rewrites the frame in place and
// sets pipeline.VerdictReply, so the answer leaves on the input port without
// touching the forwarding path; anything it does not answer it leaves
// undecided for the stages after it.
//
// The stages never block, never allocate per packet and never keep a packet
// past Process. The ARP and ND stages answer from a BindingTable (IP to MAC
// per VLAN; static and gateway entries, gleaning not implemented yet) that
// the control plane edits and the datapath reads without locks; the DNS
// stage answers from its own zone store.
//
// The package must not do I/O or know about ports; it only sees batches.
package peephole
