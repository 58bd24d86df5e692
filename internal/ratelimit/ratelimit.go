// Package ratelimit limits how often each caller may call the AccessService.
//
// Every caller, as named by a key function (the authenticated identity, or
// the peer's IP address for anonymous callers), gets a token bucket of its
// own. A caller that runs its bucket dry gets codes.ResourceExhausted with
// google.rpc.ErrorInfo and google.rpc.RetryInfo saying when to come back;
// the gateway turns that into HTTP 429. One noisy caller then cannot spend
// the facade's share of the upstream's own rate limit on behalf of everyone.
//
// With Config.Shared (Redis, across replicas) the limit is one for the
// caller whatever replica it reaches; while the shared limit cannot be
// asked, each replica falls back on its own buckets, and Config.OnSharedError
// is told.
//
// Memory is bounded without a background goroutine: buckets that have been
// idle long enough to refill completely are dropped (a fresh bucket is full,
// so nothing is lost), and past Config.MaxKeys the least recently used
// bucket is dropped.
package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

// DefaultMaxKeys is the number of callers tracked at once when
// Config.MaxKeys is not set. A bucket costs a few hundred bytes, so the
// default bounds the limiter to a few MiB.
const DefaultMaxKeys = 10_000

// Config configures a Limiter.
type Config struct {
	// Rate is the sustained number of calls per second each caller may
	// make. Zero, a negative value or rate.Inf disables limiting.
	Rate rate.Limit
	// Burst is how many calls a caller may make at once after being idle.
	// Values below 1 mean 1.
	Burst int
	// Key names the caller of the call in ctx. Calls with the same key share
	// a bucket; calls for which Key returns "" share one bucket between them.
	// The key appears in the error message a limited caller gets, so it must
	// be an identity, never a secret. Nil means PeerKey.
	Key func(ctx context.Context) string
	// MaxKeys bounds the number of callers tracked at once; past it, the
	// least recently seen caller's bucket is dropped (and so refilled).
	// Zero or negative means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
	// Shared, when set, keeps the limit outside this process (so that it
	// holds across replicas); the local buckets are then only the
	// fallback for when Shared fails.
	Shared Shared
	// OnSharedError, if set, is told each time Shared failed and a local
	// bucket decided instead. It must be quick.
	OnSharedError func(error)
}

// Shared is a rate limit kept outside the process, shared by every
// replica that uses the same one. redisstate.Limiter implements it.
type Shared interface {
	// Allow takes one call from key's allowance of limit calls per second
	// with bursts of burst; when none is left it reports how long until
	// one is. An error means it could not decide.
	Allow(ctx context.Context, key string, limit rate.Limit, burst int) (ok bool, retryAfter time.Duration, err error)
}

// Limiter keeps one token bucket per caller. Its methods are safe for
// concurrent use.
type Limiter struct {
	limit    rate.Limit
	burst    int
	key      func(context.Context) string
	maxKeys  int
	now      func() time.Time
	disabled bool
	shared   Shared
	onShared func(error)
	// sharedDownUntil is when (Unix nanoseconds) the shared limit may be
	// asked again after it failed.
	sharedDownUntil atomic.Int64
	// idleAfter is how long a bucket takes to refill from empty: a bucket
	// unused for that long is full, the same as a new one, and can go.
	idleAfter time.Duration

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // of *bucket, most recently seen first
}

// bucket is one caller's token bucket and when the caller was last seen.
type bucket struct {
	key      string
	lim      *rate.Limiter
	lastSeen time.Time
}

// New returns a Limiter configured by cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{
		limit:    cfg.Rate,
		burst:    max(cfg.Burst, 1),
		key:      cfg.Key,
		maxKeys:  cfg.MaxKeys,
		now:      cfg.Now,
		shared:   cfg.Shared,
		onShared: cfg.OnSharedError,
		buckets:  make(map[string]*list.Element),
	}
	// !(x > 0) also catches NaN.
	l.disabled = !(cfg.Rate > 0) || cfg.Rate == rate.Inf
	if l.key == nil {
		l.key = PeerKey
	}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if l.now == nil {
		l.now = time.Now
	}
	if !l.disabled {
		l.idleAfter = durationOf(float64(l.burst) / float64(l.limit))
	}
	return l
}

