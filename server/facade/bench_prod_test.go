package facade_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// BenchmarkFacadeProduction is one call through the whole facade as a
// production deployment runs it: caller authentication with an API key,
// the rate limit on (far above what the benchmark reaches), metrics on,
// JSON log lines at info (encoded to io.Discard), and tracing off or with a
// tracer installed (every span sampled, exported to nowhere). The built-in
// emulator is the upstream, in the same process, so profiles include its
// work. Calls are serial, so that no two status calls share an upstream
// call and allocs/op is the same from run to run: it is the figure to
// guide cuts by.
//
//	go test -run '^$' -bench FacadeProduction -benchmem -cpuprofile cpu.out -memprofile mem.out ./server/facade
func BenchmarkFacadeProduction(b *testing.B) {
	for _, tracing := range []bool{false, true} {
		name := "tracing=off"
		if tracing {
			name = "tracing=on"
		}
		b.Run(name, func(b *testing.B) {
			client, ctx := startProduction(b, tracing)
			b.Run("GetServiceStatus", func(b *testing.B) {
				req := &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := client.GetServiceStatus(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GenerateOTP", func(b *testing.B) {
				req := &accessv1.GenerateOTPRequest{Owner: "bench@example.com", EndpointId: "bench-endpoint", Description: "BenchmarkFacadeProduction"}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := client.GenerateOTP(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// startProduction starts a facade with production settings and returns a
// client and the context that carries the caller's key.
func startProduction(b *testing.B, tracing bool) (accessv1.AccessServiceClient, context.Context) {
	b.Helper()
	const key = "bench-caller-key-0123456789abcdef"
	sum := sha256.Sum256([]byte(key))
	keysFile := filepath.Join(b.TempDir(), "keys")
	if err := os.WriteFile(keysFile, []byte("bench-caller "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := facade.Config{
		Emulator:       true,
		CallerKeysFile: keysFile,
		RateLimit:      1e9,
		RateBurst:      1 << 20,
	}
	if tracing {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		cfg.TracerProvider, cfg.Propagator = tp, propagation.TraceContext{}
	}
	return benchFacade(b, cfg, "authorization", "Bearer "+key)
}
