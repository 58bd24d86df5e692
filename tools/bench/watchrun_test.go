package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// watchServer is an AccessService whose watches send one status and stay
// open, counting the streams open; it refuses services named "fail-..."
// and ends the streams of services named "end-..." after their status.
type watchServer struct {
	accessv1.UnimplementedAccessServiceServer
	open atomic.Int64
}

func (s *watchServer) WatchServiceStatus(req *accessv1.WatchServiceStatusRequest, stream grpc.ServerStreamingServer[accessv1.WatchServiceStatusResponse]) error {
	if strings.HasPrefix(req.GetServiceId(), "fail-") {
		return status.Error(codes.Unavailable, "refused")
	}
	s.open.Add(1)
	defer s.open.Add(-1)
	if err := stream.Send(&accessv1.WatchServiceStatusResponse{ServiceId: req.GetServiceId()}); err != nil {
		return err
	}
	if strings.HasPrefix(req.GetServiceId(), "end-") {
		return nil
	}
	<-stream.Context().Done()
	return nil
}

// startWatchServer serves a watchServer on loopback until t ends. (The
// service's internal/testkit.Listen would bring the emulator's modules
// into the bench's go.mod.)
func startWatchServer(t *testing.T) (string, *watchServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &watchServer{}
	gs := grpc.NewServer()
	accessv1.RegisterAccessServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), srv
}

// waitFor polls done until it holds, and fails t with what() once ctx
// ends first.
func waitFor(ctx context.Context, t *testing.T, done func() bool, what func() string) {
	t.Helper()
	for !done() {
		if ctx.Err() != nil {
			t.Fatal(what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenWatches(t *testing.T) {
	addr, srv := startWatchServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := watchPerConn + 10 // a second connection for the last ten
	ws, err := openWatches(ctx, addr, n, []string{"svc-a", "svc-b"})
	if err != nil {
		t.Fatalf("openWatches: %v", err)
	}
	if ws.conns != 2 {
		t.Errorf("connections = %d, want 2", ws.conns)
	}
	if got := srv.open.Load(); got != int64(n) {
		t.Errorf("streams open on the server = %d, want %d", got, n)
	}
	if err := ws.allOpen(); err != nil {
		t.Errorf("allOpen with every stream open: %v", err)
	}
	ws.close()
	ws.close() // a second call is a no-op
	if err := ws.allOpen(); err != nil {
		t.Errorf("allOpen after close counts the streams close ended: %v", err)
	}
	waitFor(ctx, t, func() bool { return srv.open.Load() == 0 }, func() string {
		return fmt.Sprintf("%d streams still open on the server after close", srv.open.Load())
	})
}

func TestOpenWatchesReportsFailedStreams(t *testing.T) {
	addr, srv := startWatchServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := openWatches(ctx, addr, 4, []string{"svc-a", "fail-b"})
	if err == nil || !strings.Contains(err.Error(), "2 of 4 streams failed") {
		t.Fatalf("openWatches = %v, want an error naming 2 of 4 streams failed", err)
	}
	waitFor(ctx, t, func() bool { return srv.open.Load() == 0 }, func() string {
		return fmt.Sprintf("%d streams left open after the failure", srv.open.Load())
	})
}

func TestOpenWatchesNoticesStreamsThatEnd(t *testing.T) {
	addr, _ := startWatchServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, err := openWatches(ctx, addr, 3, []string{"end-a"})
	if err != nil {
		t.Fatalf("openWatches: %v", err)
	}
	defer ws.close()
	waitFor(ctx, t, func() bool { return ws.ended.Load() == 3 }, func() string {
		return fmt.Sprintf("%d of 3 ended streams noticed", ws.ended.Load())
	})
	if err := ws.allOpen(); err == nil || !strings.Contains(err.Error(), "3 streams ended") {
		t.Errorf("allOpen = %v, want an error naming 3 streams ended", err)
	}
}
