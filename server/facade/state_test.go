package facade_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// stateKey returns a fresh state key, hex-encoded.
func stateKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return hex.EncodeToString(k)
}

// TestUpstreamBudgetAcrossReplicas: two replicas on one Redis share one
// budget of upstream calls; beyond it a call is refused with
// RESOURCE_EXHAUSTED, UPSTREAM_BUDGET_EXHAUSTED and RetryInfo before it
// leaves. Without Redis the budget is per replica.
func TestUpstreamBudgetAcrossReplicas(t *testing.T) {
	redis := testkit.StartRedis(t)
	key := stateKey(t)
	cfg := facade.Config{Emulator: true, UpstreamRateLimit: 0.01, RedisURL: redis.URL(), StateKey: key}
	a, b := startFacade(t, cfg), startFacade(t, cfg)
	a.waitServing(t)
	b.waitServing(t)

	if _, err := a.otp(); err != nil {
		t.Fatalf("first OTP on replica a: %v", err)
	}
	_, err := b.otp()
	wantError(t, err, codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_BUDGET_EXHAUSTED.String())
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("refusal carries RetryInfo %v, want a positive delay", retry)
	}
	if n := len(b.f.Emulator().OTPs()); n != 0 {
		t.Fatalf("replica b's upstream minted %d OTPs after the refusal, want 0", n)
	}

	// Without Redis, each replica has the whole budget.
	c := startFacade(t, facade.Config{Emulator: true, UpstreamRateLimit: 0.01})
	c.waitServing(t)
	if _, err := c.otp(); err != nil {
		t.Fatalf("first OTP on a replica without Redis: %v", err)
	}
	_, err = c.otp()
	wantError(t, err, codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_BUDGET_EXHAUSTED.String())
}

func TestStateConfig(t *testing.T) {
	key := stateKey(t)
	for _, tc := range []struct {
		name   string
		cfg    facade.Config
		fields []string
	}{
		{"no state key", facade.Config{RedisURL: "redis://127.0.0.1:6379"}, []string{"StateKey"}},
		{"password in URL", facade.Config{RedisURL: "redis://u:pw@127.0.0.1:6379", StateKey: key}, []string{"RedisURL"}},
		{"bad scheme", facade.Config{RedisURL: "http://127.0.0.1:6379", StateKey: key}, []string{"RedisURL"}},
		{"short key", facade.Config{RedisURL: "redis://127.0.0.1:6379", StateKey: key[:32]}, []string{"StateKey"}},
		{"bad old key", facade.Config{RedisURL: "redis://127.0.0.1:6379", StateKey: key + "\nnot-a-key"}, []string{"StateKey"}},
		{"negative budget", facade.Config{UpstreamRateLimit: -1}, []string{"UpstreamRateLimit"}},
		{"negative replicas", facade.Config{ExpectReplicas: -1}, []string{"ExpectReplicas"}},
		{"password parameter", facade.Config{RedisURL: "redis://s:26379?master_name=m&password=pw@", StateKey: key}, []string{"RedisURL"}},
		{"addr userinfo", facade.Config{RedisURL: "redis://s:26379?master_name=m&addr=u:pw@s2:26379", StateKey: key}, []string{"RedisURL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Emulator = true
			err := tc.cfg.Validate()
			var ce *facade.ConfigError
			if !errors.As(err, &ce) || ce.Fields[0] != tc.fields[0] {
				t.Fatalf("Validate = %v, want a ConfigError about %v", err, tc.fields)
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), key[:16]) {
				t.Fatalf("error repeats a secret: %v", err)
			}
		})
	}
	ok := facade.Config{Emulator: true, RedisURL: "unix:///run/redis.sock", StateKey: key + "\n" + stateKey(t) + "\n"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate with a rotated key: %v", err)
	}
}

