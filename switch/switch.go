package vswitch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/switch/xsk"
)

// Switch is a running datapath: workers, ports, the FDB. It implements
// Control. Control-plane methods serialize on mu; workers never take it.
type Switch struct {
	cfg   *Config
	log   *zap.Logger
	fdb   *FDB
	ports atomic.Pointer[portTable]
	clock atomic.Uint32 // seconds since start, advanced by workers
	start time.Time

	workers []*Worker
	txOwn   [MaxPorts]atomic.Int32 // worker that owns queue 0 of each port

	mu       sync.Mutex
	live     map[string]*afxdpPort
	gen      atomic.Uint64
	persist  bool
	stopOnce sync.Once
	stopped  chan struct{}

	rates rateSampler

	// ph holds the peephole responders' tables and stages.
	ph peepholeState
	// rt is the gateway (routing, ACL, flow caches); nil without a router.
	rt *routerState
	// initial is the state file read at start (nil when there was none).
	initial *state

	// memSrv is the memring control server, started with the first
	// memring port; memByName maps memring port names to their ports
	// for its handler, which must not take mu.
	memSrv    *memring.Server
	memByName sync.Map
}

// txBudget is the copy-mode frames one TX kick may send: a worker's whole
// batch (64) and what a second poll adds while the kernel is busy, so a
// flush is one sendto instead of a kick per 32 frames.
const txBudget = 256

// bindRetry bounds how long AddPort waits for the kernel to release a queue.
const bindRetry = 3 * time.Second

// New builds a switch from cfg and starts its workers; it adds no ports.
func New(cfg *Config, log *zap.Logger) (*Switch, error) {
	sw := &Switch{
		cfg: cfg, log: log, fdb: NewFDB(cfg.FDB.Size), start: time.Now(),
		live: map[string]*afxdpPort{}, stopped: make(chan struct{}),
	}
	sw.ports.Store(&portTable{})
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, fmt.Errorf("new switch: %w", err)
	}
	sw.initial = st
	phSpec := cfg.Peephole
	if st != nil && st.Peephole != nil {
		// Runtime edits recorded in the state file win over the config
		// file, as for ports.
		phSpec.Bindings, phSpec.DNS = st.Peephole.Bindings, st.Peephole.DNS
		log.Info("peephole tables from state file", zap.String("path", cfg.StateFile),
			zap.Int("bindings", len(phSpec.Bindings)), zap.Int("dns_records", len(phSpec.DNS.Records)))
	}
	if err := sw.initPeephole(phSpec); err != nil {
		return nil, fmt.Errorf("new switch: %w", err)
	}
	rtSpec := cfg.Router
	if st != nil && st.Router != nil && rtSpec.Enabled() {
		rtSpec.Routes, rtSpec.ACL = st.Router.Routes, st.Router.ACL
		log.Info("router routes and ACL from state file", zap.String("path", cfg.StateFile),
			zap.Int("routes", len(rtSpec.Routes)), zap.Int("acl_rules", len(rtSpec.ACL.Rules)))
	}
	if err := sw.initRouter(rtSpec); err != nil {
		return nil, fmt.Errorf("new switch: %w", err)
	}
	for i := range sw.txOwn {
		sw.txOwn[i].Store(-1)
	}
	n := cfg.Workers.Count
	for i := 0; i < n; i++ {
		umem, err := xsk.NewUmem(xsk.DefaultUmemConfig)
		if err != nil {
			sw.Stop()
			return nil, fmt.Errorf("new switch: worker %d: %w", i, err)
		}
		cpu := -1
		if len(cfg.Workers.CPUs) > 0 {
			cpu = cfg.Workers.CPUs[i]
		}
		w, err := newWorker(sw, i, cpu, umem, sw.pipelineFor(i))
		if err != nil {
			umem.Close()
			sw.Stop()
			return nil, fmt.Errorf("new switch: worker %d: %w", i, err)
		}
		if sw.rt != nil {
			w.gw = sw.rt.workers[i]
		}
		sw.workers = append(sw.workers, w)
	}
	// Handoff rings: one per ordered pair of workers.
	for _, w := range sw.workers {
		w.outbound = make([]*handoff, n)
	}
	for _, src := range sw.workers {
		for _, dst := range sw.workers {
			if src == dst {
				continue
			}
			h := newHandoff(1024)
			src.outbound[dst.id] = h
			dst.inbound = append(dst.inbound, h)
		}
	}
	for _, w := range sw.workers {
		go w.run()
	}
	go sw.housekeeping()
	return sw, nil
}

