package e2e

import "testing"

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	a := []byte("cpu  10 0 10 100 0 0 0 0 0 0\n" +
		"cpu0 5 0 5 50 0 0 0 0 7 0\n" +
		"cpu1 5 0 5 50 0 0 0 0 0 0\n" +
		"intr 123\nctxt 456\n")
	b := []byte("cpu  0 0 0 0 0 0 0 0 0 0\n" +
		"cpu0 95 0 5 50 0 0 0 0 9 0\n" + // +90 busy, +90 total
		"cpu1 5 0 5 140 10 0 0 0 0 0\n") // +100 idle/iowait, +100 total
	sa, err := ParseProcStat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ParseProcStat(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(sa) != 2 || sa[0] != (CPUTimes{Busy: 10, Total: 60}) {
		t.Fatalf("parsed %+v (guest must not be counted twice)", sa)
	}
	got := BusyPercent(sa, sb)
	if len(got) != 2 || got[0] != 100 || got[1] != 0 {
		t.Fatalf("busy %v, want [100 0]", got)
	}
	if _, err := ParseProcStat([]byte("intr 1\n")); err == nil {
		t.Fatal("no cpu lines: want error")
	}
	if _, err := ParseProcStat([]byte("cpux 1 2 3 4\n")); err == nil {
		t.Fatal("bad cpu name: want error")
	}
}

func TestReadCPUTimes(t *testing.T) {
	s, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) == 0 || s[0].Total == 0 {
		t.Fatalf("sample %+v", s)
	}
}
