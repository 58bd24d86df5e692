// Package idempotency remembers the result of a call under a caller-chosen
// idempotency key (AIP-155 request_id), so that a retried call returns the
// first call's result instead of doing the work again, and concurrent
// duplicates share one call.
//
// Only successes are remembered. A key is bound to a fingerprint of the
// request it was first used with; using it again with another fingerprint is
// refused with ErrRequestIDReused. Memory is bounded: entries expire after a
// TTL and the Store holds at most a fixed number of keys at once.
//
// The Store runs no goroutine of its own beyond the shared calls themselves,
// so it needs no Close.
package idempotency

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults for Config's zero values. DefaultTTL is the 10 minutes that
// access.proto promises for GenerateOTPRequest.request_id.
const (
	DefaultTTL        = 10 * time.Minute
	DefaultMaxEntries = 100_000
)

// ErrRequestIDReused is returned by Do when the key is remembered, or in
// flight, with a different fingerprint.
var ErrRequestIDReused = errors.New("idempotency: key already used with a different request")

// ErrFull is returned, wrapped in a *FullError, by Do when the Store holds
// MaxEntries unexpired keys and the key is not among them.
var ErrFull = errors.New("idempotency: too many keys remembered")

// FullError is the error Do returns when the Store is full. It matches
// ErrFull under errors.Is.
type FullError struct {
	// RetryAfter is how long until the oldest remembered key expires and
	// frees a place.
	RetryAfter time.Duration
}

// Error describes the failure.
func (e *FullError) Error() string {
	return fmt.Sprintf("%v; retry after %s", ErrFull, e.RetryAfter)
}

// Unwrap returns ErrFull.
func (e *FullError) Unwrap() error { return ErrFull }

// Config configures a Store. Zero values mean the defaults.
type Config struct {
	// TTL is how long a successful result is remembered, counted from
	// when the call finished. Zero means DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the keys held at once, in flight or remembered.
	// Zero means DefaultMaxEntries.
	MaxEntries int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Store remembers results by key. Its methods are safe for concurrent use.
// The values it holds may be secrets (OTPs): it never logs them, and never
// includes them in errors.
type Store struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	// expiry lists the keys of finished entries, oldest first. A constant
	// TTL counted from a clock read under mu keeps it sorted by expiry, so
	// eviction only ever looks at the front: amortised O(1) per call, with
	// no janitor goroutine to stop.
	expiry list.List
}

// entry is one key: a call in flight, or a remembered success.
type entry struct {
	fingerprint string
	done        chan struct{} // closed when the call has finished

	// Guarded by Store.mu.
	waiters  int                // callers waiting while the call is in flight
	cancel   context.CancelFunc // cancels the call when the last waiter leaves
	finished bool
	expires  time.Time
	elem     *list.Element // in Store.expiry once remembered

	// Written once before done is closed; read only after.
	value string
	err   error
}

