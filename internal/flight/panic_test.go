package flight_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/flight"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/requestid"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestPanicInCallIsAnError panics in a shared call's goroutine, which no
// caller's recovery covers: the process goes on, the caller gets a
// *panics.Error, the panic is reported once with the starting caller's
// request ID, and the next call for the key runs afresh.
func TestPanicInCallIsAnError(t *testing.T) {
	var logs testkit.Buffer
	var counted atomic.Int32
	r := panics.NewReporter(slog.New(slog.NewJSONHandler(&logs, nil)), func(where string) {
		if where == panics.CoalescedCall {
			counted.Add(1)
		}
	})
	ctx := panics.NewContext(requestid.NewContext(testkit.Context(t, testTimeout), "req-1"), r)

	var g flight.Group[string, int]
	_, err, _ := g.Do(ctx, "k", func(context.Context) (int, error) { panic("boom") })
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Where != panics.CoalescedCall || pe.Value != "boom" {
		t.Fatalf("Do = %v, want a *panics.Error of the panic", err)
	}
	recs := logs.Records(t)
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["x_request_id"] != "req-1" || !strings.Contains(recs[0]["stack"].(string), "panic_test.go") {
		t.Errorf("log %v, want one ERROR record with x_request_id req-1 and the stack", recs)
	}
	if counted.Load() != 1 {
		t.Errorf("counted %d panics, want 1", counted.Load())
	}
	v, err, _ := g.Do(ctx, "k", func(context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("the next Do = %d, %v; want 7, nil", v, err)
	}
	waitIdle(t, &g)
}
