package facade

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService is the grpc.health.v1 service with one change: Watch
// streams end when shutdown starts. grpc-go's health server keeps them open
// (it sends NOT_SERVING and waits), and GracefulStop waits for every open
// stream, so one watching load balancer would hold shutdown for the whole
// ShutdownTimeout. Ending them with UNAVAILABLE tells watchers to go
// elsewhere, as a closing connection would.
type healthService struct {
	*health.Server
	stopping <-chan struct{}
}

// Watch implements healthpb.HealthServer.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, watchStream{stream, ctx})
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "server is shutting down")
	default:
		return err
	}
}

// watchStream is a Watch stream with its context replaced.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

// Context returns the replaced context.
func (s watchStream) Context() context.Context { return s.ctx }
