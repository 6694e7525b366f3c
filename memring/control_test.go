package memring

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// Child process modes (see TestMain): the test binary re-executed as a
// client with another uid, or as a client that attaches and waits to be
// killed.
const childEnv = "MEMRING_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "dial":
		// Args: socket port. Prints "ok" or the error, exits 0 either way.
		c, err := Dial(os.Getenv("MEMRING_SOCK"), os.Getenv("MEMRING_PORT"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(0)
		}
		fmt.Println("ok")
		c.Close()
		os.Exit(0)
	case "hold":
		c, err := Dial(os.Getenv("MEMRING_SOCK"), os.Getenv("MEMRING_PORT"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("attached")
		<-c.Closed()
		os.Exit(0)
	}
}

// requirePriv skips a test that needs root, unless VSWITCH_REQUIRE_PRIV=1
// makes the skip a failure.
func requirePriv(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("VSWITCH_REQUIRE_PRIV") == "1" {
		t.Fatal("needs root and VSWITCH_REQUIRE_PRIV=1")
	}
	t.Skip("needs root")
}

// recHandler records attaches and detaches. Like a switch, it takes the
// switch ends of queue 0 in Attach.
type recHandler struct {
	mu       sync.Mutex
	live     map[string]*Session
	ends     map[*Session]switchEnds
	attached chan *Session
	detached chan *Session
	fail     error
}

func newRecHandler() *recHandler {
	return &recHandler{live: map[string]*Session{}, ends: map[*Session]switchEnds{}, attached: make(chan *Session, 64), detached: make(chan *Session, 64)}
}

func (h *recHandler) Attach(s *Session) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return h.fail
	}
	if _, dup := h.live[s.Port]; dup {
		return errors.New("attached twice")
	}
	h.live[s.Port] = s
	tx, rx := s.Region.Queue(0, SideSwitch)
	h.ends[s] = switchEnds{tx, rx}
	h.attached <- s
	return nil
}

func (h *recHandler) Detach(s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.live, s.Port)
	delete(h.ends, s)
	h.detached <- s
}

type switchEnds struct {
	tx *Tx
	rx *Rx
}

// queue0 returns the switch ends of a live session's queue 0.
func (h *recHandler) queue0(s *Session) (*Tx, *Rx) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.ends[s]
	return e.tx, e.rx
}

func (h *recHandler) waitAttach(t *testing.T) *Session {
	t.Helper()
	select {
	case s := <-h.attached:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no attach")
		return nil
	}
}

func (h *recHandler) waitDetach(t *testing.T) *Session {
	t.Helper()
	select {
	case s := <-h.detached:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no detach")
		return nil
	}
}

