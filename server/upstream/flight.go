package upstream

import (
	"context"
	"time"
)

// fetchTimeout bounds a shared fetch (discovery or token), which runs
// detached from the caller that started it so that one caller giving up
// does not fail the others.
const fetchTimeout = 30 * time.Second

// flight is one fetch that any number of callers wait for.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newFlight[T any]() *flight[T] { return &flight[T]{done: make(chan struct{})} }

// finish records the result and releases the waiters.
func (f *flight[T]) finish(v T, err error) {
	f.val, f.err = v, err
	close(f.done)
}

// wait waits for the result or for ctx to end; false means ctx ended first.
func (f *flight[T]) wait(ctx context.Context) bool {
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		// Prefer a result that is already there.
		select {
		case <-f.done:
			return true
		default:
			return false
		}
	}
}

// result is the result; call it only after wait returned true.
func (f *flight[T]) result() (T, error) { return f.val, f.err }

// detach returns a context for a shared fetch started by a caller: it keeps
// the caller's values (trace spans) but not its cancellation, and ends at
// fetchTimeout or when lifetime (the Client) ends.
func detach(caller, lifetime context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(caller), fetchTimeout)
	stop := context.AfterFunc(lifetime, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
