package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// genChildArg makes the test binary act as the generator child, so the
// privileged tests can run the harness without building vsbench.
const genChildArg = "vsbench-gen-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == genChildArg {
		os.Exit(GenMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// requirePriv skips a test that needs root, unless VSWITCH_REQUIRE_PRIV=1
// (set by CI), where a skip would hide a broken test: then it fails.
func requirePriv(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := rlimit.RemoveMemlock(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if os.Getenv("VSWITCH_REQUIRE_PRIV") == "1" {
		t.Fatal("needs root (BPF, network namespaces), and VSWITCH_REQUIRE_PRIV=1 forbids skipping")
	}
	t.Skip("needs root (BPF, network namespaces)")
}

func TestGenProgramRewritesPortsAndChecksums(t *testing.T) {
	requirePriv(t)
	for _, tc := range []struct {
		name  string
		flows int
		csum  bool
	}{
		{"1flow", 1, true},
		{"1000flows", 1000, true},
		{"1000flows-nocsum", 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinTestToCPU0(t)
			f, err := BuildUDPFrame(testSpec(64, tc.flows, tc.csum))
			if err != nil {
				t.Fatal(err)
			}
			var partial uint16
			if tc.csum {
				partial = UDPPartialSum(f)
			}
			gp, err := NewGenProgram(tc.flows, genSrcPort, partial)
			if err != nil {
				t.Fatal(err)
			}
			defer gp.Close()
			out := make([]byte, len(f))
			// Feed each output back in, as recycled live-frame pages are.
			in := append([]byte(nil), f...)
			const runs = 1003 // wraps around the 1000 ports
			for i := range runs {
				ret, err := gp.Prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
				if err != nil {
					t.Fatal(err)
				}
				if ret != xdpTX {
					t.Fatalf("run %d: verdict %d, want XDP_TX", i, ret)
				}
				wantPort := genSrcPort + i%tc.flows
				if p := int(binary.BigEndian.Uint16(out[offUDPSrcPort:])); p != wantPort {
					t.Fatalf("run %d: port %d, want %d", i, p, wantPort)
				}
				if tc.csum {
					if want, _, _ := reserialize(t, out); !bytes.Equal(out, want) {
						t.Fatalf("run %d: checksums wrong: %x want %x", i, out[udpOff:HeaderLen], want[udpOff:HeaderLen])
					}
				} else if c := binary.BigEndian.Uint16(out[offUDPCsum:]); c != 0 {
					t.Fatalf("run %d: checksum %#x, want 0", i, c)
				}
				copy(in, out)
			}
			if n, err := gp.Sent.Read(); err != nil || n != runs {
				t.Fatalf("counter %d (%v), want %d", n, err, runs)
			}
		})
	}
}

// pinTestToCPU0 keeps the calling test goroutine on CPU 0 until it ends.
// The generator's packet counter is per CPU (the real generator thread is
// pinned), so its port sequence is per CPU too: to follow the sequence the
// test must stay on one CPU.
func pinTestToCPU0(t *testing.T) {
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Cleanup runs on the test goroutine, still locked to this thread.
		if err := unix.SchedSetaffinity(0, &old); err == nil {
			runtime.UnlockOSThread()
		}
	})
}

func TestSinkProgramDropsOnlyUDP(t *testing.T) {
	requirePriv(t)
	s, err := NewSinkProgram()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp, err := BuildUDPFrame(testSpec(64, 1, true))
	if err != nil {
		t.Fatal(err)
	}
	icmp := append([]byte(nil), udp...)
	icmp[ethHdrLen+9] = 1
	arp := append([]byte(nil), udp...)
	arp[12], arp[13] = 0x08, 0x06
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"udp", udp, xdpDrop},
		{"icmp", icmp, xdpPass},
		{"arp", arp, xdpPass},
		{"short", udp[:20], xdpPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Recv.Read()
			ret, err := s.Prog.Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := s.Recv.Read()
			if ret != tc.want {
				t.Fatalf("verdict %d, want %d", ret, tc.want)
			}
			if counted := after - before; (tc.want == xdpDrop) != (counted == 1) {
				t.Fatalf("counted %d for verdict %d", counted, ret)
			}
		})
	}
}

func smokeOptions(cases ...string) Options {
	return Options{
		Cases: cases, Sizes: []int{64}, Flows: []int{1000}, Reps: 1, Duration: time.Second,
		GenCPU: 0, SwCPU: min(1, runtime.NumCPU()-1), GenCommand: []string{os.Args[0], genChildArg},
		Checksum: true, Log: testLog{},
	}
}

