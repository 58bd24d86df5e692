package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// BenchmarkGatewayModes compares the ways the REST gateway can reach the
// AccessService (docs/adr/0001-gateway-dial-back.md): the generated
// in-process handler, which skips gRPC interceptors, against dialing back
// through a gRPC client connection over an in-memory listener (what the
// facade does) and over TCP loopback. Each iteration is one
// GET /v1/services/{id}/status served end to end, emulator included.
func BenchmarkGatewayModes(b *testing.B) {
	_, upstreamSrv := testkit.StartEmulator(b, emulator.Config{})
	seed := emulator.DefaultSeed()
	client, err := upstream.New(upstream.Config{BaseURL: upstreamSrv.URL, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	if err := client.Ready(context.Background()); err != nil {
		b.Fatal(err)
	}
	svc := server.New(server.Config{Upstream: client})

	interceptor := Chain(server.UnaryLogger(discardLogger()))
	grpcServer := grpc.NewServer(grpc.ChainUnaryInterceptor(interceptor))
	accessv1.RegisterAccessServiceServer(grpcServer, svc)
	inner := bufconn.Listen(1 << 20)
	tcp := testkit.Listen(b)
	go func() { _ = grpcServer.Serve(inner) }()
	go func() { _ = grpcServer.Serve(tcp) }()
	b.Cleanup(grpcServer.Stop)

	dial := func(target string, opts ...grpc.DialOption) *grpc.ClientConn {
		conn, err := grpc.NewClient(target, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	ready := func() (bool, string) { return true, "" }
	ctx := context.Background()

	// What the facade serves: in-process, through the interceptor chain.
	chosen, err := New(ctx, Config{Ready: ready, Service: svc, Interceptor: interceptor})
	if err != nil {
		b.Fatal(err)
	}
	// The bare generated in-process handler: no interceptors at all.
	bare := runtime.NewServeMux()
	if err := accessv1.RegisterAccessServiceHandlerServer(ctx, bare, svc); err != nil {
		b.Fatal(err)
	}
	// Dial-back: the gateway as a gRPC client of the facade's gRPC server.
	dialBack := func(conn *grpc.ClientConn) http.Handler {
		mux := runtime.NewServeMux()
		if err := accessv1.RegisterAccessServiceHandlerClient(ctx, mux, accessv1.NewAccessServiceClient(conn)); err != nil {
			b.Fatal(err)
		}
		return mux
	}
	bufconnHandler := dialBack(dial("passthrough:///inner",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return inner.DialContext(ctx) })))
	tcpHandler := dialBack(dial(tcp.Addr().String()))

	for _, mode := range []struct {
		name    string
		handler http.Handler
	}{
		{"in-process-intercepted", chosen},
		{"in-process-bare", bare},
		{"dial-back-bufconn", bufconnHandler},
		{"dial-back-tcp", tcpHandler},
	} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					mode.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/services/1ryq-e8n8-5g5n/status", nil))
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
