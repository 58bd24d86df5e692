package facade

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/ratelimit"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/resilience"
)

// metricStateFallbacks counts the decisions taken without the shared
// state because Redis failed, by use.
const metricStateFallbacks = "radkit_facade_state_fallbacks_total"

// metricStateRefusals counts the GenerateOTP calls refused because
// of what the shared state holds, apart from its outages.
const metricStateRefusals = "radkit_facade_state_refusals_total"

// stateLogInterval bounds how often a Redis failure is logged per use: an
// outage must not flood the log.
const stateLogInterval = 10 * time.Second

// openState opens the Redis client of the shared state, when configured.
// It does no network I/O: a Redis that is down at start degrades the
// facade as it would later, it does not stop it starting.
func (f *Facade) openState() error {
	cfg := &f.cfg
	if cfg.RedisURL == "" {
		if cfg.ExpectReplicas > 1 {
			f.logger.Warn("several replicas expected but no shared state (Redis): each replica keeps its own request_ids, so a GenerateOTP retry that reaches another replica mints a second OTP; rate limits and the upstream budget are per replica too. Give the replicas a shared Redis, or run one replica",
				"expect_replicas", cfg.ExpectReplicas)
		}
		return nil
	}
	keys, err := stateKeyring(cfg.StateKey)
	if err != nil {
		return fmt.Errorf("facade: state key: %w", err)
	}
	f.state, err = redisstate.Open(redisstate.Config{
		URL:      cfg.RedisURL,
		Password: cfg.RedisPassword,
		Prefix:   cfg.RedisPrefix,
		Keyring:  keys,
	})
	if err != nil {
		return fmt.Errorf("facade: %w", err)
	}
	f.stateFallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricStateFallbacks,
		Help: "Calls that could not use the shared state (Redis), by use: rate_limit and upstream_budget (decided by this replica alone), status_cache (looked up without it), idempotency (refused with STATE_UNAVAILABLE); and by cause: unavailable (Redis timed out or could not be reached), misconfigured (Redis refused: NOPERM, WRONGPASS, NOAUTH, WRONGTYPE, unknown command), skipped (not asked: Redis failed earlier in the same call, or less than a second ago).",
	}, []string{"use", "cause"})
	if err := f.metrics.Registry().Register(f.stateFallbacks); err != nil {
		return fmt.Errorf("facade: state metrics: %w", err)
	}
	f.logger.Info("shared state in Redis", "redis_url", f.state.URL(), "redis_prefix", f.state.Prefix())
	return nil
}

// stateMisconfigured is the last configuration error Redis answered any
// use with, for /readyz: such an error is not seen by a PING (a key
// outside the ACL user's pattern, a command missing from its list).
type stateMisconfigured struct {
	err error
	at  time.Time
}

// misconfiguredFor is how long /readyz reports a configuration error seen
// by a use after the last one.
const misconfiguredFor = time.Minute

// stateCause is the cause label of a failed use of the shared state.
func stateCause(err error) string {
	if errors.Is(err, ratelimit.ErrSharedDown) {
		return redisstate.CauseSkipped
	}
	return redisstate.Cause(err)
}

// stateFailed returns what a use of the shared state calls when Redis
// failed: it counts the failure and logs it, at most once per
// stateLogInterval.
//
// A configuration error (NOPERM, WRONGPASS, ...) is logged as such, at
// ERROR and apart from outages (each cause has its own log interval), and
// /readyz reports it; calls not made because Redis failed just before are
// only counted.
func (f *Facade) stateFailed(use, fallback string) func(error) {
	counters := map[string]prometheus.Counter{}
	every := map[string]*rate.Sometimes{}
	for _, cause := range []string{redisstate.CauseUnavailable, redisstate.CauseMisconfigured, redisstate.CauseSkipped} {
		counters[cause] = f.stateFallbacks.WithLabelValues(use, cause)
		every[cause] = &rate.Sometimes{Interval: stateLogInterval}
	}
	return func(err error) {
		cause := stateCause(err)
		counters[cause].Inc()
		switch cause {
		case redisstate.CauseMisconfigured:
			f.stateMisconfigured.Store(&stateMisconfigured{err: err, at: time.Now()})
			every[cause].Do(func() {
				f.logger.Error("shared state (Redis) refused the facade's call: a configuration error (ACL user, password, key prefix), not an outage; "+fallback,
					"use", use, "cause", cause, "error", err)
			})
		case redisstate.CauseUnavailable:
			every[cause].Do(func() {
				f.logger.Warn("shared state (Redis) unavailable; "+fallback, "use", use, "cause", cause, "error", err)
			})
		}
	}
}

