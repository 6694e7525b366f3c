package memring

// Control channel, switch side.
//
// The switch listens on one unix socket (SOCK_SEQPACKET, so every message
// arrives whole or not at all). Protocol version 1, one exchange per
// connection:
//
//  1. The client sends one message, the hello: JSON
//     {"version":1,"port":"NAME"}, at most MaxHelloSize bytes, no file
//     descriptors, within HelloTimeout of connecting.
//  2. The server reads the peer's credentials from the socket (SO_PEERCRED,
//     set by the kernel, not by the client) and checks them against the
//     port's allowed UIDs and GIDs; a port with neither list admits root
//     (uid 0) only, and a port with a list admits only what it lists.
//  3. Refusals (bad hello, bad version, unknown port, port busy, wrong
//     credentials, setup failure) are answered with {"error":"..."} and the
//     connection is closed.
//  4. On success the server creates a fresh Region for the session (memfd
//     "vswitch-memring-<port>") and two eventfds per queue pair, calls
//     Handler.Attach, and answers
//     {"version":1,"queue_pairs":N,"ring_size":R,"frame_size":F} with
//     SCM_RIGHTS carrying, in order: the region, then for each queue pair q
//     the eventfd of its to-switch ring and the eventfd of its to-client
//     ring.
//  5. The connection stays open for the life of the session and carries no
//     further messages. Its end (EOF when the client closes or dies, an
//     error, or any further message, which v1 does not allow) detaches:
//     Handler.Detach, then the region and eventfds are closed, and the port
//     may be attached again.
//
// Nothing a client sends is trusted: the hello is size-capped and parsed
// strictly, descriptors a client passes are closed unread, a silent client
// is cut off at the deadline, and concurrent handshakes are capped so a
// flood of connections cannot exhaust descriptors or goroutines.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ProtocolVersion is the control protocol version this package speaks.
const ProtocolVersion = 1

// MaxHelloSize is the largest hello the server accepts, in bytes.
const MaxHelloSize = 4096

// HelloTimeout is how long the server waits for a client's hello.
const HelloTimeout = 5 * time.Second

// helloTimeout is HelloTimeout; tests shorten it.
var helloTimeout = HelloTimeout

// maxHandshakes caps connections that have not yet been answered; further
// connections are closed at once (counted as refused, reason overload).
const maxHandshakes = 64

// maxFDs bounds the descriptors a reply may carry: the region plus two
// eventfds per queue pair, within the kernel's SCM_MAX_FD (253).
const maxFDs = 253

// A reply's descriptors must fit in one SCM_RIGHTS message.
const _ = uint(maxFDs - 1 - 2*maxQueuePairs)

// Refusal reasons, the keys of RefusedStats.
const (
	ReasonBadHello    = "bad_hello"
	ReasonVersion     = "version"
	ReasonUnknownPort = "unknown_port"
	ReasonBusy        = "busy"
	ReasonCredentials = "credentials"
	ReasonSetup       = "setup"
	ReasonOverload    = "overload"
)

var (
	// ErrPortExists is returned by AddPort for a name already in use.
	ErrPortExists = errors.New("port already exists")
	// ErrNoPort is returned by DelPort for a name that is not configured.
	ErrNoPort = errors.New("no such port")
	// ErrServerClosed is returned after Close.
	ErrServerClosed = errors.New("memring server closed")
)

// portNameRE is what a port name may look like: it ends up in a memfd name
// and in logs.
var portNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// PortConfig declares a memring port: its name (what clients ask for), the
// geometry of the region each session gets, and who may attach.
type PortConfig struct {
	Name   string
	Config Config
	// UIDs and GIDs admit a peer whose uid, or primary gid, is listed. Both
	// empty admits root (uid 0) only.
	UIDs []uint32
	GIDs []uint32
}

