package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

func TestStatusMapsEveryUpstreamFailure(t *testing.T) {
	upErr := func(op upstream.Op, code int, details string, retry bool, after time.Duration) error {
		// Wrapped as the client wraps it, to prove errors.As is used.
		return fmt.Errorf("upstream: %s: %w", op, &upstream.Error{Op: op, StatusCode: code, Details: details, Retry: retry, RetryAfter: after})
	}
	tests := []struct {
		name       string
		err        error
		code       codes.Code
		reason     string
		retryDelay time.Duration // 0: no RetryInfo
		status     string        // expected upstream_status metadata
	}{
		{"400", upErr("otp", 400, "Missing required field 'owner'", false, 0), codes.InvalidArgument, accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(), 0, "400"},
		{"401 after retry", upErr("otp", 401, "Invalid token", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(), 0, "401"},
		{"403", upErr("status", 403, "Forbidden", false, 0), codes.PermissionDenied, accessv1.ErrorReason_UPSTREAM_PERMISSION_DENIED.String(), 0, "403"},
		{"404", upErr("status", 404, "Unknown Service ID", false, 0), codes.NotFound, accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String(), 0, "404"},
		{"409 other 4xx", upErr("otp", 409, "conflict", false, 0), codes.InvalidArgument, accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(), 0, "409"},
		{"429 with Retry-After", upErr("status", 429, "slow down", false, 7*time.Second), codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_RATE_LIMITED.String(), 7 * time.Second, "429"},
		{"429 without Retry-After", upErr("status", 429, "", false, 0), codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_RATE_LIMITED.String(), defaultRetryDelay, "429"},
		{"500", upErr("otp", 500, "boom", false, 0), codes.Internal, accessv1.ErrorReason_UPSTREAM_ERROR.String(), 0, "500"},
		{"500 retry true", upErr("otp", 500, "try again", true, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, "500"},
		{"502", upErr("status", 502, "", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, "502"},
		{"503 Retry-After", upErr("status", 503, "", false, 3*time.Second), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), 3 * time.Second, "503"},
		{"504", upErr("status", 504, "", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, "504"},
		{"token 401", upErr("token", 401, "Invalid credentials", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(), 0, "401"},
		{"token 400", upErr("token", 400, "unsupported grant_type", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(), 0, "400"},
		{"token 503", upErr("token", 503, "", false, 0), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, "503"},
		{"revoke 400", upErr("revoke", 400, "Token unknown or expired", false, 0), codes.InvalidArgument, accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(), 0, "400"},
		{"malformed", fmt.Errorf("decode otp: %w", upstream.ErrMalformedResponse), codes.Internal, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), 0, ""},
		{"refused", &upstream.TransportError{Op: "otp", BeforeSend: true, Err: syscall.ECONNREFUSED}, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, ""},
		{"reset", &upstream.TransportError{Op: "status", Err: syscall.ECONNRESET}, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, ""},
		{"deadline", &upstream.TransportError{Op: "status", Err: context.DeadlineExceeded}, codes.DeadlineExceeded, accessv1.ErrorReason_UPSTREAM_TIMEOUT.String(), 0, ""},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), codes.Canceled, accessv1.ErrorReason_CANCELED.String(), 0, ""},
		{"discovery", fmt.Errorf("%w: issuer mismatch", upstream.ErrDiscovery), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), defaultRetryDelay, ""},
		{"revocation not configured", upstream.ErrRevokeNeedsClientCredentials, codes.FailedPrecondition, accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String(), 0, ""},
		{"unknown", errors.New("surprise"), codes.Internal, accessv1.ErrorReason_INTERNAL.String(), 0, ""},
		{"circuit open", fmt.Errorf("x: %w", &resilience.CircuitOpenError{RetryAfter: 7 * time.Second}), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), 7 * time.Second, ""},
		{"circuit open, half-open in 200ms", &resilience.CircuitOpenError{RetryAfter: 200 * time.Millisecond}, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), time.Second, ""},
		{"circuit half-open, probes taken", &resilience.CircuitOpenError{}, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), time.Second, ""},
		{"throttled", fmt.Errorf("resilience: status: %w", resilience.ErrThrottled), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_THROTTLED.String(), time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := status.FromError(Status(tt.err))
			if !ok {
				t.Fatal("not a status error")
			}
			if st.Code() != tt.code {
				t.Errorf("code %v, want %v", st.Code(), tt.code)
			}
			var info *errdetails.ErrorInfo
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d
				}
			}
			if info == nil || info.GetReason() != tt.reason || info.GetDomain() != ErrorDomain {
				t.Fatalf("ErrorInfo %v, want reason %s in domain %s", info, tt.reason, ErrorDomain)
			}
			if got := info.GetMetadata()[MetadataUpstreamStatus]; got != tt.status {
				t.Errorf("upstream_status %q, want %q", got, tt.status)
			}
			var upE *upstream.Error
			if errors.As(tt.err, &upE) && upE.Details != "" {
				if !strings.Contains(st.Message(), upE.Details) || info.GetMetadata()[MetadataUpstreamDetails] != upE.Details {
					t.Errorf("the upstream details %q do not reach the caller: %q %v", upE.Details, st.Message(), info.GetMetadata())
				}
			}
			switch {
			case tt.retryDelay == 0 && retry != nil:
				t.Errorf("RetryInfo %v on an error a retry cannot fix", retry)
			case tt.retryDelay != 0 && retry.GetRetryDelay().AsDuration() != tt.retryDelay:
				t.Errorf("RetryInfo %v, want %v", retry, tt.retryDelay)
			}
		})
	}
}

