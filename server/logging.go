package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/radkit/radkit-access-facade/server/requestid"
	"github.com/radkit/radkit-access-facade/server/resilience"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// callInfo is what a handler learns during a call that the per-call log line
// reports: the upstream answer and, once callers authenticate, who called.
// The logging interceptor puts one in the context before the handler runs
// and reads it when the call finishes.
type callInfo struct {
	// upstream is filled in by the upstream client (and the caches in
	// front of it) for requests made with the call's context.
	upstream *upstream.Report

	mu             sync.Mutex
	upstreamStatus int    // HTTP status of an error answer; 0 when there was none
	upstreamError  string // "transport", "malformed", ... when there was no usable answer
	caller         string
}

type callInfoKey struct{}

func withCallInfo(ctx context.Context) (context.Context, *callInfo) {
	ci := &callInfo{}
	ctx, ci.upstream = upstream.WithReport(ctx)
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

func callInfoFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
	return ci
}

// SetCaller records the authenticated caller's identity for the call's log
// line. It does nothing outside a call made through UnaryLogger or
// StreamLogger.
func SetCaller(ctx context.Context, identity string) {
	if ci := callInfoFrom(ctx); ci != nil {
		ci.mu.Lock()
		ci.caller = identity
		ci.mu.Unlock()
	}
}

// recordUpstream notes how the upstream call of the call in ctx failed, as
// the upstream's typed error says; the upstream client itself reports
// answers and cache hits (see upstream.Report). A nil err records nothing.
func recordUpstream(ctx context.Context, err error) {
	ci := callInfoFrom(ctx)
	if ci == nil || err == nil {
		return
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	// The status of an unusable answer is logged too: the upstream did
	// answer.
	ci.upstreamStatus = upstream.StatusCode(err)
	switch {
	case errors.Is(err, upstream.ErrMalformedResponse):
		ci.upstreamError = "malformed"
	case ci.upstreamStatus != 0:
	case errors.Is(err, resilience.ErrCircuitOpen):
		ci.upstreamError = "circuit_open"
	case errors.Is(err, resilience.ErrThrottled):
		ci.upstreamError = "throttled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		ci.upstreamError = "deadline"
	case upstream.IsUnanswered(err):
		ci.upstreamError = "transport"
	default:
		ci.upstreamError = "other"
	}
}

// Protocol names the door a call came in by: its log line's "protocol"
// field.
type Protocol string

// The doors.
const (
	// ProtocolGRPC is a native gRPC call: any call not marked otherwise.
	ProtocolGRPC Protocol = "grpc"
	// ProtocolHTTP is a call through the HTTP/JSON gateway.
	ProtocolHTTP Protocol = "http"
)

type protocolKey struct{}

// WithProtocol marks the call in ctx as one that came in by p. The gateway
// marks its calls ProtocolHTTP before they run the interceptor chain.
func WithProtocol(ctx context.Context, p Protocol) context.Context {
	return context.WithValue(ctx, protocolKey{}, p)
}

// ProtocolOf returns the door the call in ctx came in by: what
// WithProtocol set, else ProtocolGRPC.
func ProtocolOf(ctx context.Context) Protocol {
	if p, ok := ctx.Value(protocolKey{}).(Protocol); ok {
		return p
	}
	return ProtocolGRPC
}

// fields turns the record into log fields.
func (ci *callInfo) fields() logging.Fields {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	var f logging.Fields
	if ci.caller != "" {
		f = append(f, "caller", ci.caller)
	}
	switch status := ci.upstreamStatus; {
	case status != 0:
		f = append(f, "upstream.status", status)
	case ci.upstream.Cached():
		// Answered from the facade's cache: no upstream answer to log.
		f = append(f, "upstream.cache", "hit")
	case ci.upstream.StatusCode() != 0:
		f = append(f, "upstream.status", ci.upstream.StatusCode())
	}
	if ci.upstreamError != "" {
		f = append(f, "upstream.error", ci.upstreamError)
	}
	return f
}

// UnaryLogger returns an interceptor that writes one structured log line per
// call when it finishes: method, gRPC code, duration, the door it came in
// by (protocol grpc or http, see WithProtocol), the upstream's HTTP status,
// the caller, the request ID (see UnaryRequestID) and, when tracing is on,
// the trace ID. Request and response payloads are never logged:
// they carry OTPs and tokens.
//
// grpc.health.v1 calls are logged at debug level, whatever their code:
// probes and load balancers check every few seconds per replica, and a line
// each would bury the calls that matter.
func UnaryLogger(logger *slog.Logger) grpc.UnaryServerInterceptor {
	log, callOpts, probeOpts := loggerOptions(logger)
	calls := logging.UnaryServerInterceptor(log, callOpts...)
	probes := logging.UnaryServerInterceptor(log, probeOpts...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, _ = withCallInfo(ctx)
		if strings.HasPrefix(info.FullMethod, healthMethodPrefix) {
			return probes(ctx, req, info, handler)
		}
		return calls(ctx, req, info, handler)
	}
}

// StreamLogger is UnaryLogger for streaming calls: one log line when the
// stream ends, with the same fields (a WatchServiceStatus stream that
// failed upstream logs the upstream's answer).
func StreamLogger(logger *slog.Logger) grpc.StreamServerInterceptor {
	log, callOpts, probeOpts := loggerOptions(logger)
	calls := logging.StreamServerInterceptor(log, callOpts...)
	probes := logging.StreamServerInterceptor(log, probeOpts...)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, _ := withCallInfo(ss.Context())
		ss = &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: ctx}
		if strings.HasPrefix(info.FullMethod, healthMethodPrefix) {
			return probes(srv, ss, info, handler)
		}
		return calls(srv, ss, info, handler)
	}
}

// loggerOptions is what UnaryLogger and StreamLogger share: the logger,
// the options of a call's log line, and those of a health probe's (the
// same, at debug level whatever the code).
func loggerOptions(logger *slog.Logger) (log logging.Logger, calls, probes []logging.Option) {
	log = logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		logger.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	fields := logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
		// These override the interceptor's own fields of the same name,
		// among them its constant protocol=grpc.
		f := logging.Fields{"protocol", string(ProtocolOf(ctx))}
		f = append(f, correlationFields(ctx)...)
		if ci := callInfoFrom(ctx); ci != nil {
			f = append(f, ci.fields()...)
		}
		return f
	})
	calls = []logging.Option{logging.WithLogOnEvents(logging.FinishCall), fields}
	probes = append(slices.Clip(calls), logging.WithLevels(func(codes.Code) logging.Level { return logging.LevelDebug }))
	return log, calls, probes
}

// correlationFields are the fields that tie a call's log line to the
// caller's and the upstream's records: the request ID (x_request_id, not
// request_id, which is GenerateOTP's idempotency key) and, when tracing
// is on, the trace ID.
func correlationFields(ctx context.Context) logging.Fields {
	var f logging.Fields
	if id, ok := requestid.FromContext(ctx); ok {
		f = append(f, "x_request_id", id)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		f = append(f, "trace_id", sc.TraceID().String())
	}
	return f
}

// healthMethodPrefix starts the full method name of every grpc.health.v1 call.
const healthMethodPrefix = "/grpc.health.v1.Health/"
