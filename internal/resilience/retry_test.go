package resilience

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

func TestServiceStatusRetries(t *testing.T) {
	tests := []struct {
		name      string
		serviceID string
		faults    []emulator.Fault
		// wantStatus is the HTTP status of the error returned; 0 means
		// success.
		wantStatus int
		wantCalls  int64
		// minWait is a lower bound of the call's duration (Retry-After).
		minWait time.Duration
	}{
		{name: "503 burst then success", serviceID: knownService,
			faults:    []emulator.Fault{{Status: 503}, {Status: 503}},
			wantCalls: 3},
		{name: "502 then 504 then success", serviceID: knownService,
			faults:    []emulator.Fault{{Status: 502}, {Status: 504}},
			wantCalls: 3},
		{name: "500 on every attempt", serviceID: knownService,
			faults:     []emulator.Fault{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}},
			wantStatus: 500, wantCalls: 3},
		{name: "429 with Retry-After honoured", serviceID: knownService,
			faults:    []emulator.Fault{{Status: 429, RetryAfter: time.Second}},
			wantCalls: 2, minWait: time.Second},
		{name: "connection reset mid-body then success", serviceID: knownService,
			faults:    []emulator.Fault{{Body: emulator.BodyReset}},
			wantCalls: 2},
		{name: "404 not retried", serviceID: unknownService,
			wantStatus: 404, wantCalls: 1},
		{name: "403 not retried", serviceID: knownService,
			faults:     []emulator.Fault{{Status: 403}},
			wantStatus: 403, wantCalls: 1},
		{name: "400 with retry true not retried", serviceID: knownService,
			faults:     []emulator.Fault{{Status: 400, Retry: true}},
			wantStatus: 400, wantCalls: 1},
		{name: "malformed answer not retried", serviceID: knownService,
			faults:    []emulator.Fault{{Body: emulator.BodyMalformed}},
			wantCalls: 1, wantStatus: -1},
		{name: "Retry-After over MaxRetryAfter ends retries", serviceID: knownService,
			faults:     []emulator.Fault{{Status: 503, RetryAfter: time.Hour}},
			wantStatus: 503, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fast(), envOptions{})
			e.emu.Script(emulator.RouteStatus, tt.faults...)
			start := time.Now()
			st, err := e.c.ServiceStatus(testCtx(t), tt.serviceID)
			elapsed := time.Since(start)
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("ServiceStatus: %v", err)
			case tt.wantStatus == 0 && st.ServiceID != tt.serviceID:
				t.Errorf("ServiceStatus = %+v, want service %s", st, tt.serviceID)
			case tt.wantStatus > 0 && statusCode(err) != tt.wantStatus:
				t.Errorf("ServiceStatus error %v, want HTTP %d", err, tt.wantStatus)
			case tt.wantStatus < 0 && !errors.Is(err, upstream.ErrMalformedResponse):
				t.Errorf("ServiceStatus error %v, want a malformed response", err)
			}
			if got := e.emu.Calls(emulator.RouteStatus); got != tt.wantCalls {
				t.Errorf("upstream status calls = %d, want %d", got, tt.wantCalls)
			}
			if elapsed < tt.minWait {
				t.Errorf("took %v, less than the Retry-After %v", elapsed, tt.minWait)
			}
		})
	}
}

func TestGenerateOTPRetries(t *testing.T) {
	tests := []struct {
		name       string
		route      emulator.Route // where the faults go
		faults     []emulator.Fault
		wantStatus int // 0: success; -1: a transport error
		wantCalls  int64
	}{
		{name: "500 without retry not retried", route: emulator.RouteOTP,
			faults:     []emulator.Fault{{Status: 500}},
			wantStatus: 500, wantCalls: 1},
		{name: "503 without retry not retried", route: emulator.RouteOTP,
			faults:     []emulator.Fault{{Status: 503}},
			wantStatus: 503, wantCalls: 1},
		{name: "503 with retry true retried", route: emulator.RouteOTP,
			faults:    []emulator.Fault{{Status: 503, Retry: true}},
			wantCalls: 2},
		{name: "500 with retry true twice retried", route: emulator.RouteOTP,
			faults:    []emulator.Fault{{Status: 500, Retry: true}, {Status: 500, Retry: true}},
			wantCalls: 3},
		{name: "429 with retry true retried", route: emulator.RouteOTP,
			faults:    []emulator.Fault{{Status: 429, Retry: true}},
			wantCalls: 2},
		{name: "429 without retry not retried", route: emulator.RouteOTP,
			faults:     []emulator.Fault{{Status: 429}},
			wantStatus: 429, wantCalls: 1},
		{name: "400 with retry true not retried", route: emulator.RouteOTP,
			faults:     []emulator.Fault{{Status: 400, Retry: true}},
			wantStatus: 400, wantCalls: 1},
		{name: "reset after the request was sent not retried", route: emulator.RouteOTP,
			faults:     []emulator.Fault{{Body: emulator.BodyReset}},
			wantStatus: -1, wantCalls: 1},
		{name: "token endpoint 503 retried: the OTP request was never sent", route: emulator.RouteToken,
			faults:    []emulator.Fault{{Status: 503}},
			wantCalls: 1},
		{name: "discovery 502 retried: the OTP request was never sent", route: emulator.RouteDiscovery,
			faults:    []emulator.Fault{{Status: 502}},
			wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fast(), envOptions{})
			e.emu.Script(tt.route, tt.faults...)
			otp, err := e.c.GenerateOTP(testCtx(t), upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"})
			var tErr *upstream.TransportError
			switch {
			case tt.wantStatus == 0 && (err != nil || otp == ""):
				t.Fatalf("GenerateOTP = %q, %v; want an OTP", otp, err)
			case tt.wantStatus > 0 && statusCode(err) != tt.wantStatus:
				t.Errorf("GenerateOTP error %v, want HTTP %d", err, tt.wantStatus)
			case tt.wantStatus < 0 && !errors.As(err, &tErr):
				t.Errorf("GenerateOTP error %v, want a transport error", err)
			}
			if got := e.emu.Calls(emulator.RouteOTP); got != tt.wantCalls {
				t.Errorf("upstream OTP calls = %d, want %d", got, tt.wantCalls)
			}
			if got := int64(len(e.emu.OTPs())); tt.wantStatus == 0 && got != 1 {
				t.Errorf("upstream issued %d OTPs, want 1", got)
			}
		})
	}
}

