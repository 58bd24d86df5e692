package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// rateGate is a Gate of x/time/rate: a budget kept in this process.
type rateGate struct{ l *rate.Limiter }

func (g rateGate) Admit(context.Context) (bool, time.Duration) {
	r := g.l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// TestGateRefusesBeforeSending: beyond the budget a call fails with a
// *BudgetError, nothing reaches the upstream, and the breaker does not
// count the refusals as upstream failures.
func TestGateRefusesBeforeSending(t *testing.T) {
	cfg := fast()
	cfg.Gate = rateGate{rate.NewLimiter(rate.Every(time.Hour), 2)}
	cfg.BreakerMinRequests = 1
	e := newEnv(t, cfg, envOptions{})
	ctx := testCtx(t)
	var ok, refused int
	for range 6 {
		_, err := e.c.GenerateOTP(ctx, upstream.OTPRequest{Owner: "o@example.com", EndpointID: "r1", Description: "d"})
		var be *BudgetError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &be) && errors.Is(err, ErrBudgetExhausted) && be.RetryAfter > 0:
			refused++
		default:
			t.Fatalf("GenerateOTP: %v", err)
		}
	}
	if ok != 2 || refused != 4 {
		t.Fatalf("%d minted, %d refused; want 2 and 4", ok, refused)
	}
	if n := len(e.emu.OTPs()); n != 2 {
		t.Fatalf("the upstream minted %d OTPs, want 2", n)
	}
	if st := e.c.State(); st != "closed" {
		t.Fatalf("breaker %s after budget refusals, want closed", st)
	}
}
