package resilience

import (
	"testing"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

func TestRetryBudget(t *testing.T) {
	b := newRetryBudget(0.25, 2)
	// It starts full: two retries, then none.
	for i := range 2 {
		if !b.withdraw() {
			t.Fatalf("retry %d of a full budget refused", i)
		}
	}
	if b.withdraw() {
		t.Fatal("retry from an empty budget allowed")
	}
	// Four calls earn one retry.
	for range 3 {
		b.deposit()
	}
	if b.withdraw() {
		t.Fatal("retry allowed after 3 calls at 0.25 each")
	}
	b.deposit()
	if !b.withdraw() {
		t.Fatal("retry refused after 4 calls at 0.25 each")
	}
	// Savings stop at max.
	for range 100 {
		b.deposit()
	}
	if got := b.balance(); got != 2 {
		t.Errorf("balance after many calls = %v, want the max, 2", got)
	}
}

// TestRetryBudgetBoundsUpstreamCalls: with every upstream call failing and
// the breaker and throttle out of the way, three attempts per call would
// triple the load; the budget holds it to 1 + ratio per call, plus the
// savings it started with.
func TestRetryBudgetBoundsUpstreamCalls(t *testing.T) {
	const calls = 100
	cfg := fast()
	cfg.MaxAttempts = 3
	cfg.BreakerMinRequests = 1 << 30
	e := newEnv(t, cfg, envOptions{})
	e.c.throttle.rand = never
	ctx := testCtx(t)
	e.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: 503})
	for range calls {
		if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 503 {
			t.Fatalf("error %v, want 503", err)
		}
	}
	limit := int64(calls*(1+DefaultRetryBudgetRatio) + DefaultRetryBudgetMax)
	got := e.emu.Calls(emulator.RouteStatus)
	if got > limit {
		t.Errorf("%d calls made %d upstream calls, want at most %d", calls, got, limit)
	}
	if got < limit-1 {
		t.Errorf("%d calls made %d upstream calls, want about %d: the budget was not spent", calls, got, limit)
	}
	st := e.c.Stats()
	if st.Retries != got-calls || st.RetriesDenied == 0 {
		t.Errorf("Stats: %d retries, %d denied; want %d retries and some denied", st.Retries, st.RetriesDenied, got-calls)
	}
}
