package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// guarded runs one caller's call through the breaker and the throttle:
// they let it through or refuse it (see admit), and count it once, with
// its outcome, however many upstream attempts it took and however many
// callers shared them. ctx is the caller's.
func guarded[T any](ctx context.Context, c *Client, op upstream.Op, call func() (T, error)) (T, error) {
	done, err := c.admit(op)
	if err != nil {
		var zero T
		return zero, err
	}
	finished := false
	defer func() {
		if !finished { // call panicked: a probe slot must not leak
			done(outcomeFailure)
		}
	}()
	v, err := call()
	finished = true
	done(outcome(ctx, err))
	return v, err
}

// retry calls call until it succeeds, fails in a way retryable does not
// accept, or c.maxAttempts attempts were made. Each attempt is bounded by
// c.attemptTimeout, and each retry must be paid for from the retry budget,
// which the first attempt pays into (see Config.RetryBudgetRatio). Between
// attempts it sleeps the backoff (see Config.BaseDelay), at least the
// upstream's Retry-After, unless that sleep would end after deadline:
// then, as when ctx ends, it stops at once. op names the call in errors.
func retry[T any](ctx context.Context, c *Client, op upstream.Op, deadline func() (time.Time, bool), retryable func(error) bool, call func(context.Context) (T, error)) (T, error) {
	var zero T
	c.budget.deposit()
	for attempt := 1; ; attempt++ {
		if err := c.pass(ctx); err != nil {
			if attempt > 1 {
				return zero, fmt.Errorf("resilience: %s: retry refused: %w", op, err)
			}
			return zero, err
		}
		v, err := func() (T, error) {
			actx, cancel := context.WithTimeoutCause(ctx, c.attemptTimeout, errAttemptTimeout)
			defer cancel()
			return call(actx)
		}()
		if err == nil {
			return v, nil
		}
		if attempt >= c.maxAttempts || ctx.Err() != nil || !retryable(err) {
			return zero, giveUp(op, attempt, err)
		}
		wait, ok := c.backoff(attempt-1, upstream.RetryAfter(err))
		if !ok {
			return zero, giveUp(op, attempt, err)
		}
		if d, has := deadline(); has && time.Now().Add(wait).After(d) {
			return zero, giveUp(op, attempt, err)
		}
		if !c.budget.withdraw() {
			c.retriesDenied.Add(1)
			return zero, giveUp(op, attempt, err)
		}
		c.retries.Add(1)
		if err := sleep(ctx, wait); err != nil {
			return zero, fmt.Errorf("resilience: %s: retry abandoned: %w", op, err)
		}
	}
}

// admit lets one call through the breaker, then the throttle, or refuses
// it with a *CircuitOpenError or an error matching ErrThrottled. The
// returned done must be called once with the call's outcome.
//
// A call the throttle refuses counts as a failure for the breaker (the
// throttle refuses only because the upstream has been failing), so that an
// upstream that is down opens the breaker even while the throttle already
// refuses most calls. A half-open breaker's probes skip the throttle: they
// are how the breaker learns that the upstream is back.
func (c *Client) admit(op upstream.Op) (done func(outcome error), err error) {
	bdone, err := c.breaker.cb.Allow()
	if err != nil {
		c.refusedOpen.Add(1)
		return nil, c.breaker.refusal()
	}
	probe := c.breaker.cb.State() == gobreaker.StateHalfOpen
	if !probe && !c.throttle.allow() {
		bdone(outcomeFailure)
		c.refusedThrottled.Add(1)
		return nil, fmt.Errorf("resilience: %s: %w", op, ErrThrottled)
	}
	return func(o error) {
		bdone(o)
		c.throttle.done(o)
	}, nil
}

// giveUp returns the last attempt's error, with the attempt count when
// there was more than one.
func giveUp(op upstream.Op, attempts int, err error) error {
	if attempts == 1 {
		return err
	}
	return fmt.Errorf("resilience: %s: gave up after %d attempts: %w", op, attempts, err)
}

// backoff returns the sleep before retry n (from 0): a uniformly random
// duration up to min(maxDelay, baseDelay*2^n) ("full jitter", which spreads
// out callers that failed together), raised to the upstream's Retry-After.
// It reports false when Retry-After is longer than c.maxRetryAfter.
func (c *Client) backoff(n int, retryAfter time.Duration) (time.Duration, bool) {
	if retryAfter > c.maxRetryAfter {
		return 0, false
	}
	ceiling := c.maxDelay
	if n < 62 && c.baseDelay <= c.maxDelay>>n {
		ceiling = c.baseDelay << n
	}
	wait := time.Duration(0)
	if ceiling > 0 {
		wait = rand.N(ceiling + 1)
	}
	return max(wait, retryAfter), true
}

// sleep waits for d, or until ctx ends, and then returns its error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryIdempotent is the retry rule of a call that is safe to repeat (the
// status lookup): retry when the upstream is in trouble (5xx), rate
// limiting (429), or did not answer at all.
func retryIdempotent(err error) bool {
	if errors.Is(err, upstream.ErrClosed) || upstream.IsQueued(err) {
		// Closed, or refused at the facade's own bound: a retry would
		// only queue again.
		return false
	}
	return upstream.IsTransient(err) || upstream.IsUnanswered(err)
}

// retryUnsent is the retry rule of a call that must not be repeated if it
// may have taken effect (an OTP request, a revocation): retry only when the
// call provably never reached its endpoint (and the failure is one a retry
// may cure), or the upstream answered "retry": true on a 5xx or 429.
func retryUnsent(err error) bool {
	if upstream.IsRefused(err) {
		return false
	}
	if upstream.NeverReached(err) {
		// A failed set-up step (discovery, token) is retried like any
		// idempotent request: only when the upstream was in trouble.
		return upstream.IsTransient(err) || upstream.IsUnanswered(err)
	}
	return upstream.IsTransient(err) && upstream.RetryAdvised(err)
}
