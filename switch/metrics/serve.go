package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	vswitch "github.com/vswitch/vswitch/switch"
)

// Handler returns the /metrics handler: the switch's metrics from ctl plus
// the Go runtime's and the process's, in a registry of its own so nothing
// registered globally by a library leaks in.
func Handler(ctl vswitch.Control, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(ctl),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log.Named("metrics")),
		// One bad series (say two ports reported under one name) must not
		// blank the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Serve listens on addr (host:port) and serves /metrics from ctl in the
// background. It binds before returning, so an address in use or not
// bindable is an error here, not a log line later. The returned server's
// Addr is the bound address (useful with port 0); stop it with Shutdown or
// Close.
func Serve(addr string, ctl vswitch.Control, log *zap.Logger) (*http.Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(ctl, log))
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(log.Named("metrics.http")),
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics listening", zap.String("addr", srv.Addr))
	return srv, nil
}
