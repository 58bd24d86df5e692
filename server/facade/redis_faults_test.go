package facade_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// startOnRedis starts a facade in emulator mode with every use of Redis
// on (caller rate limit, upstream budget, status cache, idempotency) and
// its log in the returned buffer.
func startOnRedis(t *testing.T, cfg facade.Config) (*secured, *testkit.Buffer) {
	t.Helper()
	logs := &testkit.Buffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startSecured(t, cfg, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("facade log (tail):\n%s", tail(logs.String(), 16<<10))
		}
	})
	return s, logs
}

// fallbacks sums radkit_facade_state_fallbacks_total over the series of
// the facade's /metrics whose labels include every one of labels.
func fallbacks(t *testing.T, s *secured, labels ...string) float64 {
	t.Helper()
	_, body := s.get(t, "/metrics", "")
	var sum float64
	for line := range strings.Lines(body) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
		if !ok || name != "radkit_facade_state_fallbacks_total" {
			continue
		}
		series, value, _ := strings.Cut(rest, "} ")
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil && match {
			sum += v
		}
	}
	return sum
}

// otpWithID calls GenerateOTP with request_id id.
func otpWithID(s *secured, id string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := otpRequest()
	req.RequestId = id
	resp, err := s.access.GenerateOTP(ctx, req)
	return resp.GetOtp(), err
}

// TestRedisStallOneTimeoutPerCall: with Redis paused (SIGSTOP), a status
// call that uses Redis three times (the caller's rate limit, the status
// cache, the upstream budget) pays the Redis timeout once: its first use
// times out, the others fall back without asking.
func TestRedisStallOneTimeoutPerCall(t *testing.T) {
	redis := testkit.StartRedis(t)
	s, _ := startOnRedis(t, facade.Config{
		RateLimit: 1000, RateBurst: 1000, UpstreamRateLimit: 1000, StatusCacheTTL: time.Second,
		RedisURL: redis.URL(), StateKey: stateKey(t),
	})

	redis.Pause()
	start := time.Now()
	err := s.status("")
	took := time.Since(start)
	redis.Resume()
	if err != nil {
		t.Fatalf("status call with Redis paused: %v (it must fall back)", err)
	}
	timeouts := fallbacks(t, s, `cause="unavailable"`)
	skipped := fallbacks(t, s, `cause="skipped"`)
	t.Logf("one status call with Redis paused: %s; Redis timeouts %v, uses that fell back without asking %v", took, timeouts, skipped)
	if timeouts != 1 {
		t.Errorf("%v Redis uses timed out in one call, want 1: after the first, the call's other uses must not ask", timeouts)
	}
	if skipped < 1 {
		t.Errorf("%v uses fell back without asking, want the status cache's and the upstream budget's", skipped)
	}
}

