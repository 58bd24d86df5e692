package resilience

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// flight is one shared status lookup and the callers waiting for it.
//
// The lookup must outlive any one caller, so its context carries the
// values of the caller that started it (trace spans, say) but none of its
// cancellation. It ends when the last waiter has gone, and its retries
// never sleep past the latest deadline of any waiter. The fields below ctx
// are guarded by Client.mu.
type flight struct {
	ctx    context.Context
	cancel context.CancelFunc

	waiters   int
	latest    time.Time // the latest waiter deadline
	unbounded bool      // some waiter has no deadline
}

// coalesce looks serviceID up, sharing the upstream lookup with every
// concurrent caller for the same ID. Each caller returns when the lookup
// does or when its own ctx ends, whichever is first.
func (c *Client) coalesce(ctx context.Context, serviceID string) (upstream.ServiceStatus, error) {
	if err := ctx.Err(); err != nil {
		return upstream.ServiceStatus{}, fmt.Errorf("resilience: status: %w", err)
	}
	f, results := c.join(ctx, serviceID)
	defer c.leave(serviceID, f)
	select {
	case r := <-results:
		if r.Err != nil {
			return upstream.ServiceStatus{}, r.Err
		}
		return r.Val.(upstream.ServiceStatus), nil
	case <-ctx.Done():
		return upstream.ServiceStatus{}, fmt.Errorf("resilience: status: %w", ctx.Err())
	}
}

// join adds the caller to the flight for serviceID, starting one if there
// is none. The map and the singleflight.Group change together under c.mu,
// so that a flight in the map is always the group's call in progress.
func (c *Client) join(ctx context.Context, serviceID string) (*flight, <-chan singleflight.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flights[serviceID]
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{ctx: fctx, cancel: cancel}
		c.flights[serviceID] = f
	}
	f.waiters++
	if d, ok := ctx.Deadline(); !ok {
		f.unbounded = true
	} else if d.After(f.latest) {
		f.latest = d
	}
	results := c.group.DoChan(serviceID, func() (any, error) { return c.lookup(f, serviceID) })
	return f, results
}

// leave removes the caller from f. The last one to leave cancels the
// lookup, if it still runs, since nobody waits for its answer, and makes
// the next caller start afresh rather than join a cancelled flight.
func (c *Client) leave(serviceID string, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	f.cancel()
	c.endLocked(serviceID, f)
}

// endLocked forgets f, if it is still serviceID's flight, so that later
// callers start a new lookup.
func (c *Client) endLocked(serviceID string, f *flight) {
	if c.flights[serviceID] == f {
		delete(c.flights, serviceID)
		c.group.Forget(serviceID)
	}
}

// lookup is the shared call: the retried upstream lookup. A success is
// cached before the flight ends, so that callers arriving after it find it
// in the cache.
func (c *Client) lookup(f *flight, serviceID string) (upstream.ServiceStatus, error) {
	st, err := retry(f.ctx, c, upstream.OpStatus, c.flightDeadline(f), retryIdempotent, func(ctx context.Context) (upstream.ServiceStatus, error) {
		return c.up.ServiceStatus(ctx, serviceID)
	})
	if err == nil && c.cache != nil {
		c.cache.put(serviceID, st)
	}
	c.mu.Lock()
	c.endLocked(serviceID, f)
	c.mu.Unlock()
	return st, err
}

// flightDeadline returns the deadline function of f's retries: the latest
// deadline of its waiters, none if one of them has none.
func (c *Client) flightDeadline(f *flight) func() (time.Time, bool) {
	return func() (time.Time, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if f.unbounded || f.latest.IsZero() {
			return time.Time{}, false
		}
		return f.latest, true
	}
}
