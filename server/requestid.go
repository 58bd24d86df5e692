package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/radkit/radkit-access-facade/internal/requestid"
)

// UnaryRequestID returns an interceptor that gives every call its request
// ID (see package requestid): the one already in the context (the gateway
// puts the HTTP caller's there), else the caller's x-request-id metadata,
// else a generated one; a malformed one is replaced, never refused. The
// ID goes into the call's context, where the log line, the audit record
// and the upstream client find it, and into the answer's header metadata,
// errors included.
//
// It must run first in the chain, before UnaryLogger, so that every call
// the log line reports has its ID.
func UnaryRequestID() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, id := callRequestID(ctx)
		resp, err := handler(ctx, req)
		// Set as the call returns, not as it starts: a unary answer's
		// header goes out with the answer (or, for an error, in a header
		// frame just before the status), and grpc-go keeps the metadata
		// set until then, about half a KiB that a call waiting for the
		// upstream would otherwise hold for its whole life
		// (docs/performance.md, mode U).
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestid.Key, id))
		return resp, err
	}
}

// StreamRequestID is UnaryRequestID for streaming calls: the stream's
// context carries the ID, and its header metadata answers it.
func StreamRequestID() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, id := callRequestID(ss.Context())
		_ = ss.SetHeader(metadata.Pairs(requestid.Key, id))
		return handler(srv, &requestIDStream{ServerStream: ss, ctx: ctx})
	}
}

// callRequestID returns ctx carrying the call's request ID, and the ID:
// the one ctx already carries, else the caller's metadata's when well
// formed, else a new one.
func callRequestID(ctx context.Context) (context.Context, string) {
	id, ok := requestid.FromContext(ctx)
	if !ok {
		if v := metadata.ValueFromIncomingContext(ctx, requestid.Key); len(v) > 0 {
			id = v[0]
		}
	}
	id = requestid.Ensure(id)
	return requestid.NewContext(ctx, id), id
}

// requestIDStream is a ServerStream whose context carries the request ID.
type requestIDStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *requestIDStream) Context() context.Context { return s.ctx }
