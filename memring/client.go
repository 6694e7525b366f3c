package memring

// Client library: what a container links to attach to a switch's memring
// port. See control.go for the protocol.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DialTimeout bounds the whole handshake of Dial.
const DialTimeout = 10 * time.Second

var (
	// ErrRefused wraps the server's reason when it refuses a hello.
	ErrRefused = errors.New("refused by switch")
	// ErrBadReply is returned when the server's answer does not match
	// protocol v1 or the region it sent.
	ErrBadReply = errors.New("bad reply from switch")
	// ErrClosed is returned by Wait when the switch went away or the Conn
	// was closed.
	ErrClosed = errors.New("memring connection closed")
	// ErrTimeout is returned by Wait when no frame arrived in time.
	ErrTimeout = errors.New("memring wait timed out")
)

// eventfdOne is the 8-byte counter increment written to wake a peer.
var eventfdOne = [8]byte{1}

// Conn is a client's attachment to one switch port: the shared region, its
// queues (client ends) and the wakeup eventfds. The session lasts as long
// as the control connection; closing it, or exiting, detaches.
//
// A queue pair's Tx and Rx are each single-threaded (one goroutine each);
// different queue pairs may be used from different goroutines.
type Conn struct {
	ctl    *net.UnixConn
	ctlFD  int // a dup of ctl's descriptor, polled by Wait for hang-up
	region *Region
	wake   []int // [2q] to-switch, [2q+1] to-client
	tx     []*Tx
	rx     []*Rx
	closed chan struct{}

	closeOnce sync.Once
	readDone  chan struct{}
}

// Dial attaches to port on the switch listening at socketPath: it sends the
// hello, receives the region and eventfds, maps the region (validating its
// header) and checks that the geometry the switch announced is the one in
// the region.
func Dial(socketPath, port string) (*Conn, error) {
	c, err := dial(socketPath, port)
	if err != nil {
		return nil, fmt.Errorf("memring: dial %s port %q: %w", socketPath, port, err)
	}
	return c, nil
}

func dial(socketPath, port string) (*Conn, error) {
	ctl, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socketPath, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ctl.Close()
		}
	}()
	ctl.SetDeadline(time.Now().Add(DialTimeout))
	b, _ := json.Marshal(hello{Version: ProtocolVersion, Port: port})
	if _, err := ctl.Write(b); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	buf := make([]byte, MaxHelloSize)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := ctl.ReadMsgUnix(buf, oob)
	fds := rights(oob[:oobn])
	defer func() {
		if !ok {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if err != nil || n == 0 {
		return nil, fmt.Errorf("%w: connection closed without an answer", ErrBadReply)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return nil, fmt.Errorf("%w: truncated", ErrBadReply)
	}
	var r reply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrRefused, r.Error)
	}
	if r.Version != ProtocolVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadReply, r.Version, ProtocolVersion)
	}
	if r.QueuePairs < 1 || r.QueuePairs > maxQueuePairs || len(fds) != 1+2*r.QueuePairs {
		return nil, fmt.Errorf("%w: %d queue pairs with %d descriptors", ErrBadReply, r.QueuePairs, len(fds))
	}
	for _, fd := range fds[1:] {
		if !isEventfd(fd) {
			return nil, fmt.Errorf("%w: descriptor %d is not an eventfd", ErrBadReply, fd)
		}
	}
	f := os.NewFile(uintptr(fds[0]), "memring-region-"+port)
	region, err := OpenRegion(f)
	if err != nil {
		f.Close()
		fds = fds[1:]
		return nil, fmt.Errorf("open region: %w", err)
	}
	fds = fds[1:] // the region owns fds[0] now
	rc := region.Config()
	if rc.QueuePairs != r.QueuePairs || rc.RingSize != r.RingSize || rc.FrameSize != r.FrameSize {
		region.Close()
		return nil, fmt.Errorf("%w: reply says %d queue pairs, ring %d, frame %d; region header says %d, %d, %d",
			ErrBadReply, r.QueuePairs, r.RingSize, r.FrameSize, rc.QueuePairs, rc.RingSize, rc.FrameSize)
	}
	ctlFD, err := dupConnFD(ctl)
	if err != nil {
		region.Close()
		return nil, err
	}
	ctl.SetDeadline(time.Time{})
	c := &Conn{
		ctl: ctl, ctlFD: ctlFD, region: region, wake: fds,
		tx: make([]*Tx, r.QueuePairs), rx: make([]*Rx, r.QueuePairs),
		closed: make(chan struct{}), readDone: make(chan struct{}),
	}
	for q := range r.QueuePairs {
		c.tx[q], c.rx[q] = region.Queue(q, SideClient)
	}
	ok = true
	go c.watch()
	return c, nil
}

