package e2e

import (
	"errors"
	"io"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestTestpmdArgs(t *testing.T) {
	n := NewNames(4242)
	got := TestpmdArgs(n.P0, n.P1, 0, 1, 0, "vsb39u-testpmd")
	want := []string{
		"-l", "0,1", "--main-lcore", "0", "--no-pci", "--no-huge", "-m", "1024", "--file-prefix", "vsb39u-testpmd",
		"--vdev", "net_af_xdp0,iface=" + n.P0 + ",start_queue=0,queue_count=1",
		"--vdev", "net_af_xdp1,iface=" + n.P1 + ",start_queue=0,queue_count=1",
		"--", "--forward-mode=io", "--nb-cores=1", "--total-num-mbufs=16384", "--auto-start", "--stats-period", "5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("args\n got %q\nwant %q", got, want)
	}
	// The main lcore follows the generator core, whatever the order.
	got = TestpmdArgs("a", "b", 3, 2, 0, "x")
	if got[1] != "3,2" || got[3] != "3" {
		t.Fatalf("lcores %q main %q", got[1], got[3])
	}
	// A ring size goes to testpmd's application arguments, after "--".
	got = TestpmdArgs("a", "b", 0, 1, 512, "x")
	if tail := got[len(got)-4:]; !reflect.DeepEqual(tail, []string{"--rxd", "512", "--txd", "512"}) {
		t.Fatalf("ring args %q", tail)
	}
}

func TestTestpmdNote(t *testing.T) {
	sw, err := newSwitch(CaseTestpmd, &Options{GenCPU: 0, SwCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sw.Note(), "DPDK 22.11 testpmd io, net_af_xdp (copy), 1 fwd lcore on cpu 1"; got != want {
		t.Fatalf("note %q, want %q", got, want)
	}
	sw, _ = newSwitch(CaseTestpmd, &Options{GenCPU: 0, SwCPU: 1, TestpmdRing: 1024})
	if got, want := sw.Note(), "DPDK 22.11 testpmd io, net_af_xdp (copy), 1 fwd lcore on cpu 1, 1024-descriptor rings"; got != want {
		t.Fatalf("note %q, want %q", got, want)
	}
	if CaseLabel(CaseTestpmd) != "dpdk-testpmd-io" {
		t.Fatalf("label %q", CaseLabel(CaseTestpmd))
	}
}

func TestTestpmdLog(t *testing.T) {
	log := []byte("EAL: Detected CPU lcores: 2\nio packet forwarding - ports=2 - cores=1 - streams=2 - NUMA support enabled\n")
	if !testpmdReady(log) || testpmdReady([]byte("EAL: Detected CPU lcores: 2\n")) {
		t.Fatal("ready line not recognised")
	}
	bad := []byte("EAL: failed to parse device \"net_af_xdp0\"\nEAL: Error - exiting with code: 1\n")
	if h := testpmdHint(bad); !strings.Contains(h, "librte-net-af-xdp23") {
		t.Fatalf("hint %q", h)
	}
	if h := testpmdHint(log); h != "" {
		t.Fatalf("hint for a good log: %q", h)
	}
	sw := &testpmdSwitch{child: child{logPath: t.TempDir() + "/testpmd.log", tail: testpmdTail}}
	if got := sw.logTail(); got != "(no log)" {
		t.Fatalf("tail %q", got)
	}
}

// A machine without DPDK gets a per-case error naming the packages, and a
// Stop after that failed Start is a no-op.
func TestTestpmdMissing(t *testing.T) {
	sw := &testpmdSwitch{genCPU: 0, cpu: 1, log: io.Discard,
		lookPath: func(string) (string, error) { return "", exec.ErrNotFound }}
	err := sw.Start(t.Context(), nil)
	if err == nil || err.Error() != TestpmdMissing {
		t.Fatalf("start: %v", err)
	}
	if !strings.Contains(TestpmdMissing, "dpdk-testpmd not installed (apt-get install dpdk-dev librte-net-af-xdp23 librte-mempool-ring23)") {
		t.Fatalf("message %q", TestpmdMissing)
	}
	if err := sw.Stop(); err != nil {
		t.Fatalf("stop after failed start: %v", err)
	}
	// Same core for main and forwarding lcore: refused before anything runs.
	sw = &testpmdSwitch{genCPU: 1, cpu: 1, log: io.Discard,
		lookPath: func(string) (string, error) { return "/bin/true", nil }}
	if err := sw.Start(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "two cores") {
		t.Fatalf("same core: %v", err)
	}
	if err := sw.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestExitedCleanly(t *testing.T) {
	if !exitedCleanly(nil, syscall.SIGTERM) {
		t.Fatal("exit 0 not clean")
	}
	if exitedCleanly(errors.New("x"), syscall.SIGTERM) {
		t.Fatal("non-exit error clean")
	}
	for _, tc := range []struct {
		script string
		clean  bool
	}{{"kill -TERM $$", true}, {"kill -KILL $$", false}, {"exit 3", false}} {
		err := exec.Command("sh", "-c", tc.script).Run()
		if got := exitedCleanly(err, syscall.SIGTERM); got != tc.clean {
			t.Errorf("%q (%v): clean %v, want %v", tc.script, err, got, tc.clean)
		}
	}
}

// CI stays lean: testpmd and ovs are measured in full runs only.
func TestCaseSets(t *testing.T) {
	for _, c := range []string{CaseTestpmd, CaseOVS} {
		if !slices.Contains(AllCases, c) || !slices.Contains(DefaultCases, c) {
			t.Fatalf("%s missing from AllCases or DefaultCases", c)
		}
	}
	if !reflect.DeepEqual(CICases, []string{CaseBridge, CaseRedirect, CaseVswitchd}) {
		t.Fatalf("CICases %v", CICases)
	}
	for _, set := range [][]string{DefaultCases, CICases} {
		for _, c := range set {
			if !slices.Contains(AllCases, c) {
				t.Errorf("%q not in AllCases", c)
			}
		}
	}
}

func TestRatiosTestpmd(t *testing.T) {
	rs := sampleResults()
	rep := Rep{RxMpps: 0.85, TxMpps: 4.4}
	rs = append(rs, CaseResult{Case: CaseTestpmd, Label: "dpdk-testpmd-io", Size: 64, Flows: 1, Reps: []Rep{rep}})
	qs := Ratios(rs)
	if len(qs) != 2 || qs[0].VsTestpmd == nil || *qs[0].VsTestpmd != 0.84/0.85 || qs[1].VsTestpmd != nil {
		t.Fatalf("ratios %+v", qs)
	}
	md := MarkdownRatios(qs)
	for _, s := range []string{"| vswitchd / testpmd |", "|---:|---:|---:|---:|---:|", "| 64 | 1 | 1.20 | 0.21 | 0.99 |", "| 1500 | 1 | n/a | n/a | n/a |"} {
		if !strings.Contains(md, s) {
			t.Errorf("ratios table lacks %q:\n%s", s, md)
		}
	}
	if md := MarkdownRatios(Ratios(sampleResults())); strings.Contains(md, "testpmd") {
		t.Errorf("testpmd column without testpmd:\n%s", md)
	}
}
