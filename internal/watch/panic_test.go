package watch_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// TestPollerPanicEndsItsWatches panics in a poller: its watches end with
// a *panics.Error, the panic is reported once, the process goes on, and a
// new watch of the service polls afresh.
func TestPollerPanicEndsItsWatches(t *testing.T) {
	var logs testkit.Buffer
	var counted atomic.Int32
	var panicking atomic.Bool
	panicking.Store(true)
	h := watch.New(watch.Config{
		Lookup: func(_ context.Context, id string) (upstream.ServiceStatus, error) {
			if panicking.Swap(false) {
				var m map[string]int
				m["nil map"] = 1 // a real runtime panic
			}
			return upstream.ServiceStatus{ServiceID: id, Active: true, Online: true}, nil
		},
		Interval: time.Second,
		Logger:   slog.New(slog.DiscardHandler),
		Panics: panics.NewReporter(slog.New(slog.NewJSONHandler(&logs, nil)), func(where string) {
			if where == panics.WatchPoller {
				counted.Add(1)
			}
		}),
	})
	t.Cleanup(func() { _ = h.Close(testkit.Context(t, waitTimeout)) })

	ctx := testkit.Context(t, waitTimeout)
	send := func(watch.Update) error { return errors.New("stop") }
	err := h.Watch(ctx, "c", "svc", send)
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Where != panics.WatchPoller {
		t.Fatalf("Watch = %v, want the poller's *panics.Error", err)
	}
	if recs := logs.Records(t); len(recs) != 1 || recs[0]["where"] != panics.WatchPoller || recs[0]["level"] != "ERROR" {
		t.Errorf("log %v, want one ERROR record where watch_poller", recs)
	}
	if counted.Load() != 1 {
		t.Errorf("counted %d panics, want 1", counted.Load())
	}
	// The next watch gets a status: its send's sentinel ends it.
	if err := h.Watch(ctx, "c", "svc", send); err == nil || err.Error() != "stop" {
		t.Errorf("the next Watch = %v, want its first update sent", err)
	}
}
