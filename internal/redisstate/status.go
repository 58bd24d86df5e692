package redisstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// maxStatusBytes bounds a cached status read back from Redis.
const maxStatusBytes = 4 << 10

// StatusCache is a service status cache in Redis, shared by replicas. It
// implements resilience.SharedStatusCache. Statuses are not secret and are
// stored as JSON; service IDs and scopes appear only hashed in keys.
type StatusCache struct {
	c     *Client
	scope string
}

// StatusCache returns the client's shared status cache of scope (an
// upstream identity: what one identity may see is never served to
// another).
func (c *Client) StatusCache(scope string) *StatusCache { return &StatusCache{c: c, scope: scope} }

type cachedStatus struct {
	ServiceID string `json:"service_id"`
	Active    bool   `json:"active"`
	Online    bool   `json:"online"`
}

func (s *StatusCache) key(kind, serviceID string) string {
	sum := sha256.Sum256([]byte(s.scope + "\x00" + serviceID))
	return s.c.Key("status", kind, hex.EncodeToString(sum[:16]))
}

// Get returns serviceID's cached status and its remaining TTL, in one
// round trip.
func (s *StatusCache) Get(ctx context.Context, serviceID string) (upstream.ServiceStatus, time.Duration, bool, error) {
	ctx, cancel, err := s.c.begin(ctx)
	if err != nil {
		return upstream.ServiceStatus{}, 0, false, err
	}
	defer cancel()
	key := s.key("v", serviceID)
	var get *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err = s.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return upstream.ServiceStatus{}, 0, false, nil
	}
	if err != nil {
		return upstream.ServiceStatus{}, 0, false, s.c.end(ctx, err)
	}
	b, _ := get.Bytes()
	var cs cachedStatus
	if len(b) > maxStatusBytes || json.Unmarshal(b, &cs) != nil {
		return upstream.ServiceStatus{}, 0, false, fmt.Errorf("redisstate: status cache: unreadable entry")
	}
	left := ttl.Val()
	if left <= 0 {
		return upstream.ServiceStatus{}, 0, false, nil
	}
	return upstream.ServiceStatus{ServiceID: cs.ServiceID, Active: cs.Active, Online: cs.Online}, left, true, nil
}

// Put caches st for ttl, and ends the lookup lease on serviceID.
func (s *StatusCache) Put(ctx context.Context, serviceID string, st upstream.ServiceStatus, ttl time.Duration) error {
	ctx, cancel, err := s.c.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	b, err := json.Marshal(cachedStatus{ServiceID: st.ServiceID, Active: st.Active, Online: st.Online})
	if err != nil {
		return fmt.Errorf("redisstate: status cache: %w", err)
	}
	_, err = s.c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key("v", serviceID), b, ttl)
		p.Del(ctx, s.key("lease", serviceID))
		return nil
	})
	return s.c.end(ctx, err)
}

// Lead takes the lookup lease on serviceID for lease (SET NX PX).
func (s *StatusCache) Lead(ctx context.Context, serviceID string, lease time.Duration) (bool, error) {
	ctx, cancel, err := s.c.begin(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	ok, err := s.c.rdb.SetNX(ctx, s.key("lease", serviceID), "1", lease).Result()
	if err != nil {
		return false, s.c.end(ctx, err)
	}
	return ok, nil
}
