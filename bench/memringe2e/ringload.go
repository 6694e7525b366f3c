package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
	"github.com/vswitch/vswitch/memring"
	"github.com/vswitch/vswitch/switch/affinity"
)

// sinkCheck keeps the sink's reads of every frame from being optimised away.
var sinkCheck byte

// ringBatch is frames per Reserve and per Recv, the switch's batch size.
const ringBatch = 64

// ringPair is the two memring clients of the memring path: the generator
// on m1 (frames from e2e.SrcMAC) and the sink on m2 (the station
// e2e.DstMAC). Both are used from one goroutine.
type ringPair struct {
	gen, sink     *memring.Conn
	genTx, sinkTx *memring.Tx
	genRx, sinkRx *memring.Rx
	views         [][]byte
	frameSize     int
}

func dialPair(sock string) (*ringPair, error) {
	gen, err := memring.Dial(sock, "m1")
	if err != nil {
		return nil, err
	}
	sink, err := memring.Dial(sock, "m2")
	if err != nil {
		gen.Close()
		return nil, err
	}
	p := &ringPair{gen: gen, sink: sink, views: make([][]byte, ringBatch),
		frameSize: gen.Region().Config().FrameSize}
	p.genTx, p.genRx = gen.Queue(0)
	p.sinkTx, p.sinkRx = sink.Queue(0)
	return p, nil
}

func (p *ringPair) Close() error { return errors.Join(p.gen.Close(), p.sink.Close()) }

// prime makes the switch learn both stations: the sink sends one probe to
// the generator's MAC (flooded to m1, the only other port, since the switch
// does not know that MAC yet), the generator answers with one probe to the
// sink. It waits for each to arrive, which also proves forwarding both ways.
func (p *ringPair) prime(ctx context.Context, timeout time.Duration) error {
	a := defaultProbeAddrs()
	steps := []struct {
		tx   *memring.Tx
		c    *memring.Conn
		rx   *memring.Rx
		addr probeAddrs
		what string
	}{
		{p.sinkTx, p.sink, p.genRx, a.reversed(), "m2 -> m1"},
		{p.genTx, p.gen, p.sinkRx, a, "m1 -> m2"},
	}
	buf := make([]byte, probeMinSize)
	for _, s := range steps {
		n, err := buildProbe(buf, probeMinSize, s.addr, ^uint64(0), 0)
		if err != nil {
			return err
		}
		if sent, err := s.tx.Send([][]byte{buf[:n]}); sent != 1 || err != nil {
			return fmt.Errorf("prime %s: send: %d, %v", s.what, sent, err)
		}
		s.c.Notify(0)
		deadline := time.Now().Add(timeout)
		for {
			got, err := s.rx.Recv(p.views)
			if err != nil {
				return fmt.Errorf("prime %s: %w", s.what, err)
			}
			s.rx.Release()
			if got > 0 {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("prime %s: no frame through the switch within %s", s.what, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// template writes frame into every buffer of the generator's ring: a
// reservation of the whole ring, once the switch has given every slot back,
// covers each buffer once. Nothing is submitted.
func (p *ringPair) template(ctx context.Context, frame []byte) error {
	size := p.gen.Region().Config().RingSize
	deadline := time.Now().Add(time.Second)
	for p.genTx.Reserve(size) != size {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("generator ring: the switch did not give all %d slots back within 1s", size)
		}
		time.Sleep(time.Millisecond)
	}
	for i := range size {
		copy(p.genTx.Buffer(i), frame)
	}
	p.genTx.Reserve(0)
	return nil
}

// blast runs the generator and the sink in one loop on one thread pinned
// to cpu for dur: reserve up to 64 slots on m1 and submit them, then take
// whatever m2 has. The generator writes only the 64-byte header line of
// each frame (the rest of every buffer keeps the template written before
// the run), like the XDP live-frames generator of the veth path,
// which re-sends one template and rewrites only the source port. The sink
// reads the EtherType and IP protocol of every frame, like the XDP sink.
// After dur the sink drains until m2 stays empty for 20 ms; the rate is
// received frames over the sending time, as in bench/e2e.
func (p *ringPair) blast(ctx context.Context, size int, dur time.Duration, cpu int) (rep e2e.Rep, ringFull uint64, err error) {
	frame, ferr := e2e.BuildUDPFrame(e2e.FrameSpec{
		Size: size, Flows: 1, SrcMAC: e2e.SrcMAC, DstMAC: e2e.DstMAC, SrcIP: e2e.SrcIP, DstIP: e2e.DstIP,
		SrcPort: 1024, DstPort: 9, Checksum: true,
	})
	if ferr != nil {
		return rep, 0, ferr
	}
	if size > p.frameSize {
		return rep, 0, fmt.Errorf("frame %d B does not fit the port's %d B buffers", size, p.frameSize)
	}
	head := frame[:min(64, len(frame))]
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := affinity.PinLocked(cpu); err != nil {
		return rep, 0, err
	}

	lens := make([]int, ringBatch)
	for i := range lens {
		lens[i] = size
	}
	tx, rx, views := p.genTx, p.sinkRx, p.views
	if err := p.template(ctx, frame); err != nil {
		return rep, 0, err
	}
	var sent, recv, full uint64
	var sink byte
	take := func() error {
		n, err := rx.Recv(views)
		if err != nil {
			return err
		}
		if n > 0 {
			for _, f := range views[:n] {
				sink ^= f[12] ^ f[23]
			}
			rx.Release()
			recv += uint64(n)
		}
		return nil
	}
	cpu0, err := e2e.ReadCPUTimes()
	if err != nil {
		return rep, 0, err
	}
	start := time.Now()
	end := start.Add(dur)
	for iter := 0; ; iter++ {
		if iter&255 == 0 && (time.Now().After(end) || ctx.Err() != nil) {
			break
		}
		if n := tx.Reserve(ringBatch); n > 0 {
			for i := range n {
				copy(tx.Buffer(i), head)
			}
			if err := tx.Submit(lens[:n]); err != nil {
				return rep, 0, fmt.Errorf("generator submit: %w", err)
			}
			p.gen.Notify(0)
			sent += uint64(n)
		} else {
			full++
		}
		if err := take(); err != nil {
			return rep, 0, fmt.Errorf("sink recv: %w", err)
		}
	}
	elapsed := time.Since(start)
	cpu1, err := e2e.ReadCPUTimes()
	if err != nil {
		return rep, 0, err
	}
	for quiet := time.Now(); time.Since(quiet) < 20*time.Millisecond; {
		before := recv
		if err := take(); err != nil {
			return rep, 0, fmt.Errorf("sink recv: %w", err)
		}
		if recv != before {
			quiet = time.Now()
		}
	}
	sinkCheck = sink // keeps the header reads
	rep = e2e.Rep{Sent: sent, Received: recv, Elapsed: elapsed.Seconds(), CPUBusy: e2e.BusyPercent(cpu0, cpu1)}
	rep.TxMpps = float64(sent) / elapsed.Seconds() / 1e6
	rep.RxMpps = float64(recv) / elapsed.Seconds() / 1e6
	return rep, full, ctx.Err()
}
