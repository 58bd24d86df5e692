package facade_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a facade,
// emulator, client or child process that does not shut down completely is
// a bug. Each test also checks its own goroutines (checkGoroutines), so
// that a leak is pinned on the test that caused it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
