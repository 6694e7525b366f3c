package memring

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDialErrors(t *testing.T) {
	checkFDLeak(t)
	_, path := newTestServer(t, newRecHandler())
	stream := filepath.Join(t.TempDir(), "stream.sock")
	ln, err := net.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name, path, port string
		is               error
		want             string
	}{
		{"no socket", filepath.Join(t.TempDir(), "none.sock"), "p0", os.ErrNotExist, "no such file"},
		{"stream socket", stream, "p0", nil, "protocol wrong type"},
		{"unknown port", path, "nope", ErrRefused, `unknown port "nope"`},
		{"bad port name", path, "", ErrRefused, "unknown port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(tc.path, tc.port)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// fakeSwitch answers one hello with msg and the descriptors fds (which it
// closes afterwards), then closes the connection.
func fakeSwitch(t *testing.T, msg string, fds func() []int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, MaxHelloSize)
		c.Read(buf)
		var oob []byte
		var fs []int
		if fds != nil {
			fs = fds()
			oob = unix.UnixRights(fs...)
		}
		if msg == "" {
			return
		}
		c.WriteMsgUnix([]byte(msg), oob, nil)
		for _, fd := range fs {
			unix.Close(fd)
		}
		c.Read(buf) // until the client gives up
	}()
	return path
}

// regionFDs returns a dup of a fresh region's descriptor (cfg) and n
// eventfds.
func regionFDs(t *testing.T, cfg Config, n int) []int {
	r, _, err := NewRegion("fake", cfg)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer r.Close()
	fd, err := unix.FcntlInt(r.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Error(err)
		return nil
	}
	fds := []int{fd}
	for range n {
		e, _ := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		fds = append(fds, e)
	}
	return fds
}

func TestDialBadReply(t *testing.T) {
	checkFDLeak(t)
	cfg1 := Config{QueuePairs: 1, RingSize: 64, FrameSize: 2048}
	ok := func(qp int) string {
		b, _ := json.Marshal(reply{Version: 1, QueuePairs: qp, RingSize: 64, FrameSize: 2048})
		return string(b)
	}
	for _, tc := range []struct {
		name string
		msg  string
		fds  func() []int
		want string
	}{
		{"closed without answer", "", nil, "without an answer"},
		{"not json", "hello", nil, "bad reply"},
		{"version", `{"version":2,"queue_pairs":1,"ring_size":64,"frame_size":2048}`, nil, "version 2"},
		{"no descriptors", ok(1), nil, "1 queue pairs with 0 descriptors"},
		{"queue pairs mismatch", ok(2), func() []int { return regionFDs(t, cfg1, 4) }, "region header says 1"},
		{"ring size mismatch", `{"version":1,"queue_pairs":1,"ring_size":128,"frame_size":2048}`,
			func() []int { return regionFDs(t, cfg1, 2) }, "ring 128"},
		{"too few eventfds", ok(1), func() []int { return regionFDs(t, cfg1, 1) }, "with 2 descriptors"},
		{"not an eventfd", ok(1), func() []int {
			fds := regionFDs(t, cfg1, 1)
			var p [2]int
			unix.Pipe2(p[:], unix.O_CLOEXEC)
			unix.Close(p[1])
			return append(fds, p[0])
		}, "not an eventfd"},
		{"not a region", ok(1), func() []int {
			fd, _ := unix.MemfdCreate("junk", unix.MFD_CLOEXEC)
			unix.Ftruncate(fd, 1<<20)
			e1, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
			e2, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
			return []int{fd, e1, e2}
		}, "open region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeSwitch(t, tc.msg, tc.fds)
			c, err := Dial(path, "p0")
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// attach starts a server, dials port p0 and returns the client, the
// session and the switch ends of queue 0.
func attach(t *testing.T) (*Server, *Conn, *Session, *Tx, *Rx) {
	t.Helper()
	h := newRecHandler()
	s, path := newTestServer(t, h)
	c, err := Dial(path, "p0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sess := h.waitAttach(t)
	tx, rx := h.queue0(sess)
	return s, c, sess, tx, rx
}

func TestWaitWakesOnFrame(t *testing.T) {
	checkFDLeak(t)
	_, c, sess, stx, _ := attach(t)
	_, crx := c.Queue(0)
	sent := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		// What a switch worker does after publishing.
		stx.Send([][]byte{make([]byte, 64)})
		if stx.NeedWakeup() {
			unix.Write(sess.WakeFD(0, true), []byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
		sent <- time.Now()
	}()
	start := time.Now()
	if err := c.Wait(0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	woke := time.Now()
	if d := woke.Sub(start); d < 90*time.Millisecond || d > 5*time.Second {
		t.Errorf("woke after %v", d)
	}
	out := make([][]byte, 8)
	if n, err := crx.Recv(out); n != 1 || err != nil {
		t.Fatalf("recv %d %v", n, err)
	}
	crx.Release()
	<-sent
	if stx.NeedWakeup() {
		t.Error("need_wakeup still set after Wait returned")
	}
	// A frame already there: Wait returns at once.
	stx.Send([][]byte{make([]byte, 64)})
	if err := c.Wait(0, 0); err != nil {
		t.Errorf("Wait with a frame pending: %v", err)
	}
}

func TestWaitTimeoutAndClosed(t *testing.T) {
	checkFDLeak(t)
	s, c, _, _, _ := attach(t)
	start := time.Now()
	if err := c.Wait(0, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("timed out after %v", d)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Wait(0, -1) }()
	time.Sleep(50 * time.Millisecond)
	s.DelPort("p0")
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not notice the switch went away")
	}
}

func TestNotify(t *testing.T) {
	checkFDLeak(t)
	_, c, sess, _, srx := attach(t)
	ctx, _ := c.Queue(0)
	efd := sess.WakeFD(0, false)
	var b [8]byte
	ctx.Send([][]byte{make([]byte, 64)})
	c.Notify(0)
	if _, err := unix.Read(efd, b[:]); err != unix.EAGAIN {
		t.Errorf("Notify wrote without need_wakeup: %v", err)
	}
	srx.SetNeedWakeup(true)
	ctx.Send([][]byte{make([]byte, 64)})
	c.Notify(0)
	if n, err := unix.Read(efd, b[:]); n != 8 || err != nil || b[0] != 1 {
		t.Errorf("eventfd read %d %v %v", n, err, b)
	}
}

func TestClosedWhenServerCloses(t *testing.T) {
	checkFDLeak(t)
	s, c, _, _, _ := attach(t)
	select {
	case <-c.Closed():
		t.Fatal("closed early")
	default:
	}
	s.Close()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("Closed did not fire")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	c.Close() // twice is fine
}

func TestClientBatchZeroAlloc(t *testing.T) {
	_, c, _, _, srx := attach(t)
	ctx, _ := c.Queue(0)
	frame := make([]byte, 64)
	out := make([][]byte, 32)
	lens := make([]int, 32)
	for i := range lens {
		lens[i] = len(frame)
	}
	allocs := testing.AllocsPerRun(100, func() {
		n := ctx.Reserve(32)
		for i := range n {
			copy(ctx.Buffer(i), frame)
		}
		ctx.Submit(lens[:n])
		c.Notify(0)
		m, _ := srx.Recv(out)
		if m != n {
			t.Fatalf("recv %d of %d", m, n)
		}
		srx.Release()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}
