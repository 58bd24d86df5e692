package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/growstack"
)

// ErrConcurrencyLimit is matched by the error of a request that waited for
// one of the Limiter's slots until its deadline: the facade had as many
// upstream calls in flight as it allows. Nothing was sent. A retry later
// may succeed.
var ErrConcurrencyLimit = errors.New("upstream: too many calls in flight")

// Limiter bounds the upstream requests in flight. A request beyond the
// bound waits for a slot within its deadline (see WithWaitDeadline) and
// then fails with ErrConcurrencyLimit. A request that got its slot only
// after waiting, with less time left than requests have lately held one,
// fails the same way rather than being sent to time out upstream. A
// request holds its slot until its response body is closed. It is safe
// for concurrent use.
type Limiter struct {
	// slots holds one value per slot taken: a send takes a slot, a
	// receive frees one. A request that waits is a blocked send, and a
	// channel serves its blocked sends in the order they came, so slots go
	// first come, first served.
	slots    chan struct{}
	inFlight atomic.Int64
	waiting  atomic.Int64
	// hold is a peak moving average (nanoseconds) of how long requests
	// held a slot: how much time a request needs once it has one (see
	// release).
	hold atomic.Int64
}

// NewLimiter returns a Limiter of n requests in flight (at least 1).
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// Limit is the bound.
func (l *Limiter) Limit() int { return cap(l.slots) }

// InFlight reports the requests holding a slot now.
func (l *Limiter) InFlight() int64 { return l.inFlight.Load() }

// Waiting reports the requests waiting for a slot now.
func (l *Limiter) Waiting() int64 { return l.waiting.Load() }

// Transport returns base bounded by l.
func (l *Limiter) Transport(base http.RoundTripper) http.RoundTripper {
	return &limitedTransport{l: l, base: base}
}

// waitDeadlineKey is the context key of WithWaitDeadline's function.
type waitDeadlineKey struct{}

// WithWaitDeadline returns ctx carrying deadline, which the Limiter asks,
// instead of ctx's own deadline, when a request of ctx must wait for a
// slot: for a request shared by several callers that runs detached from
// them (a coalesced status lookup), whose wait must end before its
// earliest caller's deadline. deadline is asked again when the time it
// gave has come (a caller may have left meanwhile); ok false means no
// deadline.
func WithWaitDeadline(ctx context.Context, deadline func() (time.Time, bool)) context.Context {
	return context.WithValue(ctx, waitDeadlineKey{}, deadline)
}

// waitDeadline returns the deadline function of ctx's wait for a slot:
// the earlier of WithWaitDeadline's and ctx's own.
func waitDeadline(ctx context.Context) func() (time.Time, bool) {
	f, ok := ctx.Value(waitDeadlineKey{}).(func() (time.Time, bool))
	if !ok {
		return ctx.Deadline
	}
	return func() (time.Time, bool) {
		d, ok := f()
		own, hasOwn := ctx.Deadline()
		switch {
		case !ok:
			return own, hasOwn
		case hasOwn && own.Before(d):
			return own, true
		}
		return d, true
	}
}

// maxRefusalMargin bounds how long before its deadline a waiting request
// gives up (see acquire).
const maxRefusalMargin = 500 * time.Millisecond

// refusalMargin is how long before dl a request waiting for a slot gives
// up: a fifth of the time left, at most maxRefusalMargin, so that the
// refusal still reaches a caller whose own deadline is dl.
func refusalMargin(dl time.Time) time.Duration {
	return max(min(time.Until(dl)/5, maxRefusalMargin), 0)
}

