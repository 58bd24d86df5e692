package facade

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/server"
)

// healthService is the grpc.health.v1 service with one change: Watch
// streams end when shutdown starts. grpc-go's health server keeps them open
// (it sends NOT_SERVING and waits), and GracefulStop waits for every open
// stream, so one watching load balancer would hold shutdown for the whole
// ShutdownTimeout. Ending them with UNAVAILABLE tells watchers to go
// elsewhere, as a closing connection would.
type healthService struct {
	*health.Server
	stopping <-chan struct{}
}

// Watch implements healthpb.HealthServer.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, watchStream{stream, ctx})
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "server is shutting down")
	default:
		return err
	}
}

// watchStream is a Watch stream with its context replaced.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

// Context returns the replaced context.
func (s watchStream) Context() context.Context { return s.ctx }

// Metrics of the upstream's state as this replica sees it, besides
// telemetry's radkit_upstream_breaker_state.
const (
	// metricUpstreamUp is 1 while the "upstream" health entry is SERVING.
	metricUpstreamUp = "radkit_upstream_up"
	// metricThrottleProbability is the chance that the adaptive throttle
	// refuses a call now.
	metricThrottleProbability = "radkit_upstream_throttle_probability"
	// metricRefused counts calls refused locally, by reason.
	metricRefused = "radkit_upstream_refused_total"
	// metricRetries counts retries, by result: sent, or denied by the
	// retry budget.
	metricRetries = "radkit_upstream_retries_total"

	// One help text per metric name: Prometheus refuses a second series
	// of a name whose help differs.
	helpRefused = "Calls refused locally without an upstream call, by reason: throttled, circuit_open."
	helpRetries = "Upstream retries, by result: sent, or denied by the retry budget."
)

// registerUpstreamMetrics adds the upstream's state (readiness' upstream
// report, the throttle, the retry budget) to reg. Each value is read at
// scrape time.
func registerUpstreamMetrics(reg prometheus.Registerer, r *server.Readiness, g interface{ Stats() resilience.Stats }) error {
	stat := func(f func(resilience.Stats) float64) func() float64 {
		return func() float64 { return f(g.Stats()) }
	}
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricUpstreamUp,
			Help: "1 while the facade sees RADKit Access Cloud up (health service \"upstream\" SERVING), else 0.",
		}, func() float64 {
			if up, _ := r.Upstream(); up {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricThrottleProbability,
			Help: "Probability that the adaptive throttle refuses an upstream call now (0 while the upstream answers enough calls).",
		}, stat(func(s resilience.Stats) float64 { return s.ThrottleProbability })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricRefused, ConstLabels: prometheus.Labels{"reason": "throttled"},
			Help: helpRefused,
		}, stat(func(s resilience.Stats) float64 { return float64(s.RefusedThrottled) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricRefused, ConstLabels: prometheus.Labels{"reason": "circuit_open"},
			Help: helpRefused,
		}, stat(func(s resilience.Stats) float64 { return float64(s.RefusedCircuitOpen) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricRetries, ConstLabels: prometheus.Labels{"result": "sent"},
			Help: helpRetries,
		}, stat(func(s resilience.Stats) float64 { return float64(s.Retries) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricRetries, ConstLabels: prometheus.Labels{"result": "denied"},
			Help: helpRetries,
		}, stat(func(s resilience.Stats) float64 { return float64(s.RetriesDenied) })),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("facade: register upstream metrics: %w", err)
		}
	}
	return nil
}
