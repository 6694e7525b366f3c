package memringtest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vswitch/vswitch/memring"
)

func TestPair(t *testing.T) {
	p := NewPair(t, memring.Config{QueuePairs: 2, RingSize: 64})
	t.Logf("hugepages: %v", p.Hugepages)
	stx, srx := p.Switch.Queue(1, memring.SideSwitch)
	frame := bytes.Repeat([]byte{0xab}, 60)
	if n := p.Send(1, frame, frame[:14]); n != 2 {
		t.Fatalf("client Send = %d", n)
	}
	if got := p.Producer(ToSwitch(1)); got != 2 {
		t.Fatalf("producer word %d", got)
	}
	out := make([][]byte, 4)
	if n, err := srx.Recv(out); n != 2 || err != nil || !bytes.Equal(out[0], frame) || len(out[1]) != 14 {
		t.Fatalf("switch Recv = %d, %v", n, err)
	}
	srx.Release()
	if n, _ := stx.Send([][]byte{frame}); n != 1 {
		t.Fatal("switch Send failed")
	}
	if got := p.Recv(1, 8); len(got) != 1 || !bytes.Equal(got[0], frame) {
		t.Fatalf("client Recv = %q", got)
	}
	if p.Consumer(ToClient(1)) != 1 {
		t.Fatal("client did not release")
	}
}

func TestHostile(t *testing.T) {
	p := NewPair(t, memring.Config{RingSize: 64})
	_, srx := p.Switch.Queue(0, memring.SideSwitch)
	off, _ := p.Partition(ToClient(0)) // the other ring's partition
	p.WriteDesc(ToSwitch(0), 0, off, 60, 0)
	own, _ := p.Partition(ToSwitch(0))
	p.WriteDesc(ToSwitch(0), 1, own, 13, 0)
	p.SetProducer(ToSwitch(0), 2)
	out := make([][]byte, 4)
	if n, err := srx.Recv(out); n != 0 || err != nil {
		t.Fatalf("Recv = %d, %v", n, err)
	}
	if s := srx.Stats(); s.BadOffset != 1 || s.BadLen != 1 {
		t.Fatalf("stats %+v", s)
	}
	p.SetProducer(ToSwitch(0), 1000)
	if _, err := srx.Recv(out); !errors.Is(err, memring.ErrCorrupt) {
		t.Fatalf("Recv after a producer jump: %v", err)
	}
	srx.SetNeedWakeup(true)
	if p.Flags(ToSwitch(0)) != memring.FlagNeedWakeup {
		t.Fatal("flags word")
	}
}
