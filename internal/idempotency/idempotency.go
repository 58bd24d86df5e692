// Package idempotency remembers the result of a call under a caller-chosen
// idempotency key (AIP-155 request_id), so that a retried call returns the
// first call's result instead of doing the work again, and concurrent
// duplicates share one call.
//
// Only successes are remembered. A key is bound to a fingerprint of the
// request it was first used with; using it again with another fingerprint is
// refused with ErrRequestIDReused. Keys are scoped by their owner (the
// caller), and memory is bounded twice: each owner may hold at most
// MaxEntriesPerOwner keys, so that one caller cannot deny keys to the
// others, and the Store as a whole at most MaxEntries, a last resort sized
// from the memory a key costs.
//
// A remembered key holds only what answering a repeat needs: two SHA-256
// digests (the key and the request's fingerprint), the value, its expiry and
// its owner, about 215 bytes in all (docs/performance.md has the figures).
// Nothing of the caller's context survives the call. Expired keys are
// dropped by a sweep that runs while the Store remembers anything; Close
// stops it.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/flight"
)

// Defaults for Config's zero values. DefaultTTL is the 10 minutes that
// access.proto promises for GenerateOTPRequest.request_id. DefaultMaxEntries
// is a last resort: at about 215 bytes a key it holds some 21 MB, well within
// the facade's memory limit; DefaultMaxEntriesPerOwner lets ten callers at
// their quota fill it.
const (
	DefaultTTL                = 10 * time.Minute
	DefaultMaxEntries         = 100_000
	DefaultMaxEntriesPerOwner = 10_000
	DefaultSweepInterval      = time.Second
)

// sweepBatch bounds the keys one sweep drops while holding the lock, so that
// a burst of expiries never stalls the calls for long.
const sweepBatch = 4096

// ErrRequestIDReused is returned by Do when the key is remembered, or in
// flight, with a different fingerprint.
var ErrRequestIDReused = errors.New("idempotency: key already used with a different request")

// ErrFull is returned, wrapped in a *FullError, by Do when a new key would
// take the owner over MaxEntriesPerOwner or the Store over MaxEntries.
var ErrFull = errors.New("idempotency: too many keys remembered")

// FullError is the error Do returns when a new key cannot be remembered. It
// matches ErrFull under errors.Is.
type FullError struct {
	// PerOwner is true when the owner holds MaxEntriesPerOwner keys, false
	// when the Store as a whole holds MaxEntries.
	PerOwner bool
	// RetryAfter is how long until the oldest key that counts against the
	// exhausted bound expires and frees a place; zero when every such key
	// is still in flight.
	RetryAfter time.Duration
}

// Error describes the failure.
func (e *FullError) Error() string {
	scope := "in the store"
	if e.PerOwner {
		scope = "for this owner"
	}
	return fmt.Sprintf("%v %s; retry after %s", ErrFull, scope, e.RetryAfter)
}

// Unwrap returns ErrFull.
func (e *FullError) Unwrap() error { return ErrFull }

