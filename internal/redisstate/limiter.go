package redisstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// scriptGCRA is the generic cell rate algorithm (as in
// github.com/go-redis/redis_rate, whose Limiter always puts its own
// "rate:" before the key, outside the client's prefix and so outside an
// ACL user's key pattern; it has no option to change that). The key holds
// the theoretical arrival time (TAT) in microseconds of Redis's clock, so
// that replicas with skewed clocks share one limit.
//
// KEYS[1] the limit's key; ARGV[1] the emission interval (µs per call);
// ARGV[2] the burst. It returns {1, 0} when the call may go, else {0, µs
// until one may}.
var scriptGCRA = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * tonumber(ARGV[2])
if now < allow_at then return {0, allow_at - now} end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0}
`)

// Limiter is a GCRA rate limit kept in Redis, one for every replica that
// uses the same Redis and prefix. It implements ratelimit.Shared. Its keys
// start with the client's prefix, like every other key.
type Limiter struct {
	c    *Client
	name string
}

// Limiter returns the limiter called name (its keys' namespace: "caller",
// "upstream").
func (c *Client) Limiter(name string) *Limiter {
	return &Limiter{c: c, name: name}
}

// Allow takes one call from key's allowance of limit calls per second with
// bursts of burst, within the client's call timeout and ctx's Redis budget
// (see WithCallBudget). Keys are hashed: a caller's name never appears in
// Redis.
func (l *Limiter) Allow(ctx context.Context, key string, limit rate.Limit, burst int) (bool, time.Duration, error) {
	ctx, cancel, err := l.c.begin(ctx)
	if err != nil {
		return false, 0, err
	}
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	rk := l.c.Key("rl", l.name, hex.EncodeToString(sum[:16]))
	res, err := scriptGCRA.Run(ctx, l.c.rdb, []string{rk}, emissionMicros(limit), max(burst, 1)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("redisstate: limiter: %d values from the script, want 2", len(res))
	}
	if err != nil {
		return false, 0, l.c.end(ctx, err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(max(res[1], 0)) * time.Microsecond, nil
}

// maxEmissionMicros bounds the interval between two calls (about 12
// days), so that the script's sums stay exact in Lua's doubles.
const maxEmissionMicros = 1 << 40

// emissionMicros is the interval between two calls at limit calls per
// second, in whole microseconds (at least one).
func emissionMicros(limit rate.Limit) int64 {
	us := math.Ceil(1e6 / float64(limit))
	switch {
	case !(us >= 1): // also NaN
		return 1
	case us > maxEmissionMicros:
		return maxEmissionMicros
	}
	return int64(us)
}
