package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/requestid"
	"github.com/radkit/radkit-access-facade/internal/resilience"
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

// UnaryLogger returns an interceptor that writes one structured log line per
// call when it finishes: method, gRPC code, duration, the door it came in
// by (protocol grpc or http, see WithProtocol), the upstream's HTTP status,
// the caller, the request ID (see UnaryRequestID) and, when tracing is on,
// the trace ID. Request and response payloads are never logged:
// they carry OTPs and tokens. Every call is logged; UnaryCallLogger
// chooses.
//
// grpc.health.v1 calls are logged at debug level, whatever their code:
// probes and load balancers check every few seconds per replica, and a line
// each would bury the calls that matter.
//
// The line has the fields of go-grpc-middleware's logging interceptor
// (grpc.service, grpc.method, grpc.code, grpc.time_ms, ...), but is built
// in a buffer the interceptor reuses, and only when its level is enabled:
// the middleware cost about 70 allocations a call.
func UnaryLogger(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return UnaryCallLogger(logger, CallLogAll)
}

// UnaryCallLogger is UnaryLogger writing the lines that policy keeps:
// every failed call's, and all, none or a sample of the successful ones.
func UnaryCallLogger(logger *slog.Logger, policy CallLog) grpc.UnaryServerInterceptor {
	keep := policy.sampler()
	bufs := newLineBuffers()
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
		sample, ok := keep(code == codes.OK)
		if !ok {
			return resp, err
		}
		logCall(ctx, logger, bufs, level, info.FullMethod, "unary", start, code, err, ci, sample, "")
		return resp, err
	}
}

// maxLineAttrs is room for the attributes of a call's log line: 19 at
// most today. A longer line would spill to the heap, not fail.
const maxLineAttrs = 20

// lineBuffers lends logCall the buffer it gathers a line's attributes in.
//
// A status call's log line is written deep: its handler goroutine does
// not grow its stack for the upstream call (the coalesced lookup runs on
// a goroutine of its own), so it writes the line on the 8 KiB stack that
// grpc-go's receive left it, under grpc-go's frames, the interceptors
// above the logger and slog's JSON handler. With the buffer's 800 bytes on
// logCall's frame, the line overflowed that stack and the runtime copied
// it once per call; lent, the buffer leaves the line about 0.7 KiB to
// spare (docs/performance.md). Lines allocate no buffer, except after a
// collection has emptied the pool.
type lineBuffers struct{ pool sync.Pool }

// newLineBuffers returns an empty lineBuffers.
func newLineBuffers() *lineBuffers {
	b := &lineBuffers{}
	b.pool.New = func() any { return new([maxLineAttrs]slog.Attr) }
	return b
}

// get lends a buffer; give it back with put.
func (b *lineBuffers) get() *[maxLineAttrs]slog.Attr {
	return b.pool.Get().(*[maxLineAttrs]slog.Attr)
}

// put takes back a buffer that get lent, cleared first so that the pool
// does not keep alive what the line named.
func (b *lineBuffers) put(buf *[maxLineAttrs]slog.Attr) {
	clear(buf[:])
	b.pool.Put(buf)
}

// logCall writes the log line of a finished call of methodType ("unary",
// "server_stream", ...). sample, when above 1, says the line stands for
// that many successful calls (see CallLog); endedBy, when set, says the
// caller ended the stream (see callerEnded).
func logCall(ctx context.Context, logger *slog.Logger, bufs *lineBuffers, level slog.Level, fullMethod, methodType string, start time.Time, code codes.Code, err error, ci *callInfo, sample int, endedBy string) {
	elapsed := time.Since(start)
	service, method := splitMethod(fullMethod)
	buf := bufs.get()
	defer bufs.put(buf)
	attrs := append(buf[:0],
		slog.String("protocol", string(ProtocolOf(ctx))),
	)
	attrs = appendCorrelationAttrs(ctx, attrs)
	attrs = ci.appendAttrs(attrs)
	attrs = append(attrs,
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", methodType),
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
	if endedBy != "" {
		attrs = append(attrs, slog.String("ended_by", endedBy))
	}
	if sample > 1 {
		attrs = append(attrs, slog.Int("sampled", sample))
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
// failed upstream logs the upstream's answer). Every stream is logged;
// StreamCallLogger chooses.
func StreamLogger(logger *slog.Logger) grpc.StreamServerInterceptor {
	return StreamCallLogger(logger, CallLogAll)
}

// StreamCallLogger is StreamLogger writing the lines that policy keeps.
//
// A stream that its caller ended, by cancelling it or with its own
// deadline, ended as the caller asked: its line is at INFO with ended_by
// "caller_cancel" or "caller_deadline", and it counts as a successful
// call for policy. A watch has no other way to end when no until
// condition is set.
func StreamCallLogger(logger *slog.Logger, policy CallLog) grpc.StreamServerInterceptor {
	keep := policy.sampler()
	bufs := newLineBuffers()
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		ctx, ci := withCallInfo(ss.Context())
		err := handler(srv, &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: ctx})
		code := status.Code(err)
		endedBy := callerEnded(ctx, code)
		level := codeLevel(code)
		switch {
		case strings.HasPrefix(info.FullMethod, healthMethodPrefix):
			level = slog.LevelDebug
		case endedBy != "":
			level = slog.LevelInfo
		}
		if !logger.Enabled(ctx, level) {
			return err
		}
		sample, ok := keep(code == codes.OK || endedBy != "")
		if !ok {
			return err
		}
		logCall(ctx, logger, bufs, level, info.FullMethod, streamType(info), start, code, err, ci, sample, endedBy)
		return err
	}
}

// The values of a stream log line's ended_by field.
const (
	endedByCallerCancel   = "caller_cancel"
	endedByCallerDeadline = "caller_deadline"
)

// callerEnded says how the caller ended a stream that finished with code
// in ctx: by its deadline, which is the caller's own (grpc-timeout, or the
// gateway's Grpc-Timeout header), or by cancelling it (or going away);
// "" when the stream ended otherwise. A gRPC client cancels its stream
// when its deadline passes, which may reach the server before the
// server's own timer: a cancel at or after the deadline is the deadline.
func callerEnded(ctx context.Context, code codes.Code) string {
	if (code != codes.Canceled && code != codes.DeadlineExceeded) || ctx.Err() == nil {
		return ""
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return endedByCallerDeadline
	}
	if code == codes.Canceled && errors.Is(ctx.Err(), context.Canceled) {
		return endedByCallerCancel
	}
	return ""
}

// streamType is a stream's grpc.method_type, as go-grpc-middleware names
// it.
func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	}
	return "server_stream"
}

// appendCorrelationAttrs appends the fields that tie a call's log line to
// the caller's and the upstream's records: the request ID (x_request_id,
// not request_id, which is GenerateOTP's idempotency key) and, when
// tracing is on, the trace ID.
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
