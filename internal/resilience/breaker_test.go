package resilience

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// transitions records OnStateChange calls.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, from+"->"+to)
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	// Long enough that no stall of a loaded machine lets the breaker go
	// half-open while the test still expects it open; eventually waits for
	// the half-open state.
	const openFor = 3 * time.Second
	var tr transitions
	cfg := fast()
	cfg.MaxAttempts = 1 // one upstream call per call, to count exactly
	cfg.BreakerTimeout = openFor
	cfg.BreakerProbes = 2
	cfg.BreakerMinRequests = 5
	cfg.BreakerInterval = time.Hour // the window holds the whole test
	cfg.OnStateChange = tr.record
	e := newEnv(t, cfg, envOptions{})
	e.c.throttle.rand = never // the breaker alone
	ctx := testCtx(t)
	otpReq := upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1"}

	// The caller's own faults do not count: 4xx answers, cancelled calls.
	for range 10 {
		if _, err := e.c.ServiceStatus(ctx, unknownService); statusCode(err) != 404 {
			t.Fatalf("ServiceStatus(unknown) error %v, want 404", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.c.GenerateOTP(cancelled, otpReq); !errors.Is(err, context.Canceled) {
			t.Fatalf("GenerateOTP(cancelled) error %v, want context.Canceled", err)
		}
	}
	if got := e.c.State(); got != "closed" {
		t.Fatalf("after 4xx answers and cancelled calls the breaker is %s, want closed", got)
	}

	// Failing calls open it once they are the window's calls (the 404s
	// above count as answers: 5 failures of 15 calls are too few).
	e.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: 503})
	failures := 0
	for e.c.State() == "closed" {
		if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 503 {
			t.Fatalf("call %d: error %v, want 503", failures, err)
		}
		if failures++; failures > 200 {
			t.Fatalf("after %d failed calls the breaker is still closed", failures)
		}
	}
	e.emu.ResetRouteFaults(emulator.RouteStatus)
	// 90% of the window failed: 10 answers, 90 failures.
	if failures != 90 {
		t.Errorf("breaker opened after %d failed calls, want 90 (90%% of the window)", failures)
	}
	if got := e.c.State(); got != "open" {
		t.Fatalf("after %d failures the breaker is %s, want open", failures, got)
	}
	if err := e.c.Ready(ctx); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Ready = %v, want ErrCircuitOpen", err)
	}

	// While open, every call fails fast without reaching the upstream.
	before := e.emu.Calls(emulator.RouteStatus) + e.emu.Calls(emulator.RouteOTP) + e.emu.Calls(emulator.RouteRevoke)
	_, statusErr := e.c.ServiceStatus(ctx, knownService)
	_, otpErr := e.c.GenerateOTP(ctx, otpReq)
	revokeErr := e.c.RevokeToken(ctx, "some-token")
	for name, err := range map[string]error{"ServiceStatus": statusErr, "GenerateOTP": otpErr, "RevokeToken": revokeErr} {
		var open *CircuitOpenError
		if !errors.Is(err, ErrCircuitOpen) || !errors.As(err, &open) {
			t.Errorf("%s while open: error %v, want ErrCircuitOpen", name, err)
			continue
		}
		if open.RetryAfter <= 0 || open.RetryAfter > openFor {
			t.Errorf("%s while open: RetryAfter %v, want in (0, %v]", name, open.RetryAfter, openFor)
		}
	}
	after := e.emu.Calls(emulator.RouteStatus) + e.emu.Calls(emulator.RouteOTP) + e.emu.Calls(emulator.RouteRevoke)
	if after != before {
		t.Errorf("%d upstream calls while open, want none", after-before)
	}

	// After the timeout it lets probes through, and their success closes it.
	eventually(t, "half-open", func() bool { return e.c.State() == "half-open" })
	// Probes skip the throttle, which refuses most calls by now.
	e.c.throttle.rand = draws(0)
	for i := range 2 {
		if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	if got := e.c.State(); got != "closed" {
		t.Errorf("after successful probes the breaker is %s, want closed", got)
	}
	// Closing it forgets the outage in the throttle too.
	if err := e.c.Ready(ctx); err != nil {
		t.Errorf("Ready once closed = %v, want nil", err)
	}
	if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
		t.Errorf("call once closed: %v", err)
	}
	want := []string{"closed->open", "open->half-open", "half-open->closed"}
	if got := tr.list(); !slices.Equal(got, want) {
		t.Errorf("OnStateChange saw %v, want %v", got, want)
	}
}

func TestBreakerReopensOnFailedProbe(t *testing.T) {
	var tr transitions
	cfg := fast()
	cfg.MaxAttempts = 1
	// Long enough that the breaker reopened by the failed probe is still
	// open when the test looks, however the machine stalls.
	cfg.BreakerTimeout = 2 * time.Second
	cfg.BreakerMinRequests = 2
	cfg.OnStateChange = tr.record
	e := newEnv(t, cfg, envOptions{})
	e.c.throttle.rand = never
	ctx := testCtx(t)

	e.emu.Script(emulator.RouteStatus, emulator.Fault{Status: 502}, emulator.Fault{Status: 502}, emulator.Fault{Status: 502})
	for range 2 {
		e.c.ServiceStatus(ctx, knownService)
	}
	eventually(t, "half-open", func() bool { return e.c.State() == "half-open" })
	if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 502 {
		t.Fatalf("probe error %v, want 502", err)
	}
	if got := e.c.State(); got != "open" {
		t.Errorf("after a failed probe the breaker is %s, want open", got)
	}
	want := []string{"closed->open", "open->half-open", "half-open->open"}
	if got := tr.list(); !slices.Equal(got, want) {
		t.Errorf("OnStateChange saw %v, want %v", got, want)
	}
}

