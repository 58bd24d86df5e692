package idempotency

import (
	"context"
	"errors"
	"time"
)

// Doer remembers results by key as Store.Do describes. *Store keeps them
// in this process (the default); redisstate.Idempotency keeps them in
// Redis, so that every replica gives the same answer.
type Doer interface {
	// Do is Store.Do.
	Do(ctx context.Context, owner, key string, fingerprint Digest, fn func(context.Context) (string, error)) (value string, replayed bool, err error)
	// TTL is how long a result is remembered.
	TTL() time.Duration
}

// ErrUnavailable is matched (errors.Is) by the error of a Doer that could
// not reach the store it keeps results in. Nothing ran: the caller must
// refuse rather than run fn unguarded, which could do the work twice.
var ErrUnavailable = errors.New("idempotency: the store of remembered results is unavailable")
