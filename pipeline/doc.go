// Package pipeline owns the packet representation of the datapath: Packet (a
// view onto a frame that some port owns), Batch (up to MaxBatch packets),
// zero-allocation header parsing into offsets, checksum helpers, the Stage
// interface and the verdicts and drop reasons every packet ends in.
//
// The package does no I/O and never imports the switch package. Nothing here
// allocates on the per-packet path.
package pipeline