// sharedLimit returns the Redis-backed part of a rate limit named name,
// and what its failures call, or nils without Redis.
func (f *Facade) sharedLimit(name, use string) (ratelimit.Shared, func(error)) {
	if f.state == nil {
		return nil, nil
	}
	return f.state.Limiter(name), f.stateFailed(use, "limiting per replica")
}

// newUpstreamBudget returns the limiter of UpstreamRateLimit, keyed by
// upstream identity (each has a budget of its own, as it has its own
// upstream quota), or nil when it is off. Its burst is one second's worth
// of calls.
func (f *Facade) newUpstreamBudget() *ratelimit.Limiter {
	r := f.cfg.UpstreamRateLimit
	if r <= 0 {
		return nil
	}
	shared, failed := f.sharedLimit("upstream", "upstream_budget")
	return ratelimit.New(ratelimit.Config{
		Rate:          rate.Limit(r),
		Burst:         max(1, int(math.Ceil(r))),
		Shared:        shared,
		OnSharedError: failed,
	})
}

// upstreamBudget is a resilience.Gate: one identity's upstream budget.
type upstreamBudget struct {
	l        *ratelimit.Limiter
	identity string
}

// Admit implements resilience.Gate.
func (b upstreamBudget) Admit(ctx context.Context) (bool, time.Duration) {
	return b.l.AllowContext(ctx, b.identity)
}

// perIdentity gives an identity's guard its own upstream budget and, with
// Redis and a status cache TTL, a status cache shared by replicas and
// scoped to the identity: what one identity may see is never served to
// another.
func (f *Facade) perIdentity(identity string, rc *resilience.Config) {
	if f.budget != nil {
		rc.Gate = upstreamBudget{l: f.budget, identity: identity}
	}
	if f.state != nil && rc.StatusCacheTTL > 0 {
		rc.SharedStatusCache = f.state.StatusCache(identity)
		rc.OnSharedError = f.stateFailed("status_cache", "caching status per replica")
	}
}

