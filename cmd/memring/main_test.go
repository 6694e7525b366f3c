package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vswitch/vswitch/memring"
)

// asMainEnv makes the test binary behave as the memring command, for
// pair-bench's re-executed receiver.
const asMainEnv = "MEMRING_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
}

func runCmd(args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

func TestArgumentErrors(t *testing.T) {
	base := []string{"--socket", "/nonexistent.sock", "--port", "p"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"pong"}, `unexpected argument "pong"`},
		{"unknown flag", []string{"sink", "--bogus"}, "--bogus"},
		{"positional", append([]string{"sink", "extra"}, base...), `unexpected argument "extra"`},
		{"ping no socket", []string{"ping", "--port", "p"}, "--socket: required"},
		{"ping no port", []string{"ping", "--socket", "s"}, "--port: required"},
		{"ping no mac", append([]string{"ping", "--ip", "10.0.0.1/24", "--target", "10.0.0.2"}, base...), "--mac: required"},
		{"ping bad mac", append([]string{"ping", "--mac", "zz", "--ip", "10.0.0.1/24", "--target", "10.0.0.2"}, base...), "--mac:"},
		{"ping multicast mac", append([]string{"ping", "--mac", "01:00:5e:00:00:01", "--ip", "10.0.0.1/24", "--target", "10.0.0.2"}, base...), "not a unicast"},
		{"ping no ip", append([]string{"ping", "--mac", "02:00:00:00:00:01", "--target", "10.0.0.2"}, base...), "--ip: required"},
		{"ping ipv6", append([]string{"ping", "--mac", "02:00:00:00:00:01", "--ip", "fd00::1/64", "--target", "10.0.0.2"}, base...), "--ip: fd00::1/64 is not IPv4"},
		{"ping no target", append([]string{"ping", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1/24"}, base...), "--target: required"},
		{"ping target off subnet", append([]string{"ping", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1/24", "--target", "10.0.1.2"}, base...), "--target: 10.0.1.2 is not another address"},
		{"ping count", append([]string{"ping", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1/24", "--target", "10.0.0.2", "-c", "0"}, base...), "--count"},
		{"ping bad count", append([]string{"ping", "-c", "x"}, base...), `"x" for "-c, --count"`},
		{"respond no ip", append([]string{"respond", "--mac", "02:00:00:00:00:01"}, base...), "--ip: required"},
		{"gen no dst-mac", append([]string{"gen"}, base...), "--dst-mac: required"},
		{"gen size", append([]string{"gen", "--dst-mac", "02:00:00:00:00:02", "--size", "20"}, base...), "--size: 20"},
		{"gen rate", append([]string{"gen", "--dst-mac", "02:00:00:00:00:02", "--rate", "-1"}, base...), "--rate"},
		{"sink duration", append([]string{"sink", "--duration", "0s"}, base...), "--duration"},
		{"sink output", append([]string{"sink", "-o", "yaml"}, base...), "text or json"},
		{"pair-bench cpus", []string{"pair-bench", "--cpus", "0"}, "--cpus"},
		{"pair-bench same cpu", []string{"pair-bench", "--cpus", "0,0"}, "--cpus: producer and receiver"},
		{"pair-bench mode", []string{"pair-bench", "--mode", "spin"}, "--mode"},
		{"pair-bench size", []string{"pair-bench", "--size", "4000"}, "--size"},
		{"pair-bench ring", []string{"pair-bench", "--ring-size", "100"}, "--ring-size"},
		{"pair-bench batch", []string{"pair-bench", "--ring-size", "64", "--batch", "65"}, "--batch: 65"},
		{"pair-bench child without socket", []string{"pair-bench", "--child"}, "--socket: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.want)
			}
		})
	}
	// Not a usage error: the switch is not there.
	r := runCmd("sink", "--socket", filepath.Join(t.TempDir(), "none"), "--port", "p")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("sink without a switch: exit %d, %q", r.code, r.stderr)
	}
}

// bridge is a two-port switch for the tests: frames from port a go out of
// port b and back.
type bridge struct {
	mu    sync.Mutex
	ports map[string]*bridgePort
	stop  chan struct{}
	done  chan struct{}
}

type bridgePort struct {
	sess *memring.Session
	tx   *memring.Tx
	rx   *memring.Rx
}

func newBridge() *bridge {
	b := &bridge{ports: map[string]*bridgePort{}, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *bridge) Attach(s *memring.Session) error {
	tx, rx := s.Region.Queue(0, memring.SideSwitch)
	b.mu.Lock()
	b.ports[s.Port] = &bridgePort{s, tx, rx}
	b.mu.Unlock()
	return nil
}

// Detach takes the lock the loop holds while it touches a port, so the
// region is ours no more once it returns.
func (b *bridge) Detach(s *memring.Session) {
	b.mu.Lock()
	delete(b.ports, s.Port)
	b.mu.Unlock()
}

func (b *bridge) close() { close(b.stop); <-b.done }

func (b *bridge) loop() {
	defer close(b.done)
	frames := make([][]byte, 64)
	one := [8]byte{1}
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		moved := 0
		b.mu.Lock()
		for from, to := range map[string]string{"a": "b", "b": "a"} {
			src, dst := b.ports[from], b.ports[to]
			if src == nil {
				continue
			}
			n, err := src.rx.Recv(frames)
			if err != nil || n == 0 {
				continue
			}
			if dst != nil {
				dst.tx.Send(frames[:n])
				if dst.tx.NeedWakeup() {
					unix.Write(dst.sess.WakeFD(0, true), one[:])
				}
			}
			src.rx.Release()
			moved += n
		}
		b.mu.Unlock()
		if moved == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// startBridge runs a memring server with ports a and b bridged.
func startBridge(t *testing.T) (*memring.Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "memring-cmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	b := newBridge()
	srv, err := memring.NewServer(sock, 0o600, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); b.close() })
	for _, p := range []string{"a", "b"} {
		if err := srv.AddPort(memring.PortConfig{Name: p, Config: memring.Config{RingSize: 256}}); err != nil {
			t.Fatal(err)
		}
	}
	return srv, sock
}

// waitAttached waits until port is attached.
func waitAttached(t *testing.T, srv *memring.Server, port string) {
	t.Helper()
	for range 500 {
		for _, p := range srv.Ports() {
			if p.Name == port && p.Attached {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("port %s not attached", port)
}

func TestPingRespond(t *testing.T) {
	srv, sock := startBridge(t)
	respDone := make(chan result, 1)
	go func() {
		respDone <- runCmd("respond", "--socket", sock, "--port", "b", "--mac", "02:00:00:00:00:02", "--ip", "10.0.0.2/24", "-o", "json")
	}()
	waitAttached(t, srv, "b")
	r := runCmd("ping", "--socket", sock, "--port", "a", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1/24",
		"--target", "10.0.0.2", "-c", "3", "-i", "20ms")
	if r.code != 0 {
		t.Fatalf("ping exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"PING 10.0.0.2 (02:00:00:00:00:02)", "icmp_seq=2 ttl=64 time=", "3 packets transmitted, 3 received, 0% packet loss"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ping output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Removing the port ends the session; respond exits and reports.
	if err := srv.DelPort("b"); err != nil {
		t.Fatal(err)
	}
	var rr result
	select {
	case rr = <-respDone:
	case <-time.After(10 * time.Second):
		t.Fatal("respond did not exit when the switch closed the session")
	}
	var k stationCounters
	if err := json.Unmarshal([]byte(rr.stdout), &k); err != nil {
		t.Fatalf("respond printed %q (stderr %q): %v", rr.stdout, rr.stderr, err)
	}
	if k.ARPReplied != 1 || k.EchoReplied != 3 || !k.Disconnected {
		t.Errorf("respond counters %+v", k)
	}
}

func TestPingNoAnswer(t *testing.T) {
	_, sock := startBridge(t)
	r := runCmd("ping", "--socket", sock, "--port", "a", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1/24",
		"--target", "10.0.0.9", "-c", "1", "-W", "50ms")
	if r.code != exitFailure || !strings.Contains(r.stdout, "no ARP reply from 10.0.0.9") {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestGenSink(t *testing.T) {
	srv, sock := startBridge(t)
	sinkDone := make(chan result, 1)
	go func() {
		sinkDone <- runCmd("sink", "--socket", sock, "--port", "b", "--duration", "300ms", "-o", "json")
	}()
	waitAttached(t, srv, "b")
	g := runCmd("gen", "--socket", sock, "--port", "a", "--dst-mac", "02:00:00:00:00:02", "--size", "128",
		"--duration", "500ms", "--rate", "20000", "-o", "json")
	if g.code != 0 {
		t.Fatalf("gen exit %d: %s", g.code, g.stderr)
	}
	var gr, sr rateResult
	if err := json.Unmarshal([]byte(g.stdout), &gr); err != nil {
		t.Fatalf("gen printed %q: %v", g.stdout, err)
	}
	s := <-sinkDone
	if err := json.Unmarshal([]byte(s.stdout), &sr); err != nil {
		t.Fatalf("sink printed %q (%s): %v", s.stdout, s.stderr, err)
	}
	// --rate 20000 for 0.5 s: about 10000 frames.
	// (fewer when the bridge lags: gen does not queue past a full ring)
	if gr.Frames == 0 || gr.Frames > 11000 {
		t.Errorf("gen sent %d frames", gr.Frames)
	}
	if sr.Frames == 0 || sr.Bytes != sr.Frames*128 || sr.Frames > gr.Frames {
		t.Errorf("sink %+v after gen %+v", sr, gr)
	}
}

func TestPairBench(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || !set.IsSet(0) || !set.IsSet(1) {
		t.Skip("needs CPUs 0 and 1")
	}
	t.Setenv(asMainEnv, "1") // the re-executed receiver runs as the command
	for _, mode := range []string{"poll", "interrupt"} {
		t.Run(mode, func(t *testing.T) {
			r := runCmd("pair-bench", "--duration", "300ms", "--warmup", "100ms", "--size", "1500", "--mode", mode, "-o", "json")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var res pairResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("printed %q: %v", r.stdout, err)
			}
			if res.RxFrames == 0 || res.RxMpps <= 0 || res.TxFrames < res.RxFrames || res.Size != 1500 || res.Mode != mode {
				t.Errorf("result %+v", res)
			}
		})
	}
}
