// Package resilience guards the RADKit Access Cloud client with retries,
// client-side adaptive throttling, one circuit breaker, coalescing of
// concurrent status lookups and an optional short status cache.
//
// A partly failing upstream degrades the facade in proportion, never into
// an outage (docs/adr/0002-proportional-degradation.md): the throttle
// refuses calls locally only once the upstream answers fewer than 1/K of
// them, and then in proportion to the shortfall; the breaker opens only
// when nearly every call in its window failed (the upstream is down). Both
// count one call once, however many attempts it took.
//
// Retries follow what each call can safely repeat: a status lookup is
// idempotent and is retried on 5xx, 429 and transport failures; an OTP
// request or a token revocation is retried only when the upstream provably
// never saw it or said itself that a retry may help. Every retry waits an
// exponential backoff with full jitter, at least the upstream's Retry-After,
// and never past the caller's deadline.
//
// The package knows the upstream client's typed errors (package upstream)
// and nothing of gRPC: package server maps ErrCircuitOpen and ErrThrottled
// like any other upstream failure.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/flight"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Upstream is the RADKit Access Cloud API that a Client guards and
// implements itself. *upstream.Client implements it. It has the method set
// of server.Upstream, so that a Client can stand in for the raw client.
type Upstream interface {
	GenerateOTP(ctx context.Context, r upstream.OTPRequest) (string, error)
	ServiceStatus(ctx context.Context, serviceID string) (upstream.ServiceStatus, error)
	RevokeToken(ctx context.Context, token string) error
}

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxAttempts         = 3
	DefaultBaseDelay           = 50 * time.Millisecond
	DefaultMaxDelay            = time.Second
	DefaultMaxRetryAfter       = 5 * time.Second
	DefaultAttemptTimeout      = 10 * time.Second
	DefaultBreakerTimeout      = 2 * time.Second
	DefaultBreakerInterval     = time.Second
	DefaultBreakerFailureRatio = 0.9
	DefaultBreakerMinRequests  = 20
	DefaultBreakerProbes       = 3
	DefaultThrottleK           = 2
	DefaultRetryBudgetRatio    = 0.3
	DefaultRetryBudgetMax      = 10
	DefaultThrottleWindow      = 2 * time.Minute
	DefaultThrottleMinRequests = 20
	DefaultStatusCacheSize     = 10000
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Upstream is the client to guard. Required.
	Upstream Upstream

	// MaxAttempts bounds the upstream calls made for one call, the first
	// included. 1 disables retries.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the backoff: before retry n (from 0) a
	// call sleeps a uniformly random time in [0, min(MaxDelay,
	// BaseDelay*2^n)] ("full jitter"), so that callers who failed together
	// do not retry together.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// RetryBudgetRatio and RetryBudgetMax bound retries as a whole: each
	// call sent upstream earns RetryBudgetRatio of a retry, up to
	// RetryBudgetMax retries saved, and each retry spends one. Upstream
	// calls per call then stay at most 1 + RetryBudgetRatio on average
	// however much the upstream fails, while a quiet facade can still
	// retry its rare failures. A retry the budget cannot pay for is not
	// made: the call fails with its last attempt's error.
	RetryBudgetRatio float64
	RetryBudgetMax   float64
	// MaxRetryAfter is the longest upstream Retry-After that a call waits
	// out before retrying. A longer one ends the retries, and the caller
	// gets the upstream's answer, Retry-After included, at once.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds each upstream call. An attempt that runs out of
	// it while the caller still waits counts as upstream trouble (a hung
	// upstream must open the breaker) and a status lookup is retried.
	AttemptTimeout time.Duration

	// BreakerTimeout is how long the breaker stays open before it lets
	// probes through (half-open).
	BreakerTimeout time.Duration
	// BreakerInterval is the rolling window over which the closed breaker
	// counts calls and failures for BreakerFailureRatio.
	BreakerInterval time.Duration
	// The breaker opens when at least BreakerFailureRatio of at least
	// BreakerMinRequests calls in the window failed: the upstream is down,
	// not merely failing some calls (the throttle answers that). A call
	// counts once, with the outcome of its last attempt. Failures are
	// answers that say the upstream is in trouble: 5xx, 429, transport
	// failures, malformed answers, attempt timeouts. 4xx answers and calls
	// that their caller abandoned do not count.
	BreakerFailureRatio float64
	BreakerMinRequests  uint32
	// BreakerProbes is how many calls the half-open breaker lets through;
	// as many successes in a row close it, and one failure opens it again.
	BreakerProbes uint32

	// ThrottleK and ThrottleWindow tune the adaptive throttle: over the
	// last ThrottleWindow it refuses a call with probability
	// max(0, (requests - ThrottleK*accepts) / (requests + 1)), where
	// requests are the calls the facade wanted to send (refused ones
	// included) and accepts the calls the upstream answered (the breaker's
	// failures are the ones not answered). A larger K refuses later.
	// The throttle refuses nothing while its window holds fewer than
	// ThrottleMinRequests requests.
	ThrottleK           float64
	ThrottleWindow      time.Duration
	ThrottleMinRequests int
	// OnStateChange, if set, is told of every breaker transition, with
	// states named as State names them. It runs synchronously under the
	// breaker's lock: it must be quick and must not call the Client.
	OnStateChange func(from, to string)

	// StatusCacheTTL, if positive, caches successful status answers per
	// service ID for that long. The trade-off: a service's "online" may be
	// stale by up to the TTL, in exchange for one upstream lookup per
	// service per TTL however many callers poll it. Zero (the default)
	// disables the cache; concurrent lookups are coalesced regardless.
	StatusCacheTTL time.Duration
	// Gate, if set, must let each upstream attempt (retries included)
	// leave; an attempt it refuses fails the call with a *BudgetError
	// before anything is sent. Cached and coalesced status answers do not
	// pass it.
	Gate Gate

	// SharedStatusCache, with StatusCacheTTL, shares the status cache
	// with other replicas; OnSharedError, if set, is told when it failed
	// (the Client then goes on without it). It must be quick.
	SharedStatusCache SharedStatusCache
	OnSharedError     func(error)

	// StatusCacheSize bounds the cache in entries; when it is full, the
	// expired entries and then the oldest give way.
	StatusCacheSize int
}