// acquire takes a slot, waiting within ctx until a little before the
// deadline of its wait (see refusalMargin, WithWaitDeadline). A slot that
// came only after a wait, with less time left than requests have lately
// held one (see Limiter.hold), is given back and the request refused: it
// would most likely time out upstream, holding a slot that others could
// use.
func (l *Limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		l.inFlight.Add(1)
		return nil
	default:
	}
	deadline := waitDeadline(ctx)
	l.waiting.Add(1)
	err := l.wait(ctx, deadline)
	l.waiting.Add(-1)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err() // the caller went away
		}
		return err
	}
	if dl, ok := deadline(); ok {
		// A call needs its hold time, and its answer the same margin as a
		// refusal to reach the caller.
		if need := time.Duration(l.hold.Load()); need > 0 && time.Until(dl) < need+refusalMargin(dl) {
			l.free()
			return fmt.Errorf("%w: a slot came free %v before the deadline; calls lately needed %v",
				ErrConcurrencyLimit, time.Until(dl).Round(time.Millisecond), need.Round(time.Millisecond))
		}
	}
	l.inFlight.Add(1)
	return nil
}

// wait waits for a slot until ctx ends or the wait's deadline (less the
// refusal margin) passes, asking deadline again each time it passes.
//
// It waits on a timer, not on a context of its own with that deadline: a
// derived context (its timer, its Done channel, its entry among its
// parent's children) and a semaphore's waiter cost a waiting call about
// three times the bytes, and calls wait here by the hundred
// (docs/performance.md, mode U).
func (l *Limiter) wait(ctx context.Context, deadline func() (time.Time, bool)) error {
	for {
		dl, ok := deadline()
		if !ok {
			_, err := l.take(ctx, nil)
			return err
		}
		t := time.NewTimer(time.Until(dl.Add(-refusalMargin(dl))))
		took, err := l.take(ctx, t.C)
		t.Stop()
		if took || err != nil {
			return err
		}
		if next, ok := deadline(); !ok || next.After(dl) {
			continue // the earliest caller left; wait for the next one's
		}
		return fmt.Errorf("%w: all %d slots stayed busy until the deadline", ErrConcurrencyLimit, l.Limit())
	}
}

// take waits for a slot until ctx ends (its error) or expired fires
// (false and no error). A slot that came as ctx ended is given back: a
// call that has left gets none.
func (l *Limiter) take(ctx context.Context, expired <-chan time.Time) (bool, error) {
	select {
	case l.slots <- struct{}{}:
		if err := ctx.Err(); err != nil {
			l.free()
			return false, err
		}
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-expired:
		return false, nil
	}
}

// free gives back a slot. Giving back one more than were taken is a bug
// in the Limiter, and panics rather than blocking forever on the empty
// channel.
func (l *Limiter) free() {
	select {
	case <-l.slots:
	default:
		panic("upstream: Limiter: a slot freed that was not taken")
	}
}

// holdWeight is the weight of a shorter sample in Limiter.hold.
const holdWeight = 8

// release frees a slot held for d. Limiter.hold follows d as a peak
// moving average: a longer hold is taken at once (an upstream that slows
// down is believed at the first slow answer), a shorter one moves it an
// eighth of the way (a single quick answer does not undo that).
func (l *Limiter) release(d time.Duration) {
	for {
		old := l.hold.Load()
		next := int64(d)
		if next < old {
			next = old + (next-old)/holdWeight
		}
		if l.hold.CompareAndSwap(old, next) {
			break
		}
	}
	l.inFlight.Add(-1)
	l.free()
}

// heldSlotKey is the context key of a slot taken by Hold.
type heldSlotKey struct{}

// heldSlot is a slot of a Limiter taken ahead of the request that will use
// it. taken is set once: by the request that uses it, or by the call's
// done, which gives it back unused.
type heldSlot struct {
	l     *Limiter
	taken atomic.Bool
}

