package telemetry

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Metric names exported by Metrics, besides the gRPC server metrics of
// go-grpc-middleware (grpc_server_*) and the Go and process collectors
// (go_*, process_*).
const (
	// MetricUpstreamRequests counts requests to the upstream by route and
	// HTTP status code ("error" when no response came).
	MetricUpstreamRequests = "radkit_upstream_requests_total"
	// MetricUpstreamRequestDuration is the time from sending an upstream
	// request to its response headers (or transport failure), by route.
	MetricUpstreamRequestDuration = "radkit_upstream_request_duration_seconds"
	// MetricUpstreamTokenFetches counts access-token requests (client
	// credentials or API token) by result.
	MetricUpstreamTokenFetches = "radkit_upstream_token_fetches_total"
	// MetricUpstreamTokenExpiry is the number of seconds until an
	// identity's cached access token expires, by identity; absent while
	// the identity holds no token.
	MetricUpstreamTokenExpiry = "radkit_upstream_token_expiry_seconds"
	// MetricUpstreamBreakerState is an identity's upstream circuit
	// breaker state, by identity: 0 closed, 1 half-open, 2 open; absent
	// while unknown.
	MetricUpstreamBreakerState = "radkit_upstream_breaker_state"
	// MetricWatchStreams is the number of open WatchServiceStatus streams.
	MetricWatchStreams = "radkit_watch_streams"
	// MetricWatchPollers is the number of services being polled for
	// watchers.
	MetricWatchPollers = "radkit_watch_pollers"
	// MetricWatchPolls counts the status polls made for watchers, all
	// services together (a label per service would be unbounded).
	MetricWatchPolls = "radkit_watch_polls_total"
	// MetricWatchMessages counts the messages sent on watch streams.
	MetricWatchMessages = "radkit_watch_messages_sent_total"
	// MetricPanics counts the panics the facade recovered, by where they
	// happened (see CountPanic).
	MetricPanics = "radkit_facade_panics_total"
)

// IdentityState is what Metrics reports of one upstream identity (see
// ObserveIdentities).
type IdentityState struct {
	// Name is the identity's name: the identity label.
	Name string
	// TokenExpiry is when the identity's access token expires; zero while
	// it holds none.
	TokenExpiry time.Time
	// Breaker is its circuit breaker's state: "closed", "half-open" (or
	// "half_open") or "open", in any case; anything else is unknown.
	Breaker string
}

// WatchStats are the watch hub's counters that Metrics reports (see
// ObserveWatches).
type WatchStats struct {
	Streams, Pollers int
	Polls, Sent      uint64
}

// Upstream routes: the values of the route label. A fixed, small set, so
// that neither a service ID nor a token (the revocation URL carries one in
// its query) ever reaches a label.
const (
	RouteDiscovery = string(upstream.OpDiscovery) // GET .well-known/openid-configuration
	RouteToken     = string(upstream.OpToken)     // client-credentials token endpoint
	RouteAPIToken  = "api_token"                  // POST /auth/token
	RouteOTP       = string(upstream.OpOTP)       // POST /public/otp/certificate
	RouteStatus    = string(upstream.OpStatus)    // GET /public/admin/service/status/{id}
	RouteRevoke    = string(upstream.OpRevoke)    // revocation endpoint
	RouteOther     = "other"                      // anything else
)

// Token fetch results: the values of the result label of
// radkit_upstream_token_fetches_total.
const (
	TokenFetchSuccess  = "success"  // 2xx: a token was issued
	TokenFetchRejected = "rejected" // 4xx other than 429: the credentials or request were refused
	TokenFetchError    = "error"    // 429, 5xx, or no response
)

// upstreamDurationBuckets cover a loopback emulator (milliseconds) up to a
// slow cloud answer near the client's 30 s response-header timeout.
var upstreamDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// grpcDurationBuckets are for the facade's own handling time, which is
// mostly one upstream call.
var grpcDurationBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds the facade's Prometheus metrics in a registry of its own,
// so that tests and several facades in one process never collide on the
// global default registry. It is safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	grpc    *grpcprom.ServerMetrics

	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	tokenFetches     *prometheus.CounterVec
	panics           *prometheus.CounterVec

	identities atomic.Pointer[func() []IdentityState]
	watches    atomic.Pointer[func() WatchStats]
	now        func() time.Time

	// exemplars labels observations with trace IDs; off without a tracer
	// (see LinkTraces), which spares each call's metrics a search of its
	// whole context chain for a span that cannot be there.
	exemplars bool
}

