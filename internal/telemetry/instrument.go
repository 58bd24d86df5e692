package telemetry

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// AttrUpstreamRoute is the span attribute naming the upstream endpoint of
// a client span (one of the Route* constants).
const AttrUpstreamRoute = "radkit.upstream.route"

// defaultPropagator is W3C trace context and baggage, as SetupTracing
// returns; the helpers use it when given none.
func defaultPropagator(p propagation.TextMapPropagator) propagation.TextMapPropagator {
	if p == nil {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return p
}

// isNoop reports whether tp is the no-op provider of SetupTracing, in
// which case the helpers add nothing: disabled tracing costs nothing.
func isNoop(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

// GRPCServerOption returns the grpc.Server option that traces native gRPC
// calls with tp, continuing traces that callers propagate with prop. It is
// a stats handler, so it does not run for calls through the in-process
// gateway: HTTPHandler traces those. Health checks are not traced. A nil
// prop means W3C trace context and baggage.
func GRPCServerOption(tp trace.TracerProvider, prop propagation.TextMapPropagator) grpc.ServerOption {
	if isNoop(tp) {
		return grpc.EmptyServerOption{}
	}
	prop = defaultPropagator(prop)
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(prop),
		// Metrics are Prometheus's job (Metrics); no global meter provider.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	))
}

// HTTPHandler returns h wrapped to trace each HTTP request with tp,
// continuing traces that callers propagate with prop. Span names and the
// http.route attribute use the route template ("GET
// /v1/services/{service_id}/status", from the protos' google.api.http
// bindings, or the http.ServeMux pattern that served the request), never
// the raw path: service IDs would make every span name unique. Probes and
// scrapes (GET /healthz, /readyz, /metrics) are not traced. A nil prop
// means W3C trace context and baggage.
func HTTPHandler(h http.Handler, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.Handler {
	if isNoop(tp) {
		return h
	}
	prop = defaultPropagator(prop)
	routes := gatewayRoutes()
	untracedPaths := map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		if route := routes.match(r); route != "" {
			span.SetAttributes(attribute.String("http.route", route))
		}
		h.ServeHTTP(w, r)
		if r.Pattern != "" && routes.match(r) == "" {
			if route := muxRoute(r.Pattern); route != "" {
				span.SetAttributes(attribute.String("http.route", route))
			}
		}
	})
	return otelhttp.NewHandler(inner, "",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			method := spanMethod(r.Method)
			if route := routes.match(r); route != "" {
				return method + " " + route
			}
			// Called again after the handler ran, when http.ServeMux has set
			// the pattern that matched.
			if route := muxRoute(r.Pattern); route != "" {
				return method + " " + route
			}
			return method
		}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			return !(r.Method == http.MethodGet && untracedPaths[r.URL.Path])
		}),
	)
}

// HTTPTransport returns rt wrapped to trace each upstream request with tp
// as a client span, and to send the trace context to the upstream with
// prop (traceparent). Span names are "METHOD route" with route from
// UpstreamRoute ("GET status"), and the url.full attribute has every query
// value replaced by "REDACTED": the revocation URL carries the token in its
// query. The wrapped transport still sends the real URL. A nil rt means
// http.DefaultTransport, a nil prop W3C trace context and baggage.
func HTTPTransport(rt http.RoundTripper, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if isNoop(tp) {
		return rt
	}
	prop = defaultPropagator(prop)
	traced := otelhttp.NewTransport(&restoreURLTransport{base: rt},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return spanMethod(r.Method) + " " + UpstreamRoute(r)
		}),
	)
	return &redactURLTransport{next: traced}
}

// originalURLKey is the context key under which redactURLTransport passes
// the real URL to restoreURLTransport, past otelhttp.
type originalURLKey struct{}

// redactURLTransport shows otelhttp a copy of the request whose URL has
// its query values redacted and no user info or fragment.
type redactURLTransport struct{ next http.RoundTripper }

// RoundTrip hands next a redacted view of req, carrying the real URL in its
// context.
func (t *redactURLTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return t.next.RoundTrip(req)
	}
	red := *req.URL
	red.User = nil
	red.Fragment, red.RawFragment = "", ""
	red.RawQuery = redactQuery(req.URL.RawQuery)
	r := req.WithContext(context.WithValue(req.Context(), originalURLKey{}, req.URL))
	r.URL = &red
	return t.next.RoundTrip(r)
}

// restoreURLTransport sends the request that otelhttp prepared (with its
// trace headers) to the real URL, and names the upstream route on the span.
type restoreURLTransport struct{ base http.RoundTripper }

// RoundTrip puts the real URL back and sends req through base.
func (t *restoreURLTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if orig, ok := req.Context().Value(originalURLKey{}).(*url.URL); ok {
		req = req.WithContext(req.Context())
		req.URL = orig
	}
	trace.SpanFromContext(req.Context()).SetAttributes(attribute.String(AttrUpstreamRoute, UpstreamRoute(req)))
	return t.base.RoundTrip(req)
}

// redactQuery keeps a query's keys and replaces every value with
// "REDACTED"; a query that does not parse is replaced whole.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return "REDACTED"
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for range values[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteString("=REDACTED")
		}
	}
	return b.String()
}

// spanMethod is the method for a span name: a standard method, or "HTTP"
// for any other, so that callers cannot mint span names at will.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// muxRoute is the path template of an http.ServeMux pattern ("GET
// /healthz" gives "/healthz"), or "" for none or for the catch-all "/",
// which names no route.
func muxRoute(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimSpace(pattern[i:])
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 { // a host before the path
		pattern = pattern[i:]
	}
	if pattern == "" || pattern == "/" {
		return ""
	}
	return pattern
}
