package redisstate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestIdempotencyLeaderPanic panics in the call that a lease holder runs
// on a goroutine of its own: the caller gets a *panics.Error, the process
// goes on, and the lease is dropped, so that a retry with the same
// request_id runs the call again at once.
func TestIdempotencyLeaderPanic(t *testing.T) {
	srv := testkit.StartRedis(t)
	d := replicas(t, srv, 1)[0]
	ctx := testkit.Context(t, 20*time.Second)
	fp := idempotency.Fingerprint("owner", "endpoint", "description")

	_, _, err := d.Do(ctx, "caller", "req-panic", fp, func(context.Context) (string, error) { panic("boom") })
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Do = %v, want a *panics.Error", err)
	}
	v, replayed, err := d.Do(ctx, "caller", "req-panic", fp, func(context.Context) (string, error) { return "otp-1", nil })
	if err != nil || v != "otp-1" || replayed {
		t.Errorf("the retry: %q, replayed %t, %v; want a fresh otp-1", v, replayed, err)
	}
}
