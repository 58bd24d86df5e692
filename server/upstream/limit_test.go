package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestLimiter checks the bound: a slot is held until the response body is
// closed, a request beyond the bound waits and then fails with
// ErrConcurrencyLimit before its deadline, a cancelled wait reports the
// cancellation, and the gauges follow.
func TestLimiter(t *testing.T) {
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // headers out: RoundTrip returns, the body is still to come
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(unblock)
	l := NewLimiter(1)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: l.Transport(tr)}

	first, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if l.InFlight() != 1 {
		t.Errorf("InFlight = %d with a body open, want 1", l.InFlight())
	}

	// The body is still open: a second request waits, then is refused a
	// little before its deadline.
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	waited := make(chan error, 1)
	go func() {
		_, err := c.Do(mustRequest(t, ctx, srv.URL))
		waited <- err
	}()
	testkit.Eventually(t, 5*time.Second, "the second request to wait", func() bool { return l.Waiting() == 1 })
	err = <-waited
	if !errors.Is(err, ErrConcurrencyLimit) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second request = %v, want ErrConcurrencyLimit (and not the deadline)", err)
	}
	if IsRefused(err) != true {
		t.Errorf("IsRefused(%v) = false: the breaker would count the facade's own bound as upstream trouble", err)
	}
	if elapsed := time.Since(start); elapsed < deadline/2 || ctx.Err() != nil {
		t.Errorf("refused after %v (context: %v), want a wait that ends before the deadline", elapsed, ctx.Err())
	}

	// A cancelled wait is a cancellation, not the bound.
	cctx, ccancel := context.WithCancel(context.Background())
	go func() {
		testkit.Eventually(t, 5*time.Second, "the third request to wait", func() bool { return l.Waiting() == 1 })
		ccancel()
	}()
	if _, err := c.Do(mustRequest(t, cctx, srv.URL)); !errors.Is(err, context.Canceled) || errors.Is(err, ErrConcurrencyLimit) {
		t.Errorf("cancelled wait = %v, want context.Canceled", err)
	}

	// Closing the body frees the slot.
	first.Body.Close()
	first.Body.Close() // twice: the slot is released once
	if l.InFlight() != 0 || l.Waiting() != 0 {
		t.Errorf("InFlight, Waiting = %d, %d after the body was closed, want 0, 0", l.InFlight(), l.Waiting())
	}
	if freeSlots(l) == 0 {
		t.Fatal("no slot free after the body was closed")
	}
}

// freeSlots is how many of l's slots are free now.
func freeSlots(l *Limiter) int { return cap(l.slots) - len(l.slots) }

func mustRequest(t *testing.T, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestLimiterRefusesTooLateASlot checks that a request that got its slot
// only after waiting, with less time left than requests lately held one,
// is refused rather than sent, and that one that does not wait is sent
// whatever its deadline.
func TestLimiterRefusesTooLateASlot(t *testing.T) {
	l := NewLimiter(1)
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.release(2 * time.Second) // requests lately held their slot for 2 s

	short, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := l.acquire(short); err != nil {
		t.Fatalf("a free slot: %v, want it taken whatever the deadline", err)
	}
	go func() {
		testkit.Eventually(t, 5*time.Second, "a request to wait", func() bool { return l.Waiting() == 1 })
		l.release(time.Millisecond)
	}()
	waiter, cancelWaiter := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelWaiter()
	err := l.acquire(waiter)
	if !errors.Is(err, ErrConcurrencyLimit) {
		t.Fatalf("a slot free with less time left than a call needs: %v, want ErrConcurrencyLimit", err)
	}
	if l.InFlight() != 0 || freeSlots(l) == 0 {
		t.Errorf("the refused request kept its slot (InFlight %d)", l.InFlight())
	}
}

// TestLimiterWaitAfterTheCallerLeft checks that a call whose context has
// ended gets no slot from a wait, even when a slot is free as the wait
// starts: a select with both ready picks either, and the slot must then
// go back.
func TestLimiterWaitAfterTheCallerLeft(t *testing.T) {
	l := NewLimiter(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noDeadline := func() (time.Time, bool) { return time.Time{}, false }
	withDeadline := func() (time.Time, bool) { return time.Now().Add(time.Hour), true }
	for i := range 200 {
		deadline := noDeadline
		if i%2 == 1 {
			deadline = withDeadline
		}
		if err := l.wait(ctx, deadline); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait %d with the caller gone: %v, want context.Canceled", i, err)
		}
		if freeSlots(l) != 1 {
			t.Fatalf("wait %d with the caller gone kept the slot", i)
		}
	}
}

// TestLimiterFreeMoreThanTaken checks that giving back a slot that was
// not taken panics instead of blocking forever.
func TestLimiterFreeMoreThanTaken(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("freeing a slot that was not taken did not panic")
		}
	}()
	NewLimiter(2).free()
}

