package resilience

import (
	"errors"
	"sync"
	"time"
)

// ErrThrottled is matched (errors.Is) by the error of every call that the
// adaptive throttle refused: the upstream has been answering too few of
// the calls sent to it, and this one was not sent.
var ErrThrottled = errors.New("resilience: upstream is failing too many calls; call throttled locally")

// throttleBuckets is how many time buckets the throttle's window holds.
const throttleBuckets = 120

// throttle is client-side adaptive throttling as the Google SRE book
// describes it ("Handling Overload"): over a sliding window it counts the
// calls the facade wanted to make (requests, the refused ones included)
// and the calls the upstream answered (accepts), and refuses a new call
// with probability
//
//	max(0, (requests - k*accepts) / (requests + 1))
//
// Nothing is refused while the upstream answers at least 1/k of the
// calls, nor while the window holds fewer than minRequests requests (one
// unlucky call of a quiet facade must not refuse the next half); beyond
// that, the calls let through stay about k times what the
// upstream answers, so that the upstream keeps getting enough traffic to
// show that it is back.
//
// The window is a ring of time buckets, so that old counts drop out bucket
// by bucket instead of all at once. The clock and the random source are
// fields so that tests can drive them.
type throttle struct {
	k      float64
	min    int64
	bucket time.Duration
	now    func() time.Time
	rand   func() float64 // uniform in [0, 1)

	mu       sync.Mutex
	ring     [throttleBuckets]throttleCounts
	last     int64 // index (time / bucket) of the newest bucket
	requests int64
	accepts  int64
}

// throttleCounts are one bucket's counts.
type throttleCounts struct{ requests, accepts int64 }

func newThrottle(k float64, window time.Duration, minRequests int, now func() time.Time, rand func() float64) *throttle {
	bucket := max(window/throttleBuckets, time.Millisecond)
	return &throttle{
		k:      k,
		min:    int64(minRequests),
		bucket: bucket,
		now:    now,
		rand:   rand,
		last:   now().UnixNano() / int64(bucket),
	}
}

// allow reports whether a call may go upstream. A refused call counts as a
// request at once; an allowed one is counted by done, when its outcome is
// known.
func (t *throttle) allow() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advanceLocked()
	p := t.probabilityLocked()
	if p <= 0 || t.rand() >= p {
		return true
	}
	t.addLocked(1, 0)
	return false
}

// done counts an allowed call: a request, and an accept when the upstream
// answered it. A call whose outcome says nothing of the upstream (its
// caller gave up first, say) is not counted at all.
func (t *throttle) done(outcome error) {
	if outcome == outcomeExcluded {
		return
	}
	accepts := int64(0)
	if outcome == nil {
		accepts = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advanceLocked()
	t.addLocked(1, accepts)
}

// reset forgets the window: the upstream was shown to be back (the
// breaker's probes succeeded), and the failures of the outage would
// otherwise keep refusing calls until they leave the window, up to a
// window after the upstream came back.
func (t *throttle) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring = [throttleBuckets]throttleCounts{}
	t.requests, t.accepts = 0, 0
	t.last = t.now().UnixNano() / int64(t.bucket)
}

// probability is the current chance that a call is refused.
func (t *throttle) probability() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advanceLocked()
	return t.probabilityLocked()
}

func (t *throttle) probabilityLocked() float64 {
	if t.requests < t.min {
		return 0
	}
	r, a := float64(t.requests), float64(t.accepts)
	return max(0, (r-t.k*a)/(r+1))
}

func (t *throttle) addLocked(requests, accepts int64) {
	b := &t.ring[t.last%throttleBuckets]
	b.requests += requests
	b.accepts += accepts
	t.requests += requests
	t.accepts += accepts
}

// advanceLocked moves the window to now, emptying the buckets that fell
// out of it.
func (t *throttle) advanceLocked() {
	cur := t.now().UnixNano() / int64(t.bucket)
	if cur <= t.last {
		return // same bucket, or the clock stepped back: keep counting here
	}
	if cur-t.last >= throttleBuckets {
		t.ring = [throttleBuckets]throttleCounts{}
		t.requests, t.accepts = 0, 0
	} else {
		for i := t.last + 1; i <= cur; i++ {
			b := &t.ring[i%throttleBuckets]
			t.requests -= b.requests
			t.accepts -= b.accepts
			*b = throttleCounts{}
		}
	}
	t.last = cur
}
