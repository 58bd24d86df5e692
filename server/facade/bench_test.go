package facade_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// BenchmarkFacadeGetServiceStatus is the in-process equivalent of the
// harness's mode B (cmd/radkit-access-bench): a whole facade with its
// built-in emulator on loopback, called over gRPC on TCP, with the per-call
// JSON log line encoded (to io.Discard). Profile it with
//
//	go test -run '^$' -bench FacadeGetServiceStatus -cpuprofile cpu.out ./server/facade
//
// The emulator runs in the same process, so profiles include its work:
// look at the facade's own frames (server, grpc, upstream, net/http client).
func BenchmarkFacadeGetServiceStatus(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	f, err := facade.New(ctx, facade.Config{
		Emulator: true,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
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
	req := &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}
	// Wait until the facade holds a token: the first calls would measure it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := client.GetServiceStatus(ctx, req); err == nil {
			break
		} else if time.Now().After(deadline) {
			b.Fatalf("facade not serving: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