type testLog struct{}

func (testLog) Write(p []byte) (int, error) { os.Stderr.Write(p); return len(p), nil }

// TestSmokeBridgeAndRedirect runs the real harness for one second per case
// and asserts that packets arrived and that nothing is left behind. It does
// not assert throughput: that depends on the machine.
func TestSmokeBridgeAndRedirect(t *testing.T) {
	requirePriv(t)
	names := NewNames(os.Getpid())
	rs, err := Run(context.Background(), smokeOptions(CaseBridge, CaseRedirect))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	for _, r := range rs {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Label, r.Error)
			continue
		}
		if len(r.Reps) != 1 || r.Reps[0].Received == 0 || r.Reps[0].Sent == 0 {
			t.Errorf("%s: reps %+v, want packets sent and received", r.Label, r.Reps)
		}
	}
	for _, ns := range []string{names.SrcNS, names.DstNS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("netns %s left behind", ns)
		}
	}
	for _, ifn := range []string{names.P0, names.P1, names.Bridge} {
		if _, err := os.Stat("/sys/class/net/" + ifn); err == nil {
			t.Errorf("interface %s left behind", ifn)
		}
	}
}

// TestSinkCountMatchesEthtool checks the sink's own counter against the
// kernel's veth XDP drop counter, and that the topology has IPv6 off.
func TestSinkCountMatchesEthtool(t *testing.T) {
	requirePriv(t)
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed")
	}
	ctx := context.Background()
	o := smokeOptions(CaseRedirect)
	topo := testTopology(t, &o)
	for _, end := range []struct{ ns, ifn string }{{topo.SrcNS, topo.S0}, {topo.DstNS, topo.D1}} {
		out, err := exec.Command("ip", "-n", end.ns, "-6", "addr", "show", "dev", end.ifn).CombinedOutput()
		if err != nil || strings.Contains(string(out), "inet6") {
			t.Errorf("%s has IPv6 (%v): %s", end.ifn, err, out)
		}
	}
	sw := &redirectSwitch{}
	if err := sw.Start(ctx, topo); err != nil {
		t.Fatal(err)
	}
	defer sw.Stop()
	before := xdpDrops(t, topo)
	m, err := measureRep(ctx, &o, topo, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	after := xdpDrops(t, topo)
	if m.Received == 0 || m.Received != after-before {
		t.Fatalf("sink counted %d, ethtool rx_queue_0_xdp_drops grew by %d", m.Received, after-before)
	}
	t.Logf("sink %d = ethtool %d packets; sent %d", m.Received, after-before, m.Sent)
}

func xdpDrops(t *testing.T, topo *Topology) uint64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", topo.DstNS, "ethtool", "-S", topo.D1).Output()
	if err != nil {
		t.Fatalf("ethtool -S: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rx_queue_0_xdp_drops:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no rx_queue_0_xdp_drops in ethtool -S:\n%s", out)
	return 0
}

// dyingSwitch is the bridge, reporting itself dead from its alive-th
// Alive call on, as a daemon killed during a repetition would be.
type dyingSwitch struct {
	bridgeSwitch
	alive, calls int
}

func (d *dyingSwitch) Alive() error {
	d.calls++
	if d.calls >= d.alive {
		return errors.New("exited: killed")
	}
	return nil
}

// TestSwitchDiesMidRepetition: a repetition during which the switch died
// is not recorded, and the case says why.
func TestSwitchDiesMidRepetition(t *testing.T) {
	requirePriv(t)
	ctx := context.Background()
	o := smokeOptions(CaseBridge)
	o.Reps = 3
	topo := testTopology(t, &o)
	// Alive runs before and after each repetition: the 4th call is the
	// one after the second repetition.
	sw := &dyingSwitch{alive: 4}
	rs, err := runSwitch(ctx, &o, topo, CaseBridge, sw)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	if len(r.Reps) != 1 || !strings.Contains(r.Error, "switch died during repetition 2") {
		t.Fatalf("reps %d, error %q; want 1 rep kept and the death of repetition 2 reported", len(r.Reps), r.Error)
	}
}

// testTopology validates o and sets up a topology that is torn down when
// the test ends.
func testTopology(t *testing.T, o *Options) *Topology {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	topo, err := SetupTopology(context.Background(), NewNames(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	return topo
}