// TestBreakerCountsCallsNotAttempts: a call and its retries count once,
// with the last attempt's outcome, so that retries absorbing a failure
// rate never add up to an open breaker.
func TestBreakerCountsCallsNotAttempts(t *testing.T) {
	cfg := fast()
	cfg.MaxAttempts = 3
	cfg.BreakerMinRequests = 2
	e := newEnv(t, cfg, envOptions{})
	ctx := testCtx(t)
	// Two calls: the first fails twice and then succeeds, the second fails
	// all three attempts. Six failed attempts, one failed call.
	f := emulator.Fault{Status: 503}
	e.emu.Script(emulator.RouteStatus, f, f, emulator.Fault{}, f, f, f)
	if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 503 {
		t.Fatalf("second call: error %v, want 503", err)
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 6 {
		t.Errorf("upstream calls = %d, want 6", got)
	}
	c := e.c.breaker.cb.Counts()
	if c.Requests != 2 || c.TotalFailures != 1 {
		t.Errorf("breaker counted %d calls, %d failed; want 2 calls, 1 failed", c.Requests, c.TotalFailures)
	}
	if got := e.c.State(); got != "closed" {
		t.Errorf("breaker %s after one failed call of two, want closed", got)
	}
}

func TestTripRule(t *testing.T) {
	r := tripRule{ratio: 0.9, minRequests: 20}
	tests := []struct {
		counts gobreaker.Counts
		want   bool
	}{
		{gobreaker.Counts{Requests: 5, TotalFailures: 5, ConsecutiveFailures: 5}, false},    // too few calls
		{gobreaker.Counts{Requests: 19, TotalFailures: 19, ConsecutiveFailures: 19}, false}, // too few calls
		{gobreaker.Counts{Requests: 20, TotalFailures: 18, ConsecutiveFailures: 1}, true},
		{gobreaker.Counts{Requests: 20, TotalFailures: 17, ConsecutiveFailures: 17}, false},
		// A long run of failures at a 50% failure rate is no outage.
		{gobreaker.Counts{Requests: 1000, TotalFailures: 500, ConsecutiveFailures: 50}, false},
		{gobreaker.Counts{Requests: 1000, TotalFailures: 900, ConsecutiveFailures: 2}, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.counts), func(t *testing.T) {
			if got := r.ready(tt.counts); got != tt.want {
				t.Errorf("ready = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	live := t.Context()
	done, cancel := context.WithCancel(t.Context())
	cancel()
	upErr := func(code int) error { return &upstream.Error{Op: "status", StatusCode: code} }
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"success", live, nil, nil},
		{"500", live, upErr(500), outcomeFailure},
		{"503", live, upErr(503), outcomeFailure},
		{"429", live, upErr(429), outcomeFailure},
		{"400", live, upErr(400), nil},
		{"401", live, upErr(401), nil},
		{"403", live, upErr(403), nil},
		{"404", live, upErr(404), nil},
		{"transport", live, &upstream.TransportError{Op: "status", Err: syscall.ECONNRESET}, outcomeFailure},
		{"attempt timeout", live, &upstream.TransportError{Op: "status", Err: context.DeadlineExceeded}, outcomeFailure},
		{"malformed", live, fmt.Errorf("x: %w", upstream.ErrMalformedResponse), outcomeFailure},
		{"caller cancelled", done, &upstream.TransportError{Op: "status", Err: context.Canceled}, outcomeExcluded},
		{"500 after the caller left", done, upErr(500), outcomeExcluded},
		{"invalid argument", live, fmt.Errorf("x: %w", upstream.ErrInvalidArgument), outcomeExcluded},
		{"closed", live, &upstream.TransportError{Op: "status", BeforeSend: true, Err: upstream.ErrClosed}, outcomeExcluded},
		{"attempt timeout waiting for a slot", live, &upstream.TransportError{Op: "otp", BeforeSend: true, Err: fmt.Errorf("x: %w", upstream.ErrConcurrencyLimit)}, outcomeExcluded},
		{"attempt timeout waiting for a stream", live, &upstream.TransportError{Op: "otp", Queued: true, Err: context.DeadlineExceeded}, outcomeExcluded},
		{"attempt timeout dialling", live, &upstream.TransportError{Op: "otp", BeforeSend: true, Err: context.DeadlineExceeded}, outcomeFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcome(tt.ctx, tt.err); got != tt.want {
				t.Errorf("outcome = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAttemptTimeoutCountsAndRetries(t *testing.T) {
	cfg := fast()
	cfg.AttemptTimeout = 200 * time.Millisecond
	e := newEnv(t, cfg, envOptions{})
	ctx := testCtx(t)
	if err := e.up.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// The first lookup hangs past the attempt timeout; the retry answers.
	e.emu.Script(emulator.RouteStatus, emulator.Fault{Latency: 10 * time.Second})
	st, err := e.c.ServiceStatus(ctx, knownService)
	if err != nil || st.ServiceID != knownService {
		t.Fatalf("ServiceStatus = %+v, %v; want the retry's answer", st, err)
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 2 {
		t.Errorf("upstream calls = %d, want 2", got)
	}
	eventually(t, "the emulator to see the abandoned request", func() bool { return e.emu.Cancelled(emulator.RouteStatus) == 1 })
	// The call counts once, as an answer: its retry succeeded.
	if c := e.c.breaker.cb.Counts(); c.Requests != 1 || c.TotalFailures != 0 {
		t.Errorf("breaker counted %d calls, %d failed; want 1 call, none failed", c.Requests, c.TotalFailures)
	}
}
