package facade_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// An open health Watch stream, as load balancers keep, must not hold a
// graceful shutdown for the whole ShutdownTimeout.
func TestShutdownEndsHealthWatch(t *testing.T) {
	const shutdownTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := facade.New(ctx, facade.Config{
		Emulator: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		ShutdownTimeout: shutdownTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}

	start := time.Now()
	cancel()
	for {
		resp, err := watch.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Watch ended with %v, want Unavailable", err)
			}
			break
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Watch during shutdown: %v, want NOT_SERVING", resp.GetStatus())
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Far below the timeout: shutdown did not wait for the stream.
	if took := time.Since(start); took > shutdownTimeout/2 {
		t.Errorf("shutdown took %v with a Watch open, want well under %v", took, shutdownTimeout)
	}
}