// TestLimiterHold checks a slot taken ahead of the request: the call's
// first request uses it without waiting, exactly once, and done gives
// back a slot that no request used.
func TestLimiterHold(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	l := NewLimiter(1)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: l.Transport(tr)}

	// With the only slot held, the call's own request is sent: it does
	// not wait for the slot its call holds.
	ctx, done, err := l.Hold(testkit.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Do(mustRequest(t, ctx, srv.URL))
	if err != nil {
		t.Fatalf("the call's first request = %v, want it sent on the held slot", err)
	}
	// The slot is used: the call's next request (a retry) waits as any
	// other would, and is refused before its deadline.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Do(mustRequest(t, short, srv.URL)); !errors.Is(err, ErrConcurrencyLimit) {
		t.Errorf("a second request on a used held slot = %v, want ErrConcurrencyLimit", err)
	}
	first.Body.Close()
	done() // the request released the slot: done has nothing to give back
	if l.InFlight() != 0 {
		t.Errorf("InFlight = %d after the body was closed and done, want 0", l.InFlight())
	}
	if freeSlots(l) != 1 {
		t.Fatal("want exactly one free slot after a held slot was used and released")
	}

	// A held slot that no request used goes back at done.
	_, done, err = l.Hold(testkit.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if l.InFlight() != 1 {
		t.Errorf("InFlight = %d while a slot is held, want 1", l.InFlight())
	}
	done()
	done()
	if l.InFlight() != 0 || freeSlots(l) != 1 {
		t.Errorf("after done: InFlight = %d, want 0 and exactly one free slot", l.InFlight())
	}
}

// TestTokenFetchNeedsNoSlot: calls that hold every slot (Hold) and wait
// for an access token are not stuck behind a token fetch that waits for a
// slot. The fetch here is started by a call that holds none, as a
// background refresh is; with token requests inside the bound, both calls
// fail at their deadlines.
func TestTokenFetchNeedsNoSlot(t *testing.T) {
	f := newFake(t)
	f.tokenDelay.Store(int64(200 * time.Millisecond))
	l := NewLimiter(1)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cfg := f.config(modeCC)
	cfg.HTTPClient = &http.Client{Transport: l.Transport(tr)}
	c := newClient(t, cfg)

	held, done, err := l.Hold(testkit.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	unheld := make(chan error, 1)
	go func() {
		_, err := c.GenerateOTP(testkit.Context(t, 5*time.Second), OTPRequest{Owner: "o", EndpointID: "unheld"})
		unheld <- err
	}()
	testkit.Eventually(t, 5*time.Second, "the token fetch to start, or to wait for a slot", func() bool {
		return f.nTokenCC.Load() > 0 || l.Waiting() > 0
	})
	if _, err := c.GenerateOTP(held, OTPRequest{Owner: "o", EndpointID: "held"}); err != nil {
		t.Errorf("the call holding the slot = %v, want its OTP", err)
	}
	done()
	if err := <-unheld; err != nil {
		t.Errorf("the call without a slot = %v, want its OTP once the other's slot came free", err)
	}
}
