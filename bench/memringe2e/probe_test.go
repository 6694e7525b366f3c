package main

import (
	"errors"
	"testing"
)

func TestProbeRoundTrip(t *testing.T) {
	for _, size := range []int{64, 128, 1500} {
		buf := make([]byte, 2048)
		n, err := buildProbe(buf, size, defaultProbeAddrs(), 12345, 987654321)
		if err != nil || n != size {
			t.Fatalf("size %d: build: %d, %v", size, n, err)
		}
		seq, ts, err := parseProbe(buf[:n])
		if err != nil || seq != 12345 || ts != 987654321 {
			t.Errorf("size %d: parse: seq %d ts %d err %v", size, seq, ts, err)
		}
	}
}

func TestProbeRejects(t *testing.T) {
	buf := make([]byte, 64)
	if _, err := buildProbe(buf, 60, defaultProbeAddrs(), 1, 1); err == nil {
		t.Error("60-byte probe built; the body does not fit")
	}
	n, _ := buildProbe(buf, 64, defaultProbeAddrs(), 1, 1)
	tests := []struct {
		name string
		off  int
	}{{"ethertype", 12}, {"protocol", 23}, {"icmp type", 34}, {"ident", 38}, {"magic", 42}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), buf[:n]...)
			f[tt.off] ^= 0x5a
			if _, _, err := parseProbe(f); !errors.Is(err, ErrNotProbe) {
				t.Errorf("corrupt %s accepted: %v", tt.name, err)
			}
		})
	}
	if _, _, err := parseProbe(buf[:40]); !errors.Is(err, ErrNotProbe) {
		t.Errorf("short frame accepted: %v", err)
	}
}

func TestSummarizeLatency(t *testing.T) {
	ns := make([]int64, 0, 1000)
	for i := 1000; i >= 1; i-- {
		ns = append(ns, int64(i)*1000) // 1..1000 us, reversed
	}
	s := summarizeLatency(ns)
	if s.Samples != 1000 || s.MinUs != 1 || s.MaxUs != 1000 || s.P50Us != 500 || s.P99Us != 990 || s.P999Us != 999 {
		t.Errorf("got %+v", s)
	}
	if z := summarizeLatency(nil); z.Samples != 0 {
		t.Errorf("empty: %+v", z)
	}
}
