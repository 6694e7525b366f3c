package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The testpmd case is the reference AF_XDP switch of the shared anchors
// (sw-dpdk-testpmd.sh af_xdp): DPDK testpmd in io forward mode with two
// net_af_xdp vdevs, one forwarding lcore on the switch core.
const (
	testpmdBinary = "dpdk-testpmd"
	// TestpmdMissing is the per-case error when the binary is not found.
	TestpmdMissing = testpmdBinary + " not installed (apt-get install dpdk-dev librte-net-af-xdp23 librte-mempool-ring23)"
	// testpmdReadyLine is printed once forwarding runs
	// ("io packet forwarding - ports=2 - cores=1 - streams=2 ...").
	testpmdReadyLine = "packet forwarding - ports=2"
	// testpmdMinReady is the least time testpmd gets to start forwarding:
	// on the 2-vCPU benchmark VM it took 9-20 s, 12 s of them in EAL's
	// memory init (-m 1024 without huge pages), more than the default
	// Options.ReadyTimeout.
	testpmdMinReady = 60 * time.Second
	// dpdkRunDir holds a root DPDK process's runtime files per file prefix.
	dpdkRunDir = "/var/run/dpdk"
)

// TestpmdArgs returns dpdk-testpmd's arguments: main lcore on genCPU (idle,
// it only prints stats), the one forwarding lcore on swCPU, no PCI, no huge
// pages, a net_af_xdp vdev on queue 0 of each port, io forwarding started at
// once. --stats-period is what keeps a non-interactive testpmd running with
// stdin at /dev/null: without it, it waits for a key press, reads EOF and
// exits.
//
// ring, if not 0, sets the RX and TX descriptors per queue (--rxd, --txd);
// 0 keeps net_af_xdp's default of 2048.
func TestpmdArgs(p0, p1 string, genCPU, swCPU, ring int, prefix string) []string {
	args := []string{
		"-l", fmt.Sprintf("%d,%d", genCPU, swCPU), "--main-lcore", strconv.Itoa(genCPU),
		"--no-pci", "--no-huge", "-m", "1024", "--file-prefix", prefix,
	}
	for i, p := range []string{p0, p1} {
		args = append(args, "--vdev", fmt.Sprintf("net_af_xdp%d,iface=%s,start_queue=0,queue_count=1", i, p))
	}
	args = append(args, "--",
		"--forward-mode=io", "--nb-cores=1", "--total-num-mbufs=16384", "--auto-start", "--stats-period", "5")
	if ring > 0 {
		args = append(args, "--rxd", strconv.Itoa(ring), "--txd", strconv.Itoa(ring))
	}
	return args
}

// testpmdNote is the report note of the case.
func testpmdNote(swCPU, ring int) string {
	n := fmt.Sprintf("DPDK 22.11 testpmd io, net_af_xdp (copy), 1 fwd lcore on cpu %d", swCPU)
	if ring > 0 {
		n += fmt.Sprintf(", %d-descriptor rings", ring)
	}
	return n
}

// testpmdReady reports whether the log says forwarding has started.
func testpmdReady(log []byte) bool {
	return strings.Contains(string(log), testpmdReadyLine)
}

// testpmdHint explains a start failure whose cause the log shows.
func testpmdHint(log []byte) string {
	s := string(log)
	switch {
	case strings.Contains(s, `failed to parse device "net_af_xdp`):
		return " (no net_af_xdp driver: apt-get install librte-net-af-xdp23)"
	case strings.Contains(s, "Creation of mbuf pool"):
		return " (out of memory, or no ring mempool driver: apt-get install librte-mempool-ring23)"
	}
	return ""
}

// testpmdSwitch runs dpdk-testpmd as a reference switch. io forwarding
// sends everything from p0 to p1 and back, no MAC learning, and the sink
// passes ICMP, so the harness's ping check works for it unchanged.
type testpmdSwitch struct {
	genCPU       int
	cpu          int
	ring         int
	readyTimeout time.Duration
	log          io.Writer
	lookPath     func(string) (string, error) // exec.LookPath; tests replace it

	t      *Topology
	prefix string
	dir    string
	child
	bpffs bpffsMount
}