// Hold takes a slot, waiting as a request would (see Limiter), for the
// first upstream request a call is about to make with the returned
// context: that request uses it and does not wait again. done gives the
// slot back if no request used it; call it when the call returns.
//
// A call that waits here waits on a shallow stack. Waiting for the slot
// in the transport, under the gRPC server, the interceptors, the
// resilience layers and net/http's client, keeps each waiting call's
// goroutine on a stack grown for the whole descent (package growstack),
// and the garbage collector's heap goal grows with the stacks: at 1,000
// calls against a bound of 256, most of the facade's memory
// (docs/performance.md, mode U).
func (l *Limiter) Hold(ctx context.Context) (_ context.Context, done func(), err error) {
	if err := l.acquire(ctx); err != nil {
		return ctx, func() {}, err
	}
	h := &heldSlot{l: l}
	return context.WithValue(ctx, heldSlotKey{}, h), func() {
		if h.taken.CompareAndSwap(false, true) {
			l.inFlight.Add(-1)
			l.free()
		}
	}, nil
}

// takeHeld reports whether ctx carries a slot of l taken by Hold and not
// used yet, and takes it.
func (l *Limiter) takeHeld(ctx context.Context) bool {
	h, ok := ctx.Value(heldSlotKey{}).(*heldSlot)
	return ok && h.l == l && h.taken.CompareAndSwap(false, true)
}

// unboundedKey marks the context of a request that the Limiter lets
// through without a slot (see withoutSlot).
type unboundedKey struct{}

// withoutSlot marks ctx's requests as outside the Limiter's bound. The
// set-up requests, discovery and token, are: there is at most one of each
// per identity at a time (they are coalesced), and calls that hold a slot
// (Hold) may be waiting for them, so that a set-up request waiting for a
// slot could wait until every such call's deadline.
func withoutSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, unboundedKey{}, true)
}

type limitedTransport struct {
	l    *Limiter
	base http.RoundTripper
	// h2 is set while the upstream's connections are HTTP/2, as the last
	// one handed to a request was (httptrace's GotConn, or a Pool's
	// connection, see connHanded): a request then runs on its
	// caller's goroutine (see RoundTrip).
	h2 atomic.Bool
}

// finishGrace bounds how long a request whose caller has left may run on
// over HTTP/1.1 (see RoundTrip), and drainLimit how much of its body is
// read to keep its connection.
const (
	finishGrace = 5 * time.Second
	drainLimit  = 64 << 10
)

