// Package memring moves frames between the switch and colocated containers
// through single-producer/single-consumer descriptor rings in a shared memory
// region, with no kernel crossing on the data path.
//
// The switch creates the region (NewRegion: a sealed memfd, hugepage-backed
// when the host has free 2 MiB pages), maps it and hands the file descriptor
// to the container over a unix socket (control.go). The container maps the
// same file (OpenRegion). Each side then takes the ends it owns of every
// queue pair (Region.Queue) and moves frames with Tx.Send,
// Tx.Reserve/Buffer/Submit or Tx.Reserve/Write/Submit, and
// Rx.Recv/Release.
//
// What this package owns: the region layout below, the rings, and the
// validation of everything the peer writes. What it must not do: trust
// anything in the region. The region is shared with untrusted code, so the
// switch validates every index and descriptor a client wrote before it
// touches memory, reads each of them exactly once, and never panics on any
// region content; a hostile client can only harm its own traffic. The client
// side runs the same checks (they cost nothing). The memfd is sealed against
// shrinking and growing so that a client cannot make the switch's mapping
// fault (SIGBUS) by truncating the file.
//
// # Region layout, version 1
//
// All integers little-endian; all offsets in bytes from the region start.
//
// Header (the first 4096 bytes; the rest of the page is zero):
//
//	off  size  field
//	  0     8  magic          "VSMRING\x00"
//	  8     4  version        1
//	 12     4  features       bit 0: eventfd notification (FeatureEventfd)
//	 16     8  region_size    bytes; equals the size of the file
//	 24     4  queue_pairs    1..16
//	 28     4  ring_size      descriptors per ring, power of two 64..32768
//	 32     4  frame_size     bytes per buffer, power of two 2048..16384
//	 36     4  reserved       0
//	 40     8  rings_offset   4096
//	 48     8  buffers_offset >= rings_offset + 2*queue_pairs*ring_stride, multiple of 64
//	 56     8  ring_stride    bytes per ring, multiple of 64, >= 192 + 16*ring_size
//
// Rings: two per queue pair q. Ring 2q is "to-switch" (the client produces,
// the switch consumes); ring 2q+1 is "to-client" (the switch produces, the
// client consumes). Ring i starts at rings_offset + i*ring_stride:
//
//	off  size          field
//	  0     4          producer index (written by the producer; own 64-byte line)
//	 64     4          consumer index (written by the consumer; own 64-byte line)
//	128     4          flags (written by the consumer; own 64-byte line)
//	                   bit 0 NEED_WAKEUP: the consumer is about to sleep
//	192  16*ring_size  descriptors {offset uint64, len uint32, flags uint32}
//
// Indices are free-running uint32 counters that wrap; the descriptor of
// index x is in slot x & (ring_size-1). The producer fills descriptors, then
// publishes them by storing its index (release); the consumer loads that
// index (acquire), reads the descriptors, and gives the slots back by storing
// its own index. A ring holds at most ring_size outstanding descriptors, so
// producer - consumer (uint32 arithmetic) is always in 0..ring_size; anything
// else is corruption. Descriptor flags are reserved (written 0, ignored).
//
// Buffers: ring i owns the partition that starts at
// buffers_offset + i*ring_size*frame_size: ring_size buffers of frame_size
// bytes. A producer may point a descriptor anywhere inside its own ring's
// partition as long as the frame stays within one buffer:
// (offset - partition_start) % frame_size + len <= frame_size. len is
// 14..frame_size. A buffer belongs to the producer until the consumer index
// passes its slot. Tx keeps the free buffers on a stack and takes the one
// the consumer gave back last, so a consumer that keeps up has its producer
// write a few cache-warm buffers rather than walk the whole partition; a
// consumer must not assume slot k carries buffer k.
//
// Notification: a consumer that is about to sleep sets NEED_WAKEUP, then
// loads the producer index once more and sleeps only if it is unchanged; a
// producer that has published checks NEED_WAKEUP and, if set, signals the
// consumer (the eventfd passed over the control socket when FeatureEventfd is
// offered). Go's sequentially consistent atomics make this handshake safe.
//
// # Validation
//
// A consumer loads the producer index P once per batch. If P - C > ring_size
// (C its own consumer index) or P moved backwards the ring is corrupt: Recv
// returns ErrCorrupt and the switch disconnects that client. Each descriptor
// is read once into locals and then checked: offset inside the ring's own
// partition and the frame inside one buffer (else counted BadOffset), len in
// 14..frame_size (else counted BadLen). A bad descriptor is skipped, never
// followed, and never re-read. A producer checks the consumer index it loads
// the same way (P - C > ring_size => ErrCorrupt). OpenRegion validates every
// header field and then uses a private copy; nobody reads the shared header
// again. ErrCorrupt is sticky: a ring end that has seen it stays broken.
//
// # Ownership
//
// A Tx or Rx belongs to one goroutine; the two ends of one ring may run in
// different goroutines or processes. Nothing locks. Stats may be read from
// any goroutine. Frames returned by Rx.Recv are views into shared memory,
// valid until Rx.Release; a buffer from Tx.Buffer is the caller's until
// Tx.Submit. The client can rewrite a to-switch frame while the switch
// holds its view: the switch copies the part of a frame it checks (the
// whole frame, or for a large TCP/UDP frame its first 192 bytes) into its
// own UMEM frame before any check of it has to stay true, and copies the
// unchecked rest straight into the destination's reserved buffer
// (Tx.Reserve/Write/Submit) before it releases the view.
//
// Tests of code that uses rings get a fake client and raw hostile access
// from memring/memringtest.
package memring
