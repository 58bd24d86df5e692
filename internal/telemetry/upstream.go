package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// InstrumentTransport returns rt wrapped to record every upstream request
// in radkit_upstream_requests_total, radkit_upstream_request_duration_seconds
// and, for token-endpoint requests, radkit_upstream_token_fetches_total.
// Labels come from UpstreamRoute and the status code only, never from the
// raw URL. A nil rt means http.DefaultTransport. The requests are counted
// for the upstream identity named "default" (see InstrumentIdentity).
//
// Use it as the transport of upstream.Config.HTTPClient: the upstream
// client sends token requests (through x/oauth2) over the same transport,
// so they are counted too.
func (m *Metrics) InstrumentTransport(rt http.RoundTripper) http.RoundTripper {
	return m.InstrumentIdentity(rt, DefaultIdentity)
}

// DefaultIdentity is the identity label of InstrumentTransport.
const DefaultIdentity = "default"

// InstrumentIdentity is InstrumentTransport for the requests of one
// upstream identity, recorded with the label identity. Pass only
// configured identity names, so that the label stays bounded.
func (m *Metrics) InstrumentIdentity(rt http.RoundTripper, identity string) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	// Every result exists from the start, so that rate() and alerts on
	// "rejected" work before the first failure.
	for _, r := range []string{TokenFetchSuccess, TokenFetchRejected, TokenFetchError} {
		m.tokenFetches.WithLabelValues(identity, r)
	}
	return &metricsTransport{m: m, base: rt, identity: identity}
}

// metricsTransport is the http.RoundTripper of InstrumentIdentity.
//
// It keeps the series it has used, so that a request costs two map reads
// instead of hashing and validating its labels in each vector (a few
// microseconds a call under load): the keys are bounded, a
// route and an HTTP status.
type metricsTransport struct {
	m        *Metrics
	base     http.RoundTripper
	identity string

	requests  sync.Map // routeCode -> prometheus.Counter
	durations sync.Map // route -> prometheus.Observer
}

// routeCode is a series of radkit_upstream_requests_total for one
// identity: status is 0 for "error" (no response).
type routeCode struct {
	route  string
	status int
}

// requestCounter returns the series for route and status.
func (t *metricsTransport) requestCounter(route string, status int) prometheus.Counter {
	key := routeCode{route, status}
	if c, ok := t.requests.Load(key); ok {
		return c.(prometheus.Counter)
	}
	code := "error"
	if status != 0 {
		code = strconv.Itoa(status)
	}
	c, _ := t.requests.LoadOrStore(key, t.m.upstreamRequests.WithLabelValues(t.identity, route, code))
	return c.(prometheus.Counter)
}

// durationObserver returns the series of route.
func (t *metricsTransport) durationObserver(route string) prometheus.Observer {
	if o, ok := t.durations.Load(route); ok {
		return o.(prometheus.Observer)
	}
	o, _ := t.durations.LoadOrStore(route, t.m.upstreamDuration.WithLabelValues(t.identity, route))
	return o.(prometheus.Observer)
}

// RoundTrip sends req through the wrapped transport and records it.
func (t *metricsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	route := UpstreamRoute(req)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	elapsed := time.Since(start).Seconds()

	status, result := 0, TokenFetchError
	if err == nil {
		status = resp.StatusCode
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			result = TokenFetchSuccess
		case upstream.RefusesSetup(resp.StatusCode):
			// As the facade's errors say: credentials refused, not the
			// upstream in trouble (429 and 5xx are "error").
			result = TokenFetchRejected
		}
	}
	t.requestCounter(route, status).Inc()
	obs := t.durationObserver(route)
	if !t.m.exemplars {
		obs.Observe(elapsed)
	} else if ex := exemplarFromContext(req.Context()); ex != nil {
		obs.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed, ex)
	} else {
		obs.Observe(elapsed)
	}
	if route == RouteToken || route == RouteAPIToken {
		t.m.tokenFetches.WithLabelValues(t.identity, result).Inc()
	}
	return resp, err
}

// UpstreamRoute names the upstream endpoint that req is for, as one of the
// Route* constants. It looks at the escaped path only (never the query,
// which may carry a token), and only at its end, so that a base URL with a
// path prefix, or endpoints discovered on another host, are still
// recognised: the token and revocation endpoints are recognised by their
// last segment ("token", "revoke"), as in the upstream's discovery
// document (/oauth2/token, /oauth2/revoke).
func UpstreamRoute(req *http.Request) string {
	if req == nil || req.URL == nil {
		return RouteOther
	}
	// The escaped path keeps an escaped service ID in one segment, so that
	// an ID containing "/" cannot pose as another route.
	p := req.URL.EscapedPath()
	dir, last := p, ""
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, last = p[:i], p[i+1:]
	}
	switch {
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		return RouteDiscovery
	case strings.HasSuffix(dir, "/public/admin/service/status") && last != "":
		return RouteStatus
	case strings.HasSuffix(p, "/public/otp/certificate"):
		return RouteOTP
	case strings.HasSuffix(p, "/auth/token"):
		return RouteAPIToken
	case last == "token":
		return RouteToken
	case last == "revoke":
		return RouteRevoke
	}
	return RouteOther
}
