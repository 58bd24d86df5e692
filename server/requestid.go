package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/radkit/radkit-access-facade/server/requestid"
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
		id, ok := requestid.FromContext(ctx)
		if !ok {
			if v := metadata.ValueFromIncomingContext(ctx, requestid.Key); len(v) > 0 {
				id = v[0]
			}
		}
		id = requestid.Ensure(id)
		// Set, not sent: the header goes out with the answer, or with the
		// status of a trailers-only error answer, and later layers may
		// still add their own.
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestid.Key, id))
		return handler(requestid.NewContext(ctx, id), req)
	}
}