// Client guards an Upstream with retries, a circuit breaker, status
// coalescing and an optional status cache. It implements Upstream and is
// safe for concurrent use.
type Client struct {
	up             Upstream
	maxAttempts    int
	baseDelay      time.Duration
	maxDelay       time.Duration
	maxRetryAfter  time.Duration
	attemptTimeout time.Duration

	breaker  *breaker
	throttle *throttle
	budget   *retryBudget
	cache    *statusCache // nil when disabled
	gate     Gate         // nil when none
	// shared is the cache shared with other replicas: nil when none or
	// when the TTL is zero.
	shared        SharedStatusCache
	onSharedError func(error)
	cacheTTL      time.Duration
	// sharedDownUntil is when (Unix nanoseconds) the shared cache may be
	// asked again after it failed.
	sharedDownUntil atomic.Int64

	refusedOpen      atomic.Int64
	refusedThrottled atomic.Int64
	retries          atomic.Int64
	retriesDenied    atomic.Int64

	lookups flight.Group[string, upstream.ServiceStatus] // by service ID; see coalesce.go
}

// New returns a Client for cfg. It panics if cfg.Upstream is nil, a
// programming error.
func New(cfg Config) *Client {
	if cfg.Upstream == nil {
		panic("resilience: Config.Upstream is nil")
	}
	c := &Client{
		up:             cfg.Upstream,
		maxAttempts:    orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		baseDelay:      orDefault(cfg.BaseDelay, DefaultBaseDelay),
		maxDelay:       orDefault(cfg.MaxDelay, DefaultMaxDelay),
		maxRetryAfter:  orDefault(cfg.MaxRetryAfter, DefaultMaxRetryAfter),
		attemptTimeout: orDefault(cfg.AttemptTimeout, DefaultAttemptTimeout),
		throttle: newThrottle(orDefault(cfg.ThrottleK, DefaultThrottleK), orDefault(cfg.ThrottleWindow, DefaultThrottleWindow),
			orDefault(cfg.ThrottleMinRequests, DefaultThrottleMinRequests), time.Now, rand.Float64),
		gate:   cfg.Gate,
		budget: newRetryBudget(orDefault(cfg.RetryBudgetRatio, DefaultRetryBudgetRatio), orDefault(cfg.RetryBudgetMax, DefaultRetryBudgetMax)),
	}
	c.breaker = newBreaker(cfg, c.throttle.reset)
	c.maxDelay = max(c.maxDelay, c.baseDelay)
	if cfg.StatusCacheTTL > 0 {
		c.cache = newStatusCache(cfg.StatusCacheTTL, orDefault(cfg.StatusCacheSize, DefaultStatusCacheSize))
		c.cacheTTL = cfg.StatusCacheTTL
		c.shared, c.onSharedError = cfg.SharedStatusCache, cfg.OnSharedError
	}
	return c
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | uint32 | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// GenerateOTP implements Upstream. It is retried only when the upstream
// cannot have issued an OTP for the failed attempt, or said "retry": true.
func (c *Client) GenerateOTP(ctx context.Context, r upstream.OTPRequest) (string, error) {
	return guarded(ctx, c, upstream.OpOTP, func() (string, error) {
		return retry(ctx, c, upstream.OpOTP, deadlineOf(ctx), retryUnsent, func(ctx context.Context) (string, error) {
			return c.up.GenerateOTP(ctx, r)
		})
	})
}

// RevokeToken implements Upstream. Like GenerateOTP, it is retried only
// when the failed attempt provably did nothing upstream, or the upstream
// said "retry": true.
func (c *Client) RevokeToken(ctx context.Context, token string) error {
	_, err := guarded(ctx, c, upstream.OpRevoke, func() (struct{}, error) {
		return retry(ctx, c, upstream.OpRevoke, deadlineOf(ctx), retryUnsent, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.up.RevokeToken(ctx, token)
		})
	})
	return err
}

