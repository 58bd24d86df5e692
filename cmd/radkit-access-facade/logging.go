package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc/grpclog"
)

// newLogger returns the process logger.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// routeGlobalLogs sends what OpenTelemetry, grpc-go and go-redis log on
// their own (an exporter that cannot reach its collector, a transport
// error, a Redis connection pool that cannot dial) to logger, so that a
// --log-format json log stays JSON: by default all three print plain-text
// lines to stderr.
//
// The libraries offer only process-wide setters for this, so only main
// calls it, once, before gRPC is used (grpclog.SetLoggerV2 may not be
// called later); the packages under server/ and the tests that run this
// command in-process never touch these globals.
//
// flush writes out what the logger's output holds: grpc-go's Fatal calls
// it before the process exits.
func routeGlobalLogs(logger *slog.Logger, flush func()) {
	otelLog := logger.With("component", "opentelemetry")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		otelLog.Warn("opentelemetry error", "error", err)
	}))
	otel.SetLogger(logr.FromSlogHandler(otelLog.Handler()))
	grpclog.SetLoggerV2(grpcLogger{l: logger.With("component", "grpc"), flush: flush})
	redis.SetLogger(redisLogger{l: logger.With("component", "redis")})
}

// redisLogger is go-redis's logger writing to a slog.Logger. go-redis
// logs only what goes wrong (a pool that cannot dial, a connection it
// drops), without a level: a warning. Its lines name addresses, never
// passwords.
type redisLogger struct{ l *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (r redisLogger) Printf(ctx context.Context, format string, args ...any) {
	r.l.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

// grpcLogger is a grpclog.LoggerV2 that writes to a slog.Logger. As
// grpc-go's own default does, it shows errors and keeps the rest (its
// information and warnings are chatty) for the debug level.
type grpcLogger struct {
	l     *slog.Logger
	flush func() // before exiting; nil when the output needs none
}

// exit writes out the log and ends the process, as grpclog's Fatal must.
func (g grpcLogger) exit() {
	if g.flush != nil {
		g.flush()
	}
	os.Exit(1)
}

func (g grpcLogger) log(level slog.Level, msg string) {
	g.l.Log(context.Background(), level, msg)
}

func (g grpcLogger) Info(args ...any)   { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any) { g.log(slog.LevelDebug, sprintln(args...)) }
func (g grpcLogger) Infof(format string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g grpcLogger) Warning(args ...any)   { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any) { g.log(slog.LevelDebug, sprintln(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g grpcLogger) Error(args ...any)   { g.log(slog.LevelError, fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any) { g.log(slog.LevelError, sprintln(args...)) }
func (g grpcLogger) Errorf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatal logs and exits, as grpclog.LoggerV2 requires.
func (g grpcLogger) Fatal(args ...any) { g.log(slog.LevelError, fmt.Sprint(args...)); g.exit() }

// Fatalln logs and exits, as grpclog.LoggerV2 requires.
func (g grpcLogger) Fatalln(args ...any) { g.log(slog.LevelError, sprintln(args...)); g.exit() }

// Fatalf logs and exits, as grpclog.LoggerV2 requires.
func (g grpcLogger) Fatalf(format string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(format, args...))
	g.exit()
}

// V reports whether verbose logging at level l is on: only level 0, and
// only when the logger shows debug records.
func (g grpcLogger) V(l int) bool {
	return l <= 0 && g.l.Enabled(context.Background(), slog.LevelDebug)
}

// sprintln is fmt.Sprintln without the final newline.
func sprintln(args ...any) string {
	s := fmt.Sprintln(args...)
	return s[:len(s)-1]
}
