// Package flight runs one call per key on behalf of every caller that asks
// for that key while the call runs: the facade's one way of sharing work
// between concurrent callers (an access token fetch, a discovery, a status
// lookup, an idempotent OTP request).
//
// It differs from golang.org/x/sync/singleflight in the two ways the facade
// needs. The shared call runs with a context of its own, detached from the
// caller that happened to start it, so that this caller giving up does not
// fail the others; and by default the call is cancelled once every caller
// waiting for it has given up, since nobody is left to receive its result.
// Each caller still returns as soon as its own context ends.
//
// Nothing of a caller's context outlives the call: the call's context keeps
// the starting caller's values (trace spans, say) only while the call runs,
// and the Group forgets the call as soon as it returns.
package flight

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/radkit/radkit-access-facade/internal/growstack"
	"github.com/radkit/radkit-access-facade/internal/panics"
)

// Group runs at most one call per key at a time. The zero Group is ready to
// use; a Group must not be copied after first use. Its methods are safe for
// concurrent use.
type Group[K comparable, V any] struct {
	// Finish, when true, lets a call run to its end even after every caller
	// waiting for it has left: for fetches whose result outlives the
	// callers (an access token stored by fn, say). Such a call must bound
	// itself. When false, the last caller to leave cancels the call.
	Finish bool

	mu    sync.Mutex
	calls map[K]*call[V]
	// running counts the calls whose fn has not returned, joinable or
	// abandoned; idle is closed when it drops to zero (see Wait).
	running int
	idle    chan struct{}
}

// call is one shared call and the callers waiting for it. The fields above
// done are guarded by Group.mu; val and err are written once before done is
// closed and read only after.
type call[V any] struct {
	cancel    context.CancelFunc
	waiters   int
	latest    time.Time // the latest deadline of any waiter
	unbounded bool      // some waiter has no deadline
	// deadlines are the deadlines of the waiters still waiting that have
	// one, for EarliestDeadline.
	deadlines []time.Time

	done chan struct{}
	val  V
	err  error
}

// Do returns the result of fn for key, running fn only when no call for key
// is already running; otherwise it waits for that call and returns its
// result, success or failure. joined reports whether the result came from a
// call that another caller started.
//
// fn runs in a goroutine of its own with a context that keeps ctx's values
// but not its cancellation or deadline (fn bounds itself; LatestDeadline
// tells it how long its callers wait). Results are not remembered: once fn
// has returned, the next Do for key runs fn again.
//
// Do returns ctx's error as soon as ctx ends, whatever the call does.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (v V, err error, joined bool) {
	if err := ctx.Err(); err != nil {
		return v, err, false
	}
	g.mu.Lock()
	c, joined := g.calls[key]
	if !joined {
		c = g.startLocked(ctx, key, fn)
	}
	c.waiters++
	d, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		c.unbounded = true
	} else {
		c.deadlines = append(c.deadlines, d)
		if d.After(c.latest) {
			c.latest = d
		}
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err, joined
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-c.done:
		// The result arrived meanwhile: prefer it.
		return c.val, c.err, joined
	default:
	}
	c.waiters--
	if hasDeadline {
		if i := slices.Index(c.deadlines, d); i >= 0 {
			c.deadlines = slices.Delete(c.deadlines, i, i+1)
		}
	}
	if c.waiters == 0 && !g.Finish {
		// Nobody is left to receive the result: cancel the call and forget
		// it, so that the next caller starts afresh instead of joining a
		// call that is being cancelled.
		c.cancel()
		g.forgetLocked(key, c)
	}
	return v, ctx.Err(), joined
}

