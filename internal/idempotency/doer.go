package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Doer remembers results by key as Store.Do describes. *Store keeps them
// in this process (the default); redisstate.Idempotency keeps them in
// Redis, so that every replica gives the same answer.
type Doer interface {
	// Do is Store.Do.
	Do(ctx context.Context, owner, key string, fingerprint Digest, fn func(context.Context) (string, error)) (value string, replayed bool, err error)
	// TTL is how long a result is remembered.
	TTL() time.Duration
}

// ErrUnavailable is matched (errors.Is) by the error of a Doer that could
// not reach the store it keeps results in. Nothing ran: the caller must
// refuse rather than run fn unguarded, which could do the work twice.
var ErrUnavailable = errors.New("idempotency: the store of remembered results is unavailable")

// RetryAfterUnavailable is the RetryInfo given with a refusal because the
// store was unavailable. A Doer whose claim on a key may land after its
// caller was refused (a Redis that stalled, then ran the command) bounds
// that claim by it, so that the caller's retry is never held longer than
// it was told to wait.
const RetryAfterUnavailable = time.Second

// ErrStateLost is matched (errors.Is) by the error of a Doer whose store
// lost results it had acknowledged (a Redis restarted without persistence,
// flushed, or failed over to a stale replica): it cannot tell whether a
// key it does not find was already answered, so it refuses rather than run
// fn. The error is a *LostError.
var ErrStateLost = errors.New("idempotency: the store lost remembered results")

// LostError is the error of a Doer that refuses keys it cannot vouch for
// after its store lost data. It matches ErrStateLost.
type LostError struct {
	// RetryAfter is how long the refusal of unknown keys lasts from now,
	// at most the remembering window.
	RetryAfter time.Duration
}

// Error describes the refusal.
func (e *LostError) Error() string {
	return ErrStateLost.Error() + "; unknown keys are refused for another " + e.RetryAfter.String()
}

// Unwrap returns ErrStateLost.
func (e *LostError) Unwrap() error { return ErrStateLost }

// ErrStateKeyUnknown is matched (errors.Is) by the error of a Doer that
// found a remembered result sealed under a key this process does not hold:
// a configuration error (a state key rotated out too early, or replicas
// with different keys), not an outage, and retrying does not help.
var ErrStateKeyUnknown = errors.New("idempotency: remembered result sealed under a state key this replica does not hold")

// StateKeyError is the error of a Doer that found a result sealed under a
// key it does not hold. It matches ErrStateKeyUnknown and Err.
type StateKeyError struct {
	// KeyID names the missing key (an ID that reveals nothing of it).
	KeyID string
	// Err is the underlying error.
	Err error
}

// Error names the key ID.
func (e *StateKeyError) Error() string {
	return fmt.Sprintf("%v (key ID %s)", ErrStateKeyUnknown, e.KeyID)
}

// Unwrap returns ErrStateKeyUnknown and Err.
func (e *StateKeyError) Unwrap() []error { return []error{ErrStateKeyUnknown, e.Err} }
