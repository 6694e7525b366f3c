package vswitch

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/pipeline"
)

// memPort is the switch's side of a memring port. The port and its index
// exist from AddPort on; it joins the port table (and so forwarding and
// flooding) only while a client is attached.
type memPort struct {
	cfg  memring.PortConfig
	vlan vlanPolicy
	// mu guards the fields below; Attach and Detach take it, never sw.mu
	// (the memring server calls Detach from DelPort, under sw.mu).
	mu     sync.Mutex
	sess   *memring.Session
	queues []memQueueRef
	// corrupt is set by a worker that found the client's ring indices
	// invalid; housekeeping then drops the session.
	corrupt  atomic.Bool
	corrupts atomic.Uint64
	// badDesc counts invalid descriptors of sessions already detached.
	badDesc atomic.Uint64
}

// badCounts returns the invalid descriptors the port's clients wrote (all
// sessions) and how many sessions were dropped for corrupt rings.
func (mp *memPort) badCounts() (bad, corrupt uint64) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	bad = mp.badDesc.Load()
	for _, r := range mp.queues {
		st := r.q.rx.Stats()
		bad += st.BadOffset + st.BadLen
	}
	return bad, mp.corrupts.Load()
}

type memQueueRef struct {
	worker int
	q      *memQueue
}

// memQueue is one queue pair of an attached memring port, owned by one
// worker: it drains the to-switch ring and fills the to-client ring.
type memQueue struct {
	port     uint16
	qp       int
	mp       *memPort
	tx       *memring.Tx
	rx       *memring.Rx
	wakeFD   int // to-switch eventfd: the client writes it when we asked
	notifyFD int // to-client eventfd: we write it when the client asked
	maxLen   int // the region's frame size
	views    [pipeline.MaxBatch][]byte
	// TX: frames are copied into slots of the to-client ring reserved
	// for the batch (txResv of them) as they are enqueued; flushMem
	// publishes the first txN with one Submit. txBytes is their length.
	txLens  [pipeline.MaxBatch]int
	txN     int
	txResv  int
	txBytes uint64
}

// memHandler adapts the switch to memring.Handler.
type memHandler struct{ sw *Switch }

// memServerLocked returns the memring control server, starting it on first use
// so a switch without memring ports does not own a socket. sw.mu held.
func (sw *Switch) memServerLocked() (*memring.Server, error) {
	if sw.memSrv != nil {
		return sw.memSrv, nil
	}
	path := sw.cfg.MemringSocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("memring socket: %w", err)
	}
	srv, err := memring.NewServer(path, os.FileMode(sw.cfg.MemringSocketMode), memHandler{sw}, sw.log)
	if err != nil {
		return nil, err
	}
	sw.log.Info("memring socket listening", zap.String("path", path))
	sw.memSrv = srv
	return srv, nil
}

// addMemPortLocked registers a memring port with the control server under
// index idx. sw.mu held.
func (sw *Switch) addMemPortLocked(spec PortSpec, idx uint16) (*afxdpPort, error) {
	srv, err := sw.memServerLocked()
	if err != nil {
		return nil, err
	}
	m := spec.Memring
	mp := &memPort{
		cfg: memring.PortConfig{
			Name:   spec.Name,
			Config: memring.Config{QueuePairs: m.QueuePairs, RingSize: m.RingSize, FrameSize: m.FrameSize},
			UIDs:   m.UIDs, GIDs: m.GIDs,
		},
		vlan: compileVLAN(spec.VLAN),
	}
	p := &afxdpPort{spec: spec, index: idx, mem: mp}
	sw.memByName.Store(spec.Name, p)
	if err := srv.AddPort(mp.cfg); err != nil {
		sw.memByName.Delete(spec.Name)
		return nil, err
	}
	return p, nil
}

// delMemPortLocked removes a memring port; a live session is detached
// first (synchronously, through memHandler.Detach). sw.mu held.
func (sw *Switch) delMemPortLocked(p *afxdpPort) {
	if sw.memSrv != nil {
		if err := sw.memSrv.DelPort(p.spec.Name); err != nil {
			sw.log.Warn("memring del port", zap.String("port", p.spec.Name), zap.Error(err))
		}
	}
	sw.memByName.Delete(p.spec.Name)
}

