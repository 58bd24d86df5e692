package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is the service.name of the facade's spans when
// TracingConfig.ServiceName is empty.
const DefaultServiceName = "radkit-access-facade"

// OTLP protocols accepted in OTEL_EXPORTER_OTLP_PROTOCOL and
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL.
const (
	ProtocolHTTPProtobuf = "http/protobuf" // the default, as the OpenTelemetry specification recommends
	ProtocolHTTPJSON     = "http/json"
	ProtocolGRPC         = "grpc"
)

// TracingConfig configures SetupTracing.
type TracingConfig struct {
	// ServiceName is the service.name resource attribute. Default
	// DefaultServiceName.
	ServiceName string
	// Version is the service.version resource attribute.
	Version string
	// Exporter, if set, receives every span synchronously, whatever the
	// environment says. It is meant for tests
	// (tracetest.NewInMemoryExporter).
	Exporter sdktrace.SpanExporter
	// Getenv reads the OTEL_* environment variables. Default os.Getenv;
	// tests pass a map lookup.
	Getenv func(string) string
}

// SetupTracing returns the tracer provider and propagator that the facade
// passes explicitly to GRPCServerOption, HTTPHandler and HTTPTransport
// (nothing is installed globally), and a shutdown function that flushes
// and stops the exporter; call it once at exit, with a deadline.
//
// Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set (and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none): spans go through a batch processor to
// an OTLP exporter speaking OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default, http/json or grpc).
// As the specification says, a generic endpoint gets "/v1/traces" appended
// for HTTP, a traces endpoint is used as is. Other OTEL_EXPORTER_OTLP_*
// variables (headers, certificates, timeout, compression) and
// OTEL_TRACES_SAMPLER are read by the exporter and the SDK themselves.
// Otherwise the provider is a no-op: the helpers then add no instrumentation
// at all, so that disabled tracing costs nothing.
//
// The propagator is W3C trace context and baggage, in every case.
//
// Failed exports are not returned to anyone: the SDK reports them through
// OpenTelemetry's process-wide error handler (otel.SetErrorHandler), which
// prints plain text to stderr unless the program routes it to its own log.
// This package sets no global; the program that owns the process does.
func SetupTracing(ctx context.Context, cfg TracingConfig) (trace.TracerProvider, propagation.TextMapPropagator, func(context.Context) error, error) {
	prop := defaultPropagator(nil)
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	noopShutdown := func(context.Context) error { return nil }

	var processor sdktrace.SpanProcessor
	if cfg.Exporter != nil {
		processor = sdktrace.NewSimpleSpanProcessor(cfg.Exporter)
	} else {
		exp, err := newOTLPExporter(ctx, getenv)
		if err != nil {
			return nil, nil, nil, err
		}
		if exp == nil {
			return tracenoop.NewTracerProvider(), prop, noopShutdown, nil
		}
		processor = sdktrace.NewBatchSpanProcessor(exp)
	}

	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Ours come last so that they win over OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...),
	)
	if err != nil && res == nil {
		_ = processor.Shutdown(ctx)
		return nil, nil, nil, fmt.Errorf("telemetry: tracing resource: %w", err)
	}
	// A partial resource (one detector failed) is still worth using.

	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(processor),
		sdktrace.WithResource(res),
	)
	shutdown := func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("telemetry: tracing shutdown: %w", err)
		}
		return nil
	}
	return tp, prop, shutdown, nil
}

// newOTLPExporter builds the OTLP span exporter that the environment asks
// for, or returns nil when tracing is off. Endpoints in errors are
// redacted: they may carry credentials in their user info.
//
// Kept by hand rather than contrib's autoexport, which reads os.Getenv
// only, exports to localhost when no endpoint is set (tracing here stays
// off until one is), has no http/json, and registers its exporters in an
// init() that brings the metrics and logs SDKs into the binary.
func newOTLPExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return nil, nil
	}
	endpointVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	endpoint := strings.TrimSpace(getenv(endpointVar))
	signalSpecific := endpoint != ""
	if !signalSpecific {
		endpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
		endpoint = strings.TrimSpace(getenv(endpointVar))
	}
	if endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s is not a valid URL", endpointVar)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: %s %q: want an http or https URL with a host", endpointVar, u.Redacted())
	}

	protocol := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	if protocol == "" {
		protocol = ProtocolHTTPProtobuf
	}

	var exp sdktrace.SpanExporter
	switch protocol {
	case ProtocolHTTPProtobuf, ProtocolHTTPJSON:
		if !signalSpecific {
			u.Path = strings.TrimRight(u.Path, "/") + "/v1/traces"
			u.RawPath = ""
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
		if protocol == ProtocolHTTPJSON {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case ProtocolGRPC:
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(u.String()))
	default:
		return nil, fmt.Errorf("telemetry: OTLP protocol %q: want %s, %s or %s", protocol, ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP %s exporter for %s: %w", protocol, u.Redacted(), err)
	}
	return exp, nil
}
