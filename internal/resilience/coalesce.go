package resilience

import (
	"context"
	"fmt"
	"time"

	"github.com/radkit/radkit-access-facade/internal/flight"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// coalesce looks serviceID up, sharing the upstream lookup with every
// concurrent caller for the same ID (see flight.Group: the lookup keeps the
// values of the caller that started it but none of its cancellation, and
// ends when its last caller has gone). Each caller returns when the lookup
// does or when its own ctx ends, whichever is first.
func (c *Client) coalesce(ctx context.Context, serviceID string) (upstream.ServiceStatus, error) {
	st, err, _ := c.lookups.Do(ctx, serviceID, func(ctx context.Context) (upstream.ServiceStatus, error) {
		return c.lookup(ctx, serviceID)
	})
	if err != nil && err == ctx.Err() {
		// The caller gave up (flight.Group.Do returns ctx's own error):
		// the lookup's errors are always wrapped.
		return upstream.ServiceStatus{}, fmt.Errorf("resilience: status: %w", err)
	}
	return st, err
}

// lookup is the shared call: the retried upstream lookup, whose retries
// never sleep past the latest deadline of its callers. A success is cached
// before the call ends, so that callers arriving after it find it in the
// cache.
func (c *Client) lookup(ctx context.Context, serviceID string) (upstream.ServiceStatus, error) {
	if c.sharedUp() {
		// Another replica may be looking it up already.
		if st, ok := c.followShared(ctx, serviceID); ok {
			return st, nil
		}
	}
	deadline := func() (time.Time, bool) { return flight.LatestDeadline(ctx) }
	// Waiting for a slot of the facade's bound, the lookup answers its
	// callers (UPSTREAM_CONCURRENCY_LIMIT) before the first of them stops
	// waiting; once they have all left, flight cancels it unsent.
	callers := ctx
	ctx = upstream.WithWaitDeadline(ctx, func() (time.Time, bool) { return flight.EarliestDeadline(callers) })
	st, err := retry(ctx, c, upstream.OpStatus, deadline, retryIdempotent, func(ctx context.Context) (upstream.ServiceStatus, error) {
		return c.up.ServiceStatus(ctx, serviceID)
	})
	if err == nil && c.cache != nil {
		c.cache.put(serviceID, st)
	}
	if err == nil && c.sharedUp() {
		c.sharedPut(ctx, serviceID, st)
	}
	return st, err
}
