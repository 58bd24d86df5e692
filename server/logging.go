package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/server/internal/requestid"
	"github.com/radkit/radkit-access-facade/server/internal/resilience"
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
	identity       string // the upstream identity the call acts as, or asked for
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

// setIdentity records the upstream identity of the call in ctx for its log
// line: the one it acts as, or the one it asked for when refused.
func setIdentity(ctx context.Context, identity string) {
	if ci := callInfoFrom(ctx); ci != nil {
		ci.mu.Lock()
		ci.identity = identity
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

// appendAttrs appends the record's log attributes to attrs.
func (ci *callInfo) appendAttrs(attrs []slog.Attr) []slog.Attr {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.caller != "" {
		attrs = append(attrs, slog.String("caller", ci.caller))
	}
	if ci.identity != "" {
		attrs = append(attrs, slog.String("identity", ci.identity))
	}
	switch status := ci.upstreamStatus; {
	case status != 0:
		attrs = append(attrs, slog.Int("upstream.status", status))
	case ci.upstream.Cached():
		// Answered from the facade's cache: no upstream answer to log.
		attrs = append(attrs, slog.String("upstream.cache", "hit"))
	case ci.upstream.StatusCode() != 0:
		attrs = append(attrs, slog.Int("upstream.status", ci.upstream.StatusCode()))
	}
	if ci.upstreamError != "" {
		attrs = append(attrs, slog.String("upstream.error", ci.upstreamError))
	}
	return attrs
}

// fields is appendAttrs as go-grpc-middleware logging fields, for
// interceptors built on that package.
func (ci *callInfo) fields() logging.Fields {
	var f logging.Fields
	for _, a := range ci.appendAttrs(nil) {
		f = append(f, a.Key, a.Value.Any())
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
//
// The line has the fields of go-grpc-middleware's logging interceptor
// (grpc.service, grpc.method, grpc.code, grpc.time_ms, ...), which it
// used to be, but is built on the stack and only when its level is
// enabled: the middleware cost about 70 allocations a call (issue 16).
func UnaryLogger(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		ctx, ci := withCallInfo(ctx)
		resp, err := handler(ctx, req)
		code := status.Code(err)
		level := codeLevel(code)
		if strings.HasPrefix(info.FullMethod, healthMethodPrefix) {
			level = slog.LevelDebug
		}
		if !logger.Enabled(ctx, level) {
			return resp, err
		}
		logCall(ctx, logger, level, info.FullMethod, start, code, err, ci)
		return resp, err
	}
}

// logCall writes the log line of a finished unary call.
func logCall(ctx context.Context, logger *slog.Logger, level slog.Level, fullMethod string, start time.Time, code codes.Code, err error, ci *callInfo) {
	elapsed := time.Since(start)
	service, method := splitMethod(fullMethod)
	var buf [18]slog.Attr
	attrs := append(buf[:0],
		slog.String("protocol", string(ProtocolOf(ctx))),
	)
	attrs = appendCorrelationAttrs(ctx, attrs)
	attrs = ci.appendAttrs(attrs)
	attrs = append(attrs,
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", "unary"),
	)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("grpc.start_time", start.Format(time.RFC3339)))
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	// Milliseconds with microsecond precision, as a string: the format of
	// the middleware's grpc.time_ms.
	ms := float32(elapsed.Nanoseconds()/1000) / 1000
	attrs = append(attrs, slog.String("grpc.time_ms", strconv.FormatFloat(float64(ms), 'g', -1, 32)))
	logRecord(ctx, logger, level, "finished call", attrs)
}

// logRecord writes a record of attrs to logger's handler, which the caller
// has found enabled at level. It is logger.LogAttrs without the
// runtime.Callers that LogAttrs makes for a source position our handlers
// never show (AddSource is off), about a microsecond per line.
func logRecord(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, attrs []slog.Attr) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	_ = logger.Handler().Handle(ctx, r) // a log has nowhere to report its own failure
}

// splitMethod splits "/package.Service/Method" into its service and method.
func splitMethod(fullMethod string) (service, method string) {
	name := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "unknown", "unknown"
}

// codeLevel is the level of a call's log line by its code, as
// go-grpc-middleware's DefaultServerCodeToLevel sets it.
func codeLevel(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.NotFound, codes.Canceled, codes.AlreadyExists, codes.InvalidArgument, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default:
		return slog.LevelError
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

// loggerOptions is StreamLogger's go-grpc-middleware logger, the options
// of a stream's log line, and those of a health probe's (the same, at
// debug level whatever the code). The fields are UnaryLogger's: they come
// from the same callInfo and correlation attributes, and the middleware
// adds the grpc.* ones UnaryLogger writes itself.
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
	for _, a := range appendCorrelationAttrs(ctx, nil) {
		f = append(f, a.Key, a.Value.Any())
	}
	return f
}

// appendCorrelationAttrs appends correlationFields' fields to attrs.
func appendCorrelationAttrs(ctx context.Context, attrs []slog.Attr) []slog.Attr {
	if id, ok := requestid.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("x_request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	return attrs
}

// healthMethodPrefix starts the full method name of every grpc.health.v1 call.
const healthMethodPrefix = "/grpc.health.v1.Health/"
