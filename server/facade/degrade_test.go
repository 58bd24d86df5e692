package facade_test

// The fault matrix for a partly failing or down upstream: the facade must
// degrade in proportion (docs/adr/0002-proportional-degradation.md), and
// its readiness must reflect this replica, not the shared upstream.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// healthOf returns the grpc.health.v1 status of service.
func (h *harness) healthOf(t *testing.T, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := h.health.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health Check %q: %v", service, err)
	}
	return resp.GetStatus()
}

// wantRefusal fails t unless err is UNAVAILABLE with one of the reasons of
// an upstream outage and a RetryInfo.
func wantRefusal(t *testing.T, err error) {
	t.Helper()
	wantError(t, err, codes.Unavailable,
		accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), accessv1.ErrorReason_UPSTREAM_THROTTLED.String())
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return
		}
	}
	t.Fatalf("%v: no RetryInfo", err)
}

// readyz returns /readyz's HTTP status and body.
func (h *harness) readyz(t *testing.T) (int, map[string]string) {
	t.Helper()
	r := h.do(t, http.MethodGet, "/readyz", nil)
	var body map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("/readyz body %q: %v", r.body, err)
	}
	return r.code, body
}

// TestReadinessThroughUpstreamOutage: once ready, the replica stays ready
// while the upstream is down (every replica sees the same upstream, and
// taking them all out of rotation would turn fast UNAVAILABLE answers into
// connection errors). The upstream's state is reported apart: the health
// entry "upstream", the /readyz body.
func TestReadinessThroughUpstreamOutage(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t)
	testkit.Eventually(t, readyTimeout, "the upstream entry to be SERVING", func() bool {
		return h.healthOf(t, server.UpstreamService) == healthpb.HealthCheckResponse_SERVING
	})
	if code, body := h.readyz(t); code != http.StatusOK || body["upstream"] != "up" {
		t.Fatalf("/readyz before the outage = %d %v, want 200 with upstream up", code, body)
	}

	emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: http.StatusServiceUnavailable, Retry: true})
	deadline := time.Now().Add(20 * time.Second)
	for h.healthOf(t, server.UpstreamService) != healthpb.HealthCheckResponse_NOT_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("the upstream entry stayed SERVING through 20s of outage")
		}
		_, err := h.status(liveService)
		wantRefusal(t, err)
		time.Sleep(5 * time.Millisecond)
	}
	for _, name := range []string{"", "radkit.access.v1.AccessService"} {
		if got := h.healthOf(t, name); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q during the upstream outage = %s, want SERVING", name, got)
		}
	}
	if got := h.healthOf(t, server.LivenessService); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("liveness during the upstream outage = %s, want SERVING", got)
	}
	code, body := h.readyz(t)
	if code != http.StatusOK || body["status"] != "ready" || body["upstream"] != "down" || body["upstream_reason"] == "" {
		t.Errorf("/readyz during the outage = %d %v, want 200, ready, upstream down with a reason", code, body)
	}
	metrics := string(h.do(t, http.MethodGet, "/metrics", nil).body)
	for _, want := range []string{"radkit_upstream_up 0", `radkit_upstream_refused_total{reason="circuit_open"}`, "radkit_upstream_throttle_probability "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics during the outage lacks %q", want)
		}
	}

	// Back up: calls succeed again, and so the upstream entry follows.
	emu.ResetRouteFaults(emulator.RouteStatus)
	t0 := time.Now()
	defer func() { t.Logf("recovered in %s", time.Since(t0)) }()
	testkit.Eventually(t, 30*time.Second, "calls to succeed after the outage", func() bool {
		_, err := h.status(liveService)
		return err == nil
	})
	testkit.Eventually(t, 30*time.Second, "the upstream entry to be SERVING again", func() bool {
		h.status(liveService) //nolint:errcheck // traffic that shows the upstream back
		return h.healthOf(t, server.UpstreamService) == healthpb.HealthCheckResponse_SERVING
	})
}

// TestFailureRateAbsorbed: with one upstream call in five failing (503,
// "retry": true) at random, retries within the retry budget absorb
// nearly all of it for both RPCs: no breaker, no throttle, no outage.
// (Three attempts give 99.2% per call, for 0.24 retries per call: within
// the retry budget's 0.3.)
func TestFailureRateAbsorbed(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t)
	const calls, minOK = 300, 0.90
	fault := emulator.Fault{Status: http.StatusServiceUnavailable, Retry: true}
	for _, rpc := range []struct {
		name  string
		route emulator.Route
		call  func() error
	}{
		{"GetServiceStatus", emulator.RouteStatus, func() error { _, err := h.status(liveService); return err }},
		{"GenerateOTP", emulator.RouteOTP, func() error { _, err := h.otp(); return err }},
	} {
		t.Run(rpc.name, func(t *testing.T) {
			emu.SetFailureRate(rpc.route, 0.2, fault)
			t.Cleanup(func() { emu.ResetRouteFaults(rpc.route) })
			before := emu.Calls(rpc.route)
			ok := 0
			for range calls {
				err := rpc.call()
				if err == nil {
					ok++
					continue
				}
				wantRefusal(t, err)
			}
			if got := float64(ok) / calls; got < minOK {
				t.Errorf("%d of %d calls succeeded (%.1f%%), want at least %.0f%%", ok, calls, 100*got, 100*minOK)
			}
			upstreamCalls := emu.Calls(rpc.route) - before
			if ratio := float64(upstreamCalls) / calls; ratio > 1.3+10.0/calls {
				t.Errorf("%d upstream calls for %d calls (%.2f per call), want at most 1.3 per call", upstreamCalls, calls, ratio)
			}
			t.Logf("%s at p=0.2: %d/%d OK, %d upstream calls", rpc.name, ok, calls, upstreamCalls)
		})
	}
}

// TestThrottledAnswer: the error table's row (docs/errors.md) of UPSTREAM_THROTTLED,
// through both doors. With every upstream call failing, the adaptive
// throttle starts refusing once its window holds 20 calls: UNAVAILABLE
// (HTTP 503), nothing sent upstream, RetryInfo of 1s. The upstream is slow
// as well, so that fewer than 20 calls a second fail and the breaker, which
// would open first at a higher rate, stays closed.
func TestThrottledAnswer(t *testing.T) {
	const clientID, clientSecret = "throttle-client", "throttle-secret"
	for _, door := range []string{"grpc", "http"} {
		t.Run(door, func(t *testing.T) {
			up := startUpstream(t, emulator.Config{Seed: testSeed(clientID, clientSecret, "throttle-api-token")}, nil)
			up.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: http.StatusServiceUnavailable})
			up.emu.SetLatency(emulator.RouteStatus, 60*time.Millisecond)
			h := startFacade(t, facade.Config{UpstreamURL: up.url, ClientID: clientID, ClientSecret: clientSecret})
			deadline := time.Now().Add(20 * time.Second)
			for {
				if time.Now().After(deadline) {
					t.Fatal("20s of failing calls were never throttled")
				}
				var got tableAnswer
				if door == "grpc" {
					got = h.callGRPC(t, callStatus, callTimeout)
				} else {
					got = h.callHTTP(t, callStatus, callTimeout)
				}
				if got.info.GetReason() != accessv1.ErrorReason_UPSTREAM_THROTTLED.String() {
					continue
				}
				checkAnswer(t, got, codes.Unavailable, http.StatusServiceUnavailable, accessv1.ErrorReason_UPSTREAM_THROTTLED.String(),
					map[string]string{server.MetadataUpstreamOp: "", server.MetadataUpstreamStatus: ""}, time.Second, false)
				return
			}
		})
	}
}
