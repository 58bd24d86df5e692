package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBudgetExhausted is matched (errors.Is) by the error of a call that
// Config.Gate refused: the facade's own budget of upstream calls is spent,
// and nothing was sent.
var ErrBudgetExhausted = errors.New("resilience: budget of upstream calls spent; call refused locally")

// BudgetError is the error of a call that Config.Gate refused. It matches
// ErrBudgetExhausted.
type BudgetError struct {
	// RetryAfter is how long until the budget allows a call again.
	RetryAfter time.Duration
}

// Error describes the refusal.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v; retry in %s", ErrBudgetExhausted, e.RetryAfter)
}

// Unwrap returns ErrBudgetExhausted.
func (e *BudgetError) Unwrap() error { return ErrBudgetExhausted }

// Gate decides whether one more call may leave for the upstream now: a
// budget of upstream calls per second, such as one shared by replicas.
type Gate interface {
	// Admit takes one call from the budget; when none is left it reports
	// how long until one is.
	Admit(ctx context.Context) (ok bool, retryAfter time.Duration)
}

// pass asks the gate, if any, to let one attempt leave.
func (c *Client) pass(ctx context.Context) error {
	if c.gate == nil {
		return nil
	}
	if ok, retryAfter := c.gate.Admit(ctx); !ok {
		return &BudgetError{RetryAfter: retryAfter}
	}
	return nil
}