// Attach implements memring.Handler: it spreads the session's queue pairs
// over the workers and publishes the port.
func (h memHandler) Attach(s *memring.Session) error {
	sw := h.sw
	v, ok := sw.memByName.Load(s.Port)
	if !ok {
		return fmt.Errorf("port %s is being removed", s.Port)
	}
	p := v.(*afxdpPort)
	mp := p.mem
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if mp.sess != nil {
		return fmt.Errorf("port %s already attached", s.Port)
	}
	cfg := s.Region.Config()
	first := sw.leastLoadedWorker()
	for q := 0; q < s.QueuePairs(); q++ {
		tx, rx := s.Region.Queue(q, memring.SideSwitch)
		if tx == nil || rx == nil {
			h.removeQueues(p)
			return fmt.Errorf("port %s: no queue pair %d in the region", s.Port, q)
		}
		mq := &memQueue{port: p.index, qp: q, mp: mp, tx: tx, rx: rx,
			wakeFD: s.WakeFD(q, false), notifyFD: s.WakeFD(q, true), maxLen: cfg.FrameSize}
		w := sw.workers[(first+q)%len(sw.workers)]
		w.do(func(w *Worker) {
			w.load.Add(1)
			w.memq = append(w.memq, mq)
			if w.memTx[p.index] == nil {
				w.memTx[p.index] = mq
			}
		})
		mp.queues = append(mp.queues, memQueueRef{worker: w.id, q: mq})
	}
	mp.sess = s
	mp.corrupt.Store(false)
	sw.txOwn[p.index].Store(int32(mp.queues[0].worker))
	sw.publish(func(t *portTable) {
		e := &portEntry{index: p.index, name: p.spec.Name, vlan: mp.vlan}
		t.byIndex[p.index] = e
		t.list = append(t.list, e)
	})
	if !s.Hugepages {
		sw.log.Warn("memring region is on normal pages: no 2 MiB huge pages free (see /proc/sys/vm/nr_hugepages)",
			zap.String("port", s.Port))
	}
	sw.log.Info("memring client attached", zap.String("port", s.Port), zap.Int32("pid", s.PeerPID),
		zap.Uint32("uid", s.PeerUID), zap.Int("queue_pairs", s.QueuePairs()), zap.Bool("hugepages", s.Hugepages))
	return nil
}

// Detach implements memring.Handler: it unpublishes the port and takes its
// queues off the workers, so nothing touches the region afterwards.
func (h memHandler) Detach(s *memring.Session) {
	v, ok := h.sw.memByName.Load(s.Port)
	if !ok {
		return
	}
	p := v.(*afxdpPort)
	p.mem.mu.Lock()
	defer p.mem.mu.Unlock()
	if p.mem.sess != s {
		return
	}
	h.removeQueues(p)
	p.mem.sess = nil
	h.sw.log.Info("memring client detached", zap.String("port", s.Port), zap.Int32("pid", s.PeerPID))
}

// removeQueues unpublishes p and removes its queues from their workers.
// p.mem.mu held.
func (h memHandler) removeQueues(p *afxdpPort) {
	sw := h.sw
	sw.publish(func(t *portTable) {
		if t.byIndex[p.index] == nil {
			return
		}
		t.byIndex[p.index] = nil
		for i, e := range t.list {
			if e.index == p.index {
				t.list = append(t.list[:i], t.list[i+1:]...)
				break
			}
		}
	})
	sw.txOwn[p.index].Store(-1)
	for _, r := range p.mem.queues {
		mq := r.q
		sw.workers[r.worker].do(func(w *Worker) {
			w.flushMem(mq)
			for i, q := range w.memq {
				if q == mq {
					w.load.Add(-1)
					w.memq = append(w.memq[:i], w.memq[i+1:]...)
					break
				}
			}
			if w.memTx[mq.port] == mq {
				w.memTx[mq.port] = nil
			}
		})
	}
	for _, r := range p.mem.queues {
		st := r.q.rx.Stats()
		p.mem.badDesc.Add(st.BadOffset + st.BadLen)
	}
	p.mem.queues = nil
	sw.fdb.FlushPort(p.index)
}

// leastLoadedWorker is the worker with the fewest queues (AF_XDP and
// memring) to poll.
func (sw *Switch) leastLoadedWorker() int {
	load := make([]int, len(sw.workers))
	best := 0
	for i := range sw.workers {
		load[i] = int(sw.workers[i].load.Load())
		if load[i] < load[best] {
			best = i
		}
	}
	return best
}

