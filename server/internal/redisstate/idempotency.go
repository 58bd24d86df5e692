package redisstate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/radkit/radkit-access-facade/server/idempotency"
)

// Bounds of the Redis idempotency store.
const (
	// DefaultLease is how long a replica's claim on a key lasts without
	// renewal: a replica that dies while it runs the call blocks the key
	// for at most this long. The running replica renews it every third.
	DefaultLease = 5 * time.Second
	// pollMin and pollMax bound the pause between two looks of a waiting
	// replica at a key another replica is running.
	pollMin = 5 * time.Millisecond
	pollMax = 50 * time.Millisecond
	// maxEntryBytes bounds an entry read back from Redis.
	maxEntryBytes = 4 << 10
)

// Entry kinds: the first byte of every value.
const (
	kindLease = 'L' // a replica runs the call: kind, fingerprint, token
	kindDone  = 'D' // the result: kind, fingerprint, sealed value
)

// Compare-and-set scripts: a replica changes a key only while it still
// holds the lease it took (its value), never a lease that expired and was
// taken by another replica.
var (
	scriptFinish  = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false`)
	scriptRelease = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
	scriptRenew   = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
)

// Idempotency remembers results in Redis, so that a request_id gives the
// same answer on every replica, and concurrent duplicates on different
// replicas share one call. It implements idempotency.Doer.
//
// A key holds either a lease (a replica is running the call; SET NX PX,
// renewed while it runs) or the result, sealed with the client's Keyring
// and bound to its key, for the TTL. Both carry the request's fingerprint
// (a digest): the request's fields never reach Redis. Keys are digests of
// the caller and request_id. Redis unreachable fails Do with an error
// matching idempotency.ErrUnavailable before anything runs.
type Idempotency struct {
	c     *Client
	ttl   time.Duration
	lease time.Duration
	// OnUnavailable, if set, is told each time Do refused because Redis
	// failed. Set it before the first Do; it must be quick.
	OnUnavailable func(error)
}

// Idempotency returns the client's idempotency store, remembering results
// for ttl (zero means idempotency.DefaultTTL). The client must have a
// Keyring.
func (c *Client) Idempotency(ttl time.Duration) (*Idempotency, error) {
	if c.keys == nil {
		return nil, errors.New("redisstate: idempotency needs a keyring")
	}
	if ttl <= 0 {
		ttl = idempotency.DefaultTTL
	}
	return &Idempotency{c: c, ttl: ttl, lease: DefaultLease}, nil
}

// TTL is how long a result is remembered.
func (d *Idempotency) TTL() time.Duration { return d.ttl }

// unavailable wraps a Redis failure for the server to classify, and tells
// OnUnavailable.
func (d *Idempotency) unavailable(err error) error {
	if d.OnUnavailable != nil {
		d.OnUnavailable(err)
	}
	return fmt.Errorf("%w: %w", idempotency.ErrUnavailable, err)
}

// Do implements idempotency.Doer (see idempotency.Store.Do); the per-owner
// quota is not kept here: rate limits and Redis's memory bound it.
func (d *Idempotency) Do(ctx context.Context, owner, key string, fingerprint idempotency.Digest, fn func(context.Context) (string, error)) (string, bool, error) {
	k := idempotency.Fingerprint(owner, key)
	rk := d.c.Key("idem", hex.EncodeToString(k[:]))
	poll := pollMin
	for {
		if err := ctx.Err(); err != nil {
			return "", false, fmt.Errorf("idempotency: waiting for the shared call: %w", err)
		}
		lease := make([]byte, 0, 1+len(fingerprint)+16)
		lease = append(append(lease, kindLease), fingerprint[:]...)
		lease = append(lease, randomToken()...)
		rctx, cancel := d.c.Context(ctx)
		took, err := d.c.rdb.SetNX(rctx, rk, lease, d.lease).Result()
		cancel()
		if err != nil {
			return "", false, d.unavailable(err)
		}
		if took {
			v, err := d.lead(ctx, rk, lease, fingerprint, fn)
			return v, false, err
		}
		rctx, cancel = d.c.Context(ctx)
		v, err := d.c.rdb.Get(rctx, rk).Bytes()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			continue // gone since SET NX (failed, or a lease expired): take it
		case err != nil:
			return "", false, d.unavailable(err)
		case len(v) < 1+len(fingerprint) || len(v) > maxEntryBytes:
			return "", false, d.unavailable(errors.New("unreadable entry"))
		case !bytes.Equal(v[1:1+len(fingerprint)], fingerprint[:]):
			return "", false, idempotency.ErrRequestIDReused
		case v[0] == kindDone:
			plain, err := d.c.keys.Open(v[1+len(fingerprint):], []byte(rk))
			if err != nil {
				return "", false, d.unavailable(err)
			}
			return string(plain), true, nil
		}
		// Another replica runs the call: look again soon.
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		poll = min(2*poll, pollMax)
	}
}

// lead runs fn under the lease just taken, renewing it meanwhile, and
// stores a success sealed for the TTL or drops the lease after a failure.
// fn runs to its end even when ctx ends first (waiters on other replicas
// may want its result), keeping ctx's values but not its cancellation.
func (d *Idempotency) lead(ctx context.Context, rk string, lease []byte, fingerprint idempotency.Digest, fn func(context.Context) (string, error)) (string, error) {
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		bg := context.WithoutCancel(ctx)
		stop := d.renew(bg, rk, lease)
		v, err := fn(bg)
		stop()
		wctx, cancel := d.c.Context(bg)
		defer cancel()
		if err != nil {
			_ = scriptRelease.Run(wctx, d.c.rdb, []string{rk}, lease).Err()
			done <- result{err: err}
			return
		}
		entry := append([]byte{kindDone}, fingerprint[:]...)
		entry = append(entry, d.c.keys.Seal([]byte(v), []byte(rk))...)
		// A failed write loses only the memory of v: this caller still
		// gets it, and the lease expires.
		_ = scriptFinish.Run(wctx, d.c.rdb, []string{rk}, lease, entry, d.ttl.Milliseconds()).Err()
		done <- result{v: v}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("idempotency: waiting for the shared call: %w", ctx.Err())
	}
}

// renew keeps the lease alive while the call runs; stop ends it.
func (d *Idempotency) renew(ctx context.Context, rk string, lease []byte) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				rctx, cancel := d.c.Context(ctx)
				_ = scriptRenew.Run(rctx, d.c.rdb, []string{rk}, lease, d.lease.Milliseconds()).Err()
				cancel()
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func randomToken() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}
