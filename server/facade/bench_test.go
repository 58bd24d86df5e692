package facade_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// BenchmarkFacadeGetServiceStatus is the in-process equivalent of the
// harness's mode B (tools/bench): a whole facade with its
// built-in emulator on loopback, called over gRPC on TCP, with the per-call
// JSON log line encoded (to io.Discard). Profile it with
//
//	go test -run '^$' -bench FacadeGetServiceStatus -cpuprofile cpu.out ./server/facade
//
// The emulator runs in the same process, so profiles include its work:
// look at the facade's own frames (server, grpc, upstream, net/http client).
func BenchmarkFacadeGetServiceStatus(b *testing.B) {
	client, ctx := benchFacade(b, facade.Config{Emulator: true})
	req := &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.GetServiceStatus(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchFacade serves a facade made from cfg on loopback until b ends (with
// JSON log lines to io.Discard unless cfg has a logger), and returns a
// client of it and the context its calls carry: outgoing metadata md, such
// as a caller key. It returns once the facade answers a status call, so
// that the first calls measured do not include its token fetch.
func benchFacade(b *testing.B, cfg facade.Config, md ...string) (accessv1.AccessServiceClient, context.Context) {
	b.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := facade.New(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	client := accessv1.NewAccessServiceClient(conn)
	callCtx := metadata.AppendToOutgoingContext(ctx, md...)
	req := &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.GetServiceStatus(callCtx, req)
		if err == nil {
			return client, callCtx
		}
		if time.Now().After(deadline) {
			b.Fatalf("facade not serving: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
