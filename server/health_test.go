package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// healthTimeout bounds every wait in the readiness tests: generous for a
// loaded machine; it only turns a hang into a failure.
const healthTimeout = 20 * time.Second

// servingStatus asks hs, as a probe would, for the status of service.
func servingStatus(t *testing.T, hs *health.Server, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := hs.Check(testkit.Context(t, healthTimeout), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health Check(%q): %v", service, err)
	}
	return resp.GetStatus()
}

// wantStatuses fails t unless the overall and AccessService statuses are
// readiness and the liveness status is liveness.
func wantStatuses(t *testing.T, hs *health.Server, readiness, liveness healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for _, svc := range []string{"", accessv1.AccessService_ServiceDesc.ServiceName} {
		if got := servingStatus(t, hs, svc); got != readiness {
			t.Errorf("health of %q = %s, want %s", svc, got, readiness)
		}
	}
	if got := servingStatus(t, hs, LivenessService); got != liveness {
		t.Errorf("health of %q = %s, want %s", LivenessService, got, liveness)
	}
}

// runReadiness runs r until the test ends (or stop is called), and checks
// that Run returns in time.
func runReadiness(t *testing.T, r *Readiness) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(healthTimeout):
				t.Errorf("Run did not return within %s of its context ending", healthTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestReadinessFollowsTheUpstream runs Readiness on a real upstream
// client's Ready against the emulator, as the facade does: with the
// emulator's credentials the facade becomes ready; with a wrong secret it
// stays not ready, with a reason that names the class of failure and never
// the secret. Liveness is SERVING either way.
func TestReadinessFollowsTheUpstream(t *testing.T) {
	const wrongSecret = "wrong-secret-must-not-show"
	client := emulator.DefaultSeed().Clients[0]
	tests := []struct {
		name      string
		secret    string
		want      healthpb.HealthCheckResponse_ServingStatus
		wantReady bool
	}{
		{"emulator credentials", client.Secret, healthpb.HealthCheckResponse_SERVING, true},
		{"wrong secret", wrongSecret, healthpb.HealthCheckResponse_NOT_SERVING, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := testkit.StartEmulator(t, emulator.Config{})
			up, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: client.ID, ClientSecret: tt.secret})
			if err != nil {
				t.Fatalf("upstream.New: %v", err)
			}
			t.Cleanup(func() { _ = up.Close() })
			hs := health.NewServer()
			logs := &testkit.Buffer{}
			r := NewReadiness(hs, slog.New(slog.NewJSONHandler(logs, nil)), up.Ready)

			if ok, reason := r.Ready(); ok || reason != "starting" {
				t.Fatalf("before Run: Ready() = %v, %q; want false, \"starting\"", ok, reason)
			}
			wantStatuses(t, hs, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING)

			runReadiness(t, r)
			testkit.Eventually(t, healthTimeout, "the first round of checks", func() bool {
				_, reason := r.Ready()
				return reason != "starting"
			})
			ok, reason := r.Ready()
			if ok != tt.wantReady {
				t.Fatalf("Ready() = %v, %q; want %v", ok, reason, tt.wantReady)
			}
			wantStatuses(t, hs, tt.want, healthpb.HealthCheckResponse_SERVING)
			if ok && reason != "" {
				t.Errorf("ready with reason %q, want none", reason)
			}
			if !ok && reason == "" {
				t.Error("not ready without a reason")
			}
			if strings.Contains(reason, wrongSecret) || strings.Contains(logs.String(), wrongSecret) {
				t.Errorf("the client secret shows in the reason %q or the log:\n%s", reason, logs.String())
			}
		})
	}
}

// checkSwitch is a readiness check whose answer the test sets, and which
// counts its calls.
type checkSwitch struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (c *checkSwitch) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *checkSwitch) check(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.err
}

// waitRounds waits until n more checks have run.
func (c *checkSwitch) waitRounds(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	target := c.calls + n
	c.mu.Unlock()
	testkit.Eventually(t, healthTimeout, "more rounds of checks", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.calls >= target
	})
}

