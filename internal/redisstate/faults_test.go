package redisstate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// delivered records every value any caller was given per key, and fails
// the test on a second one.
type delivered struct {
	mu     sync.Mutex
	values map[string]string
}

func (d *delivered) saw(t *testing.T, key, v string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.values == nil {
		d.values = map[string]string{}
	}
	if first, ok := d.values[key]; ok && first != v {
		t.Errorf("key %s gave two values: %q, then %q", key, first, v)
	}
	d.values[key] = v
}

// TestIdempotencyRedisStalled: Redis stopped (SIGSTOP) while the leader's
// fn runs, for less or more than the lease, with the leader's caller
// waiting past the stall or giving up during it. Whatever the case, the
// key never gives two values: the leader's value goes out only once
// stored, and a replay after the stall gets it or, if the leader's write
// found the key taken, the one value given out since.
func TestIdempotencyRedisStalled(t *testing.T) {
	const lease = 600 * time.Millisecond
	tests := []struct {
		name           string
		stall          time.Duration
		callerDeadline time.Duration
	}{
		{"shorter than the lease, caller waits", 400 * time.Millisecond, 20 * time.Second},
		{"longer than the lease, caller waits", 3 * lease, 20 * time.Second},
		{"longer than the lease, caller gives up", 3 * lease, 700 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			// The production call timeout: a caller is answered one call
			// timeout before its deadline, which these deadlines are
			// sized against.
			reps := replicasWith(t, srv, 2, 0, redisstate.DefaultCallTimeout)
			for _, r := range reps {
				redisstate.SetLease(r, lease)
			}
			ctx := testkit.Context(t, 30*time.Second)
			fp := idempotency.Fingerprint("f")
			var seen delivered
			resumed := make(chan struct{})
			first := func(context.Context) (string, error) {
				srv.Pause()
				go func() {
					defer close(resumed)
					time.Sleep(tc.stall)
					srv.Resume()
				}()
				return "A", nil
			}
			cctx, cancel := context.WithTimeout(ctx, tc.callerDeadline)
			v, _, err := reps[0].Do(cctx, "alice", "req", fp, first)
			cancel()
			<-resumed
			switch {
			case err == nil:
				seen.saw(t, "req", v)
			case errors.Is(err, idempotency.ErrUnavailable):
				t.Logf("leader's caller refused: %v", err)
			default:
				t.Fatalf("leader's Do = %v, want a value or ErrUnavailable", err)
			}
			// The replay comes once the leader's write had time to land
			// (its pauses are at most a second).
			time.Sleep(1500 * time.Millisecond)
			again, replayed, err := reps[1].Do(ctx, "alice", "req", fp, func(context.Context) (string, error) { return "B", nil })
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			seen.saw(t, "req", again)
			if again != "A" || !replayed {
				t.Errorf("replay = %q (replayed %v), want the leader's A replayed", again, replayed)
			}
		})
	}
}

// TestIdempotencyOrphanedClaim: a claim that Redis runs after its caller
// was refused (Redis stalled past the call timeout) holds the key no
// longer than the RetryInfo that caller was given.
func TestIdempotencyOrphanedClaim(t *testing.T) {
	srv := testkit.StartRedis(t)
	reps := replicas(t, srv, 2)
	ctx := testkit.Context(t, 30*time.Second)
	fp := idempotency.Fingerprint("f")
	c := open(t, redisstate.Config{URL: srv.URL()})
	k := idempotency.Fingerprint("alice", "req-orphan")
	rk := c.Key("idem", hex.EncodeToString(k[:]))

	// A first call loads the scripts, so that the stalled claim is one
	// Redis runs (not an EVALSHA of a script it does not know yet).
	if _, _, err := reps[0].Do(ctx, "alice", "req-warm", fp, func(context.Context) (string, error) { return "W", nil }); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	ran := false
	_, _, err := reps[0].Do(ctx, "alice", "req-orphan", fp, func(context.Context) (string, error) { ran = true; return "A", nil })
	if !errors.Is(err, idempotency.ErrUnavailable) || ran {
		t.Fatalf("Do while Redis is stalled = %v (fn ran: %v), want ErrUnavailable and no run", err, ran)
	}
	srv.Resume()
	// The claim sent before the refusal runs now.
	var pttl time.Duration
	testkit.Eventually(t, 5*time.Second, "the stalled claim to run", func() bool {
		var err error
		pttl, err = c.Redis().PTTL(ctx, rk).Result()
		return err == nil && pttl > 0
	})
	t.Logf("orphaned claim: PTTL %s", pttl)
	if pttl > idempotency.RetryAfterUnavailable {
		t.Fatalf("orphaned claim lives %s, longer than the %s the refused caller was told to wait", pttl, idempotency.RetryAfterUnavailable)
	}
	start := time.Now()
	v, _, err := reps[1].Do(ctx, "alice", "req-orphan", fp, func(context.Context) (string, error) { return "B", nil })
	if err != nil || v != "B" {
		t.Fatalf("retry after the orphaned claim = %q, %v", v, err)
	}
	t.Logf("the retry ran after %s", time.Since(start))
}

