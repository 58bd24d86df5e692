package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// ErrCircuitOpen is matched (errors.Is) by the error of every call refused
// because the circuit breaker is open, or half-open with all its probes
// taken. The error is a *CircuitOpenError, which says when to come back.
var ErrCircuitOpen = errors.New("resilience: upstream circuit breaker is open")

// CircuitOpenError is the error of a call refused by the circuit breaker:
// no upstream call was made.
type CircuitOpenError struct {
	// RetryAfter is how long until the breaker lets probes through again.
	// It is 0 when the breaker is already half-open with all its probes
	// taken: the probes' outcome is a matter of moments.
	RetryAfter time.Duration
}

// Error describes the refusal.
func (e *CircuitOpenError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v: half-open in %v", ErrCircuitOpen, e.RetryAfter.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v: probes in flight", ErrCircuitOpen)
}

// Is makes errors.Is(err, ErrCircuitOpen) true.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// Outcomes of one call as the breaker and the throttle count them. They
// see these instead of the call's error, because whether an error counts
// depends on the caller's context too.
var (
	outcomeFailure  = errors.New("resilience: upstream trouble")
	outcomeExcluded = errors.New("resilience: says nothing of the upstream")
)

// breaker is the one circuit breaker in front of the whole upstream. It
// counts calls, not attempts (a call and its retries count once), in a
// rolling window, and opens only when most calls in the window failed:
// it is there for an upstream that is down, while the throttle answers an
// upstream that fails some of the calls.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	timeout  time.Duration
	openedAt atomic.Int64 // UnixNano of the last transition to open
}

// breakerBuckets is how many buckets the breaker's rolling window holds.
const breakerBuckets = 10

// newBreaker returns the breaker for cfg. closed is called when probes
// close the half-open breaker: the upstream is back.
func newBreaker(cfg Config, closed func()) *breaker {
	b := &breaker{timeout: orDefault(cfg.BreakerTimeout, DefaultBreakerTimeout)}
	trip := tripRule{
		ratio:       orDefault(cfg.BreakerFailureRatio, DefaultBreakerFailureRatio),
		minRequests: orDefault(cfg.BreakerMinRequests, DefaultBreakerMinRequests),
	}
	interval := orDefault(cfg.BreakerInterval, DefaultBreakerInterval)
	onChange := cfg.OnStateChange
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         "radkit-access-upstream",
		MaxRequests:  orDefault(cfg.BreakerProbes, DefaultBreakerProbes),
		Interval:     interval,
		BucketPeriod: max(interval/breakerBuckets, time.Millisecond),
		Timeout:      b.timeout,
		ReadyToTrip:  trip.ready,
		IsExcluded:   func(err error) bool { return err == outcomeExcluded },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
			if from == gobreaker.StateHalfOpen && to == gobreaker.StateClosed {
				closed()
			}
			if onChange != nil {
				onChange(from.String(), to.String())
			}
		},
	})
	return b
}

// tripRule decides when the closed breaker opens: when at least ratio of
// at least minRequests calls in the window failed. There is deliberately
// no rule on consecutive failures: at thousands of calls a second, a run
// of a few failures happens within a second at any failure rate above a
// few percent, and would turn a partly failing upstream into an outage.
type tripRule struct {
	ratio       float64
	minRequests uint32
}

// ready reports whether counts show the upstream down. Excluded calls
// (see outcome) are in Requests too, and are left out here.
func (r tripRule) ready(counts gobreaker.Counts) bool {
	calls := counts.Requests - min(counts.TotalExclusions, counts.Requests)
	return calls >= r.minRequests &&
		float64(counts.TotalFailures) >= r.ratio*float64(calls)
}

// refusal is the error of a call the breaker refused.
func (b *breaker) refusal() *CircuitOpenError {
	if b.cb.State() != gobreaker.StateOpen {
		return &CircuitOpenError{} // half-open, probes taken
	}
	return &CircuitOpenError{RetryAfter: b.untilHalfOpen()}
}

// untilHalfOpen is how long the open breaker stays open.
func (b *breaker) untilHalfOpen() time.Duration {
	opened := time.Unix(0, b.openedAt.Load())
	return max(time.Until(opened.Add(b.timeout)), 0)
}

// openError is a *CircuitOpenError while the breaker is open, else nil.
func (b *breaker) openError() error {
	if b.cb.State() != gobreaker.StateOpen {
		return nil
	}
	return &CircuitOpenError{RetryAfter: b.untilHalfOpen()}
}

// state names the breaker's state: "closed", "half-open" or "open".
func (b *breaker) state() string { return b.cb.State().String() }

// outcome classifies a call's result for the breaker and the throttle:
// nil when the upstream answered (an accept, in the SRE book's terms),
// outcomeExcluded when the result says nothing about the upstream's
// health, outcomeFailure when it shows the upstream overloaded or
// unavailable. It is the one place that decides this.
func outcome(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		// The caller gave up (cancelled, or its own deadline passed): how
		// far the upstream had got is unknown, and a caller with short
		// deadlines must not open the breaker for everyone.
		return outcomeExcluded
	case upstream.IsRefused(err):
		return outcomeExcluded // nothing was sent
	case upstream.IsQueued(err):
		// The attempt timed out while waiting for the facade's own slot,
		// connection or stream: the facade's wait, not the upstream's.
		return outcomeExcluded
	case errors.Is(err, ErrBudgetExhausted):
		return outcomeExcluded // refused by our own budget: nothing was sent
	case upstream.IsTransient(err):
		return outcomeFailure
	case upstream.StatusCode(err) != 0 && !errors.Is(err, upstream.ErrMalformedResponse):
		// 4xx: the upstream is up and answered for the request (or our
		// credentials); opening the breaker would not help anyone.
		return nil
	default:
		// Transport failures, attempt timeouts, malformed answers,
		// discovery failures: the upstream is not answering as it should.
		return outcomeFailure
	}
}
