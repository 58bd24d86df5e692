package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/idempotency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// minter is a call that counts its runs and returns a new value each time.
type minter struct{ calls atomic.Int64 }

func (m *minter) mint(context.Context) (string, error) {
	return fmt.Sprintf("otp-%d", m.calls.Add(1)), nil
}

func TestDoRemembersSuccesses(t *testing.T) {
	const ttl = 10 * time.Minute
	type step struct {
		advance     time.Duration
		key, fp     string
		want        string // "" with wantErr set
		wantErr     error
		wantRunsNow int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"repeat returns the first value", []step{
			{0, "k", "f", "otp-1", nil, 1},
			{ttl - time.Second, "k", "f", "otp-1", nil, 1},
		}},
		{"different fingerprint is refused", []step{
			{0, "k", "f", "otp-1", nil, 1},
			{time.Minute, "k", "g", "", idempotency.ErrRequestIDReused, 1},
			{0, "k", "f", "otp-1", nil, 1},
		}},
		{"keys are independent", []step{
			{0, "k1", "f", "otp-1", nil, 1},
			{0, "k2", "f", "otp-2", nil, 2},
			{0, "k1", "f", "otp-1", nil, 2},
		}},
		{"expired key runs again", []step{
			{0, "k", "f", "otp-1", nil, 1},
			{ttl, "k", "f", "otp-2", nil, 2},
			{ttl - time.Nanosecond, "k", "f", "otp-2", nil, 2},
		}},
		{"expired key may take another fingerprint", []step{
			{0, "k", "f", "otp-1", nil, 1},
			{ttl, "k", "g", "otp-2", nil, 2},
			{0, "k", "f", "", idempotency.ErrRequestIDReused, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			s := idempotency.New(idempotency.Config{TTL: ttl, Now: clk.Now})
			var m minter
			for i, st := range tt.steps {
				clk.Advance(st.advance)
				got, err := s.Do(context.Background(), st.key, st.fp, m.mint)
				if got != st.want || !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("step %d: Do(%q, %q) = %q, %v; want %q, %v", i, st.key, st.fp, got, err, st.want, st.wantErr)
				}
				if n := m.calls.Load(); n != st.wantRunsNow {
					t.Fatalf("step %d: fn ran %d times, want %d", i, n, st.wantRunsNow)
				}
			}
		})
	}
}

func TestDoForgetsFailures(t *testing.T) {
	s := idempotency.New(idempotency.Config{})
	boom := errors.New("upstream 500")
	runs := 0
	fail := func(context.Context) (string, error) { runs++; return "", boom }
	for i := range 2 {
		if _, err := s.Do(context.Background(), "k", "f", fail); !errors.Is(err, boom) {
			t.Fatalf("call %d: err = %v, want %v", i, err, boom)
		}
	}
	if runs != 2 {
		t.Errorf("fn ran %d times, want 2: a failure must not be remembered", runs)
	}
	if got, err := s.Do(context.Background(), "k", "g", func(context.Context) (string, error) { return "otp", nil }); err != nil || got != "otp" {
		t.Errorf("after failures, another fingerprint: %q, %v; want the key free", got, err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestDoSharesConcurrentDuplicates(t *testing.T) {
	s := idempotency.New(idempotency.Config{})
	release := make(chan struct{})
	started := make(chan struct{})
	var runs atomic.Int64
	fn := func(context.Context) (string, error) {
		if runs.Add(1) == 1 {
			close(started)
		}
		<-release
		return "otp-shared", nil
	}

	const n = 50
	var wg sync.WaitGroup
	results := make([]string, n)
	errs := make([]error, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0], errs[0] = s.Do(context.Background(), "k", "f", fn)
	}()
	<-started
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Do(context.Background(), "k", "f", fn)
		}()
	}
	// A duplicate with other fields is refused at once, even in flight.
	if _, err := s.Do(context.Background(), "k", "other", fn); !errors.Is(err, idempotency.ErrRequestIDReused) {
		t.Errorf("different fingerprint in flight: %v, want ErrRequestIDReused", err)
	}
	waitForWaiters(t, s, "k", n)
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != "otp-shared" {
			t.Errorf("caller %d: %q, %v; want the shared value", i, results[i], errs[i])
		}
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("fn ran %d times for %d concurrent duplicates, want 1", got, n)
	}
}

