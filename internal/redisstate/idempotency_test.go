package redisstate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// replicas opens n clients (n replicas) on srv with one keyring.
func replicas(t *testing.T, srv *testkit.Redis, n int) []*redisstate.Idempotency {
	t.Helper()
	return replicasTTL(t, srv, n, 0)
}

// replicasTTL is replicas remembering results for ttl.
func replicasTTL(t *testing.T, srv *testkit.Redis, n int, ttl time.Duration) []*redisstate.Idempotency {
	t.Helper()
	return replicasWith(t, srv, n, ttl, 0)
}

// replicasWith is replicasTTL with each Redis call bounded by callTimeout
// (0: the tests' own, see open).
func replicasWith(t *testing.T, srv *testkit.Redis, n int, ttl, callTimeout time.Duration) []*redisstate.Idempotency {
	t.Helper()
	key := make([]byte, redisstate.KeySize)
	_, _ = rand.Read(key)
	ring, err := redisstate.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	var out []*redisstate.Idempotency
	for range n {
		c := open(t, redisstate.Config{URL: srv.URL(), Keyring: ring, CallTimeout: callTimeout})
		d, err := c.Idempotency(ttl)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		out = append(out, d)
	}
	return out
}

func TestIdempotencyAcrossReplicas(t *testing.T) {
	srv := testkit.StartRedis(t)
	reps := replicas(t, srv, 3)
	ctx := testkit.Context(t, 20*time.Second)
	fp := idempotency.Fingerprint("owner", "endpoint", "description")

	var runs atomic.Int64
	mint := func(context.Context) (string, error) {
		n := runs.Add(1)
		time.Sleep(100 * time.Millisecond) // long enough for every duplicate to arrive
		return fmt.Sprintf("otp-secret-%d", n), nil
	}
	var wg sync.WaitGroup
	values := make([]string, 30)
	replayed := make([]bool, 30)
	errs := make([]error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			values[i], replayed[i], errs[i] = reps[i%3].Do(ctx, "alice", "req-1", fp, mint)
		}()
	}
	wg.Wait()
	first := 0
	for i := range 30 {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if values[i] != values[0] {
			t.Fatalf("call %d got %q, call 0 %q: two values for one key", i, values[i], values[0])
		}
		if !replayed[i] {
			first++
		}
	}
	if runs.Load() != 1 || first != 1 {
		t.Fatalf("fn ran %d times, %d calls not replayed; want 1 and 1", runs.Load(), first)
	}

	t.Run("other fields", func(t *testing.T) {
		_, _, err := reps[1].Do(ctx, "alice", "req-1", idempotency.Fingerprint("owner", "other", "d"), mint)
		if !errors.Is(err, idempotency.ErrRequestIDReused) {
			t.Fatalf("Do with other fields = %v, want ErrRequestIDReused", err)
		}
	})
	t.Run("other caller", func(t *testing.T) {
		v, replayed, err := reps[2].Do(ctx, "bob", "req-1", fp, mint)
		if err != nil || replayed || v == values[0] {
			t.Fatalf("another caller's Do = %q %v %v, want a fresh value", v, replayed, err)
		}
	})
	t.Run("failures are not remembered", func(t *testing.T) {
		boom := errors.New("upstream failed")
		if _, _, err := reps[0].Do(ctx, "alice", "req-2", fp, func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
			t.Fatalf("Do = %v, want the fn's error", err)
		}
		v, _, err := reps[1].Do(ctx, "alice", "req-2", fp, func(context.Context) (string, error) { return "second", nil })
		if err != nil || v != "second" {
			t.Fatalf("Do after a failure = %q %v, want fn run again", v, err)
		}
	})
	t.Run("no value in clear", func(t *testing.T) {
		c := open(t, redisstate.Config{URL: srv.URL()})
		keys, err := c.Redis().Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, redisstate.DefaultPrefix) {
				t.Fatalf("key %q lacks the prefix", k)
			}
			if typ, err := c.Redis().Type(ctx, k).Result(); err != nil || typ != "string" {
				continue // the owners' sets hold digests only
			}
			v, err := c.Redis().Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(v, "otp-secret") || strings.Contains(k, "alice") || strings.Contains(v, "endpoint") {
				t.Fatalf("key %q holds a secret or a field in clear", k)
			}
		}
	})
}

// TestIdempotencyDeadLeader: a lease left by a replica that died blocks
// the key no longer than the lease; then a waiter runs the call itself.
func TestIdempotencyDeadLeader(t *testing.T) {
	srv := testkit.StartRedis(t)
	d := replicas(t, srv, 1)[0]
	ctx := testkit.Context(t, 20*time.Second)
	fp := idempotency.Fingerprint("f")
	k := idempotency.Fingerprint("alice", "req-dead")
	c := open(t, redisstate.Config{URL: srv.URL()})
	lease := append(append([]byte{'L'}, fp[:]...), "deadreplicatoken"...)
	if err := c.Redis().Set(ctx, c.Key("idem", hex.EncodeToString(k[:])), lease, 500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, replayed, err := d.Do(ctx, "alice", "req-dead", fp, func(context.Context) (string, error) { return "after", nil })
	if err != nil || v != "after" || replayed {
		t.Fatalf("Do = %q %v %v", v, replayed, err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("Do ran after %s, before the dead replica's lease expired", took)
	}
}

// TestIdempotencyRedisDown: without Redis, Do refuses with ErrUnavailable
// and never runs fn.
func TestIdempotencyRedisDown(t *testing.T) {
	srv := testkit.StartRedis(t)
	d := replicas(t, srv, 1)[0]
	srv.Stop()
	ctx := testkit.Context(t, 20*time.Second)
	ran := false
	_, _, err := d.Do(ctx, "alice", "req", idempotency.Fingerprint("f"), func(context.Context) (string, error) { ran = true; return "x", nil })
	if !errors.Is(err, idempotency.ErrUnavailable) || ran {
		t.Fatalf("Do with Redis down = %v (fn ran: %v), want ErrUnavailable and no run", err, ran)
	}
	srv.Start()
	if _, _, err := d.Do(ctx, "alice", "req", idempotency.Fingerprint("f"), func(context.Context) (string, error) { return "x", nil }); err != nil {
		t.Fatalf("Do after Redis came back: %v", err)
	}
}