func TestStatusPassesStatusErrorsThrough(t *testing.T) {
	in := status.Error(codes.InvalidArgument, "bad")
	if got := Status(in); got != in {
		t.Errorf("Status(%v) = %v, want it unchanged", in, got)
	}
	if Status(nil) != nil {
		t.Error("Status(nil) != nil")
	}
}

// TestMalformedResponseNamesTheAnswer drives unusable upstream answers
// through the real client against the emulator: the upstream did answer,
// so UPSTREAM_MALFORMED_RESPONSE says which operation got which status
// (it carried neither).
func TestMalformedResponseNamesTheAnswer(t *testing.T) {
	tests := []struct {
		name  string
		route emulator.Route
		body  emulator.BodyFault
		call  func(context.Context, *Server) error
		op    string
	}{
		{"otp: bad JSON", emulator.RouteOTP, emulator.BodyMalformed, func(ctx context.Context, s *Server) error {
			_, err := s.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep-1", Description: "d"})
			return err
		}, "otp"},
		{"otp: empty OTP", emulator.RouteOTP, emulator.BodyEmptyOTP, func(ctx context.Context, s *Server) error {
			_, err := s.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep-1", Description: "d"})
			return err
		}, "otp"},
		{"status: missing fields", emulator.RouteStatus, emulator.BodyMissingFields, func(ctx context.Context, s *Server) error {
			_, err := s.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: emulator.DefaultSeed().Services[0].ID})
			return err
		}, "status"},
		{"status: over the size limit", emulator.RouteStatus, emulator.BodyOversized, func(ctx context.Context, s *Server) error {
			_, err := s.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: emulator.DefaultSeed().Services[0].ID})
			return err
		}, "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, emu, _ := testServer(t)
			emu.Script(tt.route, emulator.Fault{Body: tt.body})
			ctx := testkit.Context(t, 10*time.Second)
			st := status.Convert(tt.call(ctx, s))
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if st.Code() != codes.Internal || info.GetReason() != accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String() {
				t.Fatalf("%v %q (%v), want INTERNAL %s", st.Code(), st.Message(), info, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String())
			}
			md := info.GetMetadata()
			if md[MetadataUpstreamOp] != tt.op || md[MetadataUpstreamStatus] != "200" {
				t.Errorf("metadata %v, want %s=%s and %s=200", md, MetadataUpstreamOp, tt.op, MetadataUpstreamStatus)
			}
		})
	}
}