// TestSharedStatusCache: three replicas on one Redis, many pollers of one
// service on each, make about one upstream status call per TTL between
// them, not one per replica.
func TestSharedStatusCache(t *testing.T) {
	redis := testkit.StartRedis(t)
	seed := emulator.DefaultSeed()
	up := startUpstream(t, emulator.Config{Seed: seed}, nil)
	const ttl = 300 * time.Millisecond
	cfg := facade.Config{
		UpstreamURL: up.url, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret,
		StatusCacheTTL: ttl, RedisURL: redis.URL(), StateKey: stateKey(t),
	}
	var replicas []*harness
	for range 3 {
		h := startFacade(t, cfg)
		h.waitServing(t)
		replicas = append(replicas, h)
	}
	before := up.emu.Calls(emulator.RouteStatus)
	const run = 1500 * time.Millisecond
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, h := range replicas {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < run {
					if _, err := h.status(liveService); err != nil {
						failed.Add(1)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d pollers failed", n)
	}
	calls := up.emu.Calls(emulator.RouteStatus) - before
	// One per TTL and one for the start when the replicas share the
	// cache; per-replica caches make three per TTL. The bound is twice the
	// shared figure: on a loaded machine a replica that waited a whole
	// lease for another's answer looks up itself (5 to 8 calls on an idle
	// machine, 10 in a CI run with both cores busy; 15 with the
	// cache not shared).
	periods := int64(elapsed/ttl) + 1
	if calls > 2*periods {
		t.Fatalf("%d upstream status calls in %s with TTL %s over 3 replicas, want about %d and at most %d", calls, elapsed, ttl, periods, 2*periods)
	}
	t.Logf("%d upstream status calls in %s (TTL %s, 3 replicas, 12 pollers)", calls, elapsed, ttl)
}

// TestIdempotencyAcrossReplicasAndRedisOutage: a request_id gives the
// same OTP on every replica; with Redis down such calls are refused with
// STATE_UNAVAILABLE while everything else works, and once Redis is back
// idempotency works again without restarting anything. Redis keeps what
// it acknowledged (the append-only file, synced on every write), as the
// promise needs: TestOneOTPThroughRedisFaults in e2e has the Redis that
// loses it.
func TestIdempotencyAcrossReplicasAndRedisOutage(t *testing.T) {
	redis := testkit.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	seed := emulator.DefaultSeed()
	up := startUpstream(t, emulator.Config{Seed: seed}, nil)
	cfg := facade.Config{
		UpstreamURL: up.url, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret,
		RedisURL: redis.URL(), StateKey: stateKey(t),
	}
	a, b := startFacade(t, cfg), startFacade(t, cfg)
	a.waitServing(t)
	b.waitServing(t)
	withID := func(h *harness, id string) (string, error) {
		req := otpRequest()
		req.RequestId = id
		resp, err := h.client.GenerateOTP(callCtx(t), req)
		return resp.GetOtp(), err
	}

	first, err := withID(a, "8f6c2d3e-0000-4000-8000-000000000001")
	if err != nil {
		t.Fatalf("OTP on replica a: %v", err)
	}
	again, err := withID(b, "8f6c2d3e-0000-4000-8000-000000000001")
	if err != nil || again != first {
		t.Fatalf("retry on replica b = %q, %v; want replica a's OTP", again, err)
	}
	if n := len(up.emu.OTPs()); n != 1 {
		t.Fatalf("upstream minted %d OTPs for one request_id over two replicas", n)
	}

	redis.Stop()
	_, err = withID(b, "8f6c2d3e-0000-4000-8000-000000000002")
	wantError(t, err, codes.Unavailable, accessv1.ErrorReason_STATE_UNAVAILABLE.String())
	hasRetry := false
	for _, d := range status.Convert(err).Details() {
		_, ok := d.(*errdetails.RetryInfo)
		hasRetry = hasRetry || ok
	}
	if !hasRetry {
		t.Fatal("STATE_UNAVAILABLE without RetryInfo")
	}
	metrics := string(b.do(t, http.MethodGet, "/metrics", nil).body)
	if !strings.Contains(metrics, `radkit_facade_state_fallbacks_total{cause="unavailable",use="idempotency"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", grepLines(metrics, "state_fallbacks"))
	}
	if !strings.Contains(b.logs.String(), "shared state (Redis) unavailable") {
		t.Error("no log line says that Redis failed")
	}
	b.mustStatus(t)
	if _, err := b.otp(); err != nil {
		t.Fatalf("OTP without request_id while Redis is down: %v", err)
	}
	if r := b.do(t, http.MethodGet, "/readyz", nil); r.code != http.StatusOK || !strings.Contains(string(r.body), `"state":"down"`) {
		t.Fatalf("/readyz = %d %s with Redis down, want 200 saying the state is down: readiness must not depend on Redis", r.code, r.body)
	}

	redis.Start()
	if r := b.do(t, http.MethodGet, "/readyz", nil); !strings.Contains(string(r.body), `"state":"up"`) {
		t.Fatalf("/readyz = %s after Redis came back, want the state up", r.body)
	}
	third, err := withID(a, "8f6c2d3e-0000-4000-8000-000000000003")
	if err != nil {
		t.Fatalf("OTP with request_id after Redis came back: %v", err)
	}
	if again, err := withID(b, "8f6c2d3e-0000-4000-8000-000000000003"); err != nil || again != third {
		t.Fatalf("retry after Redis came back = %q, %v; want %q", again, err, third)
	}
	if again, err := withID(b, "8f6c2d3e-0000-4000-8000-000000000001"); err != nil || again != first {
		t.Fatalf("retry of a request_id from before the outage = %q, %v; want the first OTP", again, err)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestUpstreamBudgetPerIdentity: each upstream identity has a budget of
// its own, as it has its own quota upstream.
func TestUpstreamBudgetPerIdentity(t *testing.T) {
	redis := testkit.StartRedis(t)
	file := identitiesFile(t, t.TempDir(), identitiesAB)
	h := startFacade(t, facade.Config{Emulator: true, IdentitiesFile: file, UpstreamRateLimit: 0.01,
		RedisURL: redis.URL(), StateKey: stateKey(t)})
	h.waitServing(t)
	otp := func(identity string) error {
		_, err := h.client.GenerateOTP(callCtx(t), &accessv1.GenerateOTPRequest{
			Owner: "o@example.com", EndpointId: "ep", Description: "budget", Identity: identity})
		return err
	}
	if err := otp("customer-a"); err != nil {
		t.Fatalf("customer-a's first OTP: %v", err)
	}
	wantError(t, otp("customer-a"), codes.ResourceExhausted, accessv1.ErrorReason_UPSTREAM_BUDGET_EXHAUSTED.String())
	if err := otp("customer-b"); err != nil {
		t.Fatalf("customer-b's first OTP, after customer-a spent its budget: %v", err)
	}
}

// TestExpectReplicasWithoutRedisWarns: a replica told that the deployment
// runs several replicas, with no Redis, says at start (WARN) that
// request_ids are per replica; with Redis, or as the only replica, it
// does not.
func TestExpectReplicasWithoutRedisWarns(t *testing.T) {
	redis := testkit.StartRedis(t)
	const warning = "several replicas expected but no shared state"
	for _, tc := range []struct {
		name string
		cfg  facade.Config
		warn bool
	}{
		{"three replicas, no Redis", facade.Config{ExpectReplicas: 3}, true},
		{"three replicas, Redis", facade.Config{ExpectReplicas: 3, RedisURL: redis.URL(), StateKey: stateKey(t)}, false},
		{"one replica", facade.Config{ExpectReplicas: 1}, false},
		{"unknown", facade.Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Emulator = true
			h := startFacade(t, tc.cfg)
			h.waitServing(t)
			var warned bool
			for _, rec := range testkit.JSONLines(h.logs.String()) {
				if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, warning) {
					warned = rec["level"] == "WARN" && strings.Contains(msg, "request_ids") && rec["expect_replicas"] == float64(3)
				}
			}
			if warned != tc.warn {
				t.Errorf("start warned about per-replica request_ids: %v, want %v\n%s", warned, tc.warn, h.logs.String())
			}
		})
	}
}

// TestStateKeyUnknown: a replica whose keyring lacks the key a remembered
// OTP was sealed under answers STATE_KEY_UNKNOWN naming the key's ID, with
// no RetryInfo, logs it and counts it apart from Redis outages.
func TestStateKeyUnknown(t *testing.T) {
	redis := testkit.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	seed := emulator.DefaultSeed()
	up := startUpstream(t, emulator.Config{Seed: seed}, nil)
	cfg := facade.Config{
		UpstreamURL: up.url, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret,
		RedisURL: redis.URL(), StateKey: stateKey(t),
	}
	a := startFacade(t, cfg)
	cfg.StateKey = stateKey(t) // another key, and not the first one for reading
	b := startFacade(t, cfg)
	a.waitServing(t)
	b.waitServing(t)
	req := otpRequest()
	req.RequestId = "8f6c2d3e-0000-4000-8000-0000000000aa"
	if _, err := a.client.GenerateOTP(callCtx(t), req); err != nil {
		t.Fatal(err)
	}
	_, err := b.client.GenerateOTP(callCtx(t), req)
	wantError(t, err, codes.Internal, accessv1.ErrorReason_STATE_KEY_UNKNOWN.String())
	keyID := ""
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			keyID = d.GetMetadata()["key_id"]
		case *errdetails.RetryInfo:
			t.Error("STATE_KEY_UNKNOWN with RetryInfo: a retry does not help")
		}
	}
	if len(keyID) != 8 {
		t.Fatalf("ErrorInfo metadata key_id = %q, want the 4-byte key ID in hex", keyID)
	}
	if !strings.Contains(b.logs.String(), keyID) {
		t.Error("the log does not name the missing key's ID")
	}
	metrics := string(b.do(t, http.MethodGet, "/metrics", nil).body)
	if !strings.Contains(metrics, `radkit_facade_state_refusals_total{reason="STATE_KEY_UNKNOWN"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", grepLines(metrics, "state_"))
	}
	if countsIdempotencyOutage(metrics) {
		t.Errorf("/metrics counts a missing key as a Redis outage:\n%s", grepLines(metrics, "state_"))
	}
}

// countsIdempotencyOutage reports whether metrics count any fallback of the
// idempotency store, whatever its cause.
func countsIdempotencyOutage(metrics string) bool {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "radkit_facade_state_fallbacks_total{") && strings.Contains(line, `use="idempotency"`) && !strings.HasSuffix(line, " 0") {
			return true
		}
	}
	return false
}