// Config configures a Store. Zero values mean the defaults.
type Config struct {
	// TTL is how long a successful result is remembered, counted from
	// when the call finished. Zero means DefaultTTL.
	TTL time.Duration
	// MaxEntries bounds the keys held at once, in flight or remembered,
	// whoever owns them. Zero means DefaultMaxEntries.
	MaxEntries int
	// MaxEntriesPerOwner bounds the keys one owner holds at once, in
	// flight or remembered. Zero means DefaultMaxEntriesPerOwner; it is
	// capped at MaxEntries.
	MaxEntriesPerOwner int
	// SweepInterval is how often expired keys are dropped while the
	// Store remembers any: a key leaves at most this long after it
	// expires. Zero means DefaultSweepInterval.
	SweepInterval time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Digest is a SHA-256 digest: the fixed-size form in which the Store holds
// keys and fingerprints, whatever the callers send.
type Digest [sha256.Size]byte

// Store remembers results by key. Its methods are safe for concurrent use.
// The values it holds may be secrets (OTPs): it never logs them, and never
// includes them in errors.
type Store struct {
	ttl        time.Duration
	maxEntries int
	perOwner   int
	sweepEvery time.Duration
	now        func() time.Time
	epoch      time.Time // expiries are kept as offsets from it

	// calls shares one run per (key, fingerprint) between concurrent
	// duplicates; the last duplicate to leave cancels it.
	calls flight.Group[callKey, result]

	mu         sync.Mutex
	remembered map[Digest]entry
	// deleted counts the entries deleted from remembered since it was
	// made: a Go map never shrinks and keeps room for its deleted
	// entries, so it is rebuilt once as many have left as it holds.
	deleted int
	// expiry lists the remembered keys, oldest first. A constant TTL
	// counted from a clock read under mu keeps it sorted by expiry, so
	// sweeping only ever looks at the front.
	expiry  fifo[Digest]
	pending map[Digest]*pending
	owners  map[string]*owner

	sweeping bool          // a sweep goroutine runs
	closed   bool          // Close was called
	stop     chan struct{} // closed by Close
	sweeper  sync.WaitGroup

	refusedOwner  atomic.Uint64
	refusedFull   atomic.Uint64
	refusedReused atomic.Uint64
}

// entry is a remembered success: exactly what a repeat needs.
type entry struct {
	fingerprint Digest
	value       string
	expires     time.Duration // since Store.epoch
	owner       *owner
}

// pending is a key whose call is in flight. runs counts the calls running
// for it: normally one, two when a call abandoned by every caller has not
// yet returned while a retry runs.
type pending struct {
	fingerprint Digest
	owner       *owner
	runs        int
	remembered  bool // a run succeeded: the key now counts as remembered
}

// owner is what the Store knows of one caller holding keys.
type owner struct {
	name string
	keys int // in flight or remembered
	// expiries of its remembered keys, oldest first (they leave in that
	// order), for the RetryAfter of a refusal.
	expiries fifo[time.Duration]
}

// expiredBy counts o's remembered keys that expired by now (the sweep has
// not dropped them yet) and tells the first expiry after now, if any. It
// looks at no more than o's keys.
func (o *owner) expiredBy(now time.Duration) (expired int, next time.Duration, ok bool) {
	o.expiries.each(func(e time.Duration) bool {
		if e > now {
			next, ok = e, true
			return false
		}
		expired++
		return true
	})
	return expired, next, ok
}

// callKey identifies a shared call: a fingerprint of its own, so that a
// duplicate with other fields never joins it.
type callKey struct{ key, fingerprint Digest }

// result is a call's value and whether it was a remembered one.
type result struct {
	value    string
	replayed bool
}

// New returns an empty Store for cfg. It starts no goroutine until it
// remembers a key; Close stops the one it then runs.
func New(cfg Config) *Store {
	s := &Store{
		ttl:        cfg.TTL,
		maxEntries: cfg.MaxEntries,
		perOwner:   cfg.MaxEntriesPerOwner,
		sweepEvery: cfg.SweepInterval,
		now:        cfg.Now,
		remembered: make(map[Digest]entry),
		pending:    make(map[Digest]*pending),
		owners:     make(map[string]*owner),
		stop:       make(chan struct{}),
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.maxEntries <= 0 {
		s.maxEntries = DefaultMaxEntries
	}
	if s.perOwner <= 0 {
		s.perOwner = DefaultMaxEntriesPerOwner
	}
	s.perOwner = min(s.perOwner, s.maxEntries)
	if s.sweepEvery <= 0 {
		s.sweepEvery = DefaultSweepInterval
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.epoch = s.now()
	return s
}

// TTL returns how long the Store remembers a success.
func (s *Store) TTL() time.Duration { return s.ttl }

// Len returns the number of keys held, in flight or remembered and not yet
// swept.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.remembered) + len(s.pending)
}

// Close stops the sweep and waits for the calls in flight to return (the
// last caller leaving a call cancels it, so that wait is short once the
// servers have stopped). The Store still answers from what it remembers,
// but expired keys then leave only when a new key arrives.
func (s *Store) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.sweeper.Wait()
	s.calls.Wait()
}

// clock returns the Store's time as an offset from its epoch.
func (s *Store) clock() time.Duration { return s.now().Sub(s.epoch) }

// Do returns the remembered result for key, owned by owner, or runs fn once
// to get it. replayed reports that the value is one already given to
// another call: remembered, or shared with a concurrent duplicate.
//
//   - key remembered with the same fingerprint: the remembered value, and fn
//     does not run.
//   - key remembered or in flight with another fingerprint:
//     ErrRequestIDReused.
//   - key in flight with the same fingerprint: Do waits for that call and
//     returns its result, success or failure.
//   - key unknown: when the owner holds MaxEntriesPerOwner keys, or the
//     Store MaxEntries, a *FullError; otherwise fn runs in a goroutine of its
//     own (package flight), with a context that keeps ctx's values but not
//     its cancellation, so that the first caller giving up does not fail the
//     others. That context is cancelled only when every caller waiting for
//     the call has given up. fn must bound itself (the server gives it a
//     call timeout).
//
// Whatever the case, Do returns when ctx ends, with ctx's error wrapped.
//
// Failures are not remembered: the key is dropped, and the next Do with it
// runs fn again. For OTPs that is safe even when the failure was ambiguous
// (a timeout after the request was sent, so that the upstream may have
// minted an OTP that nobody received): an OTP is a single-use enrollment
// secret, and an extra unused one grants nothing to anyone who does not hold
// it, whereas remembering the failure would leave the caller with no way to
// get an OTP under that key for the whole TTL.
//
// A full Store refuses new keys rather than evicting unexpired ones:
// evicting would silently break the promise made to that key's caller (a
// retry would mint a second OTP), whereas refusing is visible and the caller
// can retry later.
func (s *Store) Do(ctx context.Context, owner, key string, fingerprint Digest, fn func(context.Context) (string, error)) (value string, replayed bool, err error) {
	k := Fingerprint(owner, key)
	s.mu.Lock()
	if e, ok := s.remembered[k]; ok && e.expires > s.clock() {
		s.mu.Unlock()
		if e.fingerprint != fingerprint {
			s.refusedReused.Add(1)
			return "", false, ErrRequestIDReused
		}
		return e.value, true, nil
	}
	if p, ok := s.pending[k]; ok && p.fingerprint != fingerprint {
		s.mu.Unlock()
		s.refusedReused.Add(1)
		return "", false, ErrRequestIDReused
	}
	s.mu.Unlock()

	// Only what the run needs is captured: the digests and the owner's
	// name, never ctx (package flight drops it when the call returns).
	res, err, joined := s.calls.Do(ctx, callKey{k, fingerprint}, func(callCtx context.Context) (result, error) {
		return s.run(callCtx, k, fingerprint, owner, fn)
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return "", false, fmt.Errorf("idempotency: waiting for the shared call: %w", err)
		}
		return "", false, err
	}
	return res.value, res.replayed || joined, nil
}

// run is one shared call for key k: it takes a place for the key, calls fn,
// and remembers a success.
func (s *Store) run(ctx context.Context, k, fingerprint Digest, ownerName string, fn func(context.Context) (string, error)) (result, error) {
	p, res, err := s.admit(k, fingerprint, ownerName)
	if p == nil {
		return res, err
	}
	v, err := fn(ctx)
	return s.finish(k, p, v, err)
}

// admit takes a place for key k, or says why not: it is remembered (res
// holds the value), in flight with another fingerprint, or over a bound.
// It returns the pending record when fn must run.
func (s *Store) admit(k, fingerprint Digest, ownerName string) (*pending, result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	// One batch at most, under the lock; the sweep goroutine drops the
	// rest. Expired keys left over count for nothing below: the store
	// bound is exact (a batch that stopped short freed a batch of
	// places), and the owner's quota counts live keys only.
	s.sweepLocked(now, sweepBatch)
	// The key may have been remembered, or taken with other fields, since
	// Do looked.
	if e, ok := s.remembered[k]; ok {
		if e.fingerprint != fingerprint {
			s.refusedReused.Add(1)
			return nil, result{}, ErrRequestIDReused
		}
		return nil, result{value: e.value, replayed: true}, nil
	}
	if p, ok := s.pending[k]; ok {
		if p.fingerprint != fingerprint {
			s.refusedReused.Add(1)
			return nil, result{}, ErrRequestIDReused
		}
		// A call abandoned by every caller has not returned yet: run
		// again for the caller who came back.
		p.runs++
		return p, result{}, nil
	}
	o := s.owners[ownerName]
	if o != nil && o.keys >= s.perOwner {
		if expired, next, ok := o.expiredBy(now); o.keys-expired >= s.perOwner {
			s.refusedOwner.Add(1)
			var retry time.Duration
			if ok {
				retry = next - now
			}
			return nil, result{}, &FullError{PerOwner: true, RetryAfter: retry}
		}
	}
	if len(s.remembered)+len(s.pending) >= s.maxEntries {
		s.refusedFull.Add(1)
		var retry time.Duration
		if front, ok := s.expiry.front(); ok {
			retry = max(s.remembered[front].expires-now, 0)
		}
		return nil, result{}, &FullError{RetryAfter: retry}
	}
	if o == nil {
		// A copy, so that the map never pins a buffer the name was cut
		// from.
		o = &owner{name: strings.Clone(ownerName)}
		s.owners[o.name] = o
	}
	o.keys++
	p := &pending{fingerprint: fingerprint, owner: o, runs: 1}
	s.pending[k] = p
	return p, result{}, nil
}

// finish records the end of one run for p.
func (s *Store) finish(k Digest, p *pending, v string, err error) (result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.runs--
	defer func() {
		if p.runs == 0 {
			delete(s.pending, k)
			if !p.remembered {
				s.releaseLocked(p.owner)
			}
		}
	}()
	if p.remembered {
		// Another run for the key succeeded first: everyone gets the
		// value already given out.
		if e, ok := s.remembered[k]; ok {
			return result{value: e.value, replayed: true}, nil
		}
	}
	if err != nil {
		return result{}, err
	}
	if p.remembered {
		return result{value: v}, nil // the first success has expired since
	}
	p.remembered = true
	expires := s.clock() + s.ttl
	// A copy, so that the value never pins the buffer it was decoded from.
	s.remembered[k] = entry{fingerprint: p.fingerprint, value: strings.Clone(v), expires: expires, owner: p.owner}
	s.expiry.push(k)
	p.owner.expiries.push(expires)
	s.startSweepLocked()
	return result{value: v}, nil
}

// releaseLocked gives back one of o's places.
func (s *Store) releaseLocked(o *owner) {
	if o.keys--; o.keys == 0 {
		delete(s.owners, o.name)
		if len(s.owners) == 0 {
			s.owners = make(map[string]*owner) // maps never shrink
		}
	}
}

// sweepLocked drops up to limit (all if negative) remembered keys that
// expired by now and reports whether expired keys remain.
func (s *Store) sweepLocked(now time.Duration, limit int) (more bool) {
	for ; limit != 0; limit-- {
		k, ok := s.expiry.front()
		if !ok {
			break
		}
		e := s.remembered[k]
		if e.expires > now {
			break
		}
		s.expiry.pop()
		e.owner.expiries.pop()
		delete(s.remembered, k)
		s.deleted++
		s.releaseLocked(e.owner)
	}
	// A Go map keeps its size once grown, and under churn it grows to
	// hold its deleted slots too (twice the memory in a steady state of
	// keys arriving and expiring): once as many entries have left as it
	// holds, move the live ones into a map sized for them. Amortised,
	// that is one copy per deletion.
	if s.deleted > 1024 && s.deleted >= len(s.remembered) {
		m := make(map[Digest]entry, len(s.remembered))
		for k, e := range s.remembered {
			m[k] = e
		}
		s.remembered, s.deleted = m, 0
	}
	if limit == 0 {
		k, ok := s.expiry.front()
		return ok && s.remembered[k].expires <= now
	}
	return false
}

// startSweepLocked starts the sweep goroutine unless it runs or the Store is
// closed.
func (s *Store) startSweepLocked() {
	if s.sweeping || s.closed {
		return
	}
	s.sweeping = true
	s.sweeper.Add(1)
	go s.sweepLoop()
}

// sweepLoop drops expired keys every sweepEvery until the Store remembers
// nothing or is closed.
func (s *Store) sweepLoop() {
	defer s.sweeper.Done()
	t := time.NewTimer(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.mu.Lock()
			s.sweeping = false
			s.mu.Unlock()
			return
		case <-t.C:
		}
		if !s.sweep() {
			return
		}
		t.Reset(s.sweepEvery)
	}
}

