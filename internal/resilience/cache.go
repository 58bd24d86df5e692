package resilience

import (
	"container/list"
	"sync"
	"time"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// statusCache holds successful status answers for a fixed TTL, bounded in
// entries. Entries live for the TTL (answers from a shared cache for what
// is left of theirs, never longer), so insertion order is close to expiry
// order: the list runs from the oldest to the newest, and eviction takes
// from its front; get never returns an expired entry wherever it sits.
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
	c.putFor(serviceID, st, c.ttl)
}

// putFor is put with a TTL of ttl, at most the cache's: an answer from the
// shared cache lives here no longer than it does there.
func (c *statusCache) putFor(serviceID string, st upstream.ServiceStatus, ttl time.Duration) {
	ttl = min(ttl, c.ttl)
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
	c.entries[serviceID] = c.order.PushBack(&cacheEntry{serviceID: serviceID, status: st, expires: now.Add(ttl)})
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
