package vswitch

import (
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/pipeline"
	"github.com/vswitch/vswitch/switch/xsk"
)

// rxQueue is one queue of one port that a worker polls.
type rxQueue struct {
	port  uint16
	queue int
	sock  *xsk.Socket
}

// portCounters are one worker's counters for one port. Only the owning
// worker writes them (atomically, once per batch); Stats sums all workers.
type portCounters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	drops              [pipeline.NumDropReasons]atomic.Uint64
}

type workerCounters struct {
	rx, tx, forwarded, flooded, replied atomic.Uint64
	polls, busyNs                       atomic.Uint64
	// sleeps and sleepNs count the worker's waits in poll(2) and the
	// time spent in them.
	sleeps, sleepNs                  atomic.Uint64
	pending                          atomic.Uint64
	batches, kicks, kickErrors, free atomic.Uint64
	drops                            [pipeline.NumDropReasons]atomic.Uint64
}

// Worker is one poll-mode loop: a pinned goroutine that owns a UMEM, every
// socket bound to it, its batch, and its pipeline. Nothing it touches per
// packet is shared with other workers except the lock-free FDB and the
// handoff rings.
type Worker struct {
	id      int
	cpu     int
	sw      *Switch
	umem    *xsk.Umem
	pipe    *pipeline.Pipeline
	batch   pipeline.Batch
	descs   [pipeline.MaxBatch]unix.XDPDesc
	rxq     []*rxQueue
	txSock  [MaxPorts]*xsk.Socket // this worker's TX queue on each port, if any
	dirty   []uint16              // output ports with unflushed TX this batch
	isDirty [MaxPorts]bool
	memq    []*memQueue         // memring queue pairs this worker drains
	memTx   [MaxPorts]*memQueue // this worker's to-client ring on each memring port
	// load is how many queues (AF_XDP and memring) the worker polls; the
	// control plane reads it to place new queues.
	load     atomic.Int32
	inbound  []*handoff // from every other worker
	outbound []*handoff // to every other worker, by worker id
	pollMode string
	spins    int

	ctl      chan func(*Worker)
	wakeFD   int
	sleeping atomic.Bool
	stop     atomic.Bool
	done     chan struct{}

	ctr  workerCounters
	port [MaxPorts]portCounters
	// Scratch per-batch TX counts by output port.
	txN      [MaxPorts]uint32
	txBytes  [MaxPorts]uint64
	txPorts  []uint16
	umemLost uint64
	// loopsCounted is how many loops are already in ctr.polls.
	loopsCounted uint64
	// touched keeps pollMem's touch-ahead loads from being optimised away.
	touched byte
	// txLeft is how many packets of the batch transmit has not output
	// yet, the current one included: a hint for memring reservations.
	txLeft int
	// gw is the worker's gateway stage state (nil without a router);
	// relBatch carries parked packets released after ARP/ND answered.
	gw       *workerGateway
	relBatch pipeline.Batch
	// closedKicks/closedKickErrors carry the TX kick counts of sockets
	// that were closed.
	closedKicks, closedKickErrors uint64
	touch                         byte // keeps the batch's first-touch loads alive
	log                           *zap.Logger
}

func newWorker(sw *Switch, id, cpu int, umem *xsk.Umem, pipe *pipeline.Pipeline) (*Worker, error) {
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &Worker{
		id: id, cpu: cpu, sw: sw, umem: umem, pipe: pipe,
		pollMode: sw.cfg.Workers.PollMode, spins: sw.cfg.Workers.IdleSpins,
		ctl: make(chan func(*Worker), 16), wakeFD: wfd, done: make(chan struct{}),
		dirty: make([]uint16, 0, MaxPorts), txPorts: make([]uint16, 0, MaxPorts),
		log: sw.log.With(zap.Int("worker", id)),
	}, nil
}

// do runs fn on the worker goroutine between batches and waits for it.
func (w *Worker) do(fn func(*Worker)) {
	ch := make(chan struct{})
	w.ctl <- func(w *Worker) { fn(w); close(ch) }
	w.wake()
	<-ch
}