// rights returns the descriptors carried by SCM_RIGHTS in oob.
func rights(oob []byte) []int {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// isEventfd reports whether fd is an eventfd, as its /proc link says; true
// when there is no /proc to ask (the check catches a confused switch, it is
// not a security boundary: the client trusts the switch).
func isEventfd(fd int) bool {
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		_, perr := os.Stat("/proc/self/fd")
		return perr != nil
	}
	return link == "anon_inode:[eventfd]"
}

// dupConnFD returns a close-on-exec duplicate of c's socket descriptor.
func dupConnFD(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// watch closes c.closed when the control connection ends.
func (c *Conn) watch() {
	defer close(c.readDone)
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	for {
		n, oobn, _, _, err := c.ctl.ReadMsgUnix(buf, oob)
		closeRights(oob[:oobn])
		if err != nil || n == 0 {
			// v1 has no messages after the reply: a zero read is EOF,
			// anything else is ignored.
			break
		}
	}
	close(c.closed)
}

// Region returns the shared region. It is unmapped by Close.
func (c *Conn) Region() *Region { return c.region }

// QueuePairs returns the number of queue pairs.
func (c *Conn) QueuePairs() int { return len(c.tx) }

// Queue returns queue pair q's client ends: tx produces into the to-switch
// ring, rx consumes the to-client ring. Every call returns the same pair.
func (c *Conn) Queue(q int) (tx *Tx, rx *Rx) { return c.tx[q], c.rx[q] }

// Notify wakes the switch for queue pair q if it asked for a wakeup; call
// it after a Send or Submit. It makes a syscall only when the switch sleeps.
func (c *Conn) Notify(q int) {
	if c.tx[q].NeedWakeup() {
		unix.Write(c.wake[2*q], eventfdOne[:])
	}
}

// Wait blocks until queue pair q's to-client ring has frames, the timeout
// passes (ErrTimeout; a negative timeout waits forever), or the switch goes
// away (ErrClosed). It tells the switch to write the eventfd (need_wakeup),
// re-checks the ring so a frame published in between is not slept
// through, and clears need_wakeup before returning. In polling mode do not
// call Wait: call Recv in a loop.
func (c *Conn) Wait(q int, timeout time.Duration) error {
	rx := c.rx[q]
	rx.SetNeedWakeup(true)
	defer rx.SetNeedWakeup(false)
	efd := c.wake[2*q+1]
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		if rx.Pending() > 0 {
			drainEventfd(efd)
			return nil
		}
		select {
		case <-c.closed:
			return ErrClosed
		default:
		}
		ms := -1
		if timeout >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrTimeout
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := [2]unix.PollFd{
			{Fd: int32(efd), Events: unix.POLLIN},
			{Fd: int32(c.ctlFD), Events: unix.POLLRDHUP},
		}
		_, err := unix.Poll(fds[:], ms)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("memring: wait: %w", err)
		}
		if fds[1].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return ErrClosed
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			drainEventfd(efd)
		}
	}
}

// drainEventfd resets a non-blocking eventfd's counter.
func drainEventfd(fd int) {
	var b [8]byte
	unix.Read(fd, b[:])
}

// Closed is closed when the switch ends the session (it detached the
// port, was stopped, or crashed) or Close was called.
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// Close detaches: it closes the control connection and unmaps the region.
// No Tx, Rx or frame view of the Conn may be used afterwards.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.ctl.Close()
		<-c.readDone
		unix.Close(c.ctlFD)
		for _, fd := range c.wake {
			unix.Close(fd)
		}
		if rerr := c.region.Close(); err == nil {
			err = rerr
		}
	})
	return err
}
