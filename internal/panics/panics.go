// Package panics turns a panic on any of the facade's paths into one failed
// call: the gRPC interceptors (unary and stream), the HTTP gateway, and the
// goroutines the facade starts on behalf of calls (coalesced calls, watch
// pollers, the gateway's stream pipe). grpc-go and net/http's
// server-streaming paths recover nothing, and a panic that nothing recovers
// ends the process with every call in flight.
//
// Each recovered panic is logged once, at ERROR, with its stack and the
// x_request_id of the call it happened in (when there is one), and counted
// by where it happened; the call answers INTERNAL with the ErrorInfo
// reason INTERNAL.
package panics

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/requestid"
)

// Where a panic was recovered: the values of the where label of the panic
// counter. A fixed set, so that the label is bounded.
const (
	UnaryCall     = "unary_call"     // a unary handler or interceptor, either door
	StreamCall    = "stream_call"    // a streaming handler or interceptor, either door
	HTTPHandler   = "http_handler"   // the HTTP gateway outside the interceptor chain
	CoalescedCall = "coalesced_call" // a call shared by concurrent callers (package flight)
	WatchPoller   = "watch_poller"   // a watched service's poller (package watch)
	GatewayStream = "gateway_stream" // the goroutine that runs an HTTP stream in-process
)

// Places lists every where value, for metrics to show them all from the
// start.
var Places = []string{UnaryCall, StreamCall, HTTPHandler, CoalescedCall, WatchPoller, GatewayStream}

// maxStack bounds the stack logged with a panic.
const maxStack = 64 << 10

// Error is a recovered panic, as the error that whoever waited for the
// code that panicked receives. The stack was logged where the panic was
// recovered; it is kept here for tests and for a Reporter-less recovery.
type Error struct {
	Where string
	Value any
	Stack []byte
}

func (e *Error) Error() string { return fmt.Sprintf("panic in %s: %v", e.Where, e.Value) }

// Stack returns the stack of the calling goroutine, bounded: called from a
// deferred function that recovered, it shows where the panic happened.
func Stack() []byte {
	buf := make([]byte, maxStack)
	return buf[:runtime.Stack(buf, false)]
}

// Reporter logs and counts recovered panics. A nil *Reporter reports
// nothing, so that packages used without one (in tests, say) still recover.
type Reporter struct {
	logger *slog.Logger
	count  func(where string)
}

// NewReporter returns a Reporter that logs to logger and calls count with
// the where value of each panic; either may be nil.
func NewReporter(logger *slog.Logger, count func(where string)) *Reporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if count == nil {
		count = func(string) {}
	}
	return &Reporter{logger: logger, count: count}
}

// Report logs the panic v recovered at where, with its stack, once, and
// counts it. ctx is the context of the call it happened in: its
// x_request_id goes on the line.
func (r *Reporter) Report(ctx context.Context, where string, v any, stack []byte) {
	if r == nil {
		return
	}
	if rv, ok := v.(relayed); ok {
		v, stack = rv.Relayed()
	}
	r.count(where)
	attrs := []slog.Attr{slog.String("where", where), slog.String("panic", fmt.Sprint(v))}
	if id, ok := requestid.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("x_request_id", id))
	}
	attrs = append(attrs, slog.String("stack", string(stack)))
	r.logger.LogAttrs(ctx, slog.LevelError, "panic recovered", attrs...)
}

// relayed is a panic raised again on the goroutine of the call it belongs
// to, after it happened on a goroutine no recovery reaches (the upstream
// transport's detached requests, upstream.DetachedPanic): Report logs the
// value and the stack of where it happened.
type relayed interface {
	Relayed() (value any, stack []byte)
}

// Recovered reports the panic v recovered at where in the call of ctx and
// returns the error that call answers: INTERNAL, reason INTERNAL, saying
// nothing of the panic (its value may hold anything).
func (r *Reporter) Recovered(ctx context.Context, where string, v any) error {
	r.Report(ctx, where, v, Stack())
	return reason.Error(reason.Internal, "")
}

type reporterKey struct{}

// NewContext returns ctx carrying r, for the goroutines that run on behalf
// of the call of ctx (package flight keeps a caller's values for its
// shared call) to report with.
func NewContext(ctx context.Context, r *Reporter) context.Context {
	return context.WithValue(ctx, reporterKey{}, r)
}

// FromContext returns the Reporter of ctx, or nil.
func FromContext(ctx context.Context) *Reporter {
	r, _ := ctx.Value(reporterKey{}).(*Reporter)
	return r
}
