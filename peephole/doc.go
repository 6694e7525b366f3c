// Package peephole owns the responders that answer a request in the frame
// it arrived in: ARP, IPv6 Neighbor Discovery and (in the dns files) DNS,
// and the spoof guard that runs before them.
// Each responder is a pipeline.Stage that rewrites the frame in place and
// sets pipeline.VerdictReply, so the answer leaves on the input port without
// touching the forwarding path; anything it does not answer it leaves
// undecided for the stages after it.
//
// The stages never block, never lock, never allocate per packet and never
// keep a packet past Process. The ARP and ND stages answer from a
// BindingTable (IP to MAC per VLAN) that the control plane edits and the
// datapath reads without locks: its static and gateway bindings first, then
// the bindings gleaned from observed ARP and ND into the GleanTable
// attached to it (a fixed-size lock-free table the workers share, aged by
// the control plane with Expire). A gleaned binding never overrides a
// static one. The DNS stage answers from its own zone store. The guard
// stage (GuardStage) drops frames from spoof-guarded ports that claim a MAC
// or address not bound to the port.
//
// Bindings are looked up in the segment the switch classified the frame
// into (pipeline.Packet.VLAN), which it does before these stages run.
//
// The package must not do I/O or know about ports beyond their indices; it
// only sees batches.
package peephole
