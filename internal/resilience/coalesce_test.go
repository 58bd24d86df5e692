package resilience

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

func TestConcurrentStatusLookupsShareOneUpstreamCall(t *testing.T) {
	const callers = 100
	g := newGate(t)
	e := newEnv(t, fast(), envOptions{wrap: g.wrap})
	ctx := testCtx(t)

	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			st, err := e.c.ServiceStatus(ctx, knownService)
			if err != nil || st.ServiceID != knownService || !st.Active || !st.Online {
				t.Errorf("ServiceStatus = %+v, %v", st, err)
			}
		})
	}
	// Hold the one lookup until every caller waits on it.
	eventually(t, "all callers to wait", func() bool { return e.c.waiters(knownService) == callers })
	g.release()
	wg.Wait()
	if got := e.emu.Calls(emulator.RouteStatus); got != 1 {
		t.Errorf("upstream status calls = %d, want 1 for %d concurrent callers", got, callers)
	}

	// Another ID is another lookup, and a later call a new one.
	if _, err := e.c.ServiceStatus(ctx, otherService); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
		t.Fatal(err)
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 3 {
		t.Errorf("upstream status calls = %d, want 3", got)
	}
}

func TestFirstCallerCancellingDoesNotFailTheOthers(t *testing.T) {
	g := newGate(t)
	e := newEnv(t, fast(), envOptions{wrap: g.wrap})
	ctx := testCtx(t)

	firstCtx, cancelFirst := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := e.c.ServiceStatus(firstCtx, knownService)
		first <- err
	}()
	eventually(t, "the lookup to reach the upstream", func() bool { return g.arrived.Load() == 1 })

	// The others join, one of them with a deadline of its own.
	type result struct {
		st  upstream.ServiceStatus
		err error
	}
	others := make(chan result, 2)
	go func() {
		st, err := e.c.ServiceStatus(ctx, knownService)
		others <- result{st, err}
	}()
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		st, err := e.c.ServiceStatus(dctx, knownService)
		others <- result{st, err}
	}()
	eventually(t, "the others to join", func() bool { return e.c.waiters(knownService) == 3 })

	// The first caller goes; it returns at once, the lookup still held.
	cancelFirst()
	if err := testkit.Receive(t, first, 15*time.Second, "the first caller to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: error %v, want context.Canceled", err)
	}
	g.release()
	for range 2 {
		r := testkit.Receive(t, others, 15*time.Second, "another caller to get the shared answer")
		if r.err != nil || r.st.ServiceID != knownService {
			t.Errorf("other caller: %+v, %v; want the shared answer", r.st, r.err)
		}
	}
	if got, abandoned := e.emu.Calls(emulator.RouteStatus), g.abandoned.Load(); got != 1 || abandoned != 0 {
		t.Errorf("upstream status calls = %d (abandoned %d), want 1 (0)", got, abandoned)
	}
}

func TestLastCallerLeavingCancelsTheLookup(t *testing.T) {
	g := newGate(t)
	cfg := fast()
	// Longer than the wait below, so that only the cancellation can end
	// the held request.
	cfg.AttemptTimeout = time.Minute
	e := newEnv(t, cfg, envOptions{wrap: g.wrap})
	ctx := testCtx(t)

	callerCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := e.c.ServiceStatus(callerCtx, knownService)
		done <- err
	}()
	eventually(t, "the lookup to reach the upstream", func() bool { return g.arrived.Load() == 1 })
	cancel()
	if err := testkit.Receive(t, done, 15*time.Second, "the caller to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	// Nobody waits any more: the upstream request is abandoned, not left
	// to run, and the next caller starts afresh instead of joining it.
	if e.c.lookups.Running(knownService) {
		t.Error("the abandoned lookup can still be joined")
	}
	eventually(t, "the upstream request to be abandoned", func() bool { return g.abandoned.Load() == 1 })
	g.release()
	if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
		t.Errorf("next caller: %v", err)
	}
	if got := e.c.State(); got != "closed" {
		t.Errorf("breaker %s after a cancelled lookup, want closed", got)
	}
}

func TestStatusCache(t *testing.T) {
	const ttl = time.Minute
	cfg := fast()
	cfg.StatusCacheTTL = ttl
	e := newEnv(t, cfg, envOptions{})
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	e.c.cache.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	advance := func(d time.Duration) { clock.Lock(); clock.now = clock.now.Add(d); clock.Unlock() }
	ctx := testCtx(t)

	lookup := func(wantCalls int64) upstream.ServiceStatus {
		t.Helper()
		st, err := e.c.ServiceStatus(ctx, "offl-ine0-0001")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.emu.Calls(emulator.RouteStatus); got != wantCalls {
			t.Errorf("upstream status calls = %d, want %d", got, wantCalls)
		}
		return st
	}
	if st := lookup(1); st.Online {
		t.Fatalf("seeded service reported online: %+v", st)
	}
	e.emu.SetService(emulator.Service{ID: "offl-ine0-0001", Active: true, Online: true})
	if st := lookup(1); st.Online {
		t.Error("within the TTL the cached answer should be served, stale as it is")
	}
	advance(ttl)
	if st := lookup(2); !st.Online {
		t.Error("after the TTL the upstream should be asked again")
	}

	// Failures are not cached.
	for range 2 {
		if _, err := e.c.ServiceStatus(ctx, unknownService); statusCode(err) != 404 {
			t.Fatalf("error %v, want 404", err)
		}
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 4 {
		t.Errorf("upstream status calls = %d, want 4: a 404 must not be cached", got)
	}
}

func TestStatusCacheOffByDefault(t *testing.T) {
	e := newEnv(t, fast(), envOptions{})
	ctx := testCtx(t)
	for range 2 {
		if _, err := e.c.ServiceStatus(ctx, knownService); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 2 {
		t.Errorf("upstream status calls = %d, want 2", got)
	}
}

func TestStatusCacheEviction(t *testing.T) {
	const ttl = time.Minute
	now := time.Now()
	c := newStatusCache(ttl, 3)
	c.now = func() time.Time { return now }
	put := func(id string) { c.put(id, upstream.ServiceStatus{ServiceID: id}) }
	has := func(id string) bool { _, ok := c.get(id); return ok }

	put("a")
	now = now.Add(ttl / 2)
	put("b")
	now = now.Add(ttl / 2) // a has expired
	put("c")
	if c.len() != 2 || has("a") || !has("b") || !has("c") {
		t.Fatalf("after a expired: len %d, a %v b %v c %v; want b and c only", c.len(), has("a"), has("b"), has("c"))
	}
	put("d")
	put("e") // full: the oldest, b, goes
	if c.len() != 3 || has("b") || !has("c") || !has("d") || !has("e") {
		t.Fatalf("when full: len %d, b %v; want c, d and e", c.len(), has("b"))
	}
	put("c") // refreshing an entry makes it the newest
	put("f")
	if has("d") || !has("c") || !has("e") || !has("f") {
		t.Fatalf("refreshed c was evicted, or d was kept")
	}
}