// tick advances the switch clock; workers call it from housekeeping.
func (sw *Switch) tick(now time.Time) {
	sw.clock.Store(uint32(now.Sub(sw.start) / time.Second))
}

func (sw *Switch) txOwner(port uint16) int { return int(sw.txOwn[port].Load()) }

// housekeeping ages the FDB and samples rates once a second.
func (sw *Switch) housekeeping() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-sw.stopped:
			return
		case now := <-t.C:
			sw.tick(now)
			aging := uint32(sw.cfg.FDB.Aging / time.Second)
			if c := sw.clock.Load(); c > aging {
				sw.fdb.Expire(c - aging)
			}
			sw.expireGleaned(sw.clock.Load())
			sw.expireConns()
			sw.reapCorrupt()
			sw.rates.sample(sw)
		}
	}
}

// LoadPorts adds the configured ports (or those recorded in the state file,
// which wins) at start. Persistence is enabled afterwards.
func (sw *Switch) LoadPorts() error {
	specs := sw.cfg.Ports
	if st := sw.initial; st != nil {
		sw.log.Info("ports from state file", zap.String("path", sw.cfg.StateFile), zap.Int("ports", len(st.Ports)))
		specs = st.Ports
	}
	for i, s := range specs {
		if _, err := sw.AddPort(s); err != nil {
			return fmt.Errorf("ports[%d] (%s): %w", i, s.Name, err)
		}
	}
	sw.mu.Lock()
	sw.persist = true
	sw.mu.Unlock()
	return nil
}

