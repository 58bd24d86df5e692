package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Metric names of the bound on upstream calls in flight (see
// ObserveUpstreamConcurrency).
const (
	// MetricUpstreamInFlight is the number of upstream requests holding a
	// slot of the bound now.
	MetricUpstreamInFlight = "radkit_upstream_in_flight"
	// MetricUpstreamQueued is the number of upstream requests waiting for
	// a slot now.
	MetricUpstreamQueued = "radkit_upstream_queued"
	// MetricUpstreamMaxInFlight is the bound itself.
	MetricUpstreamMaxInFlight = "radkit_upstream_max_in_flight"
)

// ObserveUpstreamConcurrency exports the bound on upstream calls in flight:
// limit, and the requests in flight and waiting for a slot, which inFlight
// and queued report at each scrape (they must be cheap and safe for
// concurrent use). Call it at most once.
func (m *Metrics) ObserveUpstreamConcurrency(limit int, inFlight, queued func() int64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricUpstreamInFlight,
			Help: "Upstream requests in flight (holding a slot of the bound).",
		}, func() float64 { return float64(inFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricUpstreamQueued,
			Help: "Upstream requests waiting for a slot of the bound on requests in flight.",
		}, func() float64 { return float64(queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricUpstreamMaxInFlight,
			Help: "The bound on upstream requests in flight.",
		}, func() float64 { return float64(limit) }),
	)
}
