package gateway

import (
	"context"

	"google.golang.org/grpc"
)

// Chain composes unary interceptors into one, the first outermost, as
// grpc.ChainUnaryInterceptor does for a grpc.Server. The facade builds its
// chain once and gives it to both the gRPC server and the gateway.
func Chain(interceptors ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(ctx context.Context, req any) (any, error) { return interceptor(ctx, req, info, inner) }
		}
		return next(ctx, req)
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