// validate checks pc after defaults were applied; errors name the field.
func (pc *PortConfig) validate() error {
	if !portNameRE.MatchString(pc.Name) {
		return fmt.Errorf("PortConfig.Name %q: want 1-64 of [A-Za-z0-9._-], not starting with . _ or -", pc.Name)
	}
	pc.Config.SetDefaults()
	if err := pc.Config.Validate(); err != nil {
		return fmt.Errorf("PortConfig.Config: %w", err)
	}
	return nil
}

// admits reports whether a peer with uid and gid may attach.
func (pc *PortConfig) admits(uid, gid uint32) bool {
	if len(pc.UIDs) == 0 && len(pc.GIDs) == 0 {
		return uid == 0
	}
	return slices.Contains(pc.UIDs, uid) || slices.Contains(pc.GIDs, gid)
}

// Session is one attached client. The server owns it: the region and
// eventfds are valid from Handler.Attach until Handler.Detach returns, and
// are closed by the server after that.
type Session struct {
	Port    string
	Region  *Region
	PeerPID int32
	PeerUID uint32
	PeerGID uint32
	// Hugepages says whether the region is backed by huge pages.
	Hugepages bool
	// wake holds two eventfds per queue pair: [2q] to-switch, [2q+1]
	// to-client.
	wake []int
}

// WakeFD returns the eventfd of queue pair q's to-client ring (toClient:
// the switch writes it to wake a waiting client) or of its to-switch ring
// (the client writes it; the switch polls it when it asked for a wakeup).
// The descriptor belongs to the session; do not close it.
func (s *Session) WakeFD(q int, toClient bool) int {
	if toClient {
		return s.wake[2*q+1]
	}
	return s.wake[2*q]
}

// QueuePairs returns the number of queue pairs of the session's region.
func (s *Session) QueuePairs() int { return len(s.wake) / 2 }

// close releases the session's region and eventfds.
func (s *Session) close() {
	for _, fd := range s.wake {
		unix.Close(fd)
	}
	if s.Region != nil {
		s.Region.Close()
	}
}

// Handler is the switch's side of attaching: Attach installs a session's
// queues on the workers, Detach removes them. Both are called from the
// session's goroutine and must return only when done; Detach must leave
// nothing that touches the region, because the server unmaps it next. An
// error from Attach refuses the client. They must not call DelPort or Close
// of the same server, which wait for Detach to return.
type Handler interface {
	Attach(s *Session) error
	Detach(s *Session)
}

// PortStatus is a port's configuration and counters.
type PortStatus struct {
	Name     string   `json:"name"`
	Config   Config   `json:"config"`
	UIDs     []uint32 `json:"uids,omitempty"`
	GIDs     []uint32 `json:"gids,omitempty"`
	Attached bool     `json:"attached"`
	PeerPID  int32    `json:"peer_pid,omitempty"`
	PeerUID  uint32   `json:"peer_uid,omitempty"`
	Attaches uint64   `json:"attaches"`
	Detaches uint64   `json:"detaches"`
	Refused  uint64   `json:"refused"`
}

// RefusedStats counts refused connections by reason.
type RefusedStats struct {
	BadHello    uint64 `json:"bad_hello"`
	Version     uint64 `json:"version"`
	UnknownPort uint64 `json:"unknown_port"`
	Busy        uint64 `json:"busy"`
	Credentials uint64 `json:"credentials"`
	Setup       uint64 `json:"setup"`
	Overload    uint64 `json:"overload"`
}

// Total is the sum over all reasons.
func (r RefusedStats) Total() uint64 {
	return r.BadHello + r.Version + r.UnknownPort + r.Busy + r.Credentials + r.Setup + r.Overload
}

// ServerStats are the server's counters since NewServer.
type ServerStats struct {
	Attaches uint64       `json:"attaches"`
	Detaches uint64       `json:"detaches"`
	Refused  RefusedStats `json:"refused"`
}

// port is a configured port and its live session, if any.
type port struct {
	cfg PortConfig
	// conn is set while a client holds the port (from the accepted hello
	// to the end of the detach); done is closed when that ends.
	conn *net.UnixConn
	done chan struct{}
	sess *Session

	attaches, detaches, refused uint64
}