// Enabled reports whether the Limiter limits anything: false when
// Config.Rate disabled it.
func (l *Limiter) Enabled() bool { return !l.disabled }

// SharedRetry is how long a Limiter decides alone after Config.Shared
// failed, before it asks the shared limit again: a shared store that does
// not answer costs one call its timeout, not every call.
const SharedRetry = time.Second

// ErrSharedDown is what OnSharedError is told of calls decided locally,
// without asking, because the shared limit failed less than SharedRetry
// ago.
var ErrSharedDown = errors.New("ratelimit: the shared limit failed recently; deciding locally")

// AllowContext is Allow through Config.Shared when it is set: the shared
// limit decides, and key's local bucket only when the shared one fails
// (and for SharedRetry after that).
func (l *Limiter) AllowContext(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	if l.disabled {
		return true, 0
	}
	if l.shared != nil && time.Now().UnixNano() < l.sharedDownUntil.Load() {
		if l.onShared != nil {
			l.onShared(ErrSharedDown)
		}
		return l.Allow(key)
	}
	if l.shared != nil {
		ok, retryAfter, err := l.shared.Allow(ctx, key, l.limit, l.burst)
		if err == nil {
			if ok {
				return true, 0
			}
			return false, ceilMillisecond(retryAfter)
		}
		l.sharedDownUntil.Store(time.Now().Add(SharedRetry).UnixNano())
		if l.onShared != nil {
			l.onShared(err)
		}
	}
	return l.Allow(key)
}

// Allow takes one token from key's local bucket. When the bucket is empty it
// takes nothing and reports how long until a token will be there.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.disabled {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Read the clock under the lock, so that the buckets see time go forward
	// and the LRU list stays in lastSeen order.
	now := l.now()
	b := l.touch(key, now)
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	return false, ceilMillisecond(durationOf(missing / float64(l.limit)))
}

// touch returns key's bucket, made if need be, marked as seen at now, and
// drops the buckets that are idle or over the bound. l.mu must be held.
func (l *Limiter) touch(key string, now time.Time) *bucket {
	var b *bucket
	if e, ok := l.buckets[key]; ok {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
	} else {
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = l.lru.PushFront(b)
	}
	b.lastSeen = now

	// The list is ordered by lastSeen, oldest at the back, so the idle
	// buckets are all at the back: each call drops only what it must, and
	// every bucket is dropped at most once.
	for {
		e := l.lru.Back()
		if e == nil || e == l.lru.Front() {
			break
		}
		old := e.Value.(*bucket)
		if len(l.buckets) <= l.maxKeys && now.Sub(old.lastSeen) < l.idleAfter {
			break
		}
		l.lru.Remove(e)
		delete(l.buckets, old.key)
	}
	return b
}

// Len reports how many callers' buckets the Limiter holds now.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// PeerKey returns the IP address, without port, of the peer of the call in
// ctx, or "" when ctx carries no peer. It works for native gRPC calls and
// for calls through the in-process gateway, which puts the HTTP client's
// address into the context as a peer.Peer. Peers that have no IP address
// (a Unix socket, say) are named by their address's string form.
func PeerKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	}
	s := p.Addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

// durationOf converts seconds to a Duration, saturating rather than
// overflowing for absurdly slow rates.
func durationOf(seconds float64) time.Duration {
	ns := math.Ceil(seconds * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// ceilMillisecond rounds d up to a whole, non-zero number of milliseconds,
// so that a caller that waits exactly that long finds a token.
func ceilMillisecond(d time.Duration) time.Duration {
	if d >= math.MaxInt64-time.Millisecond {
		return d
	}
	if d <= 0 {
		return time.Millisecond
	}
	return (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
}
