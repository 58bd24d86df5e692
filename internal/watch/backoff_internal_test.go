package watch

import (
	"context"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

func TestBackoffGrowsWithJitterAndIsCapped(t *testing.T) {
	h := New(Config{
		Interval: 2 * time.Second,
		Lookup: func(context.Context, string) (upstream.ServiceStatus, error) {
			return upstream.ServiceStatus{}, nil
		},
	})
	limit := 2 * time.Second * maxBackoffMultiplier
	for _, tc := range []struct {
		failures int
		lo, hi   time.Duration
	}{
		{1, 2 * time.Second, 4 * time.Second},
		{2, 4 * time.Second, 8 * time.Second},
		{3, 8 * time.Second, 16 * time.Second},
		{10, limit / 2, limit},
		{100, limit / 2, limit},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := h.backoff(tc.failures)
			if d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.failures, d, tc.lo, tc.hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d): %d distinct waits in 200, want jitter", tc.failures, len(seen))
		}
	}
}