func (s *testpmdSwitch) Note() string { return testpmdNote(s.cpu, s.ring) }

func (s *testpmdSwitch) Start(ctx context.Context, t *Topology) error {
	look := s.lookPath
	if look == nil {
		look = exec.LookPath
	}
	bin, err := look(testpmdBinary)
	if err != nil {
		return errors.New(TestpmdMissing)
	}
	if s.genCPU == s.cpu {
		return fmt.Errorf("testpmd needs two cores: main lcore (generator core) and forwarding lcore (switch core) are both %d", s.cpu)
	}
	s.t = t
	s.name, s.tail = "testpmd", testpmdTail
	// libxdp pins its XDP dispatcher there; net_af_xdp fails without it.
	if err := s.bpffs.Mount(); err != nil {
		return err
	}
	if s.dir, err = os.MkdirTemp("", "vsb-testpmd-"); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	// Unique per run (t.ID is the harness PID in base 36): a leftover of
	// another run or an anchor script never shares the runtime directory.
	s.prefix = NamePrefix + t.ID + "-testpmd"
	s.logPath = filepath.Join(s.dir, "testpmd.log")
	// EAL pins the lcore threads itself, so the process starts unpinned.
	if err := s.start(exec.Command(bin, TestpmdArgs(t.P0, t.P1, s.genCPU, s.cpu, s.ring, s.prefix)...), -1); err != nil {
		return err
	}
	fmt.Fprintf(s.log, "  testpmd pid %d, file prefix %s, log %s\n", s.cmd.Process.Pid, s.prefix, s.logPath)
	return s.waitReady(ctx)
}

// waitReady polls the log for the forwarding line until it appears,
// testpmd exits, or the deadline passes.
func (s *testpmdSwitch) waitReady(ctx context.Context) error {
	timeout := max(s.readyTimeout, testpmdMinReady)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		data, _ := os.ReadFile(s.logPath)
		if testpmdReady(data) {
			fmt.Fprintf(s.log, "  testpmd forwarding after %.1f s\n", time.Since(start).Seconds())
			return nil
		}
		select {
		case <-s.done:
			s.failed = true
			data, _ = os.ReadFile(s.logPath)
			return fmt.Errorf("testpmd exited before forwarding (%v)%s; log: %s", s.waitErr, testpmdHint(data), s.logTail())
		case <-ctx.Done():
			s.failed = true
			return fmt.Errorf("testpmd not forwarding after %s (no %q in its log); log: %s",
				timeout, testpmdReadyLine, s.logTail())
		case <-tick.C:
		}
	}
}

func (s *testpmdSwitch) Alive() error { return s.alive() }

// Stop sends SIGTERM by PID, waits up to 10 s, then SIGKILL; then removes
// the EAL runtime directory, any XDP program a killed testpmd left on the
// ports, and the bpffs if Start mounted it. Exiting by the SIGTERM itself
// counts as clean: testpmd is a reference, not the switch under test.
func (s *testpmdSwitch) Stop() error {
	var errs []error
	errs = append(errs, s.terminate(sigtermClean))
	if s.prefix != "" {
		errs = append(errs, os.RemoveAll(filepath.Join(dpdkRunDir, s.prefix)))
		s.prefix = ""
	}
	if s.t != nil {
		errs = append(errs, detachLeftXDP(s.t, "testpmd"))
	}
	errs = append(errs, s.bpffs.Unmount())
	err := errors.Join(errs...)
	if s.dir != "" {
		if err != nil || s.failed {
			fmt.Fprintf(s.log, "  testpmd log kept in %s\n", s.dir)
		} else {
			os.RemoveAll(s.dir)
		}
		s.dir = ""
	}
	return err
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// testpmdTail quotes the end of testpmd's log without the clear-screen
// escapes its periodic stats start with.
func testpmdTail(data []byte) string {
	return lastLines(ansiEscape.ReplaceAllString(string(data), ""))
}
