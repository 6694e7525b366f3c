package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"go.uber.org/zap"

	vswitch "github.com/vswitch/vswitch/switch"
)

// maxBodyBytes bounds a request body; a PortSpec, BindingSpec or DNS spec
// is a few hundred bytes.
const maxBodyBytes = 64 << 10

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.getStatus)
	mux.HandleFunc("GET /v1/version", s.getVersion)
	mux.HandleFunc("GET /v1/ports", s.getPorts)
	mux.HandleFunc("POST /v1/ports", s.addPort)
	mux.HandleFunc("DELETE /v1/ports/{name}", s.delPort)
	mux.HandleFunc("GET /v1/fdb", s.getFDB)
	mux.HandleFunc("DELETE /v1/fdb", s.flushFDB)
	mux.HandleFunc("GET /v1/stats", s.getStats)
	s.peepholeRoutes(mux)
	s.gatewayRoutes(mux)
	return s.middleware(jsonMuxErrors(mux))
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ctl.Status())
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, VersionInfo{Version: vswitch.Version, GoVersion: runtime.Version(), API: APIVersion})
}

func (s *Server) getPorts(w http.ResponseWriter, r *http.Request) {
	ports := s.ctl.Ports()
	if ports == nil {
		ports = []vswitch.PortInfo{} // [] rather than null: clients range over it
	}
	writeJSON(w, http.StatusOK, ports)
}

func (s *Server) addPort(w http.ResponseWriter, r *http.Request) {
	var spec vswitch.PortSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Validate here too, so every client gets the same 400 naming the
	// field whatever the Control does.
	spec.SetDefaults()
	if err := spec.Validate(""); err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := s.ctl.AddPort(spec)
	if err != nil {
		s.writeError(w, r, nameSubject(err, "add port %q", spec.Name))
		return
	}
	s.log.Info("port added", zap.String("port", info.Name), zap.String("interface", info.Interface))
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) delPort(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.ctl.DelPort(name); err != nil {
		s.writeError(w, r, nameSubject(err, "delete port %q", name))
		return
	}
	s.log.Info("port deleted", zap.String("port", name))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getFDB(w http.ResponseWriter, r *http.Request) {
	f, err := parseFDBFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all := s.ctl.FDB()
	entries := make([]vswitch.FDBEntry, 0, len(all))
	for _, e := range all {
		if f.Match(e) {
			entries = append(entries, e)
		}
	}
	writeJSON(w, http.StatusOK, entries)
}

func (s *Server) flushFDB(w http.ResponseWriter, r *http.Request) {
	n := s.ctl.FlushFDB()
	s.log.Info("fdb flushed", zap.Int("entries", n))
	writeJSON(w, http.StatusOK, FlushResult{Flushed: n})
}

// getStats sends Control.Stats as it is, Peephole counters included: the
// API adds nothing and leaves nothing out.
func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ctl.Stats())
}

// nameSubject gives a bare sentinel from the Control ("not found") the
// subject it is about; an error that already says more is left alone.
func nameSubject(err error, format string, a ...any) error {
	if err == vswitch.ErrNotFound || err == vswitch.ErrExists {
		return fmt.Errorf(format+": %w", append(a, err)...)
	}
	return err
}

// httpError is an error with the status code it answers with.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// decodeBody reads one JSON value into v, rejecting unknown fields (so a
// misspelt field is an error, not silently ignored), trailing data and
// bodies over maxBodyBytes.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &httpError{http.StatusRequestEntityTooLarge, fmt.Errorf("decode request body: larger than %d bytes", tooBig.Limit)}
		}
		if errors.Is(err, io.EOF) {
			return &httpError{http.StatusBadRequest, errors.New("decode request body: empty body")}
		}
		return &httpError{http.StatusBadRequest, fmt.Errorf("decode request body: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &httpError{http.StatusBadRequest, errors.New("decode request body: trailing data after the JSON value")}
	}
	return nil
}

// statusOf maps an error to its HTTP status code.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case vswitch.IsFieldError(err):
		return http.StatusBadRequest
	case errors.Is(err, vswitch.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, vswitch.ErrExists), errors.Is(err, vswitch.ErrNoRouter):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	body := ErrorResponse{Error: err.Error()}
	var fe *vswitch.FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	if code >= 500 {
		s.log.Error("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// An encode error here means the client went away; nothing to tell it.
	_ = json.NewEncoder(w).Encode(v)
}

// jsonMuxErrors turns the mux's own plain-text 404 and 405 answers into
// ErrorResponse bodies, so a client parses every error the same way.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := mux.Handler(r); pattern == "" {
			rec := &headerRecorder{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if rec.code == http.StatusNotFound || rec.code == http.StatusMethodNotAllowed {
				if allow := rec.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				writeJSON(w, rec.code, ErrorResponse{Error: fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, http.StatusText(rec.code))})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// headerRecorder keeps the status and headers a handler writes and drops
// the body.
type headerRecorder struct {
	header http.Header
	code   int
}

func (h *headerRecorder) Header() http.Header { return h.header }
func (h *headerRecorder) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}
func (h *headerRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}

// middleware logs each request at debug level and turns a panic in the
// Control into a 500 instead of a dropped connection.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("api handler panicked", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", p), zap.Stack("stack"))
				if sw.code == 0 {
					writeJSON(sw, http.StatusInternalServerError, ErrorResponse{Error: fmt.Sprintf("internal error: %v", p)})
				}
			}
			s.log.Debug("api request", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", sw.code), zap.Duration("took", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
