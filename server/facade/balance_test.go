package facade_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestMaxConnectionAge: a long-lived gRPC client is told (GOAWAY) to
// reconnect after MaxConnectionAge, so that it can reach new replicas, and
// a call in flight when the age passes is not cut.
func TestMaxConnectionAge(t *testing.T) {
	const age = 300 * time.Millisecond
	h := startFacade(t, facade.Config{Emulator: true, MaxConnectionAge: age, WatchInterval: time.Second})
	h.waitServing(t)

	var dials atomic.Int64
	conn, err := grpc.NewClient(h.f.GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := accessv1.NewAccessServiceClient(conn)

	// A call that takes several ages to answer: the connection's GOAWAY
	// comes while it is in flight, and it must still succeed.
	h.f.Emulator().SetLatency(emulator.RouteStatus, 4*age)
	if _, err := client.GetServiceStatus(callCtx(t), &accessv1.GetServiceStatusRequest{ServiceId: liveService}); err != nil {
		t.Fatalf("call in flight across MaxConnectionAge: %v", err)
	}
	h.f.Emulator().SetLatency(emulator.RouteStatus, 0)

	// A watch stream, the longest call there is, outlives several ages
	// on its connection: it still receives a change made after them.
	watch, err := client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("first watch message: %v", err)
	}
	time.Sleep(4 * age)
	h.f.Emulator().SetService(emulator.Service{ID: liveService, Active: true, Online: false})
	for {
		msg, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch stream after %s with MaxConnectionAge %s: %v", 4*age, age, err)
		}
		if !msg.GetOnline() {
			break
		}
	}

	// Calls spread over several ages run on several connections.
	deadline := time.Now().Add(20 * time.Second)
	for dials.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d dials after 20s of calls with MaxConnectionAge %s: the client was never told to reconnect", dials.Load(), age)
		}
		if _, err := client.GetServiceStatus(callCtx(t), &accessv1.GetServiceStatusRequest{ServiceId: liveService}); err != nil {
			t.Fatalf("call across a reconnect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
