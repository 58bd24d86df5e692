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

// ReadinessCheck reports nil when the facade can serve calls. Checks must be
// cheap when all is well: they run every few seconds.
type ReadinessCheck func(ctx context.Context) error

// Readiness decides whether the facade is ready, and publishes the answer
// to the gRPC health service (for the whole server, "", and for
// radkit.access.v1.AccessService) and to HTTP readiness probes. It also
// publishes LivenessService, SERVING until Shutdown.
//
// The facade is ready once upstream discovery succeeded and an access token
// is held, and stays ready while every check passes. While not ready it
// checks again with backoff, so that it becomes ready by itself when the
// upstream comes back.
type Readiness struct {
	checks  []ReadinessCheck
	health  *health.Server
	logger  *slog.Logger
	every   time.Duration // between checks while ready
	timeout time.Duration // per round of checks

	mu     sync.Mutex
	ready  bool
	reason string
}

// NewReadiness returns a Readiness that runs checks and publishes to hs.
// Until Run's first round passes, the facade is not ready.
func NewReadiness(hs *health.Server, logger *slog.Logger, checks ...ReadinessCheck) *Readiness {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Readiness{
		checks:  checks,
		health:  hs,
		logger:  logger,
		every:   5 * time.Second,
		timeout: 5 * time.Second,
		reason:  "starting",
	}
	hs.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	r.publish(false)
	return r
}

// Ready reports whether the facade is ready and, when it is not, why.
func (r *Readiness) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// Run checks readiness until ctx is done, then marks the facade not ready.
func (r *Readiness) Run(ctx context.Context) {
	const minBackoff, maxBackoff = 200 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := r.check(ctx)
		if ctx.Err() != nil {
			break
		}
		r.set(err)
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
	r.publish(false)
}

// Shutdown marks the facade not ready at once, so that load balancers stop
// sending new calls while in-flight ones drain. Every health service name,
// LivenessService included, turns NOT_SERVING and stays so.
func (r *Readiness) Shutdown() {
	r.mu.Lock()
	r.ready, r.reason = false, "shutting down"
	r.mu.Unlock()
	r.health.Shutdown()
}

func (r *Readiness) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for _, c := range r.checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *Readiness) set(err error) {
	r.mu.Lock()
	was := r.ready
	r.ready = err == nil
	r.reason = ""
	if err != nil {
		// The reason is the caller-facing status message: it names the
		// class of failure without internal URLs or secrets.
		r.reason = statusMessage(Status(err))
	}
	now, reason := r.ready, r.reason
	r.mu.Unlock()

	if now != was {
		if now {
			r.logger.Info("ready: upstream discovered and access token held")
		} else {
			r.logger.Warn("not ready", "reason", reason)
		}
	}
	r.publish(now)
}

func (r *Readiness) publish(ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus("", st)
	r.health.SetServingStatus(accessv1.AccessService_ServiceDesc.ServiceName, st)
}
