package telemetry_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
)

// fakeService answers GetServiceStatus for any ID and leaves the other
// methods unimplemented.
type fakeService struct {
	accessv1.UnimplementedAccessServiceServer
}

func (fakeService) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	return &accessv1.GetServiceStatusResponse{ServiceId: req.GetServiceId(), Active: true, Online: true}, nil
}

// startGRPC serves fakeService and health on 127.0.0.1 with opts and
// returns a client connection to it.
func startGRPC(t *testing.T, setup func(*grpc.Server), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	accessv1.RegisterAccessServiceServer(s, fakeService{})
	healthpb.RegisterHealthServer(s, health.NewServer())
	if setup != nil {
		setup(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Stop()
		<-done
	})
	return conn
}

func TestGRPCServerMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	interceptor := gateway.Chain(m.UnaryServerInterceptor())
	conn := startGRPC(t, m.InitializeMetrics, grpc.UnaryInterceptor(interceptor))
	client := accessv1.NewAccessServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Before any call, InitializeMetrics has created the series at zero.
	okLabels := map[string]string{
		"grpc_service": "radkit.access.v1.AccessService", "grpc_method": "GetServiceStatus",
		"grpc_type": "unary", "grpc_code": "OK",
	}
	if v := scrapeMetrics(t, m).value(t, "grpc_server_handled_total", okLabels); v != 0 {
		t.Fatalf("grpc_server_handled_total before any call = %v, want 0", v)
	}

	for range 2 {
		if _, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: knownService}); err != nil {
			t.Fatalf("GetServiceStatus: %v", err)
		}
	}
	if _, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GenerateOTP: %v, want Unimplemented", err)
	}

	// The same interceptor chain serves the in-process gateway
	// (docs/adr/0001-gateway-in-process.md): its calls count too.
	h, err := gateway.New(ctx, gateway.Config{
		Service:     fakeService{},
		Interceptor: interceptor,
		Ready:       func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(gw.URL + "/v1/services/" + knownService + "/status")
	if err != nil {
		t.Fatalf("gateway GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway GET: status %d", resp.StatusCode)
	}

	s := scrapeMetrics(t, m)
	if v := s.value(t, "grpc_server_handled_total", okLabels); v != 3 {
		t.Errorf("grpc_server_handled_total{GetServiceStatus,OK} = %v, want 3 (2 gRPC + 1 gateway)", v)
	}
	if v := s.value(t, "grpc_server_handled_total", map[string]string{"grpc_method": "GenerateOTP", "grpc_code": "Unimplemented"}); v != 1 {
		t.Errorf("grpc_server_handled_total{GenerateOTP,Unimplemented} = %v, want 1", v)
	}
	if v := s.value(t, "grpc_server_handling_seconds", map[string]string{"grpc_method": "GetServiceStatus"}); v != 3 {
		t.Errorf("grpc_server_handling_seconds{GetServiceStatus} count = %v, want 3", v)
	}
	if v := s.value(t, "grpc_server_started_total", map[string]string{"grpc_method": "GetServiceStatus"}); v != 3 {
		t.Errorf("grpc_server_started_total{GetServiceStatus} = %v, want 3", v)
	}
	for v := range s.labelValues()["grpc_method"] {
		if v == knownService {
			t.Errorf("a grpc_method label carries the service ID")
		}
	}
}

func TestGRPCServerTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, prop, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{
		ServiceName: "test", Exporter: exp, Getenv: noEnv,
	})
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	defer shutdown(context.Background())
	conn := startGRPC(t, nil, telemetry.GRPCServerOption(tp, prop))

	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+caller.TraceID().String()+"-"+caller.SpanID().String()+"-01")
	if _, err := accessv1.NewAccessServiceClient(conn).GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: knownService}); err != nil {
		t.Fatalf("GetServiceStatus: %v", err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health Check: %v", err)
	}

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1 (health checks are not traced): %v", len(spans), spanNames(spans))
	}
	s := spans[0]
	if want := "radkit.access.v1.AccessService/GetServiceStatus"; s.Name != want {
		t.Errorf("span name %q, want %q", s.Name, want)
	}
	if s.SpanKind != trace.SpanKindServer {
		t.Errorf("span kind %v, want server", s.SpanKind)
	}
	if s.SpanContext.TraceID() != caller.TraceID() || s.Parent.SpanID() != caller.SpanID() {
		t.Errorf("span trace %s parent %s, want the caller's trace %s and span %s",
			s.SpanContext.TraceID(), s.Parent.SpanID(), caller.TraceID(), caller.SpanID())
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name
	}
	return names
}
