package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// dyingDUT starts, and reports itself dead from its alive-th Alive call on,
// as a daemon killed during a repetition would be.
type dyingDUT struct {
	alive, calls int
	stopped      bool
}

func (d *dyingDUT) Note() string                           { return "fake" }
func (d *dyingDUT) Start(context.Context, *Topology) error { return nil }
func (d *dyingDUT) Diagnose(context.Context) string        { return "" }
func (d *dyingDUT) Config() string                         { return "fake config" }
func (d *dyingDUT) Stop() error                            { d.stopped = true; return nil }
func (d *dyingDUT) Alive() error {
	d.calls++
	if d.calls >= d.alive {
		return errors.New("exited: killed")
	}
	return nil
}

// TestRunDUTDropsRepOfDeadDUT: the repetition during which the DUT died is
// not recorded, the case says why, and the DUT is stopped.
func TestRunDUTDropsRepOfDeadDUT(t *testing.T) {
	s := &Settings{Flows: []int{1000}, Size: 64, Reps: 3}
	measured := 0
	cio := caseIO{
		ping: func(context.Context) error { return nil },
		measure: func(context.Context, int) (Rep, uint64, error) {
			measured++
			return Rep{Sent: 10, Received: 10, Elapsed: 1, RxMpps: 0.5}, 0, nil
		},
	}
	// Alive runs before and after each repetition: the 4th call is the
	// one after the second repetition.
	d := &dyingDUT{alive: 4}
	rs, cfg, err := runDUT(context.Background(), s, nil, CaseVswitchd, d, cio, io.Discard)
	if err != nil || cfg != "fake config" {
		t.Fatalf("runDUT: %v, config %q", err, cfg)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	if measured != 2 || len(r.Reps) != 1 || !strings.Contains(r.Error, "DUT died during repetition 2") {
		t.Fatalf("measured %d, kept %d reps, error %q; want 2 measured, 1 kept and the death of repetition 2", measured, len(r.Reps), r.Error)
	}
	if !d.stopped {
		t.Error("DUT not stopped")
	}
}
