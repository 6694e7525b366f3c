package vswitch

import (
	"sort"
	"sync"
	"time"

	"github.com/vswitch/vswitch/pipeline"
)

// rateSampler keeps the previous second's totals to turn counters into rates.
type rateSampler struct {
	mu       sync.Mutex
	at       time.Time
	portRx   map[string]uint64
	portTx   map[string]uint64
	workerRx []uint64
	workerTx []uint64
	busy     []uint64
	// results
	portRxPPS, portTxPPS     map[string]float64
	workerRxPPS, workerTxPPS []float64
	busyPct                  []float64
}

func (r *rateSampler) sample(sw *Switch) {
	st := sw.rawStats()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := st.Time
	dt := now.Sub(r.at).Seconds()
	n := len(st.Workers)
	if r.portRx != nil && dt > 0 {
		r.portRxPPS = map[string]float64{}
		r.portTxPPS = map[string]float64{}
		for _, p := range st.Ports {
			if prev, ok := r.portRx[p.Name]; ok {
				r.portRxPPS[p.Name] = float64(p.RxPackets-prev) / dt
				r.portTxPPS[p.Name] = float64(p.TxPackets-r.portTx[p.Name]) / dt
			}
		}
		r.workerRxPPS = make([]float64, n)
		r.workerTxPPS = make([]float64, n)
		r.busyPct = make([]float64, n)
		for i, w := range sw.workers {
			r.workerRxPPS[i] = float64(st.Workers[i].RxPackets-r.workerRx[i]) / dt
			r.workerTxPPS[i] = float64(st.Workers[i].TxPackets-r.workerTx[i]) / dt
			b := w.ctr.busyNs.Load()
			r.busyPct[i] = min(100, 100*float64(b-r.busy[i])/float64(now.Sub(r.at)))
		}
	}
	r.at = now
	r.portRx = map[string]uint64{}
	r.portTx = map[string]uint64{}
	for _, p := range st.Ports {
		r.portRx[p.Name] = p.RxPackets
		r.portTx[p.Name] = p.TxPackets
	}
	r.workerRx = make([]uint64, n)
	r.workerTx = make([]uint64, n)
	r.busy = make([]uint64, n)
	for i, w := range sw.workers {
		r.workerRx[i] = st.Workers[i].RxPackets
		r.workerTx[i] = st.Workers[i].TxPackets
		r.busy[i] = w.ctr.busyNs.Load()
	}
}

// rawStats sums the workers' counters without rates.
func (sw *Switch) rawStats() Stats {
	st := Stats{Time: time.Now()}
	// Held for the whole walk: a port deleted meanwhile would close the
	// sockets whose kernel counters are read below.
	sw.mu.Lock()
	defer sw.mu.Unlock()
	ports := make([]*afxdpPort, 0, len(sw.live))
	for _, p := range sw.live {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].index < ports[j].index })
	for _, p := range ports {
		ps := PortStats{Name: p.spec.Name, DropsBy: map[string]uint64{}}
		for _, w := range sw.workers {
			c := &w.port[p.index]
			ps.RxPackets += c.rxPackets.Load()
			ps.RxBytes += c.rxBytes.Load()
			ps.TxPackets += c.txPackets.Load()
			ps.TxBytes += c.txBytes.Load()
			for r := range c.drops {
				if v := c.drops[r].Load(); v > 0 {
					ps.DropsBy[pipeline.DropReason(r).String()] += v
					ps.Drops += v
				}
			}
		}
		for _, q := range p.queues {
			if ks, err := q.sock.Stats(); err == nil {
				ps.XSKRxDropped += ks.Rx_dropped
				ps.XSKRxRingFull += ks.Rx_ring_full
				ps.XSKFillRingEmpty += ks.Rx_fill_ring_empty_descs
				ps.XSKTxInvalid += ks.Tx_invalid_descs
			}
		}
		if p.mem != nil {
			ps.MemringBadDesc, ps.MemringCorrupt = p.mem.badCounts()
		}
		st.Ports = append(st.Ports, ps)
	}
	for _, w := range sw.workers {
		ws := WorkerStats{
			ID: w.id, CPU: w.cpu, DropsBy: map[string]uint64{},
			RxPackets: w.ctr.rx.Load(), TxPackets: w.ctr.tx.Load(),
			Forwarded: w.ctr.forwarded.Load(), Flooded: w.ctr.flooded.Load(), Replied: w.ctr.replied.Load(),
			Polls: w.ctr.polls.Load(), Sleeps: w.ctr.sleeps.Load(), SleepNs: w.ctr.sleepNs.Load(), Pending: w.ctr.pending.Load(), Batches: w.ctr.batches.Load(),
			Kicks: w.ctr.kicks.Load(), KickErrors: w.ctr.kickErrors.Load(), FreeFrames: w.ctr.free.Load(),
		}
		for r := range w.ctr.drops {
			if v := w.ctr.drops[r].Load(); v > 0 {
				ws.DropsBy[pipeline.DropReason(r).String()] = v
				ws.Drops += v
			}
		}
		st.Workers = append(st.Workers, ws)
	}
	return st
}

// Stats implements Control: counters plus the rates of the last second.
func (sw *Switch) Stats() Stats {
	st := sw.rawStats()
	st.Peephole = sw.PeepholeStats()
	if fs, err := sw.FlowStats(); err == nil {
		st.Gateway = &fs
	}
	r := &sw.rates
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range st.Ports {
		st.Ports[i].RxPPS = r.portRxPPS[st.Ports[i].Name]
		st.Ports[i].TxPPS = r.portTxPPS[st.Ports[i].Name]
	}
	for i := range st.Workers {
		if i < len(r.busyPct) {
			st.Workers[i].BusyPct = r.busyPct[i]
			st.Workers[i].RxPPS = r.workerRxPPS[i]
			st.Workers[i].TxPPS = r.workerTxPPS[i]
		}
	}
	return st
}
