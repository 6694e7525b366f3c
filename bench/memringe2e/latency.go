package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/vswitch/vswitch/switch/affinity"
)

// clockBase anchors the probes' timestamps: nanoseconds since it on Go's
// monotonic clock. Sender and receiver are in this one process, so no
// clock crosses a process or namespace boundary.
var clockBase = time.Now()

func monoNs() int64 { return int64(time.Since(clockBase)) }

// probeEndpoints is one path's pair of clients for the latency run: Send
// puts one probe frame into the path, Poll hands every probe that came out
// of the other end to got, without blocking.
type probeEndpoints interface {
	Send(frame []byte) error
	Poll(got func(frame []byte, rxNs int64)) error
}

// LatencyResult is one path's latency run at one frame size.
type LatencyResult struct {
	Path      string       `json:"path"`
	Size      int          `json:"size"`
	RatePPS   float64      `json:"rate_pps"`
	DurationS float64      `json:"duration_s"`
	Scheduled uint64       `json:"scheduled"` // probes the rate and duration call for
	Sent      uint64       `json:"sent"`      // fewer: the loop was not scheduled in time
	Received  uint64       `json:"received"`
	Discarded uint64       `json:"warmup_discarded"`
	Lost      uint64       `json:"lost"`
	Stats     LatencyStats `json:"latency"`
	// ForeignPct: CPU of processes outside the run, % of one core.
	ForeignPct float64 `json:"foreign_cpu_pct"`
	Error      string  `json:"error,omitempty"`
}

// latencyConfig paces the probes.
type latencyConfig struct {
	Size   int
	Rate   float64       // probes per second
	Dur    time.Duration // sending time, warm-up included
	Warmup time.Duration // probes sent before this are not counted
	CPU    int
}

// measureLatency sends probes at cfg.Rate on a fixed schedule and polls
// the receiving end in between, on one thread pinned to cfg.CPU: send when
// a probe is due, otherwise poll. One-way latency is the poll's receive
// time minus the send time written into the probe just before it was
// handed to the path. If the loop falls behind (a preemption) it does not
// send a burst to catch up: the next probe is due one interval later.
func measureLatency(ctx context.Context, ep probeEndpoints, cfg latencyConfig) (LatencyResult, error) {
	res := LatencyResult{Size: cfg.Size, RatePPS: cfg.Rate, DurationS: cfg.Dur.Seconds(),
		Scheduled: uint64(cfg.Dur.Seconds() * cfg.Rate)}
	if cfg.Rate <= 0 || cfg.Dur <= cfg.Warmup {
		return res, errors.New("latency: need a positive rate and a duration longer than the warm-up")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := affinity.PinLocked(cfg.CPU); err != nil {
		return res, err
	}

	interval := int64(float64(time.Second) / cfg.Rate)
	expect := uint64(cfg.Dur.Seconds()*cfg.Rate) + 16
	lat := make([]int64, 0, expect)
	seen := make([]bool, expect)
	buf := make([]byte, cfg.Size)
	var firstCounted uint64 = ^uint64(0)
	var perr error
	// Sequence numbers start at a per-run base, so a late probe of an
	// earlier run (same path, other size) is not taken for one of ours.
	base := uint64(monoNs()) << 8
	got := func(f []byte, rxNs int64) {
		seq, txNs, err := parseProbe(f)
		seq -= base
		if err != nil || seq >= uint64(len(seen)) || seen[seq] {
			return // priming frame, an earlier run's probe, a stray, or a duplicate
		}
		seen[seq] = true
		res.Received++
		if seq >= firstCounted {
			lat = append(lat, rxNs-txNs)
		} else {
			res.Discarded++
		}
	}
	start := monoNs()
	warmEnd := start + int64(cfg.Warmup)
	end := start + int64(cfg.Dur)
	next := start
	var seq uint64
	for {
		now := monoNs()
		if now >= end || ctx.Err() != nil {
			break
		}
		if now >= next && seq < expect {
			if now >= warmEnd && firstCounted == ^uint64(0) {
				firstCounted = seq
			}
			ts := monoNs()
			n, err := buildProbe(buf, cfg.Size, defaultProbeAddrs(), base+seq, ts)
			if err != nil {
				return res, err
			}
			if err := ep.Send(buf[:n]); err != nil {
				return res, fmt.Errorf("send probe %d: %w", seq, err)
			}
			seq++
			res.Sent++
			if next += interval; next < now {
				next = now + interval
			}
		}
		if err := ep.Poll(got); err != nil {
			perr = err
			break
		}
	}
	// Let the last probes arrive (the client thread can be preempted for
	// hundreds of ms on a busy machine).
	for drainEnd := monoNs() + int64(500*time.Millisecond); monoNs() < drainEnd && perr == nil; {
		perr = ep.Poll(got)
	}
	if perr != nil {
		return res, fmt.Errorf("poll: %w", perr)
	}
	res.Lost = res.Sent - min(res.Received, res.Sent)
	res.Stats = summarizeLatency(lat)
	return res, ctx.Err()
}
