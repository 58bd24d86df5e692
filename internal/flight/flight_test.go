package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/radkit/radkit-access-facade/internal/flight"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait in these tests: generous for a loaded
// machine, short enough that a broken Group fails instead of hanging.
const testTimeout = 10 * time.Second

// waitIdle is g.Wait bounded by testTimeout.
func waitIdle[K comparable, V any](t *testing.T, g *flight.Group[K, V]) {
	t.Helper()
	idle := make(chan struct{})
	go func() { g.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for the Group's calls to end")
	}
}

// blockingCall returns a call that signals started, then returns val once
// release is closed or fails with its context's error.
func blockingCall(val int, started chan<- struct{}, release <-chan struct{}) func(context.Context) (int, error) {
	var once sync.Once
	return func(ctx context.Context) (int, error) {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return val, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func TestDoSharesOneCall(t *testing.T) {
	var g flight.Group[string, int]
	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	inner := blockingCall(42, started, release)
	fn := func(ctx context.Context) (int, error) { calls.Add(1); return inner(ctx) }

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const callers = 50
	type result struct {
		v      int
		err    error
		joined bool
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			v, err, joined := g.Do(ctx, "k", fn)
			results <- result{v, err, joined}
		}()
	}
	testkit.Eventually(t, testTimeout, "every caller to wait for one call", func() bool { return g.Waiters("k") == callers })
	close(release)
	joined := 0
	for range callers {
		r := <-results
		if r.v != 42 || r.err != nil {
			t.Errorf("caller got (%d, %v), want (42, nil)", r.v, r.err)
		}
		if r.joined {
			joined++
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times, want 1", n)
	}
	if joined != callers-1 {
		t.Errorf("%d callers joined, want %d", joined, callers-1)
	}
	waitIdle(t, &g)
	if g.Len() != 0 {
		t.Errorf("Len = %d after the call ended, want 0", g.Len())
	}
}

func TestLastCallerLeavingCancelsTheCall(t *testing.T) {
	var g flight.Group[string, int]
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var cancelled atomic.Bool
	inner := blockingCall(1, started, release)
	fn := func(ctx context.Context) (int, error) {
		v, err := inner(ctx)
		cancelled.Store(errors.Is(err, context.Canceled))
		return v, err
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err, _ := g.Do(ctx1, "k", fn); errs <- err }()
	go func() { _, err, _ := g.Do(ctx2, "k", fn); errs <- err }()
	testkit.Eventually(t, testTimeout, "both callers to wait", func() bool { return g.Waiters("k") == 2 })

	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	if !g.Running("k") || g.Waiters("k") != 1 {
		t.Fatalf("after one of two callers left: running=%v waiters=%d, want true 1", g.Running("k"), g.Waiters("k"))
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller: %v, want context.Canceled", err)
	}
	if g.Running("k") {
		t.Error("an abandoned call can still be joined")
	}
	waitIdle(t, &g)
	if !cancelled.Load() {
		t.Error("the call was not cancelled after its last caller left")
	}
}

func TestFinishKeepsAbandonedCallsRunning(t *testing.T) {
	g := flight.Group[string, int]{Finish: true}
	started, release := make(chan struct{}), make(chan struct{})
	var cancelled atomic.Bool
	inner := blockingCall(7, started, release)
	fn := func(ctx context.Context) (int, error) {
		v, err := inner(ctx)
		cancelled.Store(err != nil)
		return v, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err, _ := g.Do(ctx, "k", fn); done <- err }()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v, want context.Canceled", err)
	}
	if !g.Running("k") {
		t.Fatal("the abandoned call can no longer be joined")
	}

	// A later caller joins the abandoned call and gets its result.
	ctx2, cancel2 := context.WithTimeout(context.Background(), testTimeout)
	defer cancel2()
	type result struct {
		v      int
		err    error
		joined bool
	}
	got := make(chan result, 1)
	go func() { v, err, joined := g.Do(ctx2, "k", fn); got <- result{v, err, joined} }()
	testkit.Eventually(t, testTimeout, "the later caller to join", func() bool { return g.Waiters("k") == 1 })
	close(release)
	if r := <-got; r.v != 7 || r.err != nil || !r.joined {
		t.Errorf("later caller got (%d, %v, joined=%v), want (7, nil, true)", r.v, r.err, r.joined)
	}
	waitIdle(t, &g)
	if cancelled.Load() {
		t.Error("a call of a finishing Group was cancelled")
	}
}

func TestFailuresAreNotRemembered(t *testing.T) {
	var g flight.Group[string, int]
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(context.Context) (int, error)
		want    int
		wantErr error
	}{
		{"failure", func(context.Context) (int, error) { return 0, boom }, 0, boom},
		{"then success", func(context.Context) (int, error) { return 1, nil }, 1, nil},
		{"then another success", func(context.Context) (int, error) { return 2, nil }, 2, nil},
	}
	for _, tt := range tests {
		v, err, joined := g.Do(ctx, "k", tt.fn)
		if v != tt.want || !errors.Is(err, tt.wantErr) || joined {
			t.Errorf("%s: got (%d, %v, %v), want (%d, %v, false)", tt.name, v, err, joined, tt.want, tt.wantErr)
		}
	}
	waitIdle(t, &g)
}