// sweep drops every expired key, a batch at a time, and reports whether the
// Store still remembers keys (else the sweep goroutine ends).
func (s *Store) sweep() bool {
	for {
		s.mu.Lock()
		more := s.sweepLocked(s.clock(), sweepBatch)
		if len(s.remembered) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return false
		}
		s.mu.Unlock()
		if !more {
			return true
		}
	}
}

// Stats is a snapshot of a Store, for metrics.
type Stats struct {
	// Remembered and InFlight count the keys held.
	Remembered, InFlight int
	// LargestOwner is the number of keys held by the owner holding the
	// most.
	LargestOwner int
	// Refusals of new keys: the owner at MaxEntriesPerOwner, the Store
	// at MaxEntries; and keys refused for being reused with another
	// fingerprint.
	RefusedPerOwner, RefusedFull, RefusedReused uint64
	// MaxEntries and MaxEntriesPerOwner are the bounds in force.
	MaxEntries, MaxEntriesPerOwner int
}

// Stats returns the Store's current figures. It walks the owners, so it
// costs one step per caller holding keys: call it per scrape, not per call.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Remembered: len(s.remembered), InFlight: len(s.pending), MaxEntries: s.maxEntries, MaxEntriesPerOwner: s.perOwner}
	for _, o := range s.owners {
		st.LargestOwner = max(st.LargestOwner, o.keys)
	}
	s.mu.Unlock()
	st.RefusedPerOwner = s.refusedOwner.Load()
	st.RefusedFull = s.refusedFull.Load()
	st.RefusedReused = s.refusedReused.Load()
	return st
}

