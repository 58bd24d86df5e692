// Package telemetry gives the facade its Prometheus metrics and its
// OpenTelemetry traces.
//
// Metrics live in a private registry (NewMetrics): gRPC server metrics from
// a unary interceptor that runs for native gRPC and gateway calls alike,
// upstream request metrics from an http.RoundTripper wrapper, and gauges for
// each upstream identity's token and circuit breaker fed by functions. No label ever
// carries a service ID or a token: upstream requests are labelled by a
// fixed set of routes.
//
// Tracing (SetupTracing) exports over OTLP only when the standard OTEL_*
// environment asks for it, and is otherwise a no-op that the helpers
// (GRPCServerOption, HTTPHandler, HTTPTransport) skip entirely. The tracer
// provider and propagator are passed explicitly; nothing is installed in
// the otel globals. Span names use route templates, never raw paths, and
// the query values of upstream URLs (the revocation URL carries a token)
// are redacted.
package telemetry