// countFDs returns the number of open descriptors of this process.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDLeak fails the test if, at cleanup, more descriptors are open than
// now (closes are asynchronous, so it retries for a while).
func checkFDLeak(t *testing.T) {
	t.Helper()
	before := countFDs(t)
	t.Cleanup(func() {
		var now int
		for range 100 {
			if now = countFDs(t); now <= before {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		ents, _ := os.ReadDir("/proc/self/fd")
		var links []string
		for _, e := range ents {
			l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
			links = append(links, e.Name()+"->"+l)
		}
		t.Errorf("fd leak: %d open before, %d after: %s", before, now, strings.Join(links, " "))
	})
}

// newTestServer starts a server on a socket in a fresh directory that any
// uid can enter, with port "p0" for root.
func newTestServer(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "memring-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "memring.sock")
	s, err := NewServer(path, 0o666, h, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddPort(PortConfig{Name: "p0", Config: Config{RingSize: 64}}); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// rawExchange sends msg (with fds, if any) on a fresh connection and
// returns the server's answer and whether the server then closed.
func rawExchange(t *testing.T, path string, msg []byte, fds ...int) (reply, bool) {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if msg != nil || oob != nil {
		if _, _, err := c.WriteMsgUnix(msg, oob, nil); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8192)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	var r reply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		t.Fatalf("reply %q: %v", buf[:n], err)
	}
	_, err = c.Read(buf)
	return r, err != nil
}

func TestAttachDetachReattach(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	for i := range 3 {
		c, err := Dial(path, "p0")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		sess := h.waitAttach(t)
		if sess.PeerPID != int32(os.Getpid()) || sess.PeerUID != uint32(os.Getuid()) {
			t.Errorf("session peer pid %d uid %d, want %d %d", sess.PeerPID, sess.PeerUID, os.Getpid(), os.Getuid())
		}
		if c.QueuePairs() != 1 || c.Region().Config() != sess.Region.Config() {
			t.Errorf("client sees %d queue pairs, %+v; server %+v", c.QueuePairs(), c.Region().Config(), sess.Region.Config())
		}
		ps := s.Ports()
		if len(ps) != 1 || !ps[0].Attached || ps[0].PeerPID != int32(os.Getpid()) || ps[0].Attaches != uint64(i+1) {
			t.Errorf("Ports() = %+v", ps)
		}
		// A frame each way through the session's region.
		stx, srx := h.queue0(sess)
		ctx, crx := c.Queue(0)
		frame := make([]byte, 60)
		frame[0] = byte(i)
		if n, err := ctx.Send([][]byte{frame}); n != 1 || err != nil {
			t.Fatalf("client send: %d %v", n, err)
		}
		out := make([][]byte, 4)
		if n, err := srx.Recv(out); n != 1 || err != nil || out[0][0] != byte(i) {
			t.Fatalf("switch recv: %d %v", n, err)
		}
		srx.Release()
		if n, _ := stx.Send([][]byte{frame}); n != 1 {
			t.Fatal("switch send")
		}
		if n, _ := crx.Recv(out); n != 1 {
			t.Fatal("client recv")
		}
		crx.Release()

		c.Close()
		if d := h.waitDetach(t); d != sess {
			t.Errorf("detached %p, attached %p", d, sess)
		}
		// The port is free once the server has reclaimed the session,
		// just after Detach returned.
		waitPorts(t, s, func(ps []PortStatus) bool { return !ps[0].Attached && ps[0].Detaches == uint64(i+1) })
	}
	st := s.Stats()
	if st.Attaches != 3 || st.Detaches != 3 || st.Refused.Total() != 0 {
		t.Errorf("stats %+v", st)
	}
	waitPorts(t, s, func(ps []PortStatus) bool { return !ps[0].Attached && ps[0].Detaches == 3 })
}

// waitPorts waits until ok(s.Ports()) holds: the server bumps counters
// after Handler.Detach returns.
func waitPorts(t *testing.T, s *Server, ok func([]PortStatus) bool) {
	t.Helper()
	for range 200 {
		if ok(s.Ports()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("ports: %+v", s.Ports())
}

func TestRefusals(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	if err := s.AddPort(PortConfig{Name: "nobody-only", UIDs: []uint32{65534}}); err != nil {
		t.Fatal(err)
	}
	long := fmt.Sprintf(`{"version":1,"port":"p0","x":"%s"}`, strings.Repeat("a", MaxHelloSize))
	for _, tc := range []struct {
		name, msg, wantErr string
		count              func(RefusedStats) uint64
	}{
		{"garbage", "\x00\x01garbage", "not a JSON", func(r RefusedStats) uint64 { return r.BadHello }},
		{"unknown field", `{"version":1,"port":"p0","evil":1}`, "not a JSON", func(r RefusedStats) uint64 { return r.BadHello }},
		{"trailing data", `{"version":1,"port":"p0"}{}`, "not a JSON", func(r RefusedStats) uint64 { return r.BadHello }},
		{"too long", long, "too long", func(r RefusedStats) uint64 { return r.BadHello }},
		{"version", `{"version":2,"port":"p0"}`, "version 2", func(r RefusedStats) uint64 { return r.Version }},
		{"unknown port", `{"version":1,"port":"nope"}`, `unknown port "nope"`, func(r RefusedStats) uint64 { return r.UnknownPort }},
		{"root not listed", `{"version":1,"port":"nobody-only"}`, "may not attach", func(r RefusedStats) uint64 { return r.Credentials }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.count(s.Stats().Refused)
			r, closed := rawExchange(t, path, []byte(tc.msg))
			if !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", r.Error, tc.wantErr)
			}
			if !closed {
				t.Error("server did not close after refusing")
			}
			if got := tc.count(s.Stats().Refused); got != before+1 {
				t.Errorf("refusal count %d, want %d", got, before+1)
			}
		})
	}
	if len(h.attached) != 0 {
		t.Error("a refused client was attached")
	}
	for _, p := range s.Ports() {
		if p.Name == "nobody-only" && p.Refused != 1 {
			t.Errorf("port %s refused %d, want 1", p.Name, p.Refused)
		}
	}
}

func TestHelloDeadline(t *testing.T) {
	checkFDLeak(t)
	old := helloTimeout
	helloTimeout = 200 * time.Millisecond
	defer func() { helloTimeout = old }()
	s, path := newTestServer(t, newRecHandler())
	start := time.Now()
	r, closed := rawExchange(t, path, nil)
	if !strings.Contains(r.Error, "reading hello") || !closed {
		t.Errorf("reply %+v closed %v", r, closed)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refused after %v", d)
	}
	if s.Stats().Refused.BadHello != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

func TestBusyPort(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	c, err := Dial(path, "p0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.waitAttach(t)
	_, err = Dial(path, "p0")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "is attached") {
		t.Fatalf("second dial: %v", err)
	}
	if st := s.Stats(); st.Refused.Busy != 1 || st.Attaches != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestClientFDsClosed(t *testing.T) {
	checkFDLeak(t)
	s, path := newTestServer(t, newRecHandler())
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	// A valid hello with the pipe's write end attached: refused, and the
	// server must close its copy, which the read end sees as EOF.
	r, _ := rawExchange(t, path, []byte(`{"version":1,"port":"p0"}`), p[1])
	unix.Close(p[1])
	if !strings.Contains(r.Error, "descriptors") {
		t.Errorf("reply %+v", r)
	}
	unix.SetNonblock(p[0], false)
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		n, err := unix.Read(p[0], b[:])
		if n != 0 || err != nil {
			err = fmt.Errorf("read %d %v", n, err)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server kept the descriptor a client sent")
	}
	if s.Stats().Refused.BadHello != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

func TestHandlerAttachError(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	h.fail = errors.New("no worker")
	s, path := newTestServer(t, h)
	_, err := Dial(path, "p0")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no worker") {
		t.Fatalf("dial: %v", err)
	}
	h.mu.Lock()
	h.fail = nil
	h.mu.Unlock()
	waitPorts(t, s, func(ps []PortStatus) bool { return !ps[0].Attached })
	c, err := Dial(path, "p0")
	if err != nil {
		t.Fatalf("dial after a failed attach: %v", err)
	}
	c.Close()
	h.waitDetach(t)
	if st := s.Stats(); st.Refused.Setup != 1 || st.Attaches != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDelPortDetaches(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	c, err := Dial(path, "p0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.waitAttach(t)
	if err := s.DelPort("p0"); err != nil {
		t.Fatal(err)
	}
	// Detach has returned by now.
	select {
	case <-h.detached:
	default:
		t.Fatal("DelPort returned before Detach")
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client not told")
	}
	if err := s.DelPort("p0"); !errors.Is(err, ErrNoPort) {
		t.Errorf("second DelPort: %v", err)
	}
	if len(s.Ports()) != 0 {
		t.Errorf("ports %+v", s.Ports())
	}
}

func TestAddPortErrors(t *testing.T) {
	s, _ := newTestServer(t, newRecHandler())
	for _, tc := range []struct {
		name string
		pc   PortConfig
		want string
	}{
		{"empty name", PortConfig{}, "PortConfig.Name"},
		{"slash", PortConfig{Name: "a/b"}, "PortConfig.Name"},
		{"long", PortConfig{Name: strings.Repeat("x", 65)}, "PortConfig.Name"},
		{"ring size", PortConfig{Name: "x", Config: Config{RingSize: 100}}, "ring_size"},
		{"queue pairs", PortConfig{Name: "x", Config: Config{QueuePairs: 99}}, "queue_pairs"},
		{"duplicate", PortConfig{Name: "p0"}, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.AddPort(tc.pc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AddPort(%+v) = %v, want an error naming %q", tc.pc, err, tc.want)
			}
		})
	}
}

func TestNewServerStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // leaves the file behind, like a crashed daemon
	s, err := NewServer(path, 0o600, newRecHandler(), nil)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v", st.Mode(), err)
	}
	s.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := NewServer(regular, 0o600, newRecHandler(), nil); err == nil {
		t.Error("NewServer replaced a regular file")
	}
}

func TestCloseDetachesAll(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	if err := s.AddPort(PortConfig{Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	var cs []*Conn
	for _, p := range []string{"p0", "p1"} {
		c, err := Dial(path, p)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(h.detached) != 2 {
		t.Errorf("%d detaches when Close returned", len(h.detached))
	}
	for _, c := range cs {
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("client not told")
		}
	}
	if err := s.AddPort(PortConfig{Name: "late"}); !errors.Is(err, ErrServerClosed) {
		t.Errorf("AddPort after Close: %v", err)
	}
}

func TestConnectionFlood(t *testing.T) {
	checkFDLeak(t)
	old := helloTimeout
	helloTimeout = time.Second
	defer func() { helloTimeout = old }()
	h := newRecHandler()
	s, path := newTestServer(t, h)
	var silent []*net.UnixConn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range 3 * maxHandshakes {
		c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	// The silent ones time out; a real client gets in after that at the
	// latest, and long before the flood's owner gives up.
	start := time.Now()
	var c *Conn
	var err error
	for time.Since(start) < 5*time.Second {
		if c, err = Dial(path, "p0"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial during a flood: %v", err)
	}
	c.Close()
	h.waitDetach(t)
	if st := s.Stats(); st.Refused.Overload == 0 {
		t.Errorf("no overload refusals: %+v", st)
	}
}

// childClient runs bin (the test binary) as a client in mode mode, as
// cred if not nil.
func childClient(bin, mode, path, port string, cred *syscall.Credential) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "MEMRING_SOCK="+path, "MEMRING_PORT="+port)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// worldExecutable copies the test binary where another uid can run it
// (go test builds it in a directory only its owner may enter).
func worldExecutable(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "memring-test-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "memring.test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestCredentials(t *testing.T) {
	requirePriv(t)
	checkFDLeak(t)
	bin := worldExecutable(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	for _, pc := range []PortConfig{
		{Name: "by-uid", UIDs: []uint32{65534}},
		{Name: "by-gid", GIDs: []uint32{65533}},
		{Name: "other-uid", UIDs: []uint32{1234}},
	} {
		if err := s.AddPort(pc); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, port string
		cred       syscall.Credential
		want       string
	}{
		{"root-only port refuses nobody", "p0", syscall.Credential{Uid: 65534, Gid: 65534}, "may not attach"},
		{"listed uid", "by-uid", syscall.Credential{Uid: 65534, Gid: 65534}, "ok"},
		{"listed gid", "by-gid", syscall.Credential{Uid: 4321, Gid: 65533}, "ok"},
		{"uid not listed", "other-uid", syscall.Credential{Uid: 65534, Gid: 65534}, "may not attach"},
		{"root not listed", "by-gid", syscall.Credential{Uid: 0, Gid: 0}, "may not attach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := childClient(bin, "dial", path, tc.port, &tc.cred).CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("child said %q, want %q", out, tc.want)
			}
			if tc.want == "ok" {
				sess := h.waitAttach(t)
				if sess.PeerUID != tc.cred.Uid || sess.PeerGID != tc.cred.Gid {
					t.Errorf("session uid %d gid %d", sess.PeerUID, sess.PeerGID)
				}
				h.waitDetach(t)
			}
		})
	}
	if st := s.Stats(); st.Refused.Credentials != 3 || st.Attaches != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestClientKilled(t *testing.T) {
	checkFDLeak(t)
	h := newRecHandler()
	s, path := newTestServer(t, h)
	for round := range 2 {
		cmd := childClient(os.Args[0], "hold", path, "p0", nil)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 64)
		if n, _ := out.Read(line); !strings.HasPrefix(string(line[:n]), "attached") {
			t.Fatalf("child: %q", line[:n])
		}
		sess := h.waitAttach(t)
		if sess.PeerPID != int32(cmd.Process.Pid) {
			t.Errorf("session pid %d, child %d", sess.PeerPID, cmd.Process.Pid)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		out.Close()
		if d := h.waitDetach(t); d != sess {
			t.Errorf("round %d: detached another session", round)
		}
		waitPorts(t, s, func(ps []PortStatus) bool { return !ps[0].Attached })
	}
	// Reattachable from here too.
	c, err := Dial(path, "p0")
	if err != nil {
		t.Fatalf("dial after the crash: %v", err)
	}
	c.Close()
	h.waitDetach(t)
	waitPorts(t, s, func(ps []PortStatus) bool { return ps[0].Attaches == 3 && ps[0].Detaches == 3 })
}