func TestDoFirstCallerLeavingDoesNotCancelTheOthers(t *testing.T) {
	s := idempotency.New(idempotency.Config{})
	release := make(chan struct{})
	started := make(chan struct{})
	callCtxErr := make(chan error, 1)
	fn := func(ctx context.Context) (string, error) {
		close(started)
		<-release
		callCtxErr <- ctx.Err()
		return "otp", nil
	}

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := s.Do(firstCtx, "k", "f", fn)
		firstErr <- err
	}()
	<-started

	secondDone := make(chan struct{})
	var second string
	var secondErr error
	go func() {
		defer close(secondDone)
		second, secondErr = s.Do(context.Background(), "k", "f", fn)
	}()
	waitForWaiters(t, s, "k", 2)

	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(release)
	<-secondDone
	if secondErr != nil || second != "otp" {
		t.Errorf("second caller: %q, %v; want the shared value", second, secondErr)
	}
	if err := <-callCtxErr; err != nil {
		t.Errorf("the shared call's context ended (%v) while a caller still waited", err)
	}
}

// waitForWaiters waits until n callers wait for key's call. It counts
// rather than sleeps; the test's own timeout bounds it.
func waitForWaiters(t *testing.T, s *idempotency.Store, key string, n int) {
	t.Helper()
	for idempotency.Waiters(s, key) < n {
		time.Sleep(time.Millisecond)
	}
}

func TestDoCancelsTheCallWhenEveryCallerLeaves(t *testing.T) {
	s := idempotency.New(idempotency.Config{})
	started := make(chan struct{})
	callEnded := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := s.Do(ctx, "k", "f", func(ctx context.Context) (string, error) {
		close(started)
		<-ctx.Done()
		callEnded <- ctx.Err()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do: %v, want context.Canceled", err)
	}
	if err := <-callEnded; !errors.Is(err, context.Canceled) {
		t.Errorf("the call's context: %v, want cancelled once nobody waits", err)
	}
	// The key is free at once: a retry runs a new call.
	got, err := s.Do(context.Background(), "k", "f", func(context.Context) (string, error) { return "otp-2", nil })
	if err != nil || got != "otp-2" {
		t.Errorf("retry after abandoning: %q, %v; want a new call", got, err)
	}
}

func TestDoWaitIsBoundedByTheCallersContext(t *testing.T) {
	s := idempotency.New(idempotency.Config{})
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.Do(context.Background(), "k", "f", func(context.Context) (string, error) {
			close(started)
			<-release
			return "otp", nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Do(ctx, "k", "f", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("duplicate with a short deadline: %v, want context.DeadlineExceeded", err)
	}
	close(release)
	<-done
}

func TestDoRefusesNewKeysWhenFull(t *testing.T) {
	clk := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	const ttl = 10 * time.Minute
	s := idempotency.New(idempotency.Config{TTL: ttl, MaxEntries: 3, Now: clk.Now})
	var m minter
	for i := range 3 {
		if _, err := s.Do(context.Background(), fmt.Sprint("k", i), "f", m.mint); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	// Now 3 minutes after the first; it expires in 7.
	_, err := s.Do(context.Background(), "new", "f", m.mint)
	var full *idempotency.FullError
	if !errors.As(err, &full) || !errors.Is(err, idempotency.ErrFull) {
		t.Fatalf("new key when full: %v, want *FullError matching ErrFull", err)
	}
	if full.RetryAfter != 7*time.Minute {
		t.Errorf("RetryAfter = %s, want 7m (until the oldest key expires)", full.RetryAfter)
	}
	// Remembered keys are still served, and none was evicted.
	if got, err := s.Do(context.Background(), "k0", "f", m.mint); err != nil || got != "otp-1" {
		t.Errorf("remembered key when full: %q, %v; want otp-1", got, err)
	}
	clk.Advance(7 * time.Minute)
	if got, err := s.Do(context.Background(), "new", "f", m.mint); err != nil || got != "otp-4" {
		t.Errorf("new key after the oldest expired: %q, %v; want otp-4", got, err)
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func TestDoEvictsEveryExpiredEntry(t *testing.T) {
	clk := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := idempotency.New(idempotency.Config{TTL: time.Minute, MaxEntries: 1000, Now: clk.Now})
	var m minter
	for i := range 1000 {
		if _, err := s.Do(context.Background(), fmt.Sprint("k", i), "f", m.mint); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	if _, err := s.Do(context.Background(), "last", "f", m.mint); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d after every other entry expired, want 1", n)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		a, b []string
		same bool
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, true},
		{[]string{"ab", "c"}, []string{"a", "bc"}, false},
		{[]string{"a", ""}, []string{"a"}, false},
		{[]string{"", "a"}, []string{"a", ""}, false},
		{[]string{"user@example.com", "ep", "d"}, []string{"user@example.com", "ep", "d "}, false},
	}
	for _, tt := range tests {
		if got := idempotency.Fingerprint(tt.a...) == idempotency.Fingerprint(tt.b...); got != tt.same {
			t.Errorf("Fingerprint(%q) == Fingerprint(%q): %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
	if n := len(idempotency.Fingerprint("x")); n != 64 {
		t.Errorf("len(Fingerprint) = %d, want 64 hex digits", n)
	}
}