// NewMetrics returns Metrics with every collector registered: Go runtime,
// process, gRPC server and upstream client metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(grpcDurationBuckets)),
		),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamRequests,
			Help: "Requests sent to the RADKit Access Cloud, by upstream identity, route and HTTP status code (\"error\" when no response came).",
		}, []string{"identity", "route", "code"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricUpstreamRequestDuration,
			Help:    "Time from sending a request to the RADKit Access Cloud to its response headers or failure, by upstream identity and route.",
			Buckets: upstreamDurationBuckets,
		}, []string{"identity", "route"}),
		tokenFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamTokenFetches,
			Help: "Access-token requests to the RADKit Access Cloud (client credentials or API token), by upstream identity and result: success, rejected (4xx other than 429), error.",
		}, []string{"identity", "result"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricPanics,
			Help: "Panics recovered, each one failed call (or the watches of one service), by where: unary_call, stream_call, http_handler, coalesced_call, watch_poller, gateway_stream.",
		}, []string{"where"}),
		now:       time.Now,
		exemplars: true,
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc,
		m.upstreamRequests,
		m.upstreamDuration,
		m.tokenFetches,
		m.panics,
		&identityGauge{
			desc: prometheus.NewDesc(MetricUpstreamTokenExpiry,
				"Seconds until the upstream identity's cached access token expires (negative once expired), by identity; absent while it holds no token.", []string{"identity"}, nil),
			states: m.identityStates,
			value:  m.tokenExpirySeconds,
		},
		&identityGauge{
			desc: prometheus.NewDesc(MetricUpstreamBreakerState,
				"State of the upstream identity's circuit breaker, by identity: 0 closed, 1 half-open, 2 open; absent while unknown.", []string{"identity"}, nil),
			states: m.identityStates,
			value:  breakerStateValue,
		},
		m.watchMetric(MetricWatchStreams, "Open WatchServiceStatus streams.", prometheus.GaugeValue,
			func(s WatchStats) float64 { return float64(s.Streams) }),
		m.watchMetric(MetricWatchPollers, "Services being polled for WatchServiceStatus streams.", prometheus.GaugeValue,
			func(s WatchStats) float64 { return float64(s.Pollers) }),
		m.watchMetric(MetricWatchPolls, "Status polls made for WatchServiceStatus streams, all services together.", prometheus.CounterValue,
			func(s WatchStats) float64 { return float64(s.Polls) }),
		m.watchMetric(MetricWatchMessages, "Messages sent on WatchServiceStatus streams.", prometheus.CounterValue,
			func(s WatchStats) float64 { return float64(s.Sent) }),
	)
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, // promhttp_metric_handler_errors_total
		// OpenMetrics carries the exemplars (trace IDs) of the histograms.
		EnableOpenMetrics: true,
		// A slow scrape must not pile up goroutines.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	return m
}

// CountPanic counts a recovered panic at where, one of a fixed set of
// places (package internal/panics), so that the label is bounded.
func (m *Metrics) CountPanic(where string) { m.panics.WithLabelValues(where).Inc() }

// InitializePanics creates the series of each of places with zero, so
// that an alert on its increase works from the first panic.
func (m *Metrics) InitializePanics(places []string) {
	for _, p := range places {
		m.panics.WithLabelValues(p)
	}
}

// Registry is the registry holding every metric, for tests and for callers
// that add collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text or OpenMetrics format,
// for a /metrics endpoint.
func (m *Metrics) Handler() http.Handler { return m.handler }

// UnaryServerInterceptor counts and times unary RPCs as
// grpc_server_started_total, grpc_server_handled_total and
// grpc_server_handling_seconds. Put it in the shared interceptor chain so
// that calls through the in-process gateway are counted too
// (docs/adr/0001-gateway-in-process.md). Sampled calls get their trace ID
// as an exemplar.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor(m.exemplarOptions()...)
}

