package memring_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vswitch/vswitch/memring"
	"golang.org/x/sys/unix"
)

// echoHandler stands in for the switch: it sends every frame a client puts
// on queue 0 straight back, and wakes the client when it asked for it.
type echoHandler struct {
	mu   sync.Mutex
	stop map[*memring.Session]chan struct{}
	done map[*memring.Session]chan struct{}
}

func (h *echoHandler) Attach(s *memring.Session) error {
	stop, done := make(chan struct{}), make(chan struct{})
	h.mu.Lock()
	h.stop[s], h.done[s] = stop, done
	h.mu.Unlock()
	tx, rx := s.Region.Queue(0, memring.SideSwitch)
	go func() {
		defer close(done)
		frames := make([][]byte, 64)
		one := [8]byte{1}
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := rx.Recv(frames)
			if err != nil {
				return
			}
			if n == 0 {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			tx.Send(frames[:n])
			rx.Release()
			if tx.NeedWakeup() {
				unix.Write(s.WakeFD(0, true), one[:])
			}
		}
	}()
	return nil
}

func (h *echoHandler) Detach(s *memring.Session) {
	h.mu.Lock()
	stop, done := h.stop[s], h.done[s]
	h.mu.Unlock()
	close(stop)
	<-done // the region is unmapped after Detach returns
}

// A container attaches to a switch port, sends a batch of frames and waits
// for them to come back.
func Example() {
	dir, _ := os.MkdirTemp("", "memring-example")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "memring.sock")

	// The switch side (vswitchd does this).
	h := &echoHandler{stop: map[*memring.Session]chan struct{}{}, done: map[*memring.Session]chan struct{}{}}
	srv, err := memring.NewServer(sock, 0o600, h, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	srv.AddPort(memring.PortConfig{Name: "web-1"}) // root only

	// The container side.
	c, err := memring.Dial(sock, "web-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("queue pairs:", c.QueuePairs())

	tx, rx := c.Queue(0)
	// Zero-copy send: reserve slots, write frames in place, submit.
	n := tx.Reserve(3)
	lens := make([]int, n)
	for i := range n {
		buf := tx.Buffer(i)
		copy(buf, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
		buf[14] = byte(i)
		lens[i] = 60
	}
	if err := tx.Submit(lens); err != nil {
		fmt.Println(err)
		return
	}
	c.Notify(0)

	// Interrupt mode: sleep on the eventfd until frames are there.
	frames := make([][]byte, 64)
	got := 0
	for got < n {
		if err := c.Wait(0, 5*time.Second); err != nil {
			fmt.Println(err)
			return
		}
		m, _ := rx.Recv(frames)
		for _, f := range frames[:m] {
			fmt.Printf("frame %d: %d bytes\n", f[14], len(f))
		}
		rx.Release()
		got += m
	}
	// Output:
	// queue pairs: 1
	// frame 0: 60 bytes
	// frame 1: 60 bytes
	// frame 2: 60 bytes
}
