package main

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// withReason is a status error as the facade sends it: code, message and
// an ErrorInfo with the reason.
func withReason(t *testing.T, c codes.Code, r string) error {
	t.Helper()
	st, err := status.New(c, "refused").WithDetails(&errdetails.ErrorInfo{Reason: r, Domain: "radkit-access-facade"})
	if err != nil {
		t.Fatalf("WithDetails: %v", err)
	}
	return st.Err()
}

// TestReasonOf checks that failed calls are counted under the facade's
// ErrorInfo reason when it sends one, and never lumped together.
func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"reason", withReason(t, codes.ResourceExhausted, "UPSTREAM_CONCURRENCY_LIMIT"), "ResourceExhausted/UPSTREAM_CONCURRENCY_LIMIT"},
		{"wrapped reason", fmt.Errorf("call: %w", withReason(t, codes.DeadlineExceeded, "UPSTREAM_TIMEOUT")), "DeadlineExceeded/UPSTREAM_TIMEOUT"},
		{"code only", status.Error(codes.Unavailable, "connection refused"), "Unavailable"},
		{"not gRPC", errors.New("HTTP 502"), "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reasonOf(tc.err); got != tc.want {
				t.Errorf("reasonOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestFmtReasons(t *testing.T) {
	if got := fmtReasons(nil); got != "none" {
		t.Errorf("fmtReasons(nil) = %q, want none", got)
	}
	got := fmtReasons(map[string]int64{"b/X": 2, "a/Y": 1})
	if want := "a/Y 1, b/X 2"; got != want {
		t.Errorf("fmtReasons = %q, want %q", got, want)
	}
}
