package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// LivenessService is the grpc.health.v1 service name for liveness probes.
// It is SERVING for as long as the gRPC server serves, whatever the
// upstream does: restarting a replica does not bring RADKit Access Cloud
// back, and every restart costs a token fetch. Readiness is published under
// "" and the AccessService name instead. Kubernetes:
// `livenessProbe: {grpc: {port: 9090, service: liveness}}`.
const LivenessService = "liveness"

// UpstreamService is the grpc.health.v1 service name under which the
// facade reports RADKit Access Cloud's state as it sees it: SERVING while
// every ReadinessCheck passes, NOT_SERVING while one fails (the upstream
// is down, the circuit breaker is open, the throttle refuses most calls,
// or no access token can be had). It is a report for dashboards and
// alerts, not a probe: every replica sees the same upstream, and taking
// them all out of rotation would turn fast UNAVAILABLE answers with
// RetryInfo into connection errors.
const UpstreamService = "upstream"

// ReadinessCheck reports nil when the facade can serve calls. Checks must be
// cheap when all is well: they run every few seconds.
type ReadinessCheck func(ctx context.Context) error

// Readiness decides whether this replica is ready, and publishes the
// answer to the gRPC health service (for the whole server, "", and for
// radkit.access.v1.AccessService) and to HTTP readiness probes. It also
// publishes LivenessService, SERVING until Shutdown, and the upstream's
// state under UpstreamService.
//
// The replica is ready once its checks passed once (upstream discovery
// succeeded and an access token is held): from then on it has all it
// needs of its own, and stays ready until shutdown whatever the upstream
// does. The checks keep running, with backoff while one fails, and their
// latest answer, with the upstream checks', is the upstream's state.
type Readiness struct {
	checks   []ReadinessCheck
	upstream []ReadinessCheck
	health   *health.Server
	logger   *slog.Logger
	every    time.Duration // between checks while the upstream is up
	timeout  time.Duration // per round of checks

	mu             sync.Mutex
	ready          bool
	reason         string
	stopped        bool // Shutdown was called: never ready again
	upstreamUp     bool
	upstreamReason string
}

// NewReadiness returns a Readiness that runs checks and publishes to hs.
// Until Run's first round passes, the facade is not ready.
func NewReadiness(hs *health.Server, logger *slog.Logger, checks ...ReadinessCheck) *Readiness {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Readiness{
		checks:         checks,
		health:         hs,
		logger:         logger,
		every:          time.Second,
		timeout:        5 * time.Second,
		reason:         "starting",
		upstreamReason: "starting",
	}
	hs.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	r.publish(false, false)
	return r
}

// WithUpstreamChecks adds checks that tell the upstream's state only (the
// circuit breaker's, say): they never hold back readiness. They run every
// round without backoff, so they must not call the upstream. Call it
// before Run. It returns r.
func (r *Readiness) WithUpstreamChecks(checks ...ReadinessCheck) *Readiness {
	r.upstream = append(r.upstream, checks...)
	return r
}

// Ready reports whether the replica is ready and, when it is not, why.
func (r *Readiness) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// Upstream reports whether the upstream looked up at the last round of
// checks and, when it did not, why (the caller-facing status message of
// the failure: no URLs, no secrets).
func (r *Readiness) Upstream() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upstreamUp, r.upstreamReason
}

// Run checks readiness until ctx is done, then marks the facade not ready.
func (r *Readiness) Run(ctx context.Context) {
	const minBackoff, maxBackoff = 200 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := r.check(ctx, r.checks)
		upErr := err
		if err == nil {
			upErr = r.check(ctx, r.upstream)
		}
		if ctx.Err() != nil {
			break
		}
		r.set(err, upErr)
		// Back off only while this replica's own checks fail (they may
		// call the upstream); the upstream checks never do, and keep the
		// upstream's state fresh every round.
		wait := r.every
		if err != nil {
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		} else {
			backoff = minBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.mu.Lock()
	r.ready, r.reason = false, "shutting down"
	r.mu.Unlock()
	r.publish(false, false)
}

// Shutdown marks the facade not ready at once, so that load balancers stop
// sending new calls while in-flight ones drain. Every health service name,
// LivenessService included, turns NOT_SERVING and stays so.
func (r *Readiness) Shutdown() {
	r.mu.Lock()
	r.ready, r.reason, r.stopped = false, "shutting down", true
	r.mu.Unlock()
	r.health.Shutdown()
}

func (r *Readiness) check(ctx context.Context, checks []ReadinessCheck) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for _, c := range checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}

// set records a round of checks: the first round whose readiness checks
// pass (err nil) makes the replica ready for good, and upErr, the first
// failure of any check, is the upstream's state.
func (r *Readiness) set(err, upErr error) {
	r.mu.Lock()
	wasUp, wasReady := r.upstreamUp, r.ready
	r.upstreamUp = upErr == nil
	r.upstreamReason = ""
	if upErr != nil {
		// The reason is the caller-facing status message: it names the
		// class of failure without internal URLs or secrets.
		r.upstreamReason = statusMessage(Status(upErr))
	}
	// After Shutdown the rounds still running (the drain comes before
	// Run's end) keep the upstream's state fresh but never make the
	// replica ready again.
	if err == nil && !r.ready && !r.stopped {
		r.ready, r.reason = true, ""
	}
	if !r.ready && !r.stopped {
		r.reason = r.upstreamReason
	}
	ready, up, reason := r.ready, r.upstreamUp, r.upstreamReason
	r.mu.Unlock()

	if ready && !wasReady {
		r.logger.Info("ready: upstream discovered and access token held")
	}
	switch {
	case up == wasUp:
	case up:
		r.logger.Info("upstream up")
	default:
		r.logger.Warn("upstream down", "reason", reason, "ready", ready)
	}
	r.publish(ready, up)
}

func (r *Readiness) publish(ready, upstreamUp bool) {
	r.health.SetServingStatus("", servingOf(ready))
	r.health.SetServingStatus(accessv1.AccessService_ServiceDesc.ServiceName, servingOf(ready))
	r.health.SetServingStatus(UpstreamService, servingOf(upstreamUp))
}

func servingOf(serving bool) healthpb.HealthCheckResponse_ServingStatus {
	if serving {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}