// Fingerprint returns the SHA-256 digest of fields that tells different
// field lists apart: each field is prefixed by its length, so that
// ("ep-1l", "ab") and ("ep-1", "lab") differ. Use it for fingerprints, so
// that what the Store holds per key is small and bounded whatever the
// callers send.
func Fingerprint(fields ...string) Digest {
	h := sha256.New()
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// fifoBlock is the size of a fifo's blocks once it has grown.
const fifoBlock = 256

// fifo is a first-in first-out queue in blocks: the first blocks double in
// size from 1 up to fifoBlock, so that a short queue (one caller's few
// keys) stays small, and a drained block is dropped at once, so that a long
// queue holds about one slot per element whether it grows, shrinks or
// churns.
type fifo[T any] struct {
	blocks [][]T
	head   int // the front's index in blocks[0]; blocks[0][head] exists when blocks is not empty
}

func (q *fifo[T]) push(v T) {
	n := len(q.blocks)
	if n == 0 || len(q.blocks[n-1]) == cap(q.blocks[n-1]) {
		size := 1
		if n > 0 {
			size = min(2*cap(q.blocks[n-1]), fifoBlock)
		}
		q.blocks = append(q.blocks, make([]T, 0, size))
		n++
	}
	q.blocks[n-1] = append(q.blocks[n-1], v)
}

func (q *fifo[T]) front() (v T, ok bool) {
	if len(q.blocks) == 0 {
		return v, false
	}
	return q.blocks[0][q.head], true
}

// each calls f on the elements front first until f returns false.
func (q *fifo[T]) each(f func(T) bool) {
	for i, b := range q.blocks {
		start := 0
		if i == 0 {
			start = q.head
		}
		for _, v := range b[start:] {
			if !f(v) {
				return
			}
		}
	}
}

// pop drops the front element; the queue must not be empty.
func (q *fifo[T]) pop() {
	var zero T
	b := q.blocks[0]
	b[q.head] = zero
	if q.head++; q.head < len(b) {
		return
	}
	// The front block is drained (it is full unless it is the last).
	q.blocks[0] = nil
	q.blocks, q.head = q.blocks[1:], 0
	if len(q.blocks) == 0 {
		q.blocks = nil
	}
}
