package resilience

import (
	"context"
	"time"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// SharedStatusCache is a status cache shared by replicas (in Redis), so
// that N replicas make about one upstream lookup per service per TTL
// instead of N. redisstate.StatusCache implements it. Every error means
// "could not ask": the Client then carries on as if it had no shared cache.
type SharedStatusCache interface {
	// Get returns serviceID's cached status and how long it stays valid.
	Get(ctx context.Context, serviceID string) (st upstream.ServiceStatus, ttl time.Duration, ok bool, err error)
	// Put caches st for ttl.
	Put(ctx context.Context, serviceID string, st upstream.ServiceStatus, ttl time.Duration) error
	// Lead takes, for at most lease, the right to look serviceID up on
	// behalf of every replica; false when another replica holds it.
	Lead(ctx context.Context, serviceID string, lease time.Duration) (bool, error)
}

// Bounds of a follower's wait for the replica that leads a lookup.
const (
	// sharedLease is the longest a lookup lease is held: a leader that
	// died stops the others waiting after it.
	sharedLease = 2 * time.Second
	// sharedPoll is the pause between two looks at the shared cache by a
	// replica that waits for another's lookup.
	sharedPoll = 10 * time.Millisecond
	// sharedRetry is how long a Client goes without the shared cache
	// after it failed: a store that does not answer costs one lookup its
	// timeout, not every lookup.
	sharedRetry = time.Second
)

// sharedUp reports whether the shared cache may be asked: it has not
// failed in the last sharedRetry.
func (c *Client) sharedUp() bool {
	return c.shared != nil && time.Now().UnixNano() >= c.sharedDownUntil.Load()
}

// sharedGet looks serviceID up in the shared cache, keeping a hit in the
// local cache for as long as it stays valid there.
func (c *Client) sharedGet(ctx context.Context, serviceID string) (upstream.ServiceStatus, bool) {
	st, ttl, ok, err := c.shared.Get(ctx, serviceID)
	if err != nil {
		c.sharedFailed(err)
		return upstream.ServiceStatus{}, false
	}
	if ok && c.cache != nil && ttl > 0 {
		c.cache.putFor(serviceID, st, ttl)
	}
	return st, ok
}

// followShared returns another replica's answer for serviceID when one
// leads the lookup: it waits for the answer in the shared cache, at most
// the lease and never past ctx's deadline. ok is false when this replica
// must look up itself.
func (c *Client) followShared(ctx context.Context, serviceID string) (upstream.ServiceStatus, bool) {
	lease := min(sharedLease, c.cacheTTL)
	lead, err := c.shared.Lead(ctx, serviceID, lease)
	if err != nil {
		c.sharedFailed(err)
		return upstream.ServiceStatus{}, false
	}
	if lead {
		return upstream.ServiceStatus{}, false
	}
	wait := time.NewTimer(lease)
	defer wait.Stop()
	tick := time.NewTicker(sharedPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return upstream.ServiceStatus{}, false
		case <-wait.C:
			return upstream.ServiceStatus{}, false
		case <-tick.C:
			if st, ok := c.sharedGet(ctx, serviceID); ok {
				return st, true
			}
			if !c.sharedUp() {
				return upstream.ServiceStatus{}, false // it failed: look up here
			}
		}
	}
}

// sharedPut stores a fresh answer in the shared cache.
func (c *Client) sharedPut(ctx context.Context, serviceID string, st upstream.ServiceStatus) {
	if err := c.shared.Put(ctx, serviceID, st, c.cacheTTL); err != nil {
		c.sharedFailed(err)
	}
}

func (c *Client) sharedFailed(err error) {
	c.sharedDownUntil.Store(time.Now().Add(sharedRetry).UnixNano())
	if c.onSharedError != nil {
		c.onSharedError(err)
	}
}