// TestRedisACLUser: the fault matrix's ACL case. Two replicas on a Redis
// whose only user is the one deploy/kubernetes/redis/users.acl ships (keys
// ~radkit-facade:*, the commands listed there): request_id idempotency
// across replicas, the status cache, and a caller rate limit that is one
// for both replicas all work, with no fallback and no NOPERM. A user whose
// key pattern misses the prefix, or a wrong password, is reported as a
// configuration error: in the log, the metric's cause and /readyz.
func TestRedisACLUser(t *testing.T) {
	const password = "acl-facade-pw"
	other := sha256.Sum256([]byte("other-pw"))
	redis := testkit.StartRedisACL(t, testkit.DeployedRedisACL(t, password)+
		"user elsewhere on #"+hex.EncodeToString(other[:])+" ~elsewhere:* +@all\n")
	url := "unix://" + testkit.DeployedRedisACLUser + "@" + redis.Socket()
	const burst = 8
	cfg := facade.Config{
		RateLimit: 0.01, RateBurst: burst, UpstreamRateLimit: 100, StatusCacheTTL: time.Second,
		RedisURL: url, RedisPassword: password, StateKey: stateKey(t),
	}
	a, logsA := startOnRedis(t, cfg)
	b, logsB := startOnRedis(t, cfg)

	allowed := 0
	first, err := otpWithID(a, "8f6c2d3e-0000-4000-8000-0000000000a1")
	if err != nil {
		t.Fatalf("OTP with request_id on replica a: %v", err)
	}
	allowed++
	again, err := otpWithID(b, "8f6c2d3e-0000-4000-8000-0000000000a1")
	if err != nil || again != first {
		t.Fatalf("replay on replica b = %q, %v; want replica a's OTP %q", again, err, first)
	}
	allowed++
	// The caller's limit is one for both replicas: alternate until refused.
	for i := 0; allowed <= 2*burst; i++ {
		s := []*secured{a, b}[i%2]
		err := s.status("")
		if status.Code(err) == codes.ResourceExhausted && reason(err) == accessv1.ErrorReason_CALLER_RATE_LIMITED.String() {
			break
		}
		if err != nil {
			t.Fatalf("status call %d: %v", i, err)
		}
		allowed++
	}
	if allowed != burst {
		t.Errorf("%d calls allowed over two replicas with a burst of %d: the limit is not shared", allowed, burst)
	}
	for name, s := range map[string]*secured{"a": a, "b": b} {
		if n := fallbacks(t, s); n != 0 {
			t.Errorf("replica %s: %v fallbacks, want none", name, n)
		}
		if _, body := s.get(t, "/readyz", ""); !strings.Contains(body, `"state":"up"`) {
			t.Errorf("replica %s: /readyz = %s, want the state up", name, body)
		}
	}
	// The shipped ACL leaves CONFIG out: the one refusal a replica may
	// meet is its start-up look at the persistence settings, which it
	// reports once as such.
	const persistenceUnknown = "cannot read Redis's persistence settings"
	for _, logs := range []string{logsA.String(), logsB.String()} {
		if !strings.Contains(logs, persistenceUnknown) {
			t.Errorf("a replica did not say that it cannot check persistence under the shipped ACL:\n%s", grepLines(logs, "Redis"))
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, persistenceUnknown) {
				continue
			}
			if strings.Contains(line, "NOPERM") || strings.Contains(line, "shared state (Redis)") {
				t.Errorf("a replica logged a Redis failure: %s", line)
			}
		}
	}

	for _, tc := range []struct{ name, url, password, reply string }{
		{"key pattern without the prefix", "unix://elsewhere@" + redis.Socket(), "other-pw", "NOPERM"},
		{"wrong password", url, "not-the-password", "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfg
			cfg.RedisURL, cfg.RedisPassword = tc.url, tc.password
			s, logs := startOnRedis(t, cfg)
			if err := s.status(""); err != nil {
				t.Fatalf("status call: %v (it must fall back)", err)
			}
			if _, err := otpWithID(s, "8f6c2d3e-0000-4000-8000-0000000000b1"); err == nil {
				t.Error("GenerateOTP with request_id succeeded without the shared state")
			}
			if n := fallbacks(t, s, `cause="misconfigured"`); n == 0 {
				t.Errorf("no fallback counted as misconfigured:\n%s", grepLines(logs.String(), "Redis"))
			}
			if n := fallbacks(t, s, `cause="unavailable"`); n != 0 {
				t.Errorf("%v fallbacks counted as unavailable: a configuration error is no outage", n)
			}
			if !strings.Contains(logs.String(), "a configuration error") || !strings.Contains(logs.String(), tc.reply) {
				t.Errorf("the log does not report a configuration error with %s:\n%s", tc.reply, grepLines(logs.String(), "Redis"))
			}
			resp, body := s.get(t, "/readyz", "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"state":"down"`) || !strings.Contains(body, tc.reply) || !strings.Contains(body, "configuration") {
				t.Errorf("/readyz = %d %s, want 200, the state down and why (%s, configuration)", resp.StatusCode, body, tc.reply)
			}
		})
	}
}