// New returns an empty Store for cfg.
func New(cfg Config) *Store {
	s := &Store{ttl: cfg.TTL, maxEntries: cfg.MaxEntries, now: cfg.Now, entries: make(map[string]*entry)}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.maxEntries <= 0 {
		s.maxEntries = DefaultMaxEntries
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// TTL returns how long the Store remembers a success.
func (s *Store) TTL() time.Duration { return s.ttl }

// Len returns the number of keys held, in flight or remembered and not yet
// evicted.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Do returns the remembered result for key, or runs fn once to get it.
//
//   - key remembered with the same fingerprint: the remembered value, and fn
//     does not run.
//   - key remembered or in flight with another fingerprint:
//     ErrRequestIDReused.
//   - key in flight with the same fingerprint: Do waits for that call and
//     returns its result, success or failure.
//   - key unknown: fn runs in a goroutine of its own, with a context that
//     keeps ctx's values but not its cancellation, so that the first caller
//     giving up does not fail the others. That context is cancelled only when
//     every caller waiting for the call has given up: then nobody can receive
//     the result. fn must bound itself (the server gives it a call timeout).
//
// Whatever the case, Do returns when ctx ends, with ctx's error wrapped.
//
// Failures are not remembered: the entry is dropped, and the next Do with
// the key runs fn again. For OTPs that is safe even when the failure was
// ambiguous (a timeout after the request was sent, so that the upstream may
// have minted an OTP that nobody received): an OTP is a single-use
// enrollment secret, and an extra unused one grants nothing to anyone who
// does not hold it, whereas remembering the failure would leave the caller
// with no way to get an OTP under that key for the whole TTL.
//
// When the Store already holds MaxEntries keys, a new key is refused with a
// *FullError rather than by evicting an unexpired key: evicting would
// silently break the promise made to that key's caller (a retry would mint
// a second OTP), whereas refusing is visible and the caller can retry later.
func (s *Store) Do(ctx context.Context, key, fingerprint string, fn func(context.Context) (string, error)) (string, error) {
	s.mu.Lock()
	now := s.now()
	s.evictLocked(now)
	if e, ok := s.entries[key]; ok {
		if e.fingerprint != fingerprint {
			s.mu.Unlock()
			return "", ErrRequestIDReused
		}
		if e.finished {
			// Only successes stay in entries once finished.
			v := e.value
			s.mu.Unlock()
			return v, nil
		}
		e.waiters++
		s.mu.Unlock()
		return s.wait(ctx, key, e)
	}
	if len(s.entries) >= s.maxEntries {
		retryAfter := s.ttl
		if front := s.expiry.Front(); front != nil {
			retryAfter = max(s.entries[front.Value.(string)].expires.Sub(now), 0)
		}
		s.mu.Unlock()
		return "", &FullError{RetryAfter: retryAfter}
	}
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &entry{fingerprint: fingerprint, done: make(chan struct{}), waiters: 1, cancel: cancel}
	s.entries[key] = e
	s.mu.Unlock()

	go s.run(callCtx, key, e, fn)
	return s.wait(ctx, key, e)
}

// run makes the call for e and publishes its result.
func (s *Store) run(ctx context.Context, key string, e *entry, fn func(context.Context) (string, error)) {
	v, err := fn(ctx)
	e.cancel() // release the context's resources

	s.mu.Lock()
	defer s.mu.Unlock()
	e.value, e.err = v, err
	e.finished = true
	// The key may have been abandoned (every waiter gave up) and even
	// reused since: only the entry that is still in place is updated.
	if s.entries[key] == e {
		if err != nil {
			delete(s.entries, key)
		} else {
			e.expires = s.now().Add(s.ttl)
			e.elem = s.expiry.PushBack(key)
		}
	}
	close(e.done)
}

// wait waits for e's result or for ctx to end.
func (s *Store) wait(ctx context.Context, key string, e *entry) (string, error) {
	select {
	case <-e.done:
		return e.value, e.err
	case <-ctx.Done():
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e.finished {
		// The result arrived meanwhile: prefer it.
		return e.value, e.err
	}
	e.waiters--
	if e.waiters == 0 {
		// Nobody is left to receive the result. Cancel the call and forget
		// the key, so that a retry starts afresh instead of joining a call
		// that is being cancelled.
		e.cancel()
		delete(s.entries, key)
	}
	return "", fmt.Errorf("idempotency: waiting for the shared call: %w", ctx.Err())
}

// evictLocked drops the remembered entries that expired by now.
func (s *Store) evictLocked(now time.Time) {
	for front := s.expiry.Front(); front != nil; front = s.expiry.Front() {
		key := front.Value.(string)
		e := s.entries[key]
		if now.Before(e.expires) {
			return
		}
		s.expiry.Remove(front)
		delete(s.entries, key)
	}
}

// Fingerprint returns a fixed-size digest (SHA-256, hex) of fields that
// tells different field lists apart: each field is prefixed by its length,
// so that ("ab", "c") and ("a", "bc") differ. Use it for keys and
// fingerprints, so that what the Store holds per key is small and bounded
// whatever the callers send.
func Fingerprint(fields ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}
