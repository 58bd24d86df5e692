package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// TestFacadeWiring wires the package the way the facade does (see the
// package's report): metrics and traces around the real AccessService, the
// real gateway and a real upstream client talking to the emulator. One
// HTTP call must give one trace (gateway span, then the upstream calls as
// its children) and the gRPC and upstream metrics.
func TestFacadeWiring(t *testing.T) {
	emu, creds := startEmulator(t)
	exp := tracetest.NewInMemoryExporter()
	tp, prop, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Exporter: exp, Getenv: noEnv})
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	defer shutdown(context.Background())
	m := telemetry.NewMetrics()
	m.LinkTraces(tp) // as the facade does: exemplars on, since tp traces

	base := upstream.NewTransport()
	client, err := upstream.New(upstream.Config{
		BaseURL:      emu.URL,
		ClientID:     creds.ID,
		ClientSecret: creds.Secret,
		HTTPClient:   &http.Client{Transport: telemetry.HTTPTransport(m.InstrumentTransport(base), tp, prop)},
	})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	defer func() {
		client.Close()
		base.CloseIdleConnections()
	}()
	m.ObserveIdentities(func() []telemetry.IdentityState {
		info, _ := client.TokenInfo()
		return []telemetry.IdentityState{{Name: telemetry.DefaultIdentity, TokenExpiry: info.Expiry}}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	interceptor := gateway.Chain(m.UnaryServerInterceptor(), server.UnaryLogger(slog.New(slog.DiscardHandler)))
	h, err := gateway.New(ctx, gateway.Config{
		Service:     server.New(server.Config{Upstream: client}),
		Interceptor: interceptor,
		Ready:       func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	gw := httptest.NewServer(telemetry.HTTPHandler(h, tp, prop))
	defer gw.Close()

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(gw.URL + "/v1/services/" + knownService + "/status")
	if err != nil {
		t.Fatalf("GET status: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET status: %d %s", resp.StatusCode, body)
	}

	// Gateway span, then discovery, token and status client spans.
	spans := waitSpans(t, exp, 4)
	var root tracetest.SpanStub
	clients := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			root = s
		} else {
			clients[s.Name] = s
		}
	}
	if root.Name != "GET /v1/services/{service_id}/status" {
		t.Errorf("gateway span %q, want the route template", root.Name)
	}
	for _, name := range []string{"GET discovery", "POST token", "GET status"} {
		s, ok := clients[name]
		if !ok {
			t.Errorf("no client span %q among %v", name, spanNames(spans))
			continue
		}
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("client span %q is not in the gateway span's trace", name)
		}
	}

	s := scrapeMetrics(t, m)
	if v := s.value(t, "grpc_server_handled_total", map[string]string{"grpc_method": "GetServiceStatus", "grpc_code": "OK"}); v != 1 {
		t.Errorf("grpc_server_handled_total{GetServiceStatus,OK} = %v, want 1", v)
	}
	if v := s.value(t, telemetry.MetricUpstreamRequests, map[string]string{"route": telemetry.RouteStatus, "code": "200"}); v != 1 {
		t.Errorf("upstream status requests = %v, want 1", v)
	}
	if v := s.value(t, telemetry.MetricUpstreamTokenFetches, map[string]string{"result": telemetry.TokenFetchSuccess}); v != 1 {
		t.Errorf("token fetches = %v, want 1", v)
	}
	if len(s.series(telemetry.MetricUpstreamTokenExpiry, nil)) != 1 {
		t.Errorf("no token expiry series once a token is held")
	}
	if strings.Contains(s.text, knownService) {
		t.Errorf("the scrape carries the service ID")
	}

	// In OpenMetrics, the histograms link to the trace as exemplars.
	ms := httptest.NewServer(m.Handler())
	defer ms.Close()
	req, err := http.NewRequest(http.MethodGet, ms.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	om, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exemplar := `trace_id="` + root.SpanContext.TraceID().String() + `"`
	for _, metric := range []string{"grpc_server_handling_seconds_bucket", telemetry.MetricUpstreamRequestDuration + "_bucket"} {
		found := false
		for line := range strings.Lines(string(om)) {
			if strings.HasPrefix(line, metric) && strings.Contains(line, exemplar) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s line with the exemplar %s", metric, exemplar)
		}
	}
}