// LinkTraces turns trace-ID exemplars on when tp is a real tracer provider
// and off for nil or a no-op one (they are on in a new Metrics). Call it
// before building the interceptors and transports.
func (m *Metrics) LinkTraces(tp trace.TracerProvider) {
	m.exemplars = !isNoop(tp)
}

// exemplarOptions are the interceptors' options for exemplars.
func (m *Metrics) exemplarOptions() []grpcprom.Option {
	if !m.exemplars {
		return nil
	}
	return []grpcprom.Option{grpcprom.WithExemplarFromContext(exemplarFromContext)}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls;
// it also counts the messages each stream sends
// (grpc_server_msg_sent_total).
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.StreamServerInterceptor(m.exemplarOptions()...)
}

// InitializeMetrics creates the gRPC series of every method registered on
// s with zero values, so that rates and alerts work before the first call.
// Call it after registering the services.
func (m *Metrics) InitializeMetrics(s *grpc.Server) { m.grpc.InitializeMetrics(s) }

// ObserveIdentities makes radkit_upstream_token_expiry_seconds and
// radkit_upstream_breaker_state report, with the label identity, each
// identity that f returns: the identities in force, so that the series of
// one a reload removed go with it. f is called at each scrape and must be
// cheap and safe for concurrent use. A later call replaces f.
func (m *Metrics) ObserveIdentities(f func() []IdentityState) { m.identities.Store(&f) }

// ObserveWatches makes the radkit_watch_* metrics report what f returns;
// they are absent until it is called. f is called at each scrape and must
// be cheap and safe for concurrent use.
func (m *Metrics) ObserveWatches(f func() WatchStats) { m.watches.Store(&f) }

// watchMetric is one radkit_watch_* metric, read from ObserveWatches's
// function at each scrape.
func (m *Metrics) watchMetric(name, help string, typ prometheus.ValueType, value func(WatchStats) float64) prometheus.Collector {
	return &funcGauge{
		desc: prometheus.NewDesc(name, help, nil, nil),
		typ:  typ,
		value: func() (float64, bool) {
			f := m.watches.Load()
			if f == nil || *f == nil {
				return 0, false
			}
			return value((*f)()), true
		},
	}
}

// identityStates returns what ObserveIdentities's function says, or none.
func (m *Metrics) identityStates() []IdentityState {
	f := m.identities.Load()
	if f == nil || *f == nil {
		return nil
	}
	return (*f)()
}

func (m *Metrics) tokenExpirySeconds(st IdentityState) (float64, bool) {
	if st.TokenExpiry.IsZero() {
		return 0, false
	}
	return st.TokenExpiry.Sub(m.now()).Seconds(), true
}

func breakerStateValue(st IdentityState) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(st.Breaker)) {
	case "closed":
		return 0, true
	case "half-open", "half_open", "halfopen":
		return 1, true
	case "open":
		return 2, true
	}
	return 0, false
}

// identityGauge is a gauge with one series per identity in force, each
// absent while value has none for it.
type identityGauge struct {
	desc   *prometheus.Desc
	states func() []IdentityState
	value  func(IdentityState) (float64, bool)
}

func (g *identityGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *identityGauge) Collect(ch chan<- prometheus.Metric) {
	for _, st := range g.states() {
		if v, ok := g.value(st); ok && !math.IsNaN(v) {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, st.Name)
		}
	}
}

// funcGauge is a gauge whose value comes from a function at each scrape,
// like prometheus.GaugeFunc, but absent when the function has no value
// rather than reporting a misleading 0 or NaN.
type funcGauge struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType // zero means a gauge
	value func() (float64, bool)
}

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	v, ok := g.value()
	if !ok || math.IsNaN(v) {
		return
	}
	typ := g.typ
	if typ == 0 {
		typ = prometheus.GaugeValue
	}
	ch <- prometheus.MustNewConstMetric(g.desc, typ, v)
}

// exemplarFromContext labels an observation with the trace ID of the
// sampled span in ctx, linking a latency outlier to its trace.
func exemplarFromContext(ctx context.Context) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}
