package testkit

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestLoop checks that every worker calls f until stop, that a worker
// whose f returns false stops alone, and that stop returns only once no
// call is running.
func TestLoop(t *testing.T) {
	var calls [3]atomic.Int64
	var running atomic.Int64
	stop := Loop(3, func(worker int) bool {
		running.Add(1)
		defer running.Add(-1)
		return calls[worker].Add(1) < 5 || worker != 2
	})
	Eventually(t, time.Minute, "workers 0 and 1 past 5 calls, worker 2 at its 5th", func() bool {
		return calls[0].Load() > 5 && calls[1].Load() > 5 && calls[2].Load() >= 5
	})
	stop()
	if n := running.Load(); n != 0 {
		t.Errorf("%d calls still running after stop", n)
	}
	if n := calls[2].Load(); n != 5 {
		t.Errorf("worker 2 called f %d times after it returned false at the 5th, want 5", n)
	}
}
