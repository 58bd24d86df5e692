package facade_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/telemetry"
)

// TestUpstreamConcurrencyLimit holds limit OTP calls in the emulator (over
// TLS and HTTP/2, where nothing else bounds them), then makes extra calls:
// they wait for a slot (the queued gauge shows them), are refused with
// RESOURCE_EXHAUSTED, reason UPSTREAM_CONCURRENCY_LIMIT and RetryInfo once
// their deadline passes, and never reach the upstream. Once the held calls
// end, calls go through again.
func TestUpstreamConcurrencyLimit(t *testing.T) {
	checkGoroutines(t)
	const limit, extra = 4, 3
	const extraDeadline = 2 * time.Second
	te := testkit.StartTLSEmulator(t, emulator.Config{})
	cfg := tlsFacadeConfig(te)
	cfg.UpstreamMaxInFlight = limit
	h := startFacade(t, cfg)
	h.waitServing(t)

	te.Emulator.SetLatency(emulator.RouteOTP, time.Minute)
	heldCtx, release := context.WithCancel(context.Background())
	defer release()
	var held sync.WaitGroup
	for range limit {
		held.Add(1)
		go func() {
			defer held.Done()
			_, _ = h.client.GenerateOTP(heldCtx, otpRequest())
		}()
	}
	testkit.Eventually(t, callTimeout, "the held calls to reach the emulator", func() bool {
		return te.Emulator.Calls(emulator.RouteOTP) == limit
	})

	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, extra)
	for range extra {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), extraDeadline)
			defer cancel()
			start := time.Now()
			_, err := h.client.GenerateOTP(ctx, otpRequest())
			results <- result{err, time.Since(start)}
		}()
	}
	testkit.Eventually(t, extraDeadline, "the extra calls to show as queued", func() bool {
		m := scrape(t, h)
		return m[telemetry.MetricUpstreamQueued] == extra && m[telemetry.MetricUpstreamInFlight] == limit
	})
	for range extra {
		var r result
		select {
		case r = <-results:
		case <-time.After(callTimeout):
			t.Fatal("an extra call did not end within its deadline and more")
		}
		wantError(t, r.err, codes.ResourceExhausted, server.ReasonUpstreamConcurrencyLimit)
		if !hasRetryInfo(r.err) {
			t.Errorf("refusal %v carries no RetryInfo", r.err)
		}
		// It waited (no immediate refusal), and not much past its deadline.
		if r.elapsed < extraDeadline/2 || r.elapsed > extraDeadline+10*time.Second {
			t.Errorf("an extra call ended after %v, want about its deadline of %v", r.elapsed, extraDeadline)
		}
	}
	if got := te.Emulator.Calls(emulator.RouteOTP); got != limit {
		t.Errorf("emulator OTP calls = %d, want %d: the bound let calls through", got, limit)
	}

	release()
	held.Wait()
	te.Emulator.SetLatency(emulator.RouteOTP, 0)
	if _, err := h.otp(); err != nil {
		t.Errorf("GenerateOTP once the held calls ended: %v", err)
	}
	testkit.Eventually(t, callTimeout, "the in-flight gauge back to 0", func() bool {
		m := scrape(t, h)
		return m[telemetry.MetricUpstreamInFlight] == 0 && m[telemetry.MetricUpstreamQueued] == 0 && m[telemetry.MetricUpstreamMaxInFlight] == limit
	})
}

// hasRetryInfo reports whether err's status carries a RetryInfo.
func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// scrape reads the facade's /metrics and returns the value of every
// series without labels.
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	resp, err := h.http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(value, &v); err == nil {
			out[name] = v
		}
	}
	return out
}
