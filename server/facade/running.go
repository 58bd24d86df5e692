package facade

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// running counts the gRPC server's method handlers that have not
// returned, so that shutdown can tell when nothing but bytes that no
// client reads holds a connection open (see Facade.shutdown).
type running struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is zero; a new one when it rises
}

func newRunning() *running {
	idle := make(chan struct{})
	close(idle)
	return &running{idle: idle}
}

func (r *running) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.idle = make(chan struct{})
	}
	r.n++
}

func (r *running) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n--; r.n == 0 {
		close(r.idle)
	}
}

// Idle returns a channel that is closed when no handler runs (at once if
// none does now).
func (r *running) Idle() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle
}

func (r *running) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r.begin()
	defer r.end()
	return handler(ctx, req)
}

func (r *running) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r.begin()
	defer r.end()
	return handler(srv, ss)
}
