package testkit

import (
	"context"
	"testing"
	"time"
)

// PollInterval is the pause between two looks at a condition in Eventually.
const PollInterval = 5 * time.Millisecond

// Eventually polls cond until it is true, failing tb with what after
// timeout. The timeout only turns a hang into a failure: choose it
// generously, never as a measurement.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(PollInterval)
	}
}

// Context returns a context that ends after d, or in tb's cleanup. It is
// not tb.Context(), so that cleanups may still use it.
func Context(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// Receive returns the next value from ch, failing tb with what if none
// comes within timeout: a receive in a test that cannot hang.
func Receive[T any](tb testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("gave up after %s waiting for %s", timeout, what)
		panic("unreachable") // Fatalf does not return
	}
}