// AddPort implements Control.
func (sw *Switch) AddPort(spec PortSpec) (PortInfo, error) {
	spec.SetDefaults()
	if err := spec.Validate(""); err != nil {
		return PortInfo{}, err
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if _, ok := sw.live[spec.Name]; ok {
		return PortInfo{}, fmt.Errorf("add port %s: %w", spec.Name, ErrExists)
	}
	for _, p := range sw.live {
		if spec.Interface != "" && p.spec.Interface == spec.Interface {
			return PortInfo{}, fmt.Errorf("add port %s: interface %s is port %s: %w", spec.Name, spec.Interface, p.spec.Name, ErrExists)
		}
	}
	// Index: the lowest one no live port holds (a detached memring port
	// keeps its index while it is out of the port table).
	var used [MaxPorts]bool
	for _, p := range sw.live {
		used[p.index] = true
	}
	idx := -1
	for i := 0; i < MaxPorts; i++ {
		if !used[i] {
			idx = i
			break
		}
	}
	if idx < 0 {
		return PortInfo{}, fmt.Errorf("add port %s: all %d port slots used", spec.Name, MaxPorts)
	}
	if spec.Type == PortMemring {
		p, err := sw.addMemPortLocked(spec, uint16(idx))
		if err != nil {
			return PortInfo{}, fmt.Errorf("add port %s: %w", spec.Name, err)
		}
		sw.live[spec.Name] = p
		sw.refreshGuardLocked(nil)
		sw.log.Info("memring port added", zap.String("port", spec.Name), zap.Int("index", idx),
			zap.String("socket", sw.cfg.MemringSocket))
		sw.saveOrLog()
		return p.info(), nil
	}
	ifc, err := net.InterfaceByName(spec.Interface)
	if err != nil {
		return PortInfo{}, &FieldError{Field: "interface", Msg: fmt.Sprintf("%s: %v", spec.Interface, err)}
	}
	nq, err := linkQueues(spec.Interface)
	if err != nil {
		return PortInfo{}, fmt.Errorf("add port %s: %w", spec.Name, err)
	}
	if spec.Queues > 0 && spec.Queues < nq {
		nq = spec.Queues
	}
	p := &afxdpPort{spec: spec, index: uint16(idx), ifindex: ifc.Index, mac: ifc.HardwareAddr, xdpMode: spec.XDPMode}
	if p.prog, err = attachProgram(ifc.Index, nq, spec.XDPMode); err != nil {
		return PortInfo{}, fmt.Errorf("add port %s: %w", spec.Name, err)
	}
	fail := func(err error) (PortInfo, error) {
		sw.teardown(p)
		return PortInfo{}, fmt.Errorf("add port %s: %w", spec.Name, err)
	}
	// Queues go round-robin over the workers, starting at the least loaded
	// one, so single-queue ports spread over workers too.
	first := sw.leastLoadedWorker()
	ring := uint32(spec.RingSize)
	for q := 0; q < nq; q++ {
		w := sw.workers[(first+q)%len(sw.workers)]
		var sock *xsk.Socket
		var serr error
		// The kernel releases a queue some time after the previous socket
		// on it closed (a port deleted and re-added, a daemon restarted),
		// and answers EBUSY until then; retry briefly on the control path.
		for deadline := time.Now().Add(bindRetry); ; {
			w.do(func(w *Worker) {
				sock, serr = xsk.NewSocket(w.umem, xsk.SocketConfig{Ifindex: ifc.Index, QueueID: q, Bind: spec.Bind, TxBudget: txBudget,
					RxSize: ring, TxSize: ring, FillSize: ring, CompSize: ring})
				if serr != nil {
					return
				}
				w.rxq = append(w.rxq, &rxQueue{port: p.index, queue: q, sock: sock})
				w.load.Add(1)
				if w.txSock[p.index] == nil {
					w.txSock[p.index] = sock
				}
			})
			if !errors.Is(serr, unix.EBUSY) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if serr != nil {
			return fail(serr)
		}
		p.queues = append(p.queues, portQueue{id: q, worker: w.id, sock: sock})
	}
	sw.txOwn[p.index].Store(int32(p.queues[0].worker))
	// The guard knows the port before its frames reach the pipeline.
	sw.refreshGuardLocked(p)
	sw.publish(func(t *portTable) {
		e := &portEntry{index: p.index, name: spec.Name, vlan: compileVLAN(spec.VLAN)}
		t.byIndex[p.index] = e
		t.list = append(t.list, e)
	})
	for _, q := range p.queues {
		if err := p.prog.Register(q.id, q.sock.FD()); err != nil {
			return fail(fmt.Errorf("register queue %d: %w", q.id, err))
		}
	}
	sw.live[spec.Name] = p
	sw.log.Info("port added", zap.String("port", spec.Name), zap.String("interface", spec.Interface),
		zap.Int("index", idx), zap.Int("queues", nq), zap.String("xdp_mode", spec.XDPMode),
		zap.Bool("zerocopy", p.queues[0].sock.ZeroCopy))
	if err := sw.saveLocked(); err != nil {
		sw.log.Error("persist state", zap.Error(err))
	}
	return p.info(), nil
}

// publish installs a modified copy of the port table and bumps the generation.
func (sw *Switch) publish(edit func(t *portTable)) {
	old := sw.ports.Load()
	nt := &portTable{byIndex: old.byIndex, list: append([]*portEntry(nil), old.list...), gen: sw.gen.Add(1)}
	edit(nt)
	sw.ports.Store(nt)
}

// DelPort implements Control.
func (sw *Switch) DelPort(name string) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p, ok := sw.live[name]
	if !ok {
		return fmt.Errorf("delete port %s: %w", name, ErrNotFound)
	}
	sw.teardown(p)
	delete(sw.live, name)
	sw.refreshGuardLocked(nil)
	sw.log.Info("port deleted", zap.String("port", name))
	if err := sw.saveLocked(); err != nil {
		sw.log.Error("persist state", zap.Error(err))
	}
	return nil
}

// teardown detaches the program (RX stops), unpublishes the port, closes its
// sockets on their workers and forgets its FDB entries.
func (sw *Switch) teardown(p *afxdpPort) {
	if p.mem != nil {
		sw.delMemPortLocked(p)
		return
	}
	if p.prog != nil {
		if err := detachXDP(p.ifindex); err != nil {
			sw.log.Warn("detach xdp program", zap.String("port", p.spec.Name), zap.Error(err))
		}
	}
	sw.publish(func(t *portTable) {
		t.byIndex[p.index] = nil
		for i, e := range t.list {
			if e.index == p.index {
				t.list = append(t.list[:i], t.list[i+1:]...)
				break
			}
		}
	})
	sw.txOwn[p.index].Store(-1)
	for _, q := range p.queues {
		sock := q.sock
		sw.workers[q.worker].do(func(w *Worker) {
			for i, r := range w.rxq {
				if r.sock == sock {
					w.load.Add(-1)
					w.rxq = append(w.rxq[:i], w.rxq[i+1:]...)
					break
				}
			}
			if w.txSock[p.index] == sock {
				w.txSock[p.index] = nil
			}
			w.closedKicks += sock.Kicks
			w.closedKickErrors += sock.KickErrors
			if lost := sock.Close(); lost > 0 {
				// Frames the kernel still held; the UMEM is smaller by them
				// until the worker's UMEM is recreated.
				w.umemLost += uint64(lost)
				w.log.Warn("frames lost with closed socket", zap.String("port", p.spec.Name),
					zap.Int("frames", lost), zap.Uint64("total_lost", w.umemLost))
			}
			// Keep the UMEM shareable through any socket still bound.
			for _, r := range w.rxq {
				w.umem.SetOwner(r.sock)
				break
			}
		})
	}
	if p.prog != nil {
		p.prog.Close()
	}
	sw.fdb.FlushPort(p.index)
}

// Stop deletes every port (detaching every XDP program) and stops the
// workers. It does not touch the state file.
func (sw *Switch) Stop() {
	sw.stopOnce.Do(func() {
		sw.mu.Lock()
		sw.persist = false
		for name, p := range sw.live {
			sw.teardown(p)
			delete(sw.live, name)
		}
		if sw.memSrv != nil {
			if err := sw.memSrv.Close(); err != nil {
				sw.log.Warn("close memring socket", zap.Error(err))
			}
		}
		sw.mu.Unlock()
		close(sw.stopped)
		for _, w := range sw.workers {
			w.stop.Store(true)
			w.wake()
		}
		for _, w := range sw.workers {
			<-w.done
			w.umem.Close()
			unix.Close(w.wakeFD)
		}
	})
}

// Ports implements Control.
func (sw *Switch) Ports() []PortInfo {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sortedPortInfos(sw.live)
}

// Status implements Control.
func (sw *Switch) Status() Status {
	sw.mu.Lock()
	n := len(sw.live)
	sw.mu.Unlock()
	return Status{
		Version: Version, PID: os.Getpid(), Started: sw.start, UptimeSec: time.Since(sw.start).Seconds(),
		Workers: len(sw.workers), PollMode: sw.cfg.Workers.PollMode, Ports: n,
		FDBEntries: sw.fdb.Len(), Generation: sw.gen.Load(),
	}
}

// FDB implements Control.
func (sw *Switch) FDB() []FDBEntry {
	tbl := sw.ports.Load()
	now := sw.clock.Load()
	var out []FDBEntry
	sw.fdb.Walk(func(r FDBRecord) {
		name := fmt.Sprintf("#%d", r.Port)
		if e := tbl.get(r.Port); e != nil {
			name = e.name
		}
		age := 0.0
		if !r.Static && now > r.Seen {
			age = float64(now - r.Seen)
		}
		out = append(out, FDBEntry{MAC: r.MAC.String(), VLAN: r.VLAN, Port: name, AgeSec: age, Static: r.Static})
	})
	return out
}

// FlushFDB implements Control.
func (sw *Switch) FlushFDB() int { return sw.fdb.Flush(false) }
