package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/radkit/radkit-access-facade/internal/telemetry"
)

// noEnv is an empty environment.
func noEnv(string) string { return "" }

// env is an environment made of a map.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// upstreamRecorder is a stand-in upstream that records what it received.
type upstreamRecorder struct {
	mu          sync.Mutex
	traceparent []string
	tokens      []string
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.traceparent = append(u.traceparent, r.Header.Get("traceparent"))
	u.tokens = append(u.tokens, r.URL.Query().Get("token"))
	u.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (u *upstreamRecorder) seen() (traceparents, tokens []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.traceparent...), append([]string(nil), u.tokens...)
}

// waitSpans waits until exp holds n spans, then returns them.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := exp.GetSpans()
		if len(spans) >= n || time.Now().After(deadline) {
			if len(spans) != n {
				t.Fatalf("%d spans, want %d: %v", len(spans), n, spanNames(spans))
			}
			return spans
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHTTPTracingEndToEnd(t *testing.T) {
	const (
		upstreamToken = "upstream-secret-token-4f1c"
		callerToken   = "caller-secret-token-9b2e"
	)
	exp := tracetest.NewInMemoryExporter()
	tp, prop, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{
		ServiceName: "radkit-access-facade", Version: "v1.2.3", Exporter: exp, Getenv: noEnv,
	})
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	defer shutdown(context.Background())

	rec := &upstreamRecorder{}
	up := httptest.NewServer(rec)
	defer up.Close()
	upTransport := &http.Transport{}
	defer upTransport.CloseIdleConnections()
	upClient := &http.Client{Transport: telemetry.HTTPTransport(upTransport, tp, prop)}

	// The facade: every /v1/ call revokes a token upstream, the way
	// upstream.Client does (token in the query).
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, up.URL+"/oauth2/revoke?token="+upstreamToken, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := upClient.Do(req)
		if err != nil {
			http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	facade := httptest.NewServer(telemetry.HTTPHandler(mux, tp, prop))
	defer facade.Close()

	callerTrace := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	callerSpan := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	call := func(method, path string, header map[string]string) {
		t.Helper()
		req, err := http.NewRequest(method, facade.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
		}
	}
	call(http.MethodGet, "/v1/services/"+knownService+"/status?token="+callerToken,
		map[string]string{"traceparent": fmt.Sprintf("00-%s-%s-01", callerTrace, callerSpan)})

	spans := waitSpans(t, exp, 2)
	var server, client tracetest.SpanStub
	for _, s := range spans {
		switch s.SpanKind {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			client = s
		}
	}
	if want := "GET /v1/services/{service_id}/status"; server.Name != want {
		t.Errorf("server span name %q, want %q", server.Name, want)
	}
	if got := attr(server, "http.route"); got != "/v1/services/{service_id}/status" {
		t.Errorf("server span http.route %q, want the template", got)
	}
	if server.SpanContext.TraceID() != callerTrace || server.Parent.SpanID() != callerSpan || !server.Parent.IsRemote() {
		t.Errorf("server span does not continue the caller's trace: trace %s parent %s", server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	if want := "POST " + telemetry.RouteRevoke; client.Name != want {
		t.Errorf("client span name %q, want %q", client.Name, want)
	}
	if client.Parent.SpanID() != server.SpanContext.SpanID() || client.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("client span is not a child of the server span")
	}
	if got := attr(client, telemetry.AttrUpstreamRoute); got != telemetry.RouteRevoke {
		t.Errorf("client span %s = %q, want %q", telemetry.AttrUpstreamRoute, got, telemetry.RouteRevoke)
	}
	if got := attr(client, "url.full"); !strings.HasSuffix(got, "/oauth2/revoke?token=REDACTED") {
		t.Errorf("client span url.full = %q, want the query value redacted", got)
	}
	if got := spans[0].Resource.String(); !strings.Contains(got, "service.version=v1.2.3") || !strings.Contains(got, "service.name=radkit-access-facade") {
		t.Errorf("resource %s lacks service.name or service.version", got)
	}

	// The upstream got the real token and the client span's trace context.
	traceparents, tokens := rec.seen()
	if len(traceparents) != 1 || len(tokens) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(traceparents))
	}
	if tokens[0] != upstreamToken {
		t.Errorf("upstream got token %q, want the real one", tokens[0])
	}
	seen := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.HeaderCarrier{"Traceparent": {traceparents[0]}}))
	if !seen.IsValid() || seen.TraceID() != server.SpanContext.TraceID() || seen.SpanID() != client.SpanContext.SpanID() {
		t.Errorf("upstream saw traceparent %q, want trace %s and parent span %s", traceparents[0], server.SpanContext.TraceID(), client.SpanContext.SpanID())
	}

	// Other routes: a ServeMux pattern names its span, an unknown path or
	// method does not mint a name, probes are not traced.
	call(http.MethodGet, "/openapi.json", nil)
	call(http.MethodGet, "/healthz", nil)
	call(http.MethodGet, "/v1/no/such/route/"+knownService, nil)
	call("PURGE", "/v1/services/"+knownService+"/status", nil)
	spans = waitSpans(t, exp, 2+1+2+2)
	var names []string
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			names = append(names, s.Name)
		}
	}
	if want := []string{"GET /v1/services/{service_id}/status", "GET /openapi.json", "GET", "HTTP"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("server span names %q, want %q", names, want)
	}

	// No secret and no raw path anywhere in a span's name, attributes or
	// events, except the path in url.path of server spans (a trace is per
	// request, so the ID is fine there).
	for _, s := range spans {
		for _, secret := range []string{upstreamToken, callerToken} {
			if strings.Contains(s.Name, secret) {
				t.Errorf("span %q: name carries a token", s.Name)
			}
			for _, kv := range s.Attributes {
				if strings.Contains(kv.Value.Emit(), secret) {
					t.Errorf("span %q: attribute %s carries a token", s.Name, kv.Key)
				}
			}
			for _, ev := range s.Events {
				for _, kv := range ev.Attributes {
					if strings.Contains(kv.Value.Emit(), secret) {
						t.Errorf("span %q: event %s attribute %s carries a token", s.Name, ev.Name, kv.Key)
					}
				}
			}
		}
		if strings.Contains(s.Name, knownService) {
			t.Errorf("span %q: name carries the raw path", s.Name)
		}
	}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func TestTracingNoopWithoutEndpoint(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"empty":       {},
		"sdkDisabled": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		"noExporter":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, prop, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Getenv: env(vars)})
			if err != nil {
				t.Fatalf("SetupTracing: %v", err)
			}
			if prop == nil || shutdown == nil {
				t.Fatal("nil propagator or shutdown")
			}
			_, span := tp.Tracer("test").Start(context.Background(), "op")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Errorf("span records (%v) or has a valid context (%v); want a no-op", span.IsRecording(), span.SpanContext().IsValid())
			}
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}

			// The helpers add nothing at all.
			h := http.NotFoundHandler()
			if got := telemetry.HTTPHandler(h, tp, prop); fmt.Sprintf("%p", got) != fmt.Sprintf("%p", h) {
				t.Errorf("HTTPHandler wrapped the handler under a no-op provider")
			}
			rt := &http.Transport{}
			if got := telemetry.HTTPTransport(rt, tp, prop); got != http.RoundTripper(rt) {
				t.Errorf("HTTPTransport wrapped the transport under a no-op provider")
			}
			if _, ok := telemetry.GRPCServerOption(tp, prop).(grpc.EmptyServerOption); !ok {
				t.Errorf("GRPCServerOption is not empty under a no-op provider")
			}
		})
	}
}

