package redisstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"golang.org/x/time/rate"
)

// Limiter is a GCRA rate limit kept in Redis (github.com/go-redis/redis_rate),
// one for every replica that uses the same Redis and prefix. It implements
// ratelimit.Shared. Its keys are redis_rate's "rate:" followed by the
// client's prefix.
type Limiter struct {
	c    *Client
	name string
	rl   *redis_rate.Limiter
}

// Limiter returns the limiter called name (its keys' namespace: "caller",
// "upstream").
func (c *Client) Limiter(name string) *Limiter {
	return &Limiter{c: c, name: name, rl: redis_rate.NewLimiter(c.rdb)}
}

// Allow takes one call from key's allowance of limit calls per second with
// bursts of burst, within the client's call timeout. Keys are hashed: a
// caller's name never appears in Redis.
func (l *Limiter) Allow(ctx context.Context, key string, limit rate.Limit, burst int) (bool, time.Duration, error) {
	ctx, cancel := l.c.Context(ctx)
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	res, err := l.rl.Allow(ctx, l.c.Key("rl", l.name, hex.EncodeToString(sum[:16])), gcraLimit(limit, burst))
	if err != nil {
		return false, 0, Unavailable(err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, 0), nil
}

// gcraLimit writes a rate of limit calls per second as redis_rate's
// integer Rate per Period: one call per emission interval.
func gcraLimit(limit rate.Limit, burst int) redis_rate.Limit {
	if l := float64(limit); l >= 1 && l == math.Trunc(l) && l < math.MaxInt32 {
		return redis_rate.Limit{Rate: int(l), Burst: max(burst, 1), Period: time.Second}
	}
	return redis_rate.Limit{Rate: 1, Burst: max(burst, 1), Period: time.Duration(float64(time.Second) / float64(limit))}
}