// TestIdempotencyDataLoss: once Redis lost the data it had acknowledged
// (FLUSHALL here; a restart without persistence is the same), a replay of a
// request_id answered before is refused with ErrStateLost, never run again,
// and so is any request_id not found, until the window passes or an
// operator ends it.
func TestIdempotencyDataLoss(t *testing.T) {
	srv := testkit.StartRedis(t)
	reps := replicas(t, srv, 2)
	ctx := testkit.Context(t, 30*time.Second)
	fp := idempotency.Fingerprint("f")
	c := open(t, redisstate.Config{URL: srv.URL()})
	mint := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}
	if v, _, err := reps[0].Do(ctx, "alice", "req-1", fp, mint("A")); err != nil || v != "A" {
		t.Fatalf("first call: %q %v", v, err)
	}
	// Both replicas have seen the data's generation.
	if _, _, err := reps[1].Do(ctx, "alice", "req-1", fp, mint("B")); err != nil {
		t.Fatal(err)
	}
	if err := c.Redis().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"req-1", "req-new", "req-1"} {
		ran := false
		_, _, err := reps[i%2].Do(ctx, "alice", id, fp, func(context.Context) (string, error) { ran = true; return "B", nil })
		var lost *idempotency.LostError
		if !errors.As(err, &lost) || !errors.Is(err, idempotency.ErrStateLost) || ran {
			t.Fatalf("%s after the loss on replica %d = %v (ran: %v), want a LostError and no run", id, i%2, err, ran)
		}
		if lost.RetryAfter <= 0 || lost.RetryAfter > idempotency.DefaultTTL {
			t.Fatalf("RetryAfter %s, want within the window", lost.RetryAfter)
		}
	}
	lostKey := reps[0].LostKey()
	if err := c.Redis().Do(ctx, "SET", lostKey, "ended", "KEEPTTL").Err(); err != nil {
		t.Fatal(err)
	}
	if v, _, err := reps[1].Do(ctx, "alice", "req-after", fp, mint("C")); err != nil || v != "C" {
		t.Fatalf("a new request_id once an operator ended the refusal: %q %v", v, err)
	}
}