// newIdempotency returns the store of GenerateOTP's request_ids: in Redis
// with RedisURL, so that every replica gives the same answer, else in
// memory (with its metrics).
func (f *Facade) newIdempotency() (idempotency.Doer, error) {
	if f.state != nil {
		d, err := f.state.Idempotency(0)
		if err != nil {
			return nil, fmt.Errorf("facade: %w", err)
		}
		d.MaxKeysPerOwner = f.cfg.IdempotencyKeysPerCaller
		d.OnUnavailable = f.stateFailed("idempotency", "refusing GenerateOTP with request_id (STATE_UNAVAILABLE)")
		refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricStateRefusals,
			Help: "GenerateOTP calls with a request_id refused because of the shared state (Redis) rather than an outage of it, by reason: STATE_LOST (Redis lost acknowledged data) and STATE_KEY_UNKNOWN (a result sealed under a state key this replica does not hold).",
		}, []string{"reason"})
		if err := f.metrics.Registry().Register(refusals); err != nil {
			return nil, fmt.Errorf("facade: idempotency metrics: %w", err)
		}
		lostEvery := &rate.Sometimes{Interval: stateLogInterval}
		keyEvery := &rate.Sometimes{Interval: stateLogInterval}
		d.OnRefused = func(err error) {
			var keyErr *idempotency.StateKeyError
			switch {
			case errors.As(err, &keyErr):
				refusals.WithLabelValues(reason.StateKeyUnknown.String()).Inc()
				keyEvery.Do(func() {
					f.logger.Error("a remembered OTP is sealed under a state key this replica does not hold: put that key back in the state keyring, after the current one (one key per line)", "key_id", keyErr.KeyID)
				})
			default:
				refusals.WithLabelValues(reason.StateLost.String()).Inc()
				lostEvery.Do(func() {
					f.logger.Error("Redis lost data it had acknowledged (restarted without persistence, flushed, or failed over to a stale replica): GenerateOTP refuses request_ids it does not find until the remembering window has passed (STATE_LOST)",
						"error", err, "end_early", "redis-cli SET "+d.LostKey()+" ended KEEPTTL")
				})
			}
		}
		finishEvery := &rate.Sometimes{Interval: stateLogInterval}
		d.OnFinishRetry = func(err error) {
			finishEvery.Do(func() {
				f.logger.Warn("shared state (Redis) failed while storing an OTP; trying again, and the OTP is given out only once stored", "error", err)
			})
		}
		f.sharedOTPs = d
		return d, nil
	}
	f.otps = idempotency.New(idempotency.Config{MaxEntriesPerOwner: f.cfg.IdempotencyKeysPerCaller})
	if err := f.metrics.Registry().Register(f.otps); err != nil { // radkit_idempotency_*
		return nil, fmt.Errorf("facade: idempotency metrics: %w", err)
	}
	return f.otps, nil
}

// stateReport returns what /readyz says of the shared state: nil without
// Redis, else a PING bounded by the Redis call timeout.
func (f *Facade) stateReport() func() (bool, string) {
	if f.state == nil {
		return nil
	}
	const degraded = "GenerateOTP with request_id is refused, limits are per replica"
	return func() (bool, string) {
		err := f.state.Ping(context.Background())
		if err == nil {
			if m := f.stateMisconfigured.Load(); m != nil && time.Since(m.at) < misconfiguredFor {
				err = m.err
			}
		}
		switch {
		case err == nil:
			return true, ""
		case redisstate.Cause(err) == redisstate.CauseMisconfigured:
			return false, "redis refuses the facade (configuration: ACL user, password or key prefix): " + err.Error() + ": " + degraded
		}
		return false, "redis unavailable: " + degraded
	}
}

// stateCheckInterval is how often checkState asks again while Redis does
// not answer.
const stateCheckInterval = 5 * time.Second

// checkState, once Redis answers, has the idempotency store learn the
// generation of the data (so that a later loss is noticed), and warns when
// Redis's configuration can lose acknowledged writes on a crash or
// restart: the request_id promise then holds only as refusals
// (STATE_LOST) after a loss, never a second OTP, but callers see those
// refusals. It runs until it has its answers or ctx ends.
func (f *Facade) checkState(ctx context.Context) {
	if f.state == nil {
		return
	}
	wait := func() bool {
		t := time.NewTimer(stateCheckInterval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for f.sharedOTPs != nil {
		if err := f.sharedOTPs.Learn(ctx); err == nil {
			break
		}
		if !wait() {
			return
		}
	}
	for {
		p, err := f.state.Persistence(ctx)
		switch {
		case err == nil && p.Durable():
			f.logger.Info("Redis persistence keeps acknowledged writes", "appendonly", p.AppendOnly, "appendfsync", p.AppendFsync)
			return
		case err == nil:
			f.logger.Warn("Redis may lose acknowledged writes on a crash or restart (want appendonly yes, appendfsync always): after a loss GenerateOTP refuses unknown request_ids (STATE_LOST) for the remembering window",
				"appendonly", p.AppendOnly, "appendfsync", p.AppendFsync)
			return
		case errors.Is(err, redisstate.ErrUnavailable):
			if !wait() {
				return
			}
		default:
			f.logger.Warn("cannot read Redis's persistence settings (CONFIG GET is denied or unknown); make sure it runs with appendonly yes and appendfsync always", "error", err)
			return
		}
	}
}