// RoundTrip sends req once a slot is free; the slot is released when the
// response body is closed, or at once on error.
//
// Over HTTP/1.1 a request cancelled in flight costs its connection (net/http
// closes it), and the next request dials and handshakes again: callers
// that give up on a slow upstream would churn connections. So the request
// runs detached from its caller's cancellation: if the caller leaves while
// it waits for the answer on an HTTP/1.1 connection, the caller gets its
// context's error at once, and the request runs on in the background for
// at most finishGrace, its body read (up to drainLimit) and closed so that
// the connection goes back to the pool, holding its slot until then. Over
// HTTP/2, where a cancel costs only a stream, or before a connection was
// handed to it, the request is cancelled at once; once the upstream is
// known to speak HTTP/2, requests run on the caller's goroutine
// (roundTripHTTP2).
//
// A request whose call holds a slot already (Hold) uses it; a set-up
// request needs none (withoutSlot).
func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	caller := req.Context()
	if caller.Value(unboundedKey{}) != nil {
		return t.base.RoundTrip(req)
	}
	if !t.l.takeHeld(caller) {
		if err := t.l.acquire(caller); err != nil {
			if req.Body != nil {
				_ = req.Body.Close() // a RoundTripper must close it, even on error
			}
			return nil, err
		}
	}
	start := time.Now()
	release := sync.OnceFunc(func() { t.l.release(time.Since(start)) })
	if t.h2.Load() {
		return t.roundTripHTTP2(req, release)
	}

	var http1 atomic.Bool // a connection was handed over, and it is HTTP/1.x
	ctx, cancel := context.WithCancel(context.WithoutCancel(caller))
	ctx = withPoolEvent(ctx, connHanded, func() { t.h2.Store(true) }) // a Pool's: HTTP/2
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			h1 := !isHTTP2(info.Conn)
			http1.Store(h1)
			t.h2.Store(!h1)
		},
	})
	type result struct {
		resp  *http.Response
		err   error
		panic *DetachedPanic // the request panicked
	}
	answer := make(chan result, 1)
	go func() {
		// A fresh goroutine, about to go down through net/http's
		// transport: its stack is grown once, while it is shallow
		// (package growstack), rather than copied as it deepens.
		growstack.Grow()
		// A panic here would end the process: no caller's recovery
		// reaches this goroutine. It is raised again on the caller's.
		defer func() {
			if p := recover(); p != nil {
				answer <- result{panic: &DetachedPanic{Value: p, Stack: debug.Stack()}}
			}
		}()
		resp, err := t.base.RoundTrip(req.WithContext(ctx))
		answer <- result{resp: resp, err: err}
	}()
	select {
	case r := <-answer:
		if r.panic != nil {
			cancel()
			release()
			panic(r.panic)
		}
		if r.err != nil {
			cancel()
			release()
			return nil, r.err
		}
		// Reading the body is the caller's: its end ends the request.
		stop := context.AfterFunc(caller, cancel)
		r.resp.Body = &closeHookBody{ReadCloser: r.resp.Body, closed: func() {
			stop()
			cancel()
			release()
		}}
		return r.resp, nil
	case <-caller.Done():
	}
	if !http1.Load() {
		cancel()
	}
	go func() {
		timer := time.AfterFunc(finishGrace, cancel)
		defer timer.Stop()
		// A panic after the caller left has no one to raise it to; the
		// transport's own error handling ends there too.
		if r := <-answer; r.err == nil && r.panic == nil {
			_, _ = io.CopyN(io.Discard, r.resp.Body, drainLimit)
			_ = r.resp.Body.Close()
		}
		cancel()
		release()
	}()
	return nil, caller.Err()
}

// roundTripHTTP2 sends req on the caller's goroutine, with the caller's
// context: over HTTP/2 a cancelled request costs only its stream, so
// nothing is gained by running it detached, and the goroutine it would
// take is one more stack per request in flight. Should the connection
// handed over turn out to be HTTP/1.x (the upstream changed), the next
// request runs detached again.
func (t *limitedTransport) roundTripHTTP2(req *http.Request, release func()) (resp *http.Response, err error) {
	sent := false
	defer func() {
		if !sent {
			release() // on error, and on a panic going up to the caller
		}
	}()
	ctx := withPoolEvent(req.Context(), connHanded, func() { t.h2.Store(true) }) // a Pool's: HTTP/2
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { t.h2.Store(isHTTP2(info.Conn)) },
	})
	resp, err = t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	sent = true
	resp.Body = &closeHookBody{ReadCloser: resp.Body, closed: release}
	return resp, nil
}

// isHTTP2 reports whether conn, as handed to a request, speaks HTTP/2.
func isHTTP2(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// DetachedPanic is a panic of an upstream request that ran on a goroutine
// of the transport's own, raised again on the caller's goroutine so that
// the caller's recovery sees it, with the stack where it happened.
type DetachedPanic struct {
	Value any
	Stack []byte
}

func (p *DetachedPanic) String() string {
	return fmt.Sprintf("%v (in an upstream request's goroutine)\n%s", p.Value, p.Stack)
}

// Relayed returns the panic's own value and the stack where it happened,
// for recovery code that reports them.
func (p *DetachedPanic) Relayed() (value any, stack []byte) { return p.Value, p.Stack }

// CloseIdleConnections passes the call on to the wrapped transport.
func (t *limitedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// closeHookBody is a response body that gives back what its request held
// when closed: a slot of the Limiter, a stream of the Pool.
type closeHookBody struct {
	io.ReadCloser
	closed func() // may be called more than once
}

func (b *closeHookBody) Close() error {
	err := b.ReadCloser.Close()
	b.closed()
	return err
}
