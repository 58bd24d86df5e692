package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestCallLogPolicies drives 10 successful and 2 failed calls through
// the unary logger of each policy: failed calls are always logged,
// successful ones as the policy says, and a sampled line says how many
// calls it stands for.
func TestCallLogPolicies(t *testing.T) {
	tests := []struct {
		policy      string
		wantOK      int // lines of successful calls
		wantSampled int // their "sampled" field; 0 when absent
	}{
		{"all", 10, 0},
		{"errors", 0, 0},
		{"sample:1", 10, 0},
		{"sample:4", 3, 4}, // the 1st, 5th and 9th
		{"sample:100", 1, 100},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			policy, err := ParseCallLog(tt.policy)
			if err != nil {
				t.Fatalf("ParseCallLog(%q): %v", tt.policy, err)
			}
			logs := &testkit.Buffer{}
			intercept := UnaryCallLogger(slog.New(slog.NewJSONHandler(logs, nil)), policy)
			info := &grpc.UnaryServerInfo{FullMethod: accessv1.AccessService_GetServiceStatus_FullMethodName}
			for i := range 12 {
				var want error
				if i == 3 || i == 7 {
					want = status.Error(codes.Unavailable, "upstream down")
				}
				_, _ = intercept(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, want })
			}
			var ok, failed int
			for _, rec := range logs.Records(t) {
				if rec["grpc.code"] == "OK" {
					ok++
					if got, _ := rec["sampled"].(float64); int(got) != tt.wantSampled {
						t.Errorf("sampled = %v, want %d", rec["sampled"], tt.wantSampled)
					}
					continue
				}
				failed++
			}
			if ok != tt.wantOK || failed != 2 {
				t.Errorf("%d lines of successful calls and %d of failed ones, want %d and 2", ok, failed, tt.wantOK)
			}
		})
	}
}

// TestStreamEndedByCaller checks the level of a stream's line by how it
// ended: ended by its caller's cancel or deadline, INFO with ended_by and
// logged under the errors policy like a success is not; a deadline that
// is not the caller's stays a WARN failure.
func TestStreamEndedByCaller(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		wantLevel   string
		wantEndedBy string
		errorsToo   bool // logged under the errors policy
	}{
		{"caller deadline", expired, status.FromContextError(context.DeadlineExceeded).Err(), "INFO", "caller_deadline", false},
		{"caller deadline seen as its cancel", expired, status.FromContextError(context.Canceled).Err(), "INFO", "caller_deadline", false},
		{"caller cancel", cancelled, status.FromContextError(context.Canceled).Err(), "INFO", "caller_cancel", false},
		{"upstream timeout", context.Background(), status.Error(codes.DeadlineExceeded, "upstream timeout"), "WARN", "", true},
		{"ok", context.Background(), nil, "INFO", "", false},
	}
	for _, tt := range tests {
		for _, policy := range []CallLog{CallLogAll, CallLogErrors} {
			t.Run(tt.name+"/"+policy.String(), func(t *testing.T) {
				logs := &testkit.Buffer{}
				intercept := StreamCallLogger(slog.New(slog.NewJSONHandler(logs, nil)), policy)
				info := &grpc.StreamServerInfo{FullMethod: accessv1.AccessService_WatchServiceStatus_FullMethodName, IsServerStream: true}
				_ = intercept(nil, ctxStream{ctx: tt.ctx}, info, func(any, grpc.ServerStream) error { return tt.err })
				recs := logs.Records(t)
				if policy == CallLogErrors && !tt.errorsToo {
					if len(recs) != 0 {
						t.Errorf("logged under the errors policy: %v", recs)
					}
					return
				}
				if len(recs) != 1 {
					t.Fatalf("%d lines, want 1", len(recs))
				}
				rec := recs[0]
				got, _ := rec["ended_by"].(string)
				if rec["level"] != tt.wantLevel || got != tt.wantEndedBy || rec["grpc.method_type"] != "server_stream" {
					t.Errorf("line %v, want level %s, ended_by %q", rec, tt.wantLevel, tt.wantEndedBy)
				}
			})
		}
	}
}

// ctxStream is a grpc.ServerStream with nothing but its context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }
