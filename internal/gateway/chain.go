package gateway

import (
	"context"
	"slices"

	"google.golang.org/grpc"
)

// Chain composes unary interceptors into one, the first outermost, as
// grpc.ChainUnaryInterceptor does for a grpc.Server. The facade builds its
// chain once and gives it to both the gRPC server and the gateway.
//
// A call allocates one closure per interceptor after the first, made only
// when the interceptor before it calls on (as grpc-go does), instead of
// one per interceptor up front.
func Chain(interceptors ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	ics := slices.Clone(interceptors)
	switch len(ics) {
	case 0:
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, chainedHandler(ics, 1, info, handler))
	}
}

// chainedHandler is the handler ics[i-1] calls: ics[i] and on, then final.
func chainedHandler(ics []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(ics) {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[i](ctx, req, info, chainedHandler(ics, i+1, info, final))
	}
}

// ChainStream is Chain for stream interceptors, as
// grpc.ChainStreamInterceptor composes them.
func ChainStream(interceptors ...grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(srv any, ss grpc.ServerStream) error { return interceptor(srv, ss, info, inner) }
		}
		return next(srv, ss)
	}
}
