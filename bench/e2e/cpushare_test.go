package e2e

import (
	"runtime"
	"testing"
	"time"
)

func TestCPUShare(t *testing.T) {
	s := CPUShare(runtime.NumCPU(), 200*time.Millisecond)
	if len(s) != runtime.NumCPU() {
		t.Fatalf("%d shares for %d cores", len(s), runtime.NumCPU())
	}
	for c, v := range s {
		// A spinner always runs some of the time; it cannot run more than
		// all of it.
		if v <= 0 || v > 100 {
			t.Errorf("cpu%d share %.1f%%, want in (0, 100]", c, v)
		}
	}
	t.Logf("shares: %s", FormatCPUShare(s))
}

func TestFormatCPUShare(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want string
	}{
		{nil, "not measured"},
		{[]float64{31.4, 99.6}, "cpu0 31%, cpu1 100%"},
		{[]float64{-1, 50}, "cpu0 ?, cpu1 50%"},
	} {
		if got := FormatCPUShare(c.in); got != c.want {
			t.Errorf("FormatCPUShare(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
