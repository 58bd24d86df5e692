package redisstate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/panics"
)

// Bounds of the Redis idempotency store. docs/adr/0007-one-otp-through-redis-faults.md
// explains them.
const (
	// DefaultLease is how long a replica's claim on a key lasts without
	// renewal once it runs the call: a replica that dies while it runs the
	// call blocks the key for at most this long. The running replica
	// renews it every third.
	DefaultLease = 5 * time.Second
	// claimLease is how long a fresh claim lasts until its first renewal:
	// the RetryInfo a refused caller is given, so that a claim that Redis
	// ran after its caller had given up (an orphan) never holds that
	// caller's retry longer than it was told to wait.
	claimLease = idempotency.RetryAfterUnavailable
	// pollMin and pollMax bound the pause between two looks of a waiting
	// replica at a key another replica is running.
	pollMin = 5 * time.Millisecond
	pollMax = 50 * time.Millisecond
	// finishRetryMin and finishRetryMax bound the pause between two tries
	// of a result's write.
	finishRetryMin = 20 * time.Millisecond
	finishRetryMax = time.Second
	// maxEntryBytes bounds an entry read back from Redis.
	maxEntryBytes = 4 << 10
)

// Entry kinds: the first byte of every value.
const (
	kindLease = 'L' // a replica runs the call: kind, fingerprint, token
	kindDone  = 'D' // the result: kind, fingerprint, sealed value
)

// redisNow is Lua that sets now to Redis's clock in milliseconds: scores
// of the per-owner sets are Redis's time, never a replica's.
const redisNow = `if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// The scripts. Each runs atomically, so that a replica changes a key only
// while it holds the lease it took (its random token is the fencing token,
// checked by Redis itself), and only in the generation of the data it took
// it in (the marker key): a result once stored is never overwritten, and a
// result is never stored into data that lost what came before it.
//
// claim: KEYS key, owner set, marker, lost; ARGV lease, claim PX, known
// generation, new generation, window PX, member, per-owner limit. A
// generation is random hex and the Redis time it was written at, so that a
// replica that had not looked since a loss opens the window only for what
// is left of it since the marker was written again. Returns
// {status, generation[, detail]}: T took the lease; V the key's value
// (detail); L unknown keys are refused after a loss (detail: ms left); F
// the owner is at its limit (detail: ms until its oldest key expires).
var scriptClaim = redis.NewScript(redisNow + `
local gen = redis.call('GET', KEYS[3])
if not gen then
  gen = ARGV[4] .. ':' .. now
  redis.call('SET', KEYS[3], gen)
  if ARGV[3] ~= '' then redis.call('SET', KEYS[4], gen, 'PX', ARGV[5]) end
elseif ARGV[3] ~= '' and gen ~= ARGV[3] then
  local left = tonumber(string.match(gen, ':(%d+)$') or '0') + tonumber(ARGV[5]) - now
  if left > 0 then redis.call('SET', KEYS[4], gen, 'NX', 'PX', left) end
end
local v = redis.call('GET', KEYS[1])
if v then return {'V', gen, v} end
if redis.call('GET', KEYS[4]) == gen then
  return {'L', gen, tostring(redis.call('PTTL', KEYS[4]))}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'F', gen, tostring(tonumber(first[2]) - now)}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'T', gen}
`)

// renew: KEYS key, owner set, marker; ARGV lease, lease PX, generation,
// member. Extends the lease, or takes it again when it expired untaken (a
// stall longer than the lease). Returns 1, 0 when another replica holds
// the key, -1 when the data was lost since.
var scriptRenew = redis.NewScript(redisNow + `
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return -1 end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
return 1
`)

// finish: KEYS key, owner set, marker; ARGV lease, entry, TTL PX,
// generation, member. Stores the result while the key holds this lease or
// nothing. Returns 1, 0 when another replica's lease or result is there
// (never overwritten), -1 when the data was lost since the lease was taken.
var scriptFinish = redis.NewScript(redisNow + `
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return -1 end
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// learn: KEYS marker; ARGV new generation. Returns the marker's
// generation, writing it first into a Redis that has none.
var scriptLearn = redis.NewScript(redisNow + `
local g = redis.call('GET', KEYS[1])
if not g then g = ARGV[1] .. ':' .. now; redis.call('SET', KEYS[1], g) end
return g
`)

