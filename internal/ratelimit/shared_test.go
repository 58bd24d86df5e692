package ratelimit_test

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/radkit/radkit-access-facade/internal/ratelimit"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestSharedAcrossReplicas: two Limiters (two replicas) on one Redis give
// a caller one limit, not two; with Redis gone each falls back on its own
// buckets and says so.
func TestSharedAcrossReplicas(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := testkit.Context(t, 20*time.Second)
	var fallbacks atomic.Int64
	replica := func() *ratelimit.Limiter {
		// A generous call timeout: one that a loaded machine overran would
		// fall back on the replica's own buckets and let more calls through.
		c, err := redisstate.Open(redisstate.Config{URL: srv.URL(), CallTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return ratelimit.New(ratelimit.Config{
			Rate: rate.Limit(0.5), Burst: 4, Shared: c.Limiter("caller"),
			OnSharedError: func(error) { fallbacks.Add(1) },
		})
	}
	a, b := replica(), replica()
	allowed := 0
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if ok, retry := l.AllowContext(ctx, "alice"); ok {
			allowed++
		} else if retry <= 0 {
			t.Fatalf("refused with retryAfter %s", retry)
		}
	}
	// Burst 4 plus at most a token or two refilled on a slow machine; two
	// separate limits would have allowed 8.
	if allowed < 4 || allowed > 6 {
		t.Fatalf("allowed %d of 20 calls over two replicas sharing burst 4 at 0.5/s, want 4..6", allowed)
	}
	if ok, _ := a.AllowContext(ctx, "bob"); !ok {
		t.Fatal("another caller was refused: keys are not separate")
	}
	if n := fallbacks.Load(); n != 0 {
		t.Fatalf("%d fallbacks while Redis was up", n)
	}

	srv.Stop()
	local := 0
	for range 10 {
		if ok, _ := a.AllowContext(ctx, "carol"); ok {
			local++
		}
	}
	if local != 4 {
		t.Fatalf("with Redis down, allowed %d of 10, want the local burst of 4", local)
	}
	if n := fallbacks.Load(); n != 10 {
		t.Fatalf("OnSharedError told %d times, want 10", n)
	}

	// Back: after SharedRetry the shared limit decides again, so the
	// fallback count stops growing.
	srv.Start()
	time.Sleep(ratelimit.SharedRetry)
	before := fallbacks.Load()
	a.AllowContext(ctx, "dave")
	if n := fallbacks.Load(); n != before {
		t.Fatalf("%s after Redis came back, calls are still decided locally", ratelimit.SharedRetry)
	}
}