// otlpHTTPCollector is a stand-in OTLP/HTTP receiver.
type otlpHTTPCollector struct {
	mu    sync.Mutex
	paths []string
	types []string
}

func (c *otlpHTTPCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.types = append(c.types, r.Header.Get("Content-Type"))
	c.mu.Unlock()
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
}

func TestTracingOTLPHTTP(t *testing.T) {
	coll := &otlpHTTPCollector{}
	srv := httptest.NewServer(coll)
	defer srv.Close()

	for _, tc := range []struct {
		name             string
		vars             map[string]string
		wantPath, wantCT string
	}{
		{"generic endpoint, default protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}, "/v1/traces", "application/x-protobuf"},
		{"generic endpoint with a prefix", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/otlp/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "/otlp/v1/traces", "application/x-protobuf"},
		{"traces endpoint as is, json", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		}, "/custom", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coll.mu.Lock()
			coll.paths, coll.types = nil, nil
			coll.mu.Unlock()
			tp, _, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{ServiceName: "t", Getenv: env(tc.vars)})
			if err != nil {
				t.Fatalf("SetupTracing: %v", err)
			}
			if _, ok := tp.(*sdktrace.TracerProvider); !ok {
				t.Fatalf("provider %T, want the SDK's", tp)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "op")
			if !span.IsRecording() {
				t.Error("span does not record")
			}
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			coll.mu.Lock()
			defer coll.mu.Unlock()
			if len(coll.paths) != 1 || coll.paths[0] != tc.wantPath || !strings.HasPrefix(coll.types[0], tc.wantCT) {
				t.Errorf("collector got paths %q types %q, want one %s export to %s", coll.paths, coll.types, tc.wantCT, tc.wantPath)
			}
		})
	}
}

// otlpGRPCCollector is a stand-in OTLP/gRPC receiver.
type otlpGRPCCollector struct {
	collectortracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans int
}

func (c *otlpGRPCCollector) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans += len(ss.GetSpans())
		}
	}
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

func TestTracingOTLPGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coll := &otlpGRPCCollector{}
	s := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(s, coll)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	defer func() {
		s.Stop()
		<-done
	}()

	tp, _, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Getenv: env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + lis.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	})})
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	for range 3 {
		_, span := tp.Tracer("test").Start(context.Background(), "op")
		span.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	coll.mu.Lock()
	defer coll.mu.Unlock()
	if coll.spans != 3 {
		t.Errorf("collector got %d spans, want 3", coll.spans)
	}
}

func TestTracingConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, `"thrift"`},
		{"not a URL", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"no scheme", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:4317"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"password redacted", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://user:hunter2@127.0.0.1:4318"}, "xxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Getenv: env(tc.vars)})
			if err == nil {
				t.Fatal("SetupTracing succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q leaks the endpoint's password", err)
			}
		})
	}
}
