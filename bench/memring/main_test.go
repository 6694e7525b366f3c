package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vswitch/vswitch/bench/e2e"
)

func TestParseFlags(t *testing.T) {
	s, err := parseFlags([]string{"-memring", "/bin/memring", "-sizes", "64, 1500", "-cpus", "1,0", "-reps", "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Sizes, []int{64, 1500}) || s.CPUs != [2]int{1, 0} || s.Reps != 2 || s.Duration != 10*time.Second {
		t.Errorf("settings %+v", s)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-memring: required"},
		{[]string{"-memring", "m", "-sizes", "10"}, "-sizes"},
		{[]string{"-memring", "m", "-cpus", "0"}, "-cpus"},
		{[]string{"-memring", "m", "-duration", "10ms"}, "-duration"},
		{[]string{"-memring", "m", "extra"}, "unexpected argument"},
	} {
		if _, err := parseFlags(tc.args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestMemifArgs(t *testing.T) {
	got := strings.Join(memifArgs(1, 0, "pfx-tx", "/tmp/m.sock", true, 1500), " ")
	for _, want := range []string{"-l 1,0 --main-lcore 1", "--file-prefix pfx-tx", "--no-huge -m 1024",
		"net_memif0,role=server,id=0,socket=/tmp/m.sock,socket-abstract=no", "--forward-mode=txonly", "--txpkts=1500", "--stats-period 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	if got := strings.Join(memifArgs(0, 1, "p", "s", false, 64), " "); !strings.Contains(got, "role=client") || !strings.Contains(got, "rxonly") {
		t.Errorf("client args %q", got)
	}
}

func TestPPSLines(t *testing.T) {
	log := `
  ######################## NIC statistics for port 0  ########################
  RX-packets: 100        RX-missed: 0          RX-bytes:  6400
  Throughput (since last show)
  Rx-pps:     19000000          Rx-bps:   9728000000
  Tx-pps:            0          Tx-bps:            0
  Rx-pps:     21000000          Rx-bps:   9728000000
`
	p := filepath.Join(t.TempDir(), "rx.log")
	os.WriteFile(p, []byte(log), 0o644)
	rx := ppsLines(p, "Rx-pps")
	if !reflect.DeepEqual(rx, []float64{19e6, 21e6}) || meanMpps(rx) != 20 {
		t.Errorf("Rx-pps %v mean %v", rx, meanMpps(rx))
	}
	if tx := ppsLines(p, "Tx-pps"); len(tx) != 1 || tx[0] != 0 {
		t.Errorf("Tx-pps %v", tx)
	}
}

func TestReportRatios(t *testing.T) {
	r := &Report{Settings: settings{Sizes: []int{64, 1500}, CPUs: [2]int{0, 1}, Reps: 3, Duration: 10 * time.Second}}
	reps := func(xs ...float64) []e2e.Rep {
		var out []e2e.Rep
		for _, x := range xs {
			out = append(out, e2e.Rep{RxMpps: x, CPUBusy: []float64{100, 100}})
		}
		return out
	}
	r.add(e2e.CaseResult{Case: "memring", Label: "memring", Size: 64, Reps: reps(20, 30, 25)})
	r.add(e2e.CaseResult{Case: "memif", Label: "memif", Size: 64, Reps: reps(10, 20, 40)})
	r.add(e2e.CaseResult{Case: "memring", Label: "memring", Size: 1500, Reps: reps(5)})
	r.add(e2e.CaseResult{Case: "memif", Label: "memif", Size: 1500, Error: "testpmd did not start"})
	r.ratios()
	if len(r.Ratios) != 2 || r.Ratios[0].MemringMemif == nil || *r.Ratios[0].MemringMemif != 1.25 {
		t.Fatalf("ratios %+v", r.Ratios)
	}
	if r.Ratios[1].MemringMemif != nil || r.Ratios[1].VsAnchor == nil {
		t.Errorf("1500 B ratio %+v", r.Ratios[1])
	}
	md := r.Markdown()
	for _, want := range []string{"| 64 | 25.000 | 20.000 | 1.25 | 19.851 | 1.26 |", "| 1500 | 5.000 | 0.000 | n/a |", "**error**: testpmd did not start"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	dir := t.TempDir()
	paths, err := r.write(dir)
	if err != nil || len(paths) != 2 {
		t.Fatalf("write: %v %v", paths, err)
	}
	if !strings.HasPrefix(filepath.Base(paths[0]), "memring-") {
		t.Errorf("paths %v", paths)
	}
}
