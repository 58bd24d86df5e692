package resilience

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// draws is a random source that returns its values in turn, the last one
// forever.
func draws(v ...float64) func() float64 {
	return func() float64 {
		x := v[0]
		if len(v) > 1 {
			v = v[1:]
		}
		return x
	}
}

func TestThrottleProbability(t *testing.T) {
	tests := []struct {
		name             string
		answered, failed int
		want             float64
	}{
		{"nothing yet", 0, 0, 0},
		{"all answered", 100, 0, 0},
		{"half answered: K=2 refuses nothing", 50, 50, 0},
		{"a third answered", 10, 20, (30 - 2*10) / 31.0},
		{"none answered", 0, 10, 10 / 11.0},
		{"none of many answered", 0, 1000, 1000 / 1001.0},
	}
	// Below the minimum volume nothing is refused.
	clk := testkit.NewClock(time.Unix(1000, 0))
	th := newThrottle(2, 2*time.Minute, 5, clk.Now, never)
	for range 4 {
		th.done(outcomeFailure)
	}
	if got := th.probability(); got != 0 {
		t.Errorf("4 failures under a minimum of 5: probability = %v, want 0", got)
	}
	th.done(outcomeFailure)
	if got, want := th.probability(), 5/6.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("5 failures at a minimum of 5: probability = %v, want %v", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Unix(1000, 0))
			th := newThrottle(2, 2*time.Minute, 0, clk.Now, never)
			for range tt.answered {
				th.done(nil)
			}
			for range tt.failed {
				th.done(outcomeFailure)
			}
			if got := th.probability(); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("probability = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestThrottleRefusesByDrawAndCountsRefusals: a call is refused when the
// draw falls below the probability, and a refused call is a request too,
// which is what drives the probability towards 1 while the upstream
// answers nothing.
func TestThrottleRefusesByDrawAndCountsRefusals(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1000, 0))
	th := newThrottle(2, 2*time.Minute, 0, clk.Now, nil)
	for range 3 {
		th.done(outcomeFailure)
	}
	// p = 3/4: a draw of 0.8 passes, 0.7 does not.
	th.rand = draws(0.8)
	if !th.allow() {
		t.Fatal("draw 0.8 at p=0.75 was refused")
	}
	th.rand = draws(0.7)
	if th.allow() {
		t.Fatal("draw 0.7 at p=0.75 was allowed")
	}
	// The refusal counted: 4 requests, no accepts.
	if got, want := th.probability(), 4/5.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("after a refusal probability = %v, want %v", got, want)
	}
	// A call that says nothing of the upstream counts for nothing.
	th.done(outcomeExcluded)
	if got, want := th.probability(), 4/5.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("after an excluded call probability = %v, want %v", got, want)
	}
}

// TestThrottleWindowSlides: counts leave the window bucket by bucket, a
// window after they were made.
func TestThrottleWindowSlides(t *testing.T) {
	const window = 2 * time.Minute
	clk := testkit.NewClock(time.Unix(1000, 0))
	th := newThrottle(2, window, 0, clk.Now, never)
	for range 10 {
		th.done(outcomeFailure) // bucket 0: 10 failures
	}
	clk.Advance(window / 2)
	for range 10 {
		th.done(outcomeFailure) // half a window later: 10 more
	}
	if got, want := th.probability(), 20/21.0; math.Abs(got-want) > 1e-9 {
		t.Fatalf("probability = %v, want %v", got, want)
	}
	clk.Advance(window / 2) // the first 10 drop out
	if got, want := th.probability(), 10/11.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("a window after the first failures probability = %v, want %v", got, want)
	}
	clk.Advance(window / 2)
	if got := th.probability(); got != 0 {
		t.Errorf("a window after the last failures probability = %v, want 0", got)
	}
	// A long pause empties the whole ring at once.
	th.done(outcomeFailure)
	clk.Advance(10 * window)
	if got := th.probability(); got != 0 {
		t.Errorf("after a long pause probability = %v, want 0", got)
	}
}

// TestThrottledCallNotSent: through the Client, an upstream that answers
// nothing gets throttled calls refused with ErrThrottled and never sent,
// and a call is counted once however many attempts it made.
func TestThrottledCallNotSent(t *testing.T) {
	cfg := fast()
	cfg.BreakerMinRequests = 1 << 30 // the throttle alone
	cfg.ThrottleMinRequests = 1
	e := newEnv(t, cfg, envOptions{})
	ctx := testCtx(t)
	e.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: 503})

	e.c.throttle.rand = never
	for range 4 {
		if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 503 {
			t.Fatalf("error %v, want 503", err)
		}
	}
	// Four calls, each of three attempts: four requests, p = 4/5.
	if got, want := e.c.throttle.probability(), 4/5.0; math.Abs(got-want) > 1e-9 {
		t.Fatalf("probability = %v, want %v: one call must count once", got, want)
	}
	before := e.emu.Calls(emulator.RouteStatus)
	e.c.throttle.rand = draws(0)
	_, err := e.c.ServiceStatus(ctx, knownService)
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("error %v, want ErrThrottled", err)
	}
	if got := e.emu.Calls(emulator.RouteStatus) - before; got != 0 {
		t.Errorf("a throttled call made %d upstream calls, want 0", got)
	}
	if got := e.c.Stats().RefusedThrottled; got != 1 {
		t.Errorf("Stats().RefusedThrottled = %d, want 1", got)
	}
}

// TestThrottleRefusalsOpenTheBreaker: calls the throttle refuses count as
// failures for the breaker, so that an upstream that is down opens the
// breaker (whose probes then find out when it is back) even while the
// throttle refuses nearly every call and few reach the upstream.
func TestThrottleRefusalsOpenTheBreaker(t *testing.T) {
	cfg := fast()
	cfg.BreakerMinRequests = 5
	cfg.BreakerInterval = time.Hour
	cfg.ThrottleMinRequests = 1
	e := newEnv(t, cfg, envOptions{})
	e.c.throttle.rand = draws(0) // refuse whenever the probability is above 0
	ctx := testCtx(t)
	e.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: 503})
	if _, err := e.c.ServiceStatus(ctx, knownService); statusCode(err) != 503 {
		t.Fatalf("first call: error %v, want 503", err)
	}
	for i := range 4 {
		if _, err := e.c.ServiceStatus(ctx, knownService); !errors.Is(err, ErrThrottled) {
			t.Fatalf("call %d: error %v, want ErrThrottled", i+2, err)
		}
	}
	if got := e.c.State(); got != "open" {
		t.Errorf("after 1 failed and 4 throttled calls the breaker is %s, want open", got)
	}
	if got := e.emu.Calls(emulator.RouteStatus); got != 3 {
		t.Errorf("upstream calls = %d, want 3 (the first call's attempts)", got)
	}
}