// ServiceStatus implements Upstream. A cached answer is returned if the
// cache is on and holds one; otherwise concurrent lookups of one service ID
// share one (retried) upstream lookup. The breaker and the throttle see
// each caller's call, not the shared lookup: a cached answer involves
// neither.
func (c *Client) ServiceStatus(ctx context.Context, serviceID string) (upstream.ServiceStatus, error) {
	if c.cache != nil {
		if st, ok := c.cache.get(serviceID); ok {
			upstream.ReportCached(ctx)
			return st, nil
		}
	}
	if c.sharedUp() {
		if st, ok := c.sharedGet(ctx, serviceID); ok {
			upstream.ReportCached(ctx)
			return st, nil
		}
	}
	return guarded(ctx, c, upstream.OpStatus, func() (upstream.ServiceStatus, error) {
		return c.coalesce(ctx, serviceID)
	})
}

// State is the circuit breaker's state: "closed", "half-open" or "open".
func (c *Client) State() string { return c.breaker.state() }

// Stats is what a Client has done so far, and how it sees the upstream
// now: for metrics and the readiness report.
type Stats struct {
	// Breaker is the circuit breaker's state, as State names it.
	Breaker string
	// ThrottleProbability is the chance that the throttle refuses a call
	// now (0 while the upstream answers enough calls).
	ThrottleProbability float64
	// RefusedCircuitOpen and RefusedThrottled count the calls refused
	// locally, by the breaker and by the throttle.
	RefusedCircuitOpen int64
	RefusedThrottled   int64
	// Retries counts the retries made; RetriesDenied the retries the
	// retry budget refused (the call then failed).
	Retries       int64
	RetriesDenied int64
	// RetryTokens is the retry budget's balance.
	RetryTokens float64
}

// Stats returns the Client's counters and state. It never blocks on the
// upstream.
func (c *Client) Stats() Stats {
	return Stats{
		Breaker:             c.breaker.state(),
		ThrottleProbability: c.throttle.probability(),
		RefusedCircuitOpen:  c.refusedOpen.Load(),
		RefusedThrottled:    c.refusedThrottled.Load(),
		Retries:             c.retries.Load(),
		RetriesDenied:       c.retriesDenied.Load(),
		RetryTokens:         c.budget.balance(),
	}
}

// Ready reports whether the upstream looks up: a *CircuitOpenError
// (matching ErrCircuitOpen) while the breaker is open, an error matching
// ErrThrottled while the throttle refuses at least half the calls, and nil
// otherwise. It is meant for the upstream's health report, not for this
// replica's readiness (the upstream is the same for every replica); it
// makes no upstream call and never blocks.
func (c *Client) Ready(context.Context) error {
	if err := c.breaker.openError(); err != nil {
		return fmt.Errorf("resilience: upstream not ready: %w", err)
	}
	if p := c.throttle.probability(); p >= 0.5 {
		return fmt.Errorf("resilience: upstream not ready: refusing %.0f%%: %w", 100*p, ErrThrottled)
	}
	return nil
}

// deadlineOf returns the deadline function of a call that is not shared:
// its caller's deadline.
func deadlineOf(ctx context.Context) func() (time.Time, bool) {
	return ctx.Deadline
}

// errAttemptTimeout is the cause of an attempt's context when
// Config.AttemptTimeout ran out.
var errAttemptTimeout = errors.New("resilience: upstream attempt timed out")
