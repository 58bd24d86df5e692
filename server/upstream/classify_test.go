package upstream

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestClassifiers pins what each classifier says of each kind of error the
// client returns, wrapped as callers wrap them.
func TestClassifiers(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("layer: %w", err) }
	upErr := func(op Op, code int, retry bool) error {
		return wrap(&Error{Op: op, StatusCode: code, Details: "d", Retry: retry, RetryAfter: 3 * time.Second})
	}
	tests := []struct {
		name                                 string
		err                                  error
		op                                   Op
		code                                 int
		neverReached, transient, setup, refd bool
		unanswered, advised                  bool
	}{
		{name: "nil", err: nil},
		{name: "foreign", err: errors.New("x")},
		{name: "otp 400", err: upErr(OpOTP, 400, false), op: OpOTP, code: 400},
		{name: "otp 503 retry", err: upErr(OpOTP, 503, true), op: OpOTP, code: 503, transient: true, advised: true},
		{name: "status 429", err: upErr(OpStatus, 429, false), op: OpStatus, code: 429, transient: true},
		{name: "token 401", err: upErr(OpToken, 401, false), op: OpToken, code: 401, neverReached: true, setup: true},
		{name: "token 429", err: upErr(OpToken, 429, false), op: OpToken, code: 429, neverReached: true, transient: true},
		{name: "discovery 404", err: wrap(asDiscoveryError(upErr(OpDiscovery, 404, false))), op: OpDiscovery, code: 404, neverReached: true, setup: true},
		{name: "discovery 500", err: upErr(OpDiscovery, 500, false), op: OpDiscovery, code: 500, neverReached: true, transient: true},
		{name: "transport before send", err: wrap(&TransportError{Op: OpOTP, BeforeSend: true, Err: syscall.ECONNREFUSED}), op: OpOTP, neverReached: true, unanswered: true},
		{name: "transport after send", err: wrap(&TransportError{Op: OpRevoke, Err: syscall.ECONNRESET}), op: OpRevoke, unanswered: true},
		{name: "transport in token", err: &TransportError{Op: OpToken, Err: context.DeadlineExceeded}, op: OpToken, neverReached: true, unanswered: true},
		{name: "malformed otp", err: wrap(malformed(OpOTP, 200, fmt.Errorf("%w: missing", ErrMalformedResponse))), op: OpOTP, code: 200},
		{name: "malformed 503", err: malformed(OpStatus, 503, fmt.Errorf("%w: too big", ErrMalformedResponse)), op: OpStatus, code: 503},
		{name: "closed", err: wrap(&TransportError{Op: OpStatus, BeforeSend: true, Err: ErrClosed}), op: OpStatus, neverReached: true, refd: true, unanswered: true},
		{name: "invalid argument", err: fmt.Errorf("upstream: status: %w", ErrInvalidArgument), neverReached: true, refd: true},
		{name: "revoke not configured", err: fmt.Errorf("upstream: revoke: %w", ErrRevokeNeedsClientCredentials), neverReached: true, refd: true},
		{name: "issuer mismatch", err: asDiscoveryError(errors.New("issuer")), op: OpDiscovery, neverReached: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OpOf(tc.err); got != tc.op {
				t.Errorf("OpOf = %q, want %q", got, tc.op)
			}
			if got := StatusCode(tc.err); got != tc.code {
				t.Errorf("StatusCode = %d, want %d", got, tc.code)
			}
			checks := []struct {
				name      string
				got, want bool
			}{
				{"NeverReached", NeverReached(tc.err), tc.neverReached},
				{"IsTransient", IsTransient(tc.err), tc.transient},
				{"IsSetupFailure", IsSetupFailure(tc.err), tc.setup},
				{"IsRefused", IsRefused(tc.err), tc.refd},
				{"IsUnanswered", IsUnanswered(tc.err), tc.unanswered},
				{"RetryAdvised", RetryAdvised(tc.err), tc.advised},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v (%v)", c.name, c.got, c.want, tc.err)
				}
			}
		})
	}
	if got := RetryAfter(upErr(OpOTP, 429, false)); got != 3*time.Second {
		t.Errorf("RetryAfter = %v, want 3s", got)
	}
	if !errors.Is(malformed(OpOTP, 200, errors.New("x")), ErrMalformedResponse) {
		t.Error("a *MalformedError does not match ErrMalformedResponse")
	}
}