func (w *Worker) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.wakeFD, one[:])
}

// run is the poll loop. It locks its OS thread and pins it to the worker's CPU.
func (w *Worker) run() {
	defer close(w.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cpu >= 0 {
		var set unix.CPUSet
		set.Set(w.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			w.log.Warn("cannot pin worker", zap.Int("cpu", w.cpu), zap.Error(err))
		}
	}
	w.log.Info("worker started", zap.Int("cpu", w.cpu), zap.String("poll_mode", w.pollMode))
	defer w.log.Info("worker stopped")

	idle := 0
	var loops uint64
	for !w.stop.Load() {
		got := 0
		for _, q := range w.rxq {
			got += w.pollQueue(q)
		}
		for _, q := range w.memq {
			got += w.pollMem(q)
		}
		for _, h := range w.inbound {
			got += w.drainHandoff(h)
		}
		if w.gw != nil && w.gw.park.Len() > 0 {
			w.serviceGateway()
		}
		loops++
		if got > 0 {
			idle = 0
		} else {
			idle++
		}
		if loops&255 == 0 || got == 0 && idle&63 == 0 {
			w.ctr.polls.Add(loops - w.loopsCounted)
			w.loopsCounted = loops
			w.housekeeping(time.Now())
		}
		if got == 0 {
			switch {
			case w.pollMode == PollInterrupt,
				w.pollMode == PollAdaptive && idle > w.spins:
				w.block()
			}
		}
	}
	w.ctr.polls.Add(loops - w.loopsCounted)
}

// housekeeping runs every few hundred loops: control requests, completion
// reaping on idle ports, fill ring top-up, the switch clock.
func (w *Worker) housekeeping(now time.Time) {
	for {
		select {
		case fn := <-w.ctl:
			fn(w)
			continue
		default:
		}
		break
	}
	// Closed sockets' kicks stay in the totals, so the counters never go back.
	kicks, kerr := w.closedKicks, w.closedKickErrors
	for _, q := range w.rxq {
		q.sock.Complete()
		// A flush that gave up while the kernel made no progress leaves
		// frames on the TX ring; kick them here rather than waiting for
		// the next frame out of this port.
		if q.sock.TxPending() > 0 {
			q.sock.Flush()
		}
		q.sock.Refill(q.sock.FillSize())
		q.sock.WakeRx()
		kicks += q.sock.Kicks
		kerr += q.sock.KickErrors
	}
	w.ctr.kicks.Store(kicks)
	w.ctr.kickErrors.Store(kerr)
	w.ctr.free.Store(uint64(w.umem.Free()))
	w.sw.tick(now)
	w.sweepFlows()
}

// block waits in poll(2) for any RX queue, a handoff or a control request.
func (w *Worker) block() {
	for _, q := range w.rxq {
		if q.sock.TxPending() > 0 {
			return // finish transmitting first
		}
	}
	w.sleeping.Store(true)
	defer w.sleeping.Store(false)
	for _, h := range w.inbound {
		if h.peek() != nil {
			return
		}
	}
	if len(w.ctl) > 0 {
		return
	}
	// memring clients write the to-switch eventfd only while we ask for
	// it; ask, then look once more so a frame queued meanwhile is not
	// left waiting for the poll timeout.
	for _, q := range w.memq {
		q.rx.SetNeedWakeup(true)
	}
	defer func() {
		for _, q := range w.memq {
			q.rx.SetNeedWakeup(false)
		}
	}()
	for _, q := range w.memq {
		if q.rx.Pending() > 0 {
			return
		}
	}
	fds := make([]unix.PollFd, 0, len(w.rxq)+len(w.memq)+1) // idle path: allocation is fine here
	fds = append(fds, unix.PollFd{Fd: int32(w.wakeFD), Events: unix.POLLIN})
	for _, q := range w.rxq {
		fds = append(fds, unix.PollFd{Fd: int32(q.sock.FD()), Events: unix.POLLIN})
	}
	for _, q := range w.memq {
		fds = append(fds, unix.PollFd{Fd: int32(q.wakeFD), Events: unix.POLLIN})
	}
	t0 := time.Now()
	_, _ = unix.Poll(fds, 200)
	w.ctr.sleeps.Add(1)
	w.ctr.sleepNs.Add(uint64(time.Since(t0)))
	var buf [8]byte
	if fds[0].Revents&unix.POLLIN != 0 {
		_, _ = unix.Read(w.wakeFD, buf[:])
	}
	for i, q := range w.memq {
		if fds[1+len(w.rxq)+i].Revents&unix.POLLIN != 0 {
			_, _ = unix.Read(q.wakeFD, buf[:])
		}
	}
	// Control requests are served right away rather than after 64 idle loops.
	for len(w.ctl) > 0 {
		(<-w.ctl)(w)
	}
}

// pollQueue receives one batch from q, runs the pipeline and transmits.
func (w *Worker) pollQueue(q *rxQueue) int {
	n, bad := q.sock.Receive(w.descs[:])
	if bad > 0 {
		w.ctr.drops[pipeline.DropTruncated].Add(uint64(bad))
		w.port[q.port].drops[pipeline.DropTruncated].Add(uint64(bad))
	}
	if n == 0 {
		return 0
	}
	// Busy time is measured per batch only: an empty poll reads no clock,
	// so idle spinning stays cheap (clock reads cost tens of ns in a VM).
	start := time.Now()
	b := &w.batch
	b.Len = n
	var bytes uint64
	var touch byte
	for i := 0; i < n; i++ {
		d := &w.descs[i]
		p := &b.Pkts[i]
		p.Data = w.umem.Frame(d.Addr, d.Len)
		p.Addr = d.Addr
		p.InPort = q.port
		p.Reset()
		bytes += uint64(d.Len)
		// The kernel wrote these frames on another core. Loading one byte
		// of each here issues all the cache misses of the batch at once,
		// so they overlap instead of stalling the parser one by one.
		if len(p.Data) > 12 {
			touch ^= p.Data[12]
		}
	}
	w.touch = touch
	w.ctr.batches.Add(1)
	pc := &w.port[q.port]
	pc.rxPackets.Add(uint64(n))
	pc.rxBytes.Add(bytes)
	w.ctr.rx.Add(uint64(n))
	w.pipe.Process(b)
	w.transmit(b)
	q.sock.Refill(n)
	w.ctr.busyNs.Add(uint64(time.Since(start)))
	return n
}

// transmit acts on every verdict of the batch and flushes each touched TX
// ring once.
func (w *Worker) transmit(b *pipeline.Batch) {
	tbl := w.sw.ports.Load()
	var fwd, flood, reply uint64
	for i := 0; i < b.Len; i++ {
		p := &b.Pkts[i]
		w.txLeft = b.Len - i
		switch p.Verdict {
		case pipeline.VerdictForward:
			fwd++
			w.output(tbl, p, p.OutPort, p.Addr, p.Data)
		case pipeline.VerdictReply:
			reply++
			w.output(tbl, p, p.InPort, p.Addr, p.Data)
		case pipeline.VerdictFlood:
			flood++
			w.flood(tbl, p)
		case pipeline.VerdictPending:
			// The gateway parked the frame until its next hop answers;
			// it owns the frame now.
			w.ctr.pending.Add(1)
		default:
			r := p.Reason
			if p.Verdict != pipeline.VerdictDrop {
				r = pipeline.DropNoVerdict
			}
			w.drop(p.InPort, r)
			w.umem.Put(p.Addr)
		}
	}
	w.flushDirty()
	for _, o := range w.txPorts {
		pc := &w.port[o]
		pc.txPackets.Add(uint64(w.txN[o]))
		pc.txBytes.Add(w.txBytes[o])
		w.ctr.tx.Add(uint64(w.txN[o]))
		w.txN[o], w.txBytes[o] = 0, 0
	}
	w.txPorts = w.txPorts[:0]
	if fwd > 0 {
		w.ctr.forwarded.Add(fwd)
	}
	if flood > 0 {
		w.ctr.flooded.Add(flood)
	}
	if reply > 0 {
		w.ctr.replied.Add(reply)
	}
}

func (w *Worker) drop(port uint16, r pipeline.DropReason) {
	w.ctr.drops[r].Add(1)
	if int(port) < MaxPorts {
		w.port[port].drops[r].Add(1)
	}
}

// flood sends p to every other port of its VLAN: copies for all but the last
// member, which gets the original frame.
func (w *Worker) flood(tbl *portTable, p *pipeline.Packet) {
	p.Materialize() // the copies are made from Data
	last := -1
	for i, e := range tbl.list {
		if e.index == p.InPort {
			continue
		}
		if member, _ := e.vlan.egress(p.VLAN); !member {
			continue
		}
		if last >= 0 {
			w.outputCopy(tbl, p, tbl.list[last].index)
		}
		last = i
	}
	if last < 0 {
		w.umem.Put(p.Addr)
		return
	}
	w.output(tbl, p, tbl.list[last].index, p.Addr, p.Data)
}

// outputCopy copies p into a fresh frame and outputs the copy.
func (w *Worker) outputCopy(tbl *portTable, p *pipeline.Packet, out uint16) {
	if len(p.Data) > w.umem.FrameSize()-frameHeadroom {
		w.drop(p.InPort, pipeline.DropTooBig)
		return
	}
	addr, ok := w.umem.Get()
	if !ok {
		w.drop(p.InPort, pipeline.DropNoFrame)
		return
	}
	addr += frameHeadroom
	buf := w.umem.Frame(addr, uint32(len(p.Data)))
	copy(buf, p.Data)
	w.output(tbl, p, out, addr, buf)
}

// frameHeadroom is where frames the switch builds start inside a chunk, so
// that a VLAN tag can be pushed in front.
const frameHeadroom = 256

// output sends the frame data (at UMEM address addr, owned by the caller)
// out of port out, tagging or untagging it for the port's VLAN mode. It
// takes ownership of the frame.
func (w *Worker) output(tbl *portTable, p *pipeline.Packet, out uint16, addr uint64, data []byte) {
	e := tbl.get(out)
	if e == nil {
		w.drop(p.InPort, pipeline.DropPortDown)
		w.umem.Put(addr)
		return
	}
	member, wantTag := e.vlan.egress(p.VLAN)
	if !member {
		w.drop(p.InPort, pipeline.DropVLANNotAllowed)
		w.umem.Put(addr)
		return
	}
	mq := w.memTx[out]
	if mq == nil {
		// Every other way out needs the whole frame in the switch's
		// memory (data is p.Data here, as every caller passes it).
		p.Materialize()
	}
	// A priority tag (VID 0) is still a tag in the frame: retag or pop it,
	// never push a second one in front of it.
	tagged := p.Flags&pipeline.FlagVLAN != 0
	switch {
	case wantTag && !tagged:
		var ok bool
		if addr, data, ok = w.pushTag(addr, data, p.VLAN); !ok {
			w.drop(p.InPort, pipeline.DropNoFrame)
			w.umem.Put(addr)
			return
		}
	case !wantTag && tagged:
		addr, data = popTag(addr, data)
	case wantTag && tagged && vlanIDOf(data) != p.VLAN:
		setVLANID(data, p.VLAN)
	}
	if mq != nil {
		w.memEnqueue(mq, p.InPort, addr, data, p.Tail)
		p.Tail = nil
		return
	}
	s := w.txSock[out]
	if s == nil {
		w.handoffTo(p, out, data)
		w.umem.Put(addr)
		return
	}
	if !s.Enqueue(addr, uint32(len(data))) {
		s.Flush()
		if !s.Enqueue(addr, uint32(len(data))) {
			w.drop(p.InPort, pipeline.DropTxFull)
			w.umem.Put(addr)
			return
		}
	}
	w.markDirty(out)
	if w.txN[out] == 0 {
		w.txPorts = append(w.txPorts, out)
	}
	w.txN[out]++
	w.txBytes[out] += uint64(len(data))
}

// handoffTo copies a frame into the ring of the worker that owns a queue of
// port out.
func (w *Worker) handoffTo(p *pipeline.Packet, out uint16, data []byte) {
	owner := w.sw.txOwner(out)
	if owner < 0 || owner >= len(w.outbound) || w.outbound[owner] == nil {
		w.drop(p.InPort, pipeline.DropPortDown)
		return
	}
	h := w.outbound[owner]
	slot := h.reserve()
	if slot == nil || len(data) > handoffFrame {
		w.drop(p.InPort, pipeline.DropTxFull)
		return
	}
	slot.out = out
	slot.n = uint16(copy(slot.data[:], data))
	h.push()
	if dst := w.sw.workers[owner]; dst.sleeping.Load() {
		dst.wake()
	}
}

// drainHandoff transmits frames other workers handed over.
func (w *Worker) drainHandoff(h *handoff) int {
	n := 0
	for ; n < pipeline.MaxBatch; n++ {
		slot := h.peek()
		if slot == nil {
			break
		}
		s := w.txSock[slot.out]
		if mq := w.memTx[slot.out]; mq != nil {
			w.txLeft = pipeline.MaxBatch - n // at most this many follow
			w.handoffMem(mq, slot.data[:slot.n])
			h.release()
			continue
		}
		addr, ok := w.umem.Get()
		switch {
		case s == nil:
			w.drop(slot.out, pipeline.DropPortDown)
			if ok {
				w.umem.Put(addr)
			}
		case !ok:
			w.drop(slot.out, pipeline.DropNoFrame)
		case int(slot.n) > w.umem.FrameSize()-frameHeadroom:
			w.drop(slot.out, pipeline.DropTooBig)
			w.umem.Put(addr)
		default:
			addr += frameHeadroom
			copy(w.umem.Frame(addr, uint32(slot.n)), slot.data[:slot.n])
			if s.Enqueue(addr, uint32(slot.n)) {
				w.markDirty(slot.out)
				pc := &w.port[slot.out]
				pc.txPackets.Add(1)
				pc.txBytes.Add(uint64(slot.n))
				w.ctr.tx.Add(1)
			} else {
				w.drop(slot.out, pipeline.DropTxFull)
				w.umem.Put(addr)
			}
		}
		h.release()
	}
	w.flushDirty()
	return n
}

// vlanIDOf returns the VID of the frame's 802.1Q tag (0 if it has none).
func vlanIDOf(data []byte) uint16 {
	if len(data) < 18 || data[12] != 0x81 || data[13] != 0x00 {
		return 0
	}
	return (uint16(data[14])<<8 | uint16(data[15])) & 0xfff
}

func setVLANID(data []byte, id uint16) {
	data[14] = data[14]&0xf0 | byte(id>>8)&0x0f
	data[15] = byte(id)
}

// pushTag inserts an 802.1Q tag after the MAC addresses, using the headroom
// in front of the frame.
func (w *Worker) pushTag(addr uint64, data []byte, id uint16) (uint64, []byte, bool) {
	chunk := addr &^ uint64(w.umem.FrameSize()-1)
	if addr-chunk < 4 || len(data) < 12 {
		return addr, data, false
	}
	n := uint32(len(data) + 4)
	nd := w.umem.Frame(addr-4, n)
	copy(nd[0:12], data[0:12])
	nd[12], nd[13] = 0x81, 0x00
	nd[14], nd[15] = byte(id>>8)&0x0f, byte(id)
	return addr - 4, nd, true
}

// popTag removes the 802.1Q tag by moving the MAC addresses forward.
func popTag(addr uint64, data []byte) (uint64, []byte) {
	copy(data[4:16], data[0:12])
	return addr + 4, data[4:]
}

func (w *Worker) markDirty(out uint16) {
	if !w.isDirty[out] {
		w.isDirty[out] = true
		w.dirty = append(w.dirty, out)
	}
}

// flushDirty kicks every TX ring that got frames since the last flush.
func (w *Worker) flushDirty() {
	for _, o := range w.dirty {
		if s := w.txSock[o]; s != nil {
			s.Flush()
		} else if mq := w.memTx[o]; mq != nil {
			w.flushMem(mq)
		}
		w.isDirty[o] = false
	}
	w.dirty = w.dirty[:0]
}