// release: KEYS key, owner set; ARGV lease, member. Drops the lease after
// a failed call, and its place in the owner's quota.
var scriptRelease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
`)

// Idempotency remembers results in Redis, so that a request_id gives the
// same answer on every replica, and concurrent duplicates on different
// replicas share one call. It implements idempotency.Doer, with the promise
// that one key never gives two callers two different values, through Redis
// stalls, restarts and replica deaths; and where Redis lost data it had
// acknowledged, a refusal (idempotency.ErrStateLost) rather than a second
// value. docs/adr/0007-one-otp-through-redis-faults.md has the design.
//
// A key holds either a lease (a replica is running the call, renewed while
// it runs) or the result, sealed with the client's Keyring and bound to its
// key, for the TTL. Both carry the request's fingerprint (a digest): the
// request's fields never reach Redis. Keys are digests of the caller and
// request_id. A value reaches its caller only once Redis acknowledged it
// as the key's result.
type Idempotency struct {
	c     *Client
	ttl   time.Duration
	lease time.Duration

	// MaxKeysPerOwner bounds the keys one owner holds at once, in flight
	// or remembered, over every replica. Zero means
	// idempotency.DefaultMaxEntriesPerOwner. Set it before the first Do.
	MaxKeysPerOwner int
	// OnUnavailable, if set, is told each time Do refused because Redis
	// failed. Set it before the first Do; it must be quick.
	OnUnavailable func(error)
	// OnRefused, if set, is told each time Do refused for a reason other
	// than an outage: err matches idempotency.ErrStateLost or
	// idempotency.ErrStateKeyUnknown. Set it before the first Do; it must
	// be quick.
	OnRefused func(error)
	// OnFinishRetry, if set, is told each time the write of a result
	// failed and will be tried again. It must be quick.
	OnFinishRetry func(error)

	// gen is the generation of the data this replica last saw (the
	// marker's value), "" before the first look.
	gen atomic.Pointer[string]
	// finishing counts the results being written after their caller was
	// answered, so that Close can wait for them.
	finishing sync.WaitGroup
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

// MarkerKey is the key of the marker: a random generation written once
// into an empty Redis and checked by every claim, so that a Redis that lost
// its data (restarted without persistence, flushed, failed over to a stale
// replica) is noticed.
func (d *Idempotency) MarkerKey() string { return d.c.Key("epoch") }

// LostKey is the key whose presence, holding the marker's generation,
// makes claims refuse unknown keys after a loss; it expires after the
// remembering window. An operator ends the refusal early with
// SET <LostKey> ended KEEPTTL.
func (d *Idempotency) LostKey() string { return d.c.Key("state-lost") }

// Learn reads the generation of the data (the marker), writing one into a
// Redis that has none (a new deployment), so that a loss of data after it
// is noticed by this replica's first claim, even when this replica has not
// claimed anything before. Call it at start, again until it succeeds; it
// does nothing once the replica knows a generation. A replica that starts
// just after a loss nobody noticed yet takes the new data for a new
// deployment (docs/adr/0007-one-otp-through-redis-faults.md).
func (d *Idempotency) Learn(ctx context.Context) error {
	if d.gen.Load() != nil {
		return nil
	}
	rctx, cancel := d.c.Context(ctx)
	defer cancel()
	gen, err := scriptLearn.Run(rctx, d.c.rdb, []string{d.MarkerKey()}, hex.EncodeToString(randomToken())).Text()
	if err != nil {
		return Unavailable(err)
	}
	d.gen.CompareAndSwap(nil, &gen)
	return nil
}

// unavailable wraps a Redis failure for the server to classify, and tells
// OnUnavailable.
func (d *Idempotency) unavailable(err error) error {
	if d.OnUnavailable != nil {
		d.OnUnavailable(err)
	}
	return fmt.Errorf("%w: %w", idempotency.ErrUnavailable, err)
}

// refused tells OnRefused of err and returns it.
func (d *Idempotency) refused(err error) error {
	if d.OnRefused != nil {
		d.OnRefused(err)
	}
	return err
}

// call is the keys of one Do.
type call struct {
	key, owner, member string
}

func (d *Idempotency) keys(c call) []string {
	return []string{c.key, c.owner, d.MarkerKey(), d.LostKey()}
}

// Do implements idempotency.Doer (see idempotency.Store.Do). On top of the
// Store's errors it may fail with idempotency.ErrUnavailable (Redis failed,
// or the result could not be stored before ctx ended: nothing was given
// out), idempotency.ErrStateLost (a *LostError) and
// idempotency.ErrStateKeyUnknown.
func (d *Idempotency) Do(ctx context.Context, owner, key string, fingerprint idempotency.Digest, fn func(context.Context) (string, error)) (string, bool, error) {
	k := idempotency.Fingerprint(owner, key)
	o := idempotency.Fingerprint(owner)
	c := call{
		key:    d.c.Key("idem", hex.EncodeToString(k[:])),
		owner:  d.c.Key("owner", hex.EncodeToString(o[:])),
		member: hex.EncodeToString(k[:]),
	}
	perOwner := d.MaxKeysPerOwner
	if perOwner <= 0 {
		perOwner = idempotency.DefaultMaxEntriesPerOwner
	}
	poll := pollMin
	for {
		if err := ctx.Err(); err != nil {
			return "", false, fmt.Errorf("idempotency: waiting for the shared call: %w", err)
		}
		lease := make([]byte, 0, 1+len(fingerprint)+16)
		lease = append(append(lease, kindLease), fingerprint[:]...)
		lease = append(lease, randomToken()...)
		known := ""
		if g := d.gen.Load(); g != nil {
			known = *g
		}
		rctx, cancel := d.c.Context(ctx)
		res, err := scriptClaim.Run(rctx, d.c.rdb, d.keys(c), lease, claimLease.Milliseconds(), known,
			hex.EncodeToString(randomToken()), d.ttl.Milliseconds(), c.member, perOwner).Slice()
		cancel()
		if err != nil {
			return "", false, d.unavailable(err)
		}
		st, gen, detail, err := claimResult(res)
		if err != nil {
			return "", false, d.unavailable(err)
		}
		d.gen.Store(&gen)
		switch st {
		case "T":
			v, again, err := d.lead(ctx, c, gen, lease, fn)
			if !again {
				return v, false, err
			}
			poll = pollMin
			continue
		case "L":
			ms, _ := strconv.ParseInt(detail, 10, 64)
			return "", false, d.refused(&idempotency.LostError{RetryAfter: max(time.Duration(ms)*time.Millisecond, 0)})
		case "F":
			ms, _ := strconv.ParseInt(detail, 10, 64)
			return "", false, &idempotency.FullError{PerOwner: true, RetryAfter: max(time.Duration(ms)*time.Millisecond, 0)}
		}
		v := []byte(detail)
		switch {
		case len(v) < 1+len(fingerprint) || len(v) > maxEntryBytes:
			return "", false, d.unavailable(errors.New("unreadable entry"))
		case !bytes.Equal(v[1:1+len(fingerprint)], fingerprint[:]):
			return "", false, idempotency.ErrRequestIDReused
		case v[0] == kindDone:
			plain, err := d.c.keys.Open(v[1+len(fingerprint):], []byte(c.key))
			var unknown *UnknownKeyError
			if errors.As(err, &unknown) {
				return "", false, d.refused(&idempotency.StateKeyError{KeyID: unknown.ID, Err: err})
			}
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

// claimResult decodes the claim script's answer.
func claimResult(res []any) (st, gen, detail string, err error) {
	if len(res) < 2 {
		return "", "", "", fmt.Errorf("claim script: %d values", len(res))
	}
	st, ok1 := res[0].(string)
	gen, ok2 := res[1].(string)
	if len(res) > 2 {
		detail, _ = res[2].(string)
	}
	if !ok1 || !ok2 {
		return "", "", "", errors.New("claim script: unexpected answer")
	}
	return st, gen, detail, nil
}

// Lease states, as renew and finish find them.
const (
	leaseHeld  = 0
	leaseTaken = 1 // another replica holds the key: never give out this value
	leaseLost  = 2 // the data was lost since the lease was taken
)

// outcome is the end of one leader's run.
type outcome struct {
	v     string
	err   error
	again bool // the key is another replica's now: look again
}

// lead runs fn under the lease just taken in generation gen, renewing it
// meanwhile, and stores a success sealed for the TTL or drops the lease
// after a failure. The value goes to the caller only once Redis has
// acknowledged it as the key's result. fn runs to its end even when ctx
// ends first (waiters on other replicas may want its result), keeping ctx's
// values but not its cancellation; so does the write of its result, which
// is tried again until it lands, the key is found another's, or the TTL
// since the claim has passed. again reports that the key turned out to be
// another replica's: the caller must look again.
func (d *Idempotency) lead(ctx context.Context, c call, gen string, lease []byte, fn func(context.Context) (string, error)) (v string, again bool, err error) {
	until := time.Now().Add(d.ttl)
	done := make(chan outcome, 1)
	ran := make(chan struct{}) // closed once fn returned
	d.finishing.Add(1)
	go func() {
		defer d.finishing.Done()
		bg := context.WithoutCancel(ctx)
		fctx, cancelFn := context.WithCancel(bg)
		defer cancelFn()
		var state atomic.Int32
		stop := d.renew(fctx, c, gen, lease, func(s int32) {
			// The key is not this call's any more: stop minting if the
			// upstream call has not gone out yet.
			state.Store(s)
			cancelFn()
		})
		v, err := protect(fctx, fn)
		stop()
		close(ran)
		switch state.Load() {
		case leaseTaken:
			done <- outcome{again: true}
			return
		case leaseLost:
			done <- outcome{err: d.refused(&idempotency.LostError{RetryAfter: d.ttl})}
			return
		}
		if err != nil {
			wctx, cancel := d.c.Context(bg)
			_ = scriptRelease.Run(wctx, d.c.rdb, []string{c.key, c.owner}, lease, c.member).Err() // else it expires
			cancel()
			done <- outcome{err: err}
			return
		}
		entry := append([]byte{kindDone}, lease[1:1+len(idempotency.Digest{})]...)
		entry = append(entry, d.c.keys.Seal([]byte(v), []byte(c.key))...)
		done <- d.finish(bg, c, gen, lease, entry, v, until)
	}()
	// A caller whose deadline is near while the value waits for Redis is
	// answered a little before it, so that the refusal reaches it.
	var answerBy <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) - d.c.timeout)
		defer t.Stop()
		answerBy = t.C
	}
	for waiting := true; waiting; {
		select {
		case r := <-done:
			return r.v, r.again, r.err
		case <-answerBy:
			select {
			case <-ran:
				waiting = false
			default:
				answerBy = nil // fn still runs: wait for it, or for ctx
			}
		case <-ctx.Done():
			waiting = false
		}
	}
	select {
	case r := <-done:
		return r.v, r.again, r.err
	case <-ran:
		// The value exists but Redis has not acknowledged it: giving it
		// out now could make it one of two. The write goes on; a retry
		// gets the value once it landed.
		return "", false, d.unavailable(errors.New("the result was not stored before the deadline"))
	default:
		return "", false, fmt.Errorf("idempotency: waiting for the shared call: %w", ctx.Err())
	}
}

// finish writes the result entry under the lease, trying again after a
// Redis failure until it lands, the key is found another's, the data is
// found lost, the client is closed, or until passes.
func (d *Idempotency) finish(ctx context.Context, c call, gen string, lease, entry []byte, v string, until time.Time) outcome {
	pause := finishRetryMin
	for {
		rctx, cancel := d.c.Context(ctx)
		n, err := scriptFinish.Run(rctx, d.c.rdb, []string{c.key, c.owner, d.MarkerKey()}, lease, entry, d.ttl.Milliseconds(), gen, c.member).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			return outcome{v: v}
		case err == nil && n == 0:
			return outcome{again: true}
		case err == nil:
			return outcome{err: d.refused(&idempotency.LostError{RetryAfter: d.ttl})}
		case errors.Is(err, redis.ErrClosed):
			return outcome{err: d.unavailable(err)}
		}
		if time.Now().Add(pause).After(until) {
			return outcome{err: d.unavailable(fmt.Errorf("the result could not be stored within %s: %w", d.ttl, err))}
		}
		if d.OnFinishRetry != nil {
			d.OnFinishRetry(err)
		}
		time.Sleep(pause)
		pause = min(2*pause, finishRetryMax)
	}
}

// protect returns fn's result, or a *panics.Error when fn panics: lead
// runs fn on a goroutine of its own, where a panic would end the process.
// The lease is then dropped like after any failure.
func protect(ctx context.Context, fn func(context.Context) (string, error)) (v string, err error) {
	defer func() {
		if p := recover(); p != nil {
			stack := panics.Stack()
			panics.FromContext(ctx).Report(ctx, panics.CoalescedCall, p, stack)
			v, err = "", &panics.Error{Where: panics.CoalescedCall, Value: p, Stack: stack}
		}
	}()
	return fn(ctx)
}

// renew keeps the lease alive while the call runs, the first time at once
// (a claim lasts only claimLease); stop ends it. lost is called, once, when
// a renewal finds the key another replica's or the data lost.
func (d *Idempotency) renew(ctx context.Context, c call, gen string, lease []byte, lost func(int32)) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			rctx, cancel := d.c.Context(ctx)
			n, err := scriptRenew.Run(rctx, d.c.rdb, []string{c.key, c.owner, d.MarkerKey()}, lease, d.lease.Milliseconds(), gen, c.member).Int()
			cancel()
			switch {
			case err != nil:
				// Redis failed: try again soon, so that a stall shorter
				// than the lease never loses it.
				t.Reset(min(d.lease/10, 200*time.Millisecond))
				continue
			case n == 0:
				lost(leaseTaken)
				return
			case n < 0:
				lost(leaseLost)
				return
			}
			t.Reset(d.lease / 3)
		}
	}()
	return func() { close(quit); <-finished }
}

// Close waits for the results still being written after their callers
// were answered: they end once written, or once the client is closed.
// Call it after the client's Close.
func (d *Idempotency) Close() { d.finishing.Wait() }

func randomToken() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}