// reapCorrupt drops the session of every memring port whose client broke
// its rings, and re-registers the port so the client can attach again.
// Housekeeping calls it.
func (sw *Switch) reapCorrupt() {
	var bad []*afxdpPort
	sw.memByName.Range(func(_, v any) bool {
		if p := v.(*afxdpPort); p.mem.corrupt.Load() {
			bad = append(bad, p)
		}
		return true
	})
	if len(bad) == 0 {
		return
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, p := range bad {
		if sw.live[p.spec.Name] != p || sw.memSrv == nil {
			continue
		}
		sw.log.Warn("memring client corrupted its rings; dropping the session", zap.String("port", p.spec.Name))
		_ = sw.memSrv.DelPort(p.spec.Name)
		if err := sw.memSrv.AddPort(p.mem.cfg); err != nil {
			sw.log.Error("memring re-add port", zap.String("port", p.spec.Name), zap.Error(err))
		}
		p.mem.corrupt.Store(false)
	}
}

// Large memring frames are split: the switch copies the first memHeadLen
// bytes into its own frame and decides on those alone, while the rest (the
// tail, see pipeline.Packet.Tail) stays in the client's buffer until the
// frame goes out. A frame bound for another memring port then crosses the
// switch with one copy of its payload: head from the switch's frame, tail
// straight from the sender's region. Everything the pipeline reads is in
// the switch's copy, so a client rewriting its buffer meanwhile can change
// only payload bytes no decision looked at, which it could have sent
// anyway.
const (
	// memHeadLen covers Ethernet, one 802.1Q tag, IPv4 with options or
	// IPv6, and TCP with options (at most 18+60+60 bytes).
	memHeadLen = 192
	// memSplitMin is the shortest frame worth splitting: below it the
	// second copy of a tail costs less than tracking it.
	memSplitMin = 512
)

// splitHead reports whether a frame whose first memHeadLen bytes are head
// may leave the rest in the client's buffer: it must be unfragmented TCP
// or UDP over IPv4 or IPv6 (no extension headers), with every header
// inside head. Anything else (ARP, ICMP, fragments, extension chains) is
// copied whole, because some stage may read it end to end.
func splitHead(head []byte) bool {
	off := 14
	et := uint16(head[12])<<8 | uint16(head[13])
	if et == 0x8100 {
		et = uint16(head[16])<<8 | uint16(head[17])
		off = 18
	}
	var proto byte
	switch et {
	case 0x0800:
		ihl := int(head[off]&0x0f) * 4
		if head[off]>>4 != 4 || ihl < 20 {
			return false
		}
		if (uint16(head[off+6])<<8|uint16(head[off+7]))&0x3fff != 0 {
			return false // MF set or a non-zero fragment offset
		}
		proto = head[off+9]
		off += ihl
	case 0x86dd:
		if head[off]>>4 != 6 {
			return false
		}
		proto = head[off+6]
		off += 40
	default:
		return false
	}
	switch proto {
	case pipeline.ProtoTCP:
		if off+13 >= len(head) {
			return false
		}
		off += int(head[off+12]>>4) * 4
	case pipeline.ProtoUDP:
		off += 8
	default:
		return false
	}
	return off <= len(head)
}

// pollMem receives one batch from a memring queue. Each frame is copied
// out of the shared region into a UMEM frame before anything parses it (a
// large TCP/UDP frame only its head, see memHeadLen), so a client
// rewriting its buffer meanwhile changes nothing the switch decided on.
// Then the batch runs the pipeline like an AF_XDP batch, and only after
// it is transmitted are the client's buffers released.
func (w *Worker) pollMem(q *memQueue) int {
	n, err := q.rx.Recv(q.views[:])
	if err != nil {
		if !q.mp.corrupt.Swap(true) {
			q.mp.corrupts.Add(1)
		}
		return 0
	}
	if n == 0 {
		return 0
	}
	// Load the first byte of every frame before copying any: the client
	// wrote those lines on its own core, and independent loads fetch them
	// in parallel where the copy loop would wait for one miss per frame.
	var touch byte
	for _, v := range q.views[:n] {
		touch ^= v[0] // Recv returns frames of at least MinFrameLen bytes
	}
	w.touched ^= touch
	b := &w.batch
	k := 0
	var bytes uint64
	maxLen := w.umem.FrameSize() - frameHeadroom
	for i := 0; i < n; i++ {
		v := q.views[i]
		if len(v) > maxLen {
			w.drop(q.port, pipeline.DropTooBig)
			continue
		}
		addr, ok := w.umem.Get()
		if !ok {
			w.drop(q.port, pipeline.DropNoFrame)
			continue
		}
		addr += frameHeadroom
		buf := w.umem.Frame(addr, uint32(len(v)))
		p := &b.Pkts[k]
		p.Data = buf
		p.Addr = addr
		p.InPort = q.port
		p.Reset()
		if len(v) >= memSplitMin {
			copy(buf[:memHeadLen], v)
			if splitHead(buf[:memHeadLen]) {
				p.Tail = v[memHeadLen:]
			} else {
				copy(buf[memHeadLen:], v[memHeadLen:])
			}
		} else {
			copy(buf, v)
		}
		bytes += uint64(len(v))
		k++
	}
	if k == 0 {
		q.rx.Release()
		return n
	}
	b.Len = k
	w.ctr.batches.Add(1)
	pc := &w.port[q.port]
	pc.rxPackets.Add(uint64(k))
	pc.rxBytes.Add(bytes)
	w.ctr.rx.Add(uint64(k))
	w.pipe.Process(b)
	w.transmit(b)
	// transmit flushed every output, so no tail is referenced any more.
	q.rx.Release()
	return n
}

// memEnqueue copies a frame into the next slot reserved in a memring
// port's to-client ring: the part in the UMEM frame at addr (data minus
// its last len(tail) bytes, freed here) and the tail still in a sending
// client's region, if any. flushMem publishes the batch's slots. Drops
// count against port in.
func (w *Worker) memEnqueue(q *memQueue, in uint16, addr uint64, data, tail []byte) {
	defer w.umem.Put(addr)
	if len(data) > q.maxLen {
		w.drop(in, pipeline.DropTooBig)
		return
	}
	if len(data) < memring.MinFrameLen {
		w.drop(in, pipeline.DropTruncated)
		return
	}
	if q.txN == q.txResv {
		if q.txN > 0 {
			w.flushMem(q)
		}
		// Reserve what is left of the batch: prefetching slots that stay
		// unused would only take lines from the client's core.
		q.txResv = q.tx.Reserve(min(max(w.txLeft, 1), pipeline.MaxBatch))
		if q.txResv == 0 {
			if q.tx.Err() != nil && !q.mp.corrupt.Swap(true) {
				q.mp.corrupts.Add(1)
			}
			w.drop(in, pipeline.DropTxFull)
			return
		}
	}
	q.tx.Write(q.txN, data[:len(data)-len(tail)], tail) // the length was checked above
	q.txLens[q.txN] = len(data)
	q.txN++
	q.txBytes += uint64(len(data))
	w.markDirty(q.port)
}

// handoffMem queues a frame another worker handed over (its bytes live in
// the handoff slot, released after this returns).
func (w *Worker) handoffMem(q *memQueue, data []byte) {
	if len(data) > w.umem.FrameSize()-frameHeadroom {
		w.drop(q.port, pipeline.DropTooBig)
		return
	}
	addr, ok := w.umem.Get()
	if !ok {
		w.drop(q.port, pipeline.DropNoFrame)
		return
	}
	addr += frameHeadroom
	buf := w.umem.Frame(addr, uint32(len(data)))
	copy(buf, data)
	w.memEnqueue(q, q.port, addr, buf, nil)
}

// flushMem publishes the frames copied into the reserved slots with one
// Submit, gives the unused reservation back, and wakes the client if it
// asked.
func (w *Worker) flushMem(q *memQueue) {
	n := q.txN
	if q.txResv == 0 {
		return
	}
	err := q.tx.Submit(q.txLens[:n])
	bytes := q.txBytes
	q.txN, q.txResv, q.txBytes = 0, 0, 0
	pc := &w.port[q.port]
	if err != nil {
		// Only a broken ring refuses: lengths were checked on enqueue.
		if !q.mp.corrupt.Swap(true) {
			q.mp.corrupts.Add(1)
		}
		w.ctr.drops[pipeline.DropTxFull].Add(uint64(n))
		pc.drops[pipeline.DropTxFull].Add(uint64(n))
		return
	}
	if n == 0 {
		return
	}
	pc.txPackets.Add(uint64(n))
	pc.txBytes.Add(bytes)
	w.ctr.tx.Add(uint64(n))
	if q.tx.NeedWakeup() {
		var one = [8]byte{1}
		_, _ = unix.Write(q.notifyFD, one[:])
	}
}

// memInfo fills the API view of a memring port.
func (p *afxdpPort) memInfo(pi *PortInfo) {
	mp := p.mem
	mp.mu.Lock()
	defer mp.mu.Unlock()
	pi.State = "detached"
	if mp.sess != nil {
		pi.State = "attached"
		pi.PeerPID = int(mp.sess.PeerPID)
		pi.Hugepages = mp.sess.Hugepages
		for _, r := range mp.queues {
			pi.Queues = append(pi.Queues, r.q.qp)
			pi.Worker = append(pi.Worker, r.worker)
		}
	}
}