// startLocked starts the call for key. g.mu is held.
func (g *Group[K, V]) startLocked(ctx context.Context, key K, fn func(context.Context) (V, error)) *call[V] {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &call[V]{cancel: cancel, done: make(chan struct{})}
	callCtx = context.WithValue(callCtx, deadlineKey{}, func() (time.Time, bool) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if c.unbounded || c.latest.IsZero() {
			return time.Time{}, false
		}
		return c.latest, true
	})
	callCtx = context.WithValue(callCtx, earliestKey{}, func() (time.Time, bool) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(c.deadlines) == 0 {
			return time.Time{}, false
		}
		return slices.MinFunc(c.deadlines, time.Time.Compare), true
	})
	if g.calls == nil {
		g.calls = make(map[K]*call[V])
	}
	g.calls[key] = c
	if g.running == 0 {
		g.idle = make(chan struct{})
	}
	g.running++
	go g.run(callCtx, key, c, fn)
	return c
}

// run makes call c and publishes its result. fn runs on this fresh
// goroutine's stack, and the facade's calls go deep (an upstream call
// through net/http): the stack is grown at once, while it is shallow
// (package growstack).
func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	growstack.Grow()
	v, err := protect(ctx, fn)
	c.cancel() // releases the context, and the caller's values with it
	g.mu.Lock()
	g.forgetLocked(key, c)
	c.val, c.err = v, err
	close(c.done)
	if g.running--; g.running == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
}

// protect returns fn's result, or a *panics.Error when fn panics: a panic on
// this goroutine, which no caller's recovery covers, would end the
// process. The panic is reported (logged and counted) once, with the
// Reporter and request ID of the caller that started the call; every
// caller waiting for it gets the error.
func protect[V any](ctx context.Context, fn func(context.Context) (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			stack := panics.Stack()
			panics.FromContext(ctx).Report(ctx, panics.CoalescedCall, p, stack)
			var zero V
			v, err = zero, &panics.Error{Where: panics.CoalescedCall, Value: p, Stack: stack}
		}
	}()
	return fn(ctx)
}

// Wait waits until no call runs, abandoned ones included: a client that
// owns a Group calls it on Close, after making its calls end, so that no
// goroutine outlives the client.
func (g *Group[K, V]) Wait() {
	for {
		g.mu.Lock()
		if g.running == 0 {
			g.mu.Unlock()
			return
		}
		idle := g.idle
		g.mu.Unlock()
		<-idle
	}
}

// forgetLocked drops c, if it is still key's call, so that later callers
// start a new one. g.mu is held.
func (g *Group[K, V]) forgetLocked(key K, c *call[V]) {
	if g.calls[key] == c {
		delete(g.calls, key)
	}
}

// Waiters returns how many callers wait for the call for key, 0 when no
// call for key can be joined.
func (g *Group[K, V]) Waiters(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}

// Running reports whether a call for key can be joined: it runs and still
// has callers, or runs to its end because the Group finishes abandoned
// calls.
func (g *Group[K, V]) Running(key K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[key]
	return ok
}

// Len returns the number of calls running that callers may still join.
func (g *Group[K, V]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

// deadlineKey and earliestKey are the context keys of a call's deadline
// functions.
type (
	deadlineKey struct{}
	earliestKey struct{}
)

// EarliestDeadline returns, inside a call made by Group.Do, the earliest
// deadline of the callers still waiting for it: the first moment one of
// them stops waiting, by which a shared call that queues (for a slot of a
// bound, say) should answer rather than keep its callers waiting. ok is
// false when no caller waiting has a deadline. Outside a call it returns
// ctx's own deadline.
func EarliestDeadline(ctx context.Context) (deadline time.Time, ok bool) {
	if f, found := ctx.Value(earliestKey{}).(func() (time.Time, bool)); found {
		return f()
	}
	return ctx.Deadline()
}

// LatestDeadline returns, inside a call made by Group.Do, the latest
// deadline of the callers waiting for it: a shared call that retries should
// not sleep past it, since nobody would receive the result. ok is false when
// some caller waits without a deadline. Outside a call it returns ctx's own
// deadline.
func LatestDeadline(ctx context.Context) (deadline time.Time, ok bool) {
	if f, found := ctx.Value(deadlineKey{}).(func() (time.Time, bool)); found {
		return f()
	}
	return ctx.Deadline()
}