// TestReadinessTransitions: a passing check makes the replica ready, and
// it stays ready when a check fails later (the upstream is the same for
// every replica: taking them all out of rotation helps nobody); the
// failure shows under UpstreamService instead, with its reason, and so
// does an upstream check's failure, which never holds back readiness.
// The upstream entry comes back by itself when the checks pass (backoff,
// no restart). Each transition is logged once, rounds without a change
// are not. The end of Run's context makes the replica not ready while
// liveness stays SERVING; Shutdown turns every service NOT_SERVING,
// liveness included.
func TestReadinessTransitions(t *testing.T) {
	hs := health.NewServer()
	logs := &testkit.Buffer{}
	sw, upSw := &checkSwitch{}, &checkSwitch{}
	r := NewReadiness(hs, slog.New(slog.NewJSONHandler(logs, nil)), sw.check).WithUpstreamChecks(upSw.check)
	r.every = 10 * time.Millisecond // rechecks while ready, so that rounds run often
	stop := runReadiness(t, r)

	countLogs := func(prefix string) int {
		n := 0
		for _, rec := range logs.Records(t) {
			if m, _ := rec["msg"].(string); strings.HasPrefix(m, prefix) {
				n++
			}
		}
		return n
	}
	isReady := func() bool { ok, _ := r.Ready(); return ok }
	upstreamUp := func() bool { ok, _ := r.Upstream(); return ok }
	// The round publishes to the health server just after it sets the
	// state that Upstream reads: wait for the published status too.
	wantUpstream := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		testkit.Eventually(t, healthTimeout, fmt.Sprintf("health of %q %s", UpstreamService, want), func() bool {
			return servingStatus(t, hs, UpstreamService) == want
		})
	}

	testkit.Eventually(t, healthTimeout, "ready with a passing check", isReady)
	wantStatuses(t, hs, healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING)
	wantUpstream(healthpb.HealthCheckResponse_SERVING)

	for _, failing := range []*checkSwitch{sw, upSw} {
		failing.set(context.DeadlineExceeded)
		testkit.Eventually(t, healthTimeout, "the upstream down after a failing check", func() bool { return !upstreamUp() })
		if _, reason := r.Upstream(); reason != statusMessage(Status(context.DeadlineExceeded)) {
			t.Errorf("upstream down with reason %q, want the failure's caller-facing message %q", reason, statusMessage(Status(context.DeadlineExceeded)))
		}
		wantUpstream(healthpb.HealthCheckResponse_NOT_SERVING)
		wantStatuses(t, hs, healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING)
		if ok, reason := r.Ready(); !ok || reason != "" {
			t.Errorf("with the upstream down Ready() = %v, %q; want true, no reason", ok, reason)
		}

		failing.set(nil)
		testkit.Eventually(t, healthTimeout, "the upstream up again once the check passes", upstreamUp)
		wantUpstream(healthpb.HealthCheckResponse_SERVING)
	}
	sw.waitRounds(t, 5)
	if n := countLogs("ready:"); n != 1 {
		t.Errorf("%d \"ready\" log lines, want 1:\n%s", n, logs.String())
	}
	if n := countLogs("upstream down"); n != 2 {
		t.Errorf("%d \"upstream down\" log lines, want 2 (one per transition):\n%s", n, logs.String())
	}

	stop()
	if ok, reason := r.Ready(); ok || reason != "shutting down" {
		t.Errorf("after Run: Ready() = %v, %q; want false, \"shutting down\"", ok, reason)
	}
	wantStatuses(t, hs, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING)

	r.Shutdown()
	if ok, reason := r.Ready(); ok || reason != "shutting down" {
		t.Errorf("after Shutdown: Ready() = %v, %q; want false, \"shutting down\"", ok, reason)
	}
	wantStatuses(t, hs, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_NOT_SERVING)
}

// TestShutdownHoldsWhileRunGoesOn: facade.Run calls Shutdown first and
// ends Run's context only after the drain, so the rounds that run in
// between must not make the replica ready again.
func TestShutdownHoldsWhileRunGoesOn(t *testing.T) {
	hs := health.NewServer()
	sw := &checkSwitch{}
	r := NewReadiness(hs, nil, sw.check)
	r.every = 10 * time.Millisecond
	stop := runReadiness(t, r)
	defer stop()
	testkit.Eventually(t, healthTimeout, "ready with a passing check", func() bool { ok, _ := r.Ready(); return ok })

	r.Shutdown()
	sw.waitRounds(t, 5)
	if ok, reason := r.Ready(); ok || reason != "shutting down" {
		t.Errorf("rounds after Shutdown, Run still going: Ready() = %v, %q; want false, \"shutting down\"", ok, reason)
	}
	wantStatuses(t, hs, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_NOT_SERVING)
}

// TestUpstreamCheckNeverHoldsBackReadiness: an upstream check that fails
// from the start (an open breaker, say) leaves the replica ready once its
// own checks pass.
func TestUpstreamCheckNeverHoldsBackReadiness(t *testing.T) {
	hs := health.NewServer()
	upSw := &checkSwitch{}
	upSw.set(context.DeadlineExceeded)
	r := NewReadiness(hs, nil, (&checkSwitch{}).check).WithUpstreamChecks(upSw.check)
	runReadiness(t, r)
	testkit.Eventually(t, healthTimeout, "ready", func() bool { ok, _ := r.Ready(); return ok })
	if ok, _ := r.Upstream(); ok {
		t.Error("upstream up although its check fails")
	}
	if got := servingStatus(t, hs, UpstreamService); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health of %q = %s, want NOT_SERVING", UpstreamService, got)
	}
}

// TestReadinessBoundsEachRound: a check that hangs is cut off by the
// per-round timeout and counts as a failure, so that a hung upstream makes
// the facade not ready instead of freezing its readiness.
func TestReadinessBoundsEachRound(t *testing.T) {
	hs := health.NewServer()
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	r := NewReadiness(hs, nil, hang)
	r.timeout = 50 * time.Millisecond
	runReadiness(t, r)
	testkit.Eventually(t, healthTimeout, "the hung round to be cut off", func() bool {
		_, reason := r.Ready()
		return reason != "starting"
	})
	ok, reason := r.Ready()
	if ok {
		t.Fatal("ready although the check never answered")
	}
	if want := statusMessage(Status(context.DeadlineExceeded)); reason != want {
		t.Errorf("reason %q, want %q (the timeout's caller-facing message)", reason, want)
	}
}
