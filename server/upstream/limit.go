package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrConcurrencyLimit is matched by the error of a request that waited for
// one of the Limiter's slots until its deadline: the facade had as many
// upstream calls in flight as it allows. Nothing was sent. A retry later
// may succeed.
var ErrConcurrencyLimit = errors.New("upstream: too many calls in flight")

// Limiter bounds the upstream requests in flight. A request beyond the
// bound waits for a slot within its context's deadline and then fails
// with ErrConcurrencyLimit. A request holds its slot until its response
// body is closed. It is safe for concurrent use.
type Limiter struct {
	sem      *semaphore.Weighted
	limit    int
	inFlight atomic.Int64
	waiting  atomic.Int64
}

// NewLimiter returns a Limiter of n requests in flight (at least 1).
func NewLimiter(n int) *Limiter {
	n = max(n, 1)
	return &Limiter{sem: semaphore.NewWeighted(int64(n)), limit: n}
}

// Limit is the bound.
func (l *Limiter) Limit() int { return l.limit }

// InFlight reports the requests holding a slot now.
func (l *Limiter) InFlight() int64 { return l.inFlight.Load() }

// Waiting reports the requests waiting for a slot now.
func (l *Limiter) Waiting() int64 { return l.waiting.Load() }

// Transport returns base bounded by l.
func (l *Limiter) Transport(base http.RoundTripper) http.RoundTripper {
	return &limitedTransport{l: l, base: base}
}

// maxRefusalMargin bounds how long before its deadline a waiting request
// gives up (see acquire).
const maxRefusalMargin = 500 * time.Millisecond

// acquire takes a slot, waiting within ctx. A request with a deadline gives
// up a little before it (a fifth of the time left, at most
// maxRefusalMargin), so that the refusal still reaches a caller whose own
// deadline is the same, rather than the caller's deadline passing first.
func (l *Limiter) acquire(ctx context.Context) error {
	if !l.sem.TryAcquire(1) {
		wctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			margin := min(time.Until(dl)/5, maxRefusalMargin)
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
			defer cancel()
		}
		l.waiting.Add(1)
		err := l.sem.Acquire(wctx, 1)
		l.waiting.Add(-1)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err() // the caller went away
			}
			return fmt.Errorf("%w: all %d slots stayed busy until the deadline", ErrConcurrencyLimit, l.limit)
		}
	}
	l.inFlight.Add(1)
	return nil
}

func (l *Limiter) release() {
	l.inFlight.Add(-1)
	l.sem.Release(1)
}

type limitedTransport struct {
	l    *Limiter
	base http.RoundTripper
}

// RoundTrip sends req once a slot is free; the slot is released when the
// response body is closed, or at once on error.
func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.l.acquire(req.Context()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close it, even on error
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.l.release()
		return nil, err
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, release: sync.OnceFunc(t.l.release)}
	return resp, nil
}

// CloseIdleConnections passes the call on to the wrapped transport.
func (t *limitedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// slotBody releases its request's slot when closed.
type slotBody struct {
	io.ReadCloser
	release func()
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
