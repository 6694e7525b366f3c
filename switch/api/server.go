package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	vswitch "github.com/vswitch/vswitch/switch"
)

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// Server answers the control API from a vswitch.Control.
type Server struct {
	ctl     vswitch.Control
	log     *zap.Logger
	handler http.Handler

	mu     sync.Mutex
	srv    *http.Server
	path   string
	sock   os.FileInfo // the socket file we created, to remove only our own
	closed bool
	done   chan struct{} // closed when the serve goroutine returns
}

// NewServer returns a server for ctl. It does not listen until Serve.
func NewServer(ctl vswitch.Control, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{ctl: ctl, log: log}
	s.handler = s.routes()
	return s
}

// Serve creates the unix socket at path with permission mode and starts
// answering on it in the background. It returns once the socket accepts
// connections, so a bind failure is known before the daemon goes on:
// ErrDaemonRunning if another process answers on path; an error too if path
// exists and is not a socket. A stale socket left by a dead daemon is
// replaced. The parent directory is created (0755) if missing.
func (s *Server) Serve(path string, mode os.FileMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("serve api: %w", http.ErrServerClosed)
	}
	if s.srv != nil {
		return fmt.Errorf("serve api: already serving on %s", s.path)
	}
	ln, fi, err := listenUnix(path, mode)
	if err != nil {
		return err
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.path, s.sock = path, fi
	s.done = make(chan struct{})
	go s.serve(s.srv, ln, s.done)
	s.log.Info("api listening", zap.String("socket", path), zap.String("mode", fmt.Sprintf("%#o", uint32(mode))))
	return nil
}

func (s *Server) serve(srv *http.Server, ln net.Listener, done chan struct{}) {
	defer close(done)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("api server stopped", zap.Error(err))
	}
}

// Close stops accepting, waits up to 5s for requests in flight, and removes
// the socket file if it is still the one Serve created. It is safe to call
// more than once and without Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Requests still running past the deadline: cut them off.
		s.srv.Close()
		err = fmt.Errorf("shut down api: %w", err)
	}
	<-s.done
	if cur, statErr := os.Lstat(s.path); statErr == nil && os.SameFile(cur, s.sock) {
		if rmErr := os.Remove(s.path); rmErr != nil && err == nil {
			err = fmt.Errorf("remove api socket: %w", rmErr)
		}
	}
	s.log.Info("api stopped", zap.String("socket", s.path))
	return err
}
