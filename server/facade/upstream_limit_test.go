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

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
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
		wantError(t, r.err, codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT.String())
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

// TestStatusLookupsQueuedAtTheBound makes 10 status lookups of 10
// services, each with a 5 s deadline, through a bound of 2 calls in
// flight to an upstream that answers in 3 s. The first 2 are answered; the
// other 8, which would get a slot with 2 s left for a 3 s answer, are
// refused with UPSTREAM_CONCURRENCY_LIMIT and RetryInfo before their
// deadline, as GenerateOTP calls are, although a lookup is shared and runs
// detached from its callers; and none of them is sent upstream.
func TestStatusLookupsQueuedAtTheBound(t *testing.T) {
	const (
		bound    = 2
		callers  = 10
		latency  = 3 * time.Second
		deadline = 5 * time.Second
	)
	seed := emulator.DefaultSeed()
	var ids []string
	for i := range callers {
		id := fmt.Sprintf("bnd%d-e8n8-5g5n", i)
		ids = append(ids, id)
		seed.Services = append(seed.Services, emulator.Service{ID: id, Active: true, Online: true})
	}
	te := testkit.StartTLSEmulator(t, emulator.Config{Seed: seed})
	cfg := tlsFacadeConfig(te)
	cfg.UpstreamMaxInFlight = bound
	h := startFacade(t, cfg)
	h.waitServing(t)
	h.mustStatus(t) // discovery and token first
	before := te.Emulator.Calls(emulator.RouteStatus)
	te.Emulator.SetLatency(emulator.RouteStatus, latency)

	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, callers)
	for i, id := range ids {
		go func() {
			// The first two take the slots before the others ask.
			if i >= bound {
				time.Sleep(200 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err := h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: id})
			results <- result{err, time.Since(start)}
		}()
	}
	ok, refused := 0, 0
	for range callers {
		r := <-results
		switch {
		case r.err == nil:
			ok++
		case reasonOf(r.err) == accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT.String():
			refused++
			wantError(t, r.err, codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT.String())
			if !hasRetryInfo(r.err) {
				t.Errorf("refusal %v carries no RetryInfo", r.err)
			}
			if r.elapsed >= deadline {
				t.Errorf("refused after %v, not before the %v deadline", r.elapsed, deadline)
			}
		default:
			t.Errorf("lookup ended after %v with %v (%s), want OK or UPSTREAM_CONCURRENCY_LIMIT", r.elapsed, status.Code(r.err), reasonOf(r.err))
		}
	}
	if ok != bound || refused != callers-bound {
		t.Errorf("%d OK and %d refused, want %d and %d", ok, refused, bound, callers-bound)
	}
	// Give a lookup that was wrongly sent time to be counted.
	time.Sleep(time.Second)
	if got := te.Emulator.Calls(emulator.RouteStatus) - before; got != bound {
		t.Errorf("emulator status calls = %d, want %d: lookups whose callers were refused were sent", got, bound)
	}
}

// TestCancelledCallsKeepHTTP1Connections makes waves of OTP calls over
// plain HTTP/1.1 whose callers give up before the upstream answers, and
// counts the connections the emulator accepted: a cancelled call must not
// cost a connection (net/http closes one cancelled in flight), so the
// waves reuse the first wave's connections instead of dialling one per
// call.
func TestCancelledCallsKeepHTTP1Connections(t *testing.T) {
	const (
		waves    = 4
		perWave  = 8
		latency  = 600 * time.Millisecond
		deadline = 200 * time.Millisecond
	)
	emu, srv := testkit.StartEmulator(t, emulator.Config{}) // counts the connections it accepts
	client := emulator.DefaultSeed().Clients[0]
	h := startFacade(t, facade.Config{UpstreamURL: srv.URL, ClientID: client.ID, ClientSecret: client.Secret})
	h.waitServing(t)
	if _, err := h.otp(); err != nil {
		t.Fatalf("first OTP: %v", err)
	}
	emu.SetLatency(emulator.RouteOTP, latency)
	wave := func() {
		var wg sync.WaitGroup
		for range perWave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				if _, err := h.client.GenerateOTP(ctx, otpRequest()); err == nil {
					t.Error("an OTP call succeeded before the upstream answered")
				}
			}()
		}
		wg.Wait()
		// The upstream answers the abandoned calls; their connections are
		// then free again.
		time.Sleep(latency + 400*time.Millisecond)
	}
	wave() // opens the connections the waves need
	before := emu.Connections()
	for range waves - 1 {
		wave()
	}
	got := emu.Connections() - before
	t.Logf("%d waves of %d cancelled calls: %d new upstream connections", waves-1, perWave, got)
	// Some slack for a loaded machine; a transport that dropped the
	// connection of each cancelled call would open one per call.
	if got > perWave/2 {
		t.Errorf("%d waves of %d cancelled calls opened %d new upstream connections, want about none", waves-1, perWave, got)
	}
}
