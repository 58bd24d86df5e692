package server

import (
	"context"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestLogLineCorrelation checks that the per-call log line carries the
// request ID and, when the call is traced, the trace ID.
func TestLogLineCorrelation(t *testing.T) {
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traced := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
	}))
	tests := []struct {
		name      string
		ctx       context.Context
		wantTrace any // nil: no trace_id field
	}{
		{"traced", traced, traceID.String()},
		{"untraced", context.Background(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testkit.Buffer{}
			chain := []grpc.UnaryServerInterceptor{UnaryRequestID(), UnaryLogger(slog.New(slog.NewJSONHandler(logs, nil)))}
			ctx := metadata.NewIncomingContext(tt.ctx, metadata.Pairs("x-request-id", "corr-1"))
			info := &grpc.UnaryServerInfo{FullMethod: "/radkit.access.v1.AccessService/GetServiceStatus"}
			_, _ = chain[0](ctx, nil, info, func(ctx context.Context, req any) (any, error) {
				return chain[1](ctx, req, info, func(context.Context, any) (any, error) { return nil, nil })
			})
			lines := logs.Records(t)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1: %s", len(lines), logs)
			}
			if got := lines[0]["x_request_id"]; got != "corr-1" {
				t.Errorf("x_request_id = %v, want corr-1", got)
			}
			if got := lines[0]["trace_id"]; got != tt.wantTrace {
				t.Errorf("trace_id = %v, want %v", got, tt.wantTrace)
			}
		})
	}
}
