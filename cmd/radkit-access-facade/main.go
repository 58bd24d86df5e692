// Command radkit-access-facade serves radkit.access.v1.AccessService over
// gRPC and HTTP/JSON in front of RADKit Access Cloud.
//
// Configuration comes from flags, each with an environment fallback;
// secrets come only from the environment or from files. Run with --help for
// the list, or see docs/configuration.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/radkit/radkit-access-facade/internal/logwriter"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// Signals first, before anything slow: until signal.Notify, SIGHUP's
	// default action kills the process, so an operator's reload during
	// start-up would stop it. A SIGHUP that arrives before the facade
	// serves waits in the channel and reloads once it does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	setGCPercent(os.Getenv)
	hooks := processHooks{hangup: hup, routeGlobalLogs: routeGlobalLogs}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, hooks); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "radkit-access-facade:", err)
		}
		os.Exit(2)
	}
}

// defaultGCPercent is the garbage collector's GOGC when the environment
// sets none. The facade's live heap is small and almost all of it belongs
// to calls in flight, so Go's default of 100 lets the heap reach twice
// what is live, stacks' share included: at 1,000 GenerateOTP calls in
// flight, 75 holds the process about 4 MiB lower for a few percent more
// CPU (docs/performance.md, mode U). Prometheus made the same choice
// (prometheus/prometheus#14288).
const defaultGCPercent = 75

// setGCPercent sets the collector's GOGC to defaultGCPercent, unless the
// environment's GOGC (which the runtime has applied already) sets it.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// processHooks connect run to the process. main sets them; tests that run
// the command in-process leave them zero.
type processHooks struct {
	// hangup delivers SIGHUP; nil never delivers.
	hangup <-chan os.Signal
	// routeGlobalLogs, if set, is called with the process logger before
	// anything else uses it, to install it where libraries log through
	// process-wide setters only (see routeGlobalLogs).
	routeGlobalLogs func(logger *slog.Logger, flush func())
}

// run is main without the process: arguments, environment, output and the
// process hooks are passed in, so that tests can run the whole command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hooks processHooks) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, "radkit-access-facade", version)
		return nil
	}
	// Log lines are written to stderr by a goroutine of their own, off the
	// path of the calls that log them (package logwriter); what it holds
	// is written before run returns.
	logOut := logwriter.New(stderr, 0)
	defer logOut.Close()
	logger := newLogger(logOut, cfg.logFormat, cfg.logLevel)
	// Audit records take the same output without waiting for a batch:
	// each is written before the call that it records answers, so that
	// every OTP a caller holds has its record even if the process is
	// killed the next instant. They are kept whatever the log level.
	auditLogger := newLogger(logOut.Synced(), cfg.logFormat, min(cfg.logLevel, slog.LevelInfo))
	if hooks.routeGlobalLogs != nil {
		hooks.routeGlobalLogs(logger, logOut.Flush)
	}
	cfg.facade.Logger = logger
	cfg.facade.AuditLogger = auditLogger
	cfg.facade.Version = version

	// Tracing exports over OTLP when the standard OTEL_* variables ask for
	// it, and costs nothing otherwise.
	tp, prop, shutdownTracing, err := telemetry.SetupTracing(ctx, telemetry.TracingConfig{
		ServiceName: telemetry.DefaultServiceName,
		Version:     version,
		Getenv:      getenv,
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(ctx); err != nil {
			logger.Warn("tracing shutdown", "error", err)
		}
	}()
	cfg.facade.TracerProvider, cfg.facade.Propagator = tp, prop

	f, err := facade.New(ctx, cfg.facade)
	if err != nil {
		return cfg.explain(err)
	}
	stopReload := reloadOnHangup(ctx, f, hooks.hangup)
	defer stopReload()
	return f.Run(ctx)
}

// reloadOnHangup reloads the caller keys and the TLS certificate on every
// delivery on hup until ctx is done or the returned stop function is
// called.
func reloadOnHangup(ctx context.Context, f *facade.Facade, hup <-chan os.Signal) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = f.Reload() // logs its own outcome
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