// Server is the switch's control socket: it admits clients to ports and
// hands each a fresh region. Its methods are safe for concurrent use.
type Server struct {
	path string
	h    Handler
	log  *zap.Logger
	ln   *net.UnixListener

	handshakes atomic.Int32
	wg         sync.WaitGroup

	mu     sync.Mutex
	closed bool
	ports  map[string]*port
	conns  map[*net.UnixConn]struct{}
	stats  ServerStats
	// lastRefusalLog rate-limits refusal logs to one a second, so a flood
	// of bad clients cannot flood the log.
	lastRefusalLog time.Time
	quietRefusals  int
}

// NewServer listens on path (a stale socket file there is removed first),
// sets the socket file's mode, and serves clients until Close. log may be
// nil.
func NewServer(path string, mode os.FileMode, h Handler, log *zap.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("memring: new server: nil Handler")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("memring: new server: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("memring: new server: %w", err)
	}
	// Close must not remove the file itself through the listener: the
	// server removes it explicitly, after detaching everyone.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("memring: new server: chmod socket: %w", err)
	}
	s := &Server{
		path: path, h: h, log: log.Named("memring"), ln: ln,
		ports: map[string]*port{}, conns: map[*net.UnixConn]struct{}{},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// removeStaleSocket removes a socket file at path; anything else there is
// an error rather than something to delete.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// AddPort configures a port. Config gets defaults for zero fields.
func (s *Server) AddPort(pc PortConfig) error {
	pc.UIDs, pc.GIDs = slices.Clone(pc.UIDs), slices.Clone(pc.GIDs)
	if err := pc.validate(); err != nil {
		return fmt.Errorf("memring: add port: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("memring: add port %q: %w", pc.Name, ErrServerClosed)
	}
	if _, ok := s.ports[pc.Name]; ok {
		return fmt.Errorf("memring: add port: PortConfig.Name %q: %w", pc.Name, ErrPortExists)
	}
	s.ports[pc.Name] = &port{cfg: pc}
	return nil
}

// DelPort removes a port. A live session is detached first (Handler.Detach
// has returned when DelPort returns).
func (s *Server) DelPort(name string) error {
	s.mu.Lock()
	p, ok := s.ports[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("memring: del port %q: %w", name, ErrNoPort)
	}
	delete(s.ports, name)
	conn, done := p.conn, p.done
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
		<-done
	}
	return nil
}

// Ports returns every port's status, sorted by name.
func (s *Server) Ports() []PortStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PortStatus, 0, len(s.ports))
	for _, p := range s.ports {
		st := PortStatus{
			Name: p.cfg.Name, Config: p.cfg.Config,
			UIDs: slices.Clone(p.cfg.UIDs), GIDs: slices.Clone(p.cfg.GIDs),
			Attaches: p.attaches, Detaches: p.detaches, Refused: p.refused,
		}
		if p.sess != nil {
			st.Attached, st.PeerPID, st.PeerUID = true, p.sess.PeerPID, p.sess.PeerUID
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close stops accepting, detaches every session (Handler.Detach has
// returned for each when Close returns), and removes the socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	conns := make([]*net.UnixConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	s.log.Debug("accept loop started", zap.String("socket", s.path))
	defer s.log.Debug("accept loop stopped", zap.String("socket", s.path))
	var backoff time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", zap.Error(err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.handshakes.Add(1) > maxHandshakes {
			s.handshakes.Add(-1)
			c.Close()
			s.refuse(nil, ReasonOverload, "", "too many handshakes in progress")
			continue
		}
		if !s.track(c) {
			s.handshakes.Add(-1)
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// track records c so that Close can end it; false once closed.
func (s *Server) track(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// hello is the client's first and only message.
type hello struct {
	Version int    `json:"version"`
	Port    string `json:"port"`
}

// reply is the server's answer: Error on refusal, the geometry on success.
type reply struct {
	Error      string `json:"error,omitempty"`
	Version    int    `json:"version,omitempty"`
	QueuePairs int    `json:"queue_pairs,omitempty"`
	RingSize   int    `json:"ring_size,omitempty"`
	FrameSize  int    `json:"frame_size,omitempty"`
}

// serve runs one connection: handshake, then wait for its end, then detach.
func (s *Server) serve(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	p, sess := s.handshake(c)
	s.handshakes.Add(-1)
	if sess == nil {
		return
	}
	s.log.Info("attached", zap.String("port", sess.Port), zap.Int32("pid", sess.PeerPID),
		zap.Uint32("uid", sess.PeerUID), zap.Bool("hugepages", sess.Hugepages))
	why := waitEnd(c)
	s.detach(p, sess, why)
}

// waitEnd blocks until the session's connection ends and says how.
func waitEnd(c *net.UnixConn) string {
	c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	closeRights(oob[:oobn])
	switch {
	case err == nil && n > 0:
		return "unexpected message"
	case err == nil || errors.Is(err, io.EOF):
		return "eof"
	default:
		return err.Error()
	}
}

// detach ends a session: the handler first, so no worker touches the region
// when it is unmapped, then the region and eventfds, then the port is free.
func (s *Server) detach(p *port, sess *Session, why string) {
	s.h.Detach(sess)
	sess.close()
	s.mu.Lock()
	p.detaches++
	s.stats.Detaches++
	p.sess, p.conn = nil, nil
	done := p.done
	p.done = nil
	s.mu.Unlock()
	close(done)
	s.log.Info("detached", zap.String("port", sess.Port), zap.Int32("pid", sess.PeerPID), zap.String("why", why))
}

// handshake reads and checks the hello and, when it is admitted, sets up
// and attaches a session and answers with its descriptors. It returns the
// port and session on success; on refusal it has answered and counted.
func (s *Server) handshake(c *net.UnixConn) (*port, *Session) {
	c.SetDeadline(time.Now().Add(helloTimeout))
	buf := make([]byte, MaxHelloSize+1)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	closeRights(oob[:oobn])
	if err != nil {
		s.refuseConn(c, nil, ReasonBadHello, "", fmt.Sprintf("reading hello: %v", err))
		return nil, nil
	}
	if oobn > 0 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || n > MaxHelloSize {
		s.refuseConn(c, nil, ReasonBadHello, "", "hello too long or carries descriptors")
		return nil, nil
	}
	var h hello
	dec := json.NewDecoder(bytes.NewReader(buf[:n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || dec.More() {
		s.refuseConn(c, nil, ReasonBadHello, "", "hello is not a JSON object {\"version\":1,\"port\":NAME}")
		return nil, nil
	}
	if h.Version != ProtocolVersion {
		s.refuseConn(c, nil, ReasonVersion, h.Port, fmt.Sprintf("unsupported version %d (want %d)", h.Version, ProtocolVersion))
		return nil, nil
	}
	cred, err := peerCred(c)
	if err != nil {
		s.refuseConn(c, nil, ReasonCredentials, h.Port, "no peer credentials")
		return nil, nil
	}

	s.mu.Lock()
	p, ok := s.ports[h.Port]
	var reason, msg string
	switch {
	case s.closed:
		reason, msg = ReasonSetup, "server closing"
	case !ok:
		reason, msg = ReasonUnknownPort, fmt.Sprintf("unknown port %q", h.Port)
	case !p.cfg.admits(cred.Uid, cred.Gid):
		reason, msg = ReasonCredentials, fmt.Sprintf("uid %d gid %d may not attach to port %q", cred.Uid, cred.Gid, h.Port)
	case p.conn != nil:
		reason, msg = ReasonBusy, fmt.Sprintf("port %q is attached", h.Port)
	default:
		// Reserve the port: from here a DelPort or Close closes c and
		// waits for done.
		p.conn, p.done = c, make(chan struct{})
	}
	s.mu.Unlock()
	if reason != "" {
		s.refuseConn(c, p, reason, h.Port, msg)
		return nil, nil
	}
	cfg := p.cfg.Config

	sess, err := newSession(h.Port, cfg, cred)
	if err == nil {
		if err = s.h.Attach(sess); err != nil {
			sess.close()
			err = fmt.Errorf("attach: %w", err)
		}
	}
	if err != nil {
		s.release(p)
		s.refuseConn(c, p, ReasonSetup, h.Port, err.Error())
		return nil, nil
	}
	s.mu.Lock()
	p.sess = sess
	p.attaches++
	s.stats.Attaches++
	s.mu.Unlock()

	if err := sendReply(c, sess, cfg); err != nil {
		s.detach(p, sess, "sending reply: "+err.Error())
		return nil, nil
	}
	return p, sess
}

// release frees a reserved port whose session never came to be.
func (s *Server) release(p *port) {
	s.mu.Lock()
	done := p.done
	p.conn, p.done = nil, nil
	s.mu.Unlock()
	close(done)
}

// newSession creates a session's region and eventfds.
func newSession(name string, cfg Config, cred *unix.Ucred) (*Session, error) {
	r, huge, err := NewRegion("vswitch-memring-"+name, cfg)
	if err != nil {
		return nil, fmt.Errorf("new region: %w", err)
	}
	sess := &Session{Port: name, Region: r, PeerPID: cred.Pid, PeerUID: cred.Uid, PeerGID: cred.Gid, Hugepages: huge}
	for range 2 * cfg.QueuePairs {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			sess.close()
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		sess.wake = append(sess.wake, fd)
	}
	return sess, nil
}

// sendReply answers an admitted client with the geometry and descriptors.
func sendReply(c *net.UnixConn, sess *Session, cfg Config) error {
	b, _ := json.Marshal(reply{Version: ProtocolVersion, QueuePairs: cfg.QueuePairs, RingSize: cfg.RingSize, FrameSize: cfg.FrameSize})
	fds := make([]int, 0, 1+len(sess.wake))
	fds = append(fds, int(sess.Region.File().Fd()))
	fds = append(fds, sess.wake...)
	n, oobn, err := c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	if err == nil && (n != len(b) || oobn == 0) {
		err = io.ErrShortWrite
	}
	return err
}

// peerCred returns the credentials the kernel recorded for c's peer.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// closeRights closes every descriptor carried by SCM_RIGHTS in oob: the
// kernel installed them in our table on receipt, wanted or not.
func closeRights(oob []byte) {
	if len(oob) == 0 {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// refuseConn answers c with an error message and counts the refusal.
func (s *Server) refuseConn(c *net.UnixConn, p *port, reason, portName, msg string) {
	// Counted first: a client that reads the answer sees it counted.
	s.refuse(p, reason, portName, msg)
	b, _ := json.Marshal(reply{Error: msg})
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(b)
}

// refuse counts a refusal and logs it, at most one log line a second.
func (s *Server) refuse(p *port, reason, portName, msg string) {
	s.mu.Lock()
	r := &s.stats.Refused
	switch reason {
	case ReasonBadHello:
		r.BadHello++
	case ReasonVersion:
		r.Version++
	case ReasonUnknownPort:
		r.UnknownPort++
	case ReasonBusy:
		r.Busy++
	case ReasonCredentials:
		r.Credentials++
	case ReasonSetup:
		r.Setup++
	case ReasonOverload:
		r.Overload++
	}
	if p != nil && s.ports[p.cfg.Name] == p {
		p.refused++
	}
	now := time.Now()
	logIt := now.Sub(s.lastRefusalLog) >= time.Second
	quiet := s.quietRefusals
	if logIt {
		s.lastRefusalLog, s.quietRefusals = now, 0
	} else {
		s.quietRefusals++
	}
	s.mu.Unlock()
	if logIt {
		s.log.Warn("refused", zap.String("reason", reason), zap.String("port", portName),
			zap.String("detail", msg), zap.Int("suppressed", quiet))
	}
}
