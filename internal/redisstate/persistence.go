package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Persistence is what Redis says of how it keeps acknowledged writes.
type Persistence struct {
	// AppendOnly and AppendFsync are the values of Redis's appendonly and
	// appendfsync settings.
	AppendOnly, AppendFsync string
}

// Durable reports whether every acknowledged write survives a crash of
// Redis: the append-only file, synced before each acknowledgement.
func (p Persistence) Durable() bool {
	return strings.EqualFold(p.AppendOnly, "yes") && strings.EqualFold(p.AppendFsync, "always")
}

// Persistence asks Redis (CONFIG GET) how it keeps acknowledged writes. A
// Redis that cannot be reached gives an error matching ErrUnavailable; one
// that refuses CONFIG (an ACL without it, or a managed Redis that renames
// it) another error.
func (c *Client) Persistence(ctx context.Context) (Persistence, error) {
	ctx, cancel := c.Context(ctx)
	defer cancel()
	var p Persistence
	for _, s := range []struct {
		name string
		to   *string
	}{{"appendonly", &p.AppendOnly}, {"appendfsync", &p.AppendFsync}} {
		m, err := c.rdb.ConfigGet(ctx, s.name).Result()
		if err != nil {
			var answer redis.Error // an error answer of the server, such as NOPERM
			if errors.As(err, &answer) {
				return p, fmt.Errorf("redisstate: CONFIG GET %s: %w", s.name, err)
			}
			return p, Unavailable(err)
		}
		*s.to = m[s.name]
	}
	return p, nil
}
