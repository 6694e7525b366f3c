// Command vswitchd is the vswitch datapath daemon: it attaches AF_XDP ports,
// runs the poll-mode workers, and serves the control API and metrics.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	vswitch "github.com/vswitch/vswitch/switch"
	"github.com/vswitch/vswitch/switch/api"
	"github.com/vswitch/vswitch/switch/metrics"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vswitchd:", err)
		os.Exit(1)
	}
}

type options struct {
	config      string
	metricsAddr string
	apiSocket   string
	stateFile   string
	logLevel    string
}

func newRootCmd() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:           "vswitchd",
		Short:         "vswitch datapath daemon",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       vswitch.Version,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, &o)
			if err != nil {
				return err
			}
			return run(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "YAML config file (empty: defaults, no ports)")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this host:port (default off)")
	f.StringVar(&o.apiSocket, "api-socket", "", "control API unix socket (overrides config)")
	f.StringVar(&o.stateFile, "state-file", "", "runtime state file (overrides config)")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides config)")
	return cmd
}

// loadConfig reads the config file and applies flag overrides; the result
// is validated so that a bad flag names itself.
func loadConfig(cmd *cobra.Command, o *options) (*vswitch.Config, error) {
	var cfg *vswitch.Config
	var err error
	if o.config != "" {
		cfg, err = vswitch.LoadConfig(o.config)
	} else {
		cfg, err = vswitch.ParseConfig(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", o.config, err)
	}
	f := cmd.Flags()
	if f.Changed("metrics-addr") {
		cfg.MetricsAddr = o.metricsAddr
	}
	if f.Changed("api-socket") {
		cfg.APISocket = o.apiSocket
	}
	if f.Changed("state-file") {
		cfg.StateFile = o.stateFile
	}
	if f.Changed("log-level") {
		cfg.LogLevel = o.logLevel
	}
	if err := cfg.Validate(); err != nil {
		// A value that came from a flag is reported as that flag.
		var fe *vswitch.FieldError
		if errors.As(err, &fe) {
			if flag, ok := flagOfField[fe.Field]; ok && f.Changed(flag) {
				return nil, fmt.Errorf("invalid --%s: %w", flag, err)
			}
		}
		return nil, err
	}
	return cfg, nil
}

// flagOfField maps config fields to the flags that override them.
var flagOfField = map[string]string{
	"log_level":    "log-level",
	"metrics_addr": "metrics-addr",
	"api_socket":   "api-socket",
	"state_file":   "state-file",
}

func newLogger(level string) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

func run(cfg *vswitch.Config) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	pl, err := vswitch.PlaceThreads(cfg.Workers)
	if err != nil {
		return err
	}
	log.Info("control threads placed", zap.Ints("control_cpus", pl.ControlCPUs),
		zap.Ints("worker_cpus", cfg.Workers.CPUs), zap.Int("gomaxprocs", pl.GOMAXPROCS))
	if len(pl.Overlap) > 0 {
		log.Warn("workers share CPUs with the control threads", zap.Ints("cpus", pl.Overlap))
	}
	sw, err := vswitch.New(cfg, log)
	if err != nil {
		return err
	}
	defer sw.Stop()
	if err := sw.LoadPorts(); err != nil {
		return err
	}
	srv := api.NewServer(sw, log)
	if err := srv.Serve(cfg.APISocket, os.FileMode(cfg.APISocketMode)); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer srv.Close()
	if cfg.MetricsAddr != "" {
		ms, err := metrics.Serve(cfg.MetricsAddr, sw, log)
		if err != nil {
			return fmt.Errorf("metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		defer ms.Close()
	}
	log.Info("vswitchd ready", zap.String("version", vswitch.Version), zap.String("api_socket", cfg.APISocket),
		zap.Int("workers", cfg.Workers.Count), zap.String("poll_mode", cfg.Workers.PollMode))

	sig := <-sigs
	log.Info("shutting down", zap.String("signal", sig.String()))
	return nil
}
