package facade_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestSlowUpstreamKeepsBreakerClosed holds a slow, healthy upstream (every
// answer takes a second and a half, every answer is OK) at the facade's
// bound on calls in flight for 30 s, with callers whose deadlines are
// sometimes shorter than the upstream's latency and sometimes longer than
// the wait for a slot. Waiting for a slot, refusals of the facade's own
// bound and callers giving up say nothing of the upstream: the circuit
// breaker stays closed throughout and nothing is refused as
// UPSTREAM_CIRCUIT_OPEN or UPSTREAM_THROTTLED (the throttle counts what the
// breaker counts).
func TestSlowUpstreamKeepsBreakerClosed(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "holds the upstream for 30 s; -short")
	}
	const (
		bound   = 2
		callers = 64
		latency = 1500 * time.Millisecond
		hold    = 30 * time.Second
	)
	te := testkit.StartTLSEmulator(t, emulator.Config{})
	cfg := tlsFacadeConfig(te)
	cfg.UpstreamMaxInFlight = bound
	h := startFacade(t, cfg)
	h.waitServing(t)
	h.mustStatus(t) // token and discovery before the upstream slows down
	te.Emulator.SetLatency(emulator.RouteOTP, latency)
	te.Emulator.SetLatency(emulator.RouteStatus, latency)

	// Deadlines shorter than the latency, about it, and long enough to
	// wait for a slot; most calls are refused at the bound, so that
	// counting a refusal as a failure would open the breaker.
	deadlines := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 4 * time.Second}
	ctx, stop := context.WithTimeout(context.Background(), hold)
	defer stop()
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ctx.Err() == nil; n++ {
				cctx, cancel := context.WithTimeout(context.Background(), deadlines[n%len(deadlines)])
				var err error
				if n%2 == 0 {
					_, err = h.client.GenerateOTP(cctx, otpRequest())
				} else {
					_, err = h.client.GetServiceStatus(cctx, &accessv1.GetServiceStatusRequest{ServiceId: liveService})
				}
				cancel()
				key := "OK"
				if err != nil {
					key = status.Code(err).String() + " " + reasonOf(err)
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
			}
		}()
	}
	var worst float64
	for ctx.Err() == nil {
		if v := scrape(t, h)[telemetry.MetricUpstreamBreakerState]; v > worst {
			worst = v
		}
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("outcomes over %v: %v", hold, outcomes)
	if worst != 0 {
		t.Errorf("breaker state reached %v (0 closed, 1 half-open, 2 open) with a slow, healthy upstream", worst)
	}
	if outcomes["OK"] == 0 {
		t.Error("no call succeeded")
	}
	for key, n := range outcomes {
		switch key {
		case "OK",
			codes.ResourceExhausted.String() + " " + accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT.String(),
			// A caller whose deadline is shorter than the latency: its
			// call was sent, and it gave up (or was told so) first.
			codes.DeadlineExceeded.String() + " ",
			codes.DeadlineExceeded.String() + " " + accessv1.ErrorReason_UPSTREAM_TIMEOUT.String():
		default:
			t.Errorf("%d calls ended %s", n, key)
		}
	}
}
