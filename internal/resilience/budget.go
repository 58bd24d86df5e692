package resilience

import "sync"

// retryBudget bounds retries to a share of calls, so that retries cannot
// multiply the load on a struggling upstream: every call sent upstream
// earns ratio of a retry token, up to max tokens held, and every retry
// spends a whole one. Over any stretch of time, retries are then at most
// ratio times the calls plus max, whatever the upstream does; a quiet
// client saves up to max tokens, so that its rare failures are still
// retried. (This is the shape of Finagle's retry budget and of gRPC's
// retry throttling, gRFC A6, with tokens earned per call instead of per
// success: see docs/adr/0002-proportional-degradation.md for why.)
type retryBudget struct {
	ratio float64
	max   float64

	mu     sync.Mutex
	tokens float64
}

func newRetryBudget(ratio, max float64) *retryBudget {
	return &retryBudget{ratio: ratio, max: max, tokens: max}
}

// deposit credits one call sent upstream.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.tokens+b.ratio, b.max)
	b.mu.Unlock()
}

// withdraw takes the token for one retry, and reports false when there is
// none: the retry must not be made.
func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// balance is the tokens held.
func (b *retryBudget) balance() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}