// TestIdempotencyUnknownKey: a result sealed under a key that the reading
// replica's keyring lacks is a StateKeyError naming the key's ID, not an
// outage.
func TestIdempotencyUnknownKey(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := testkit.Context(t, 30*time.Second)
	keyA, keyB := make([]byte, redisstate.KeySize), make([]byte, redisstate.KeySize)
	_, _ = rand.Read(keyA)
	_, _ = rand.Read(keyB)
	store := func(key []byte) *redisstate.Idempotency {
		ring, err := redisstate.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		d, err := open(t, redisstate.Config{URL: srv.URL(), Keyring: ring}).Idempotency(0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	fp := idempotency.Fingerprint("f")
	if _, _, err := store(keyA).Do(ctx, "alice", "req", fp, func(context.Context) (string, error) { return "A", nil }); err != nil {
		t.Fatal(err)
	}
	_, _, err := store(keyB).Do(ctx, "alice", "req", fp, func(context.Context) (string, error) { return "B", nil })
	var keyErr *idempotency.StateKeyError
	id := redisstate.KeyID(keyA)
	if !errors.As(err, &keyErr) || !errors.Is(err, idempotency.ErrStateKeyUnknown) || errors.Is(err, idempotency.ErrUnavailable) {
		t.Fatalf("Do with the key missing = %v, want a StateKeyError that is not ErrUnavailable", err)
	}
	if keyErr.KeyID != hex.EncodeToString(id[:]) {
		t.Fatalf("key ID %q, want %x", keyErr.KeyID, id)
	}
}

// TestIdempotencyPerOwnerQuota: the per-owner bound holds over every
// replica, counts keys in flight and remembered, frees a place when a key
// expires or its call fails, and never touches other owners.
func TestIdempotencyPerOwnerQuota(t *testing.T) {
	srv := testkit.StartRedis(t)
	const ttl = 2 * time.Second
	reps := replicasTTL(t, srv, 2, ttl)
	for _, r := range reps {
		r.MaxKeysPerOwner = 2
	}
	ctx := testkit.Context(t, 30*time.Second)
	fp := idempotency.Fingerprint("f")
	ok := func(string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return "v", nil }
	}
	boom := errors.New("upstream failed")
	if _, _, err := reps[0].Do(ctx, "alice", "id-1", fp, ok("1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reps[1].Do(ctx, "alice", "id-fail", fp, func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("failing call: %v", err)
	}
	if _, _, err := reps[1].Do(ctx, "alice", "id-2", fp, ok("2")); err != nil {
		t.Fatalf("second key after a failed one: %v (a failure must free its place)", err)
	}
	_, _, err := reps[0].Do(ctx, "alice", "id-3", fp, ok("3"))
	var full *idempotency.FullError
	if !errors.As(err, &full) || !full.PerOwner || full.RetryAfter <= 0 || full.RetryAfter > ttl {
		t.Fatalf("third key = %v, want a per-owner FullError with RetryAfter within %s", err, ttl)
	}
	if _, replayed, err := reps[0].Do(ctx, "alice", "id-2", fp, ok("x")); err != nil || !replayed {
		t.Fatalf("replay at the quota: %v (replayed %v)", err, replayed)
	}
	if _, _, err := reps[1].Do(ctx, "bob", "id-3", fp, ok("3")); err != nil {
		t.Fatalf("another owner: %v", err)
	}
	time.Sleep(full.RetryAfter + 100*time.Millisecond)
	if _, _, err := reps[1].Do(ctx, "alice", "id-3", fp, ok("3")); err != nil {
		t.Fatalf("a new key once the oldest expired: %v", err)
	}
}

// TestIdempotencyLossNoticedOnce: a loss is noticed by a running replica
// even when a replica started after it wrote the new marker, and a replica
// that looks only after the window has passed does not open it again.
func TestIdempotencyLossNoticedOnce(t *testing.T) {
	srv := testkit.StartRedis(t)
	const ttl = 1500 * time.Millisecond
	reps := replicasTTL(t, srv, 3, ttl)
	ctx := testkit.Context(t, 30*time.Second)
	fp := idempotency.Fingerprint("f")
	c := open(t, redisstate.Config{URL: srv.URL()})
	mint := func(context.Context) (string, error) { return "v", nil }
	for i := range 2 {
		if _, _, err := reps[i].Do(ctx, "alice", fmt.Sprintf("before-%d", i), fp, mint); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Redis().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// A replica starting now takes the empty Redis for a new one...
	if err := reps[2].Learn(ctx); err != nil {
		t.Fatal(err)
	}
	// ...but a running replica knows better.
	if _, _, err := reps[0].Do(ctx, "alice", "before-0", fp, mint); !errors.Is(err, idempotency.ErrStateLost) {
		t.Fatalf("replay on a running replica after the loss = %v, want ErrStateLost", err)
	}
	if _, _, err := reps[2].Do(ctx, "alice", "before-1", fp, mint); !errors.Is(err, idempotency.ErrStateLost) {
		t.Fatalf("replay on the new replica once the loss was noticed = %v, want ErrStateLost", err)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	// reps[1] has not looked since the loss: it must not open a new window.
	if _, _, err := reps[1].Do(ctx, "alice", "after", fp, mint); err != nil {
		t.Fatalf("a new request_id once the window passed, on a replica that had not looked: %v", err)
	}
}
