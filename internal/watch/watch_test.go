package watch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	liveService    = "1ryq-e8n8-5g5n" // emulator.DefaultSeed: active, online
	offlineService = "offl-ine0-0001" // active, offline
	waitTimeout    = 15 * time.Second
)

// newHub returns a hub polling the emulator through the facade's own
// status path (the upstream client under resilience), and the emulator.
func newHub(t *testing.T, cfg watch.Config) (*watch.Hub, *emulator.Emulator) {
	t.Helper()
	emu, srv := testkit.StartEmulator(t, emulator.Config{})
	client := emulator.DefaultSeed().Clients[0]
	up, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: client.ID, ClientSecret: client.Secret})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() { _ = up.Close() })
	guard := resilience.New(resilience.Config{Upstream: up})
	cfg.Lookup = guard.ServiceStatus
	h := watch.New(cfg)
	t.Cleanup(func() {
		if err := h.Close(testkit.Context(t, waitTimeout)); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h, emu
}

// watcher runs one Watch in the background, handing its updates over a
// channel; done gets Watch's result.
type watcher struct {
	updates chan watch.Update
	done    chan error
	cancel  context.CancelFunc
}

func startWatch(t *testing.T, h *watch.Hub, caller, serviceID string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{updates: make(chan watch.Update, 16), done: make(chan error, 1), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		w.done <- h.Watch(ctx, caller, serviceID, func(u watch.Update) error {
			select {
			case w.updates <- u:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return w
}

func TestWatchSharesOnePollerAndStopsIt(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h, _ := newHub(t, watch.Config{Now: clock.Now})
	a := startWatch(t, h, "a", liveService)
	b := startWatch(t, h, "b", liveService)
	for _, w := range []*watcher{a, b} {
		u := testkit.Receive(t, w.updates, waitTimeout, "the initial status")
		if u.Kind != watch.Initial || !u.Status.Online || !u.Observed.Equal(clock.Now()) {
			t.Fatalf("first update %+v, want Initial, online, observed at the hub's clock %v", u, clock.Now())
		}
	}
	if st := h.Stats(); st.Watches != 2 || st.Pollers != 1 {
		t.Fatalf("stats %+v, want 2 watches on 1 poller", st)
	}
	a.cancel()
	if err := testkit.Receive(t, a.done, waitTimeout, "the first watch to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v, want context.Canceled", err)
	}
	if st := h.Stats(); st.Watches != 1 || st.Pollers != 1 {
		t.Fatalf("stats %+v, want the poller kept for the other watcher", st)
	}
	b.cancel()
	testkit.Receive(t, b.done, waitTimeout, "the second watch to end")
	if st := h.Stats(); st.Watches != 0 || st.Pollers != 0 {
		t.Fatalf("stats %+v, want no watch and no poller once the last watcher left", st)
	}
	// The poller's goroutine is gone too: Close waits for it, and
	// TestMain's goleak check finds none left.
	if err := h.Close(testkit.Context(t, waitTimeout)); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestWatchLimits(t *testing.T) {
	h, _ := newHub(t, watch.Config{MaxPerCaller: 2, MaxTotal: 3})
	for _, caller := range []string{"a", "a", "b"} {
		w := startWatch(t, h, caller, liveService)
		testkit.Receive(t, w.updates, waitTimeout, "the initial status")
	}
	for _, tc := range []struct{ name, caller string }{
		{"per caller", "a"},
		{"per replica", "c"},
	} {
		err := h.Watch(context.Background(), tc.caller, liveService, func(watch.Update) error { return nil })
		if !errors.Is(err, watch.ErrTooManyWatches) {
			t.Errorf("%s: Watch returned %v, want ErrTooManyWatches", tc.name, err)
		}
	}
}

func TestWatchEnds(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		h, _ := newHub(t, watch.Config{})
		w := startWatch(t, h, "a", "unkn-own0-0001")
		err := testkit.Receive(t, w.done, waitTimeout, "the watch to end")
		if upstream.StatusCode(err) != http.StatusNotFound || watch.Transient(err) {
			t.Fatalf("Watch returned %v, want the upstream's 404, not transient", err)
		}
	})
	t.Run("no status yet and the upstream down", func(t *testing.T) {
		// A transient failure of the first poll does not end the watch
		// any more than a later one: it waits, and its first update is
		// the status the first successful poll gets.
		h, emu := newHub(t, watch.Config{Interval: watch.MinInterval})
		emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: http.StatusServiceUnavailable})
		w := startWatch(t, h, "a", liveService)
		testkit.Eventually(t, waitTimeout, "two failed polls", func() bool {
			select {
			case err := <-w.done:
				t.Fatalf("Watch returned %v while the upstream failed transiently, want it to keep waiting", err)
			case u := <-w.updates:
				t.Fatalf("update %+v while no poll succeeded", u)
			default:
			}
			return h.Stats().Polls >= 2
		})
		emu.ResetFaults()
		if u := testkit.Receive(t, w.updates, waitTimeout, "the initial status once the upstream recovers"); u.Kind != watch.Initial || !u.Status.Online {
			t.Fatalf("first update %+v, want Initial, online", u)
		}
	})
	t.Run("hub closed", func(t *testing.T) {
		h, _ := newHub(t, watch.Config{})
		w := startWatch(t, h, "a", liveService)
		testkit.Receive(t, w.updates, waitTimeout, "the initial status")
		if err := h.Close(testkit.Context(t, waitTimeout)); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := testkit.Receive(t, w.done, waitTimeout, "the watch to end"); !errors.Is(err, watch.ErrClosed) {
			t.Fatalf("Watch returned %v, want ErrClosed", err)
		}
		if err := h.Watch(context.Background(), "a", liveService, func(watch.Update) error { return nil }); !errors.Is(err, watch.ErrClosed) {
			t.Fatalf("Watch after Close returned %v, want ErrClosed", err)
		}
	})
	t.Run("hub closed with a watcher stuck in send", func(t *testing.T) {
		// A client that never reads leaves its watcher blocked in send,
		// where it cannot see the hub close: Close must stop the pollers
		// anyway instead of spending the whole shutdown budget.
		h, _ := newHub(t, watch.Config{Heartbeat: 50 * time.Millisecond})
		first, stuck, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			n := 0
			done <- h.Watch(context.Background(), "a", liveService, func(watch.Update) error {
				if n++; n == 1 {
					close(first)
					return nil
				}
				if n == 2 {
					close(stuck)
				}
				<-release
				return errors.New("client gone")
			})
		}()
		testkit.Receive(t, first, waitTimeout, "the initial status")
		testkit.Receive(t, stuck, waitTimeout, "the watcher to block in send")
		err := h.Close(testkit.Context(t, 5*time.Second))
		select {
		case <-h.Drained():
			t.Fatal("Drained is closed while a watcher is stuck in send")
		default:
		}
		close(release)
		testkit.Receive(t, done, waitTimeout, "the stuck watch to end once released")
		testkit.Receive(t, h.Drained(), waitTimeout, "Drained to close once the stuck watch ended")
		if err != nil {
			t.Fatalf("Close with a watcher stuck in send: %v, want the pollers stopped at once", err)
		}
	})
	t.Run("send fails", func(t *testing.T) {
		h, _ := newHub(t, watch.Config{})
		stop := errors.New("stop")
		if err := h.Watch(testkit.Context(t, waitTimeout), "a", liveService, func(watch.Update) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("Watch returned %v, want send's error", err)
		}
	})
}

// TestTransient: a watch survives what passes with time, the facade's own
// bounds included, and ends on what a retry cannot change.
func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"circuit open", fmt.Errorf("poll: %w", resilience.ErrCircuitOpen), true},
		{"throttled", fmt.Errorf("poll: %w", resilience.ErrThrottled), true},
		{"upstream budget spent", fmt.Errorf("poll: %w", resilience.ErrBudgetExhausted), true},
		{"calls in flight at the bound", fmt.Errorf("poll: %w", upstream.ErrConcurrencyLimit), true},
		{"waiting in the transport", &upstream.TransportError{Op: upstream.OpStatus, Queued: true, Err: context.DeadlineExceeded}, true},
		{"out of time", context.DeadlineExceeded, true},
		{"invalid argument", fmt.Errorf("poll: %w", upstream.ErrInvalidArgument), false},
		{"cancelled", context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := watch.Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
