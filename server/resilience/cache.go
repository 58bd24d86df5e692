package resilience

import (
	"container/list"
	"sync"
	"time"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// statusCache holds successful status answers for a fixed TTL, bounded in
// entries. Every entry lives for the same TTL, so insertion order is expiry
// order: the list runs from the oldest (first to expire) to the newest, and
// eviction takes from its front.
type statusCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	order   *list.List               // of *cacheEntry, oldest first
	entries map[string]*list.Element // by service ID
}

type cacheEntry struct {
	serviceID string
	status    upstream.ServiceStatus
	expires   time.Time
}

func newStatusCache(ttl time.Duration, size int) *statusCache {
	return &statusCache{ttl: ttl, size: size, now: time.Now, order: list.New(), entries: make(map[string]*list.Element)}
}

// get returns the unexpired answer for serviceID, if any.
func (c *statusCache) get(serviceID string) (upstream.ServiceStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[serviceID]
	if !ok {
		return upstream.ServiceStatus{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return upstream.ServiceStatus{}, false
	}
	return e.status, true
}

// put stores st for serviceID for the TTL, making room if the cache is
// full: expired entries go first, then the oldest.
func (c *statusCache) put(serviceID string, st upstream.ServiceStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if el, ok := c.entries[serviceID]; ok {
		c.removeLocked(el)
	}
	for front := c.order.Front(); front != nil && !now.Before(front.Value.(*cacheEntry).expires); front = c.order.Front() {
		c.removeLocked(front)
	}
	for c.order.Len() >= c.size {
		c.removeLocked(c.order.Front())
	}
	c.entries[serviceID] = c.order.PushBack(&cacheEntry{serviceID: serviceID, status: st, expires: now.Add(c.ttl)})
}

func (c *statusCache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).serviceID)
	c.order.Remove(el)
}

// len is the number of entries held, expired ones included.
func (c *statusCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
