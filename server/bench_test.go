package server

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// BenchmarkValidateGenerateOTP measures request validation, which runs on
// every GenerateOTP before anything is sent upstream: a typical valid
// request, one at the field limits, and one with every field invalid (the
// error path builds a BadRequest status).
func BenchmarkValidateGenerateOTP(b *testing.B) {
	cases := []struct {
		name string
		req  *accessv1.GenerateOTPRequest
	}{
		{"valid", &accessv1.GenerateOTPRequest{
			Owner: "automation+customer-a@example.com", EndpointId: "endpoint-identifier",
			Description: "lab router", RequestId: "6f1c1f5e-7c2b-4b8e-9b43-0c4c3f1f2a10",
		}},
		{"valid-at-limits", &accessv1.GenerateOTPRequest{
			Owner:       strings.Repeat("a", maxOwnerLocalLen) + "@" + strings.Repeat("b", 60) + ".example.com",
			EndpointId:  strings.Repeat("é", maxEndpointIDLen),
			Description: strings.Repeat("x", maxDescriptionLen),
			RequestId:   strings.Repeat("r", maxRequestIDLen),
		}},
		{"all-invalid", &accessv1.GenerateOTPRequest{Owner: "nope", EndpointId: "", Description: "\x01", RequestId: "?"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = validateGenerateOTP(c.req) // b.Loop keeps the call alive
			}
		})
	}
}

// BenchmarkStatus measures the error mapping (Status) for the upstream
// failures a busy facade sees most: not found, rate limited with
// Retry-After, unavailable, a transport failure and a timeout.
func BenchmarkStatus(b *testing.B) {
	upErr := func(op upstream.Op, code int, details string, retry bool, after time.Duration) error {
		return fmt.Errorf("upstream: %s: %w", op, &upstream.Error{Op: op, StatusCode: code, Details: details, Retry: retry, RetryAfter: after})
	}
	cases := []struct {
		name string
		err  error
	}{
		{"404", upErr("status", 404, "Unknown Service ID", false, 0)},
		{"429-retry-after", upErr("status", 429, "slow down", false, 7*time.Second)},
		{"503", upErr("otp", 503, "", true, 0)},
		{"transport", &upstream.TransportError{Op: "status", Err: syscall.ECONNRESET}},
		{"deadline", &upstream.TransportError{Op: "status", Err: context.DeadlineExceeded}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Status(c.err)
			}
		})
	}
}