func TestDoReturnsWhenItsCallerGivesUp(t *testing.T) {
	g := flight.Group[string, int]{Finish: true}
	started, release := make(chan struct{}), make(chan struct{})
	fn := blockingCall(1, started, release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err, _ := g.Do(ctx, "k", fn); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Do did not return when its caller's deadline passed")
	}
	close(release)
	waitIdle(t, &g)

	// A caller whose context already ended starts nothing.
	if _, err, _ := g.Do(ctx, "k2", fn); !errors.Is(err, context.DeadlineExceeded) || g.Running("k2") {
		t.Errorf("Do with an ended context: err=%v running=%v, want DeadlineExceeded and no call", err, g.Running("k2"))
	}
}

func TestCallContextKeepsValuesNotCancellation(t *testing.T) {
	var g flight.Group[string, string]
	type key struct{}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "span"), testTimeout)
	defer cancel()
	v, err, _ := g.Do(ctx, "k", func(ctx context.Context) (string, error) {
		if _, ok := ctx.Deadline(); ok {
			return "", errors.New("the call inherited its caller's deadline")
		}
		s, _ := ctx.Value(key{}).(string)
		return s, nil
	})
	if err != nil || v != "span" {
		t.Fatalf("got (%q, %v), want (\"span\", nil)", v, err)
	}
}

func TestLatestDeadline(t *testing.T) {
	base := time.Now().Add(time.Hour)
	tests := []struct {
		name      string
		deadlines []time.Time // zero: no deadline
		want      time.Time
		wantOK    bool
	}{
		{"one caller", []time.Time{base}, base, true},
		{"the later of two", []time.Time{base, base.Add(time.Minute)}, base.Add(time.Minute), true},
		{"the later of two, in the other order", []time.Time{base.Add(time.Minute), base}, base.Add(time.Minute), true},
		{"a caller without a deadline", []time.Time{base, {}}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g flight.Group[string, int]
			started, release := make(chan struct{}), make(chan struct{})
			type seen struct {
				d  time.Time
				ok bool
			}
			observed := make(chan seen, 1)
			inner := blockingCall(0, started, release)
			fn := func(ctx context.Context) (int, error) {
				v, err := inner(ctx)
				d, ok := flight.LatestDeadline(ctx)
				observed <- seen{d, ok}
				return v, err
			}
			done := make(chan struct{}, len(tt.deadlines))
			for i, d := range tt.deadlines {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if !d.IsZero() {
					ctx, cancel = context.WithDeadline(ctx, d)
				}
				defer cancel()
				go func() { g.Do(ctx, "k", fn); done <- struct{}{} }()
				testkit.Eventually(t, testTimeout, "the caller to join", func() bool { return g.Waiters("k") == i+1 })
			}
			close(release)
			got := <-observed
			for range tt.deadlines {
				<-done
			}
			waitIdle(t, &g)
			if got.ok != tt.wantOK || !got.d.Equal(tt.want) {
				t.Errorf("LatestDeadline = (%v, %v), want (%v, %v)", got.d, got.ok, tt.want, tt.wantOK)
			}
		})
	}

	// Outside a call, it is the context's own deadline.
	ctx, cancel := context.WithDeadline(context.Background(), base)
	defer cancel()
	if d, ok := flight.LatestDeadline(ctx); !ok || !d.Equal(base) {
		t.Errorf("outside a call: LatestDeadline = (%v, %v), want (%v, true)", d, ok, base)
	}
}

// TestEarliestDeadline checks that a call sees the earliest deadline of
// the callers still waiting: it moves later when the earliest caller
// leaves, and is absent once only callers without a deadline remain.
func TestEarliestDeadline(t *testing.T) {
	var g flight.Group[string, int]
	base := time.Now().Add(time.Hour)
	early, leave := context.WithDeadline(context.Background(), base)
	defer leave()
	late, cancelLate := context.WithDeadline(context.Background(), base.Add(time.Minute))
	defer cancelLate()
	started := make(chan context.Context, 1)
	finish := make(chan struct{})
	done := make(chan struct{}, 3)
	go func() {
		_, _, _ = g.Do(early, "k", func(ctx context.Context) (int, error) {
			started <- ctx
			<-finish
			return 1, nil
		})
		done <- struct{}{}
	}()
	ctx := <-started
	for _, c := range []context.Context{late, context.Background()} {
		go func() {
			_, _, _ = g.Do(c, "k", func(context.Context) (int, error) { return 0, nil })
			done <- struct{}{}
		}()
	}
	testkit.Eventually(t, 5*time.Second, "three waiters", func() bool { return g.Waiters("k") == 3 })
	if d, ok := flight.EarliestDeadline(ctx); !ok || !d.Equal(base) {
		t.Errorf("EarliestDeadline = (%v, %v), want (%v, true)", d, ok, base)
	}
	leave() // the earliest caller gives up
	<-done
	if d, ok := flight.EarliestDeadline(ctx); !ok || !d.Equal(base.Add(time.Minute)) {
		t.Errorf("EarliestDeadline after the earliest left = (%v, %v), want (%v, true)", d, ok, base.Add(time.Minute))
	}
	cancelLate()
	<-done
	if d, ok := flight.EarliestDeadline(ctx); ok {
		t.Errorf("EarliestDeadline with only a caller without deadline = (%v, true), want none", d)
	}
	close(finish)
	<-done
	g.Wait()
}