func TestGenerateOTPRetriesConnectionRefused(t *testing.T) {
	dialer := newRefusingDialer(t)
	tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	e := newEnv(t, fast(), envOptions{httpClient: &http.Client{Transport: tr}})
	ctx := testCtx(t)
	if err := e.up.Ready(ctx); err != nil { // discovery and token first
		t.Fatalf("Ready: %v", err)
	}

	dialer.refuse.Store(1)
	otp, err := e.c.GenerateOTP(ctx, upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"})
	if err != nil || otp == "" {
		t.Fatalf("GenerateOTP = %q, %v; want an OTP after the refused connection", otp, err)
	}
	if dialer.refuse.Load() >= 0 {
		t.Fatal("no dial was refused: the test proved nothing")
	}
	if got := e.emu.Calls(emulator.RouteOTP); got != 1 {
		t.Errorf("upstream OTP calls = %d, want 1", got)
	}

	// With every dial refused, it gives up after MaxAttempts.
	dialer.refuse.Store(100)
	_, err = e.c.GenerateOTP(ctx, upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"})
	var tErr *upstream.TransportError
	if !errors.As(err, &tErr) || !tErr.BeforeSend || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GenerateOTP error %v, want connection refused before send", err)
	}
	if got := 100 - dialer.refuse.Load(); got != DefaultMaxAttempts {
		t.Errorf("%d dials, want %d", got, DefaultMaxAttempts)
	}
}

func TestRevokeTokenRetries(t *testing.T) {
	tests := []struct {
		name       string
		faults     []emulator.Fault
		wantStatus int
		wantCalls  int64
	}{
		{"500 not retried", []emulator.Fault{{Status: 500}}, 500, 1},
		{"503 with retry true retried", []emulator.Fault{{Status: 503, Retry: true}}, 0, 2},
		{"400 not retried", []emulator.Fault{{Status: 400, Retry: true}}, 400, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fast(), envOptions{})
			tok := accessToken(t, e)
			e.emu.Script(emulator.RouteRevoke, tt.faults...)
			err := e.c.RevokeToken(testCtx(t), tok)
			if got := statusCode(err); got != tt.wantStatus || (tt.wantStatus == 0 && err != nil) {
				t.Errorf("RevokeToken error %v, want HTTP status %d", err, tt.wantStatus)
			}
			if got := e.emu.Calls(emulator.RouteRevoke); got != tt.wantCalls {
				t.Errorf("upstream revoke calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetriesStopAtTheDeadline(t *testing.T) {
	// The upstream asks for a 3s pause; the caller has 300ms left. Waiting
	// would only end in a timeout: the caller gets the upstream's answer
	// now.
	fault := emulator.Fault{Status: 503, Retry: true, RetryAfter: 3 * time.Second}
	calls := []struct {
		name  string
		route emulator.Route
		call  func(context.Context, *Client) error
	}{
		{"status", emulator.RouteStatus, func(ctx context.Context, c *Client) error {
			_, err := c.ServiceStatus(ctx, knownService)
			return err
		}},
		{"otp", emulator.RouteOTP, func(ctx context.Context, c *Client) error {
			_, err := c.GenerateOTP(ctx, upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"})
			return err
		}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fast(), envOptions{})
			if err := e.up.Ready(testCtx(t)); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			e.emu.Script(tt.route, fault)
			ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx, e.c)
			if statusCode(err) != 503 || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want the upstream's 503 rather than a timeout", err)
			}
			if elapsed := time.Since(start); elapsed >= fault.RetryAfter {
				t.Errorf("took %v: it waited out the Retry-After", elapsed)
			}
			if got := e.emu.Calls(tt.route); got != 1 {
				t.Errorf("upstream calls = %d, want 1", got)
			}
		})
	}
}

func TestCancellationStopsRetries(t *testing.T) {
	e := newEnv(t, fast(), envOptions{})
	e.emu.Script(emulator.RouteOTP, emulator.Fault{Status: 503, Retry: true, RetryAfter: 4 * time.Second})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := e.c.GenerateOTP(ctx, upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"})
		done <- err
	}()
	eventually(t, "the first attempt", func() bool { return e.emu.Calls(emulator.RouteOTP) == 1 })
	// Let the client get into its 4s backoff. Had the cancellation come
	// before the first answer was read, the answer is returned instead:
	// either way no second attempt may follow, and the call must return
	// long before the backoff would have ended.
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) && statusCode(err) != 503 {
			t.Errorf("error %v, want context.Canceled (or the 503 it had)", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("cancellation did not end the backoff")
	}
	if got := e.emu.Calls(emulator.RouteOTP); got != 1 {
		t.Errorf("upstream OTP calls = %d, want 1", got)
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{baseDelay: 10 * time.Millisecond, maxDelay: 100 * time.Millisecond, maxRetryAfter: 2 * time.Second}
	tests := []struct {
		n          int
		retryAfter time.Duration
		wantMin    time.Duration
		wantMax    time.Duration
		wantOK     bool
	}{
		{0, 0, 0, 10 * time.Millisecond, true},
		{1, 0, 0, 20 * time.Millisecond, true},
		{3, 0, 0, 80 * time.Millisecond, true},
		{4, 0, 0, 100 * time.Millisecond, true},
		{70, 0, 0, 100 * time.Millisecond, true}, // no overflow
		{0, time.Second, time.Second, time.Second, true},
		{0, 3 * time.Second, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d,retryAfter=%v", tt.n, tt.retryAfter), func(t *testing.T) {
			var sawLow, sawHigh bool
			for range 2000 {
				got, ok := c.backoff(tt.n, tt.retryAfter)
				if ok != tt.wantOK {
					t.Fatalf("backoff ok = %v, want %v", ok, tt.wantOK)
				}
				if !ok {
					return
				}
				if got < tt.wantMin || got > tt.wantMax {
					t.Fatalf("backoff = %v, want in [%v, %v]", got, tt.wantMin, tt.wantMax)
				}
				sawLow = sawLow || got <= tt.wantMin+(tt.wantMax-tt.wantMin)/4
				sawHigh = sawHigh || got >= tt.wantMax-(tt.wantMax-tt.wantMin)/4
			}
			if !sawLow || !sawHigh {
				t.Errorf("2000 samples do not span [%v, %v]: no jitter?", tt.wantMin, tt.wantMax)
			}
		})
	}
}

func TestRetryRules(t *testing.T) {
	upErr := func(op upstream.Op, code int, retry bool) error {
		return fmt.Errorf("wrapped: %w", &upstream.Error{Op: op, StatusCode: code, Retry: retry})
	}
	tests := []struct {
		name       string
		err        error
		idempotent bool // retryIdempotent
		unsent     bool // retryUnsent
	}{
		{"500", upErr("status", 500, false), true, false},
		{"500 retry", upErr("otp", 500, true), true, true},
		{"503", upErr("otp", 503, false), true, false},
		{"429", upErr("status", 429, false), true, false},
		{"429 retry", upErr("otp", 429, true), true, true},
		{"400 retry", upErr("otp", 400, true), false, false},
		{"401", upErr("otp", 401, false), false, false},
		{"404", upErr("status", 404, false), false, false},
		{"token 503", upErr("token", 503, false), true, true},
		{"token 401", upErr("token", 401, false), false, false},
		{"discovery 500", fmt.Errorf("%w: %w", upstream.ErrDiscovery, &upstream.Error{Op: "discovery", StatusCode: 500}), true, true},
		{"refused", &upstream.TransportError{Op: "otp", BeforeSend: true, Err: syscall.ECONNREFUSED}, true, true},
		{"reset", &upstream.TransportError{Op: "otp", Err: syscall.ECONNRESET}, true, false},
		{"token reset", &upstream.TransportError{Op: "token", Err: syscall.ECONNRESET}, true, true},
		{"closed", &upstream.TransportError{Op: "otp", BeforeSend: true, Err: upstream.ErrClosed}, false, false},
		{"malformed", fmt.Errorf("x: %w", upstream.ErrMalformedResponse), false, false},
		{"invalid", fmt.Errorf("x: %w", upstream.ErrInvalidArgument), false, false},
		{"no client credentials", upstream.ErrRevokeNeedsClientCredentials, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryIdempotent(tt.err); got != tt.idempotent {
				t.Errorf("retryIdempotent = %v, want %v", got, tt.idempotent)
			}
			if got := retryUnsent(tt.err); got != tt.unsent {
				t.Errorf("retryUnsent = %v, want %v", got, tt.unsent)
			}
		})
	}
}
