package server

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestLogLineFields pins the per-call log line's fields and levels, which
// operators' queries and dashboards read: they must not change when the
// line is built differently.
func TestLogLineFields(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantLevel string
		wantCode  string
	}{
		{"ok", nil, "INFO", "OK"},
		{"not found", status.Error(codes.NotFound, "no such service"), "INFO", "NotFound"},
		{"unavailable", status.Error(codes.Unavailable, "upstream down"), "WARN", "Unavailable"},
		{"internal", status.Error(codes.Internal, "bug"), "ERROR", "Internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testkit.Buffer{}
			logger := slog.New(slog.NewJSONHandler(logs, nil))
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
			ctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Hour))
			defer cancel()
			ctx = WithProtocol(ctx, ProtocolHTTP)
			_, err := UnaryLogger(logger)(ctx, nil, &grpc.UnaryServerInfo{FullMethod: accessv1.AccessService_GetServiceStatus_FullMethodName},
				func(ctx context.Context, _ any) (any, error) {
					SetCaller(ctx, "ci-bot")
					return nil, tt.err
				})
			if err != tt.err {
				t.Fatalf("interceptor returned %v, want the handler's %v", err, tt.err)
			}
			recs := logs.Records(t)
			if len(recs) != 1 {
				t.Fatalf("%d log lines, want 1: %s", len(recs), logs)
			}
			line := recs[0]
			want := map[string]any{
				"msg":              "finished call",
				"level":            tt.wantLevel,
				"protocol":         "http",
				"grpc.component":   "server",
				"grpc.service":     "radkit.access.v1.AccessService",
				"grpc.method":      "GetServiceStatus",
				"grpc.method_type": "unary",
				"peer.address":     "127.0.0.1:4242",
				"grpc.code":        tt.wantCode,
				"caller":           "ci-bot",
			}
			if tt.err != nil {
				want["grpc.error"] = tt.err.Error()
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
			for _, k := range []string{"grpc.start_time", "grpc.request.deadline"} {
				s, _ := line[k].(string)
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Errorf("%s = %v, want an RFC 3339 time", k, line[k])
				}
			}
			ms, _ := line["grpc.time_ms"].(string)
			if v, err := strconv.ParseFloat(ms, 32); err != nil || v < 0 {
				t.Errorf("grpc.time_ms = %v, want milliseconds as a string", line["grpc.time_ms"])
			}
			if tt.err == nil {
				if _, ok := line["grpc.error"]; ok {
					t.Errorf("grpc.error on a successful call: %v", line)
				}
			}
			if len(line) != len(want)+len([]string{"time", "grpc.start_time", "grpc.request.deadline", "grpc.time_ms"}) {
				t.Errorf("fields %v, want exactly %d", line, len(want)+4)
			}
		})
	}
}
