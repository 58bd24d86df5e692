package server

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// IdempotencyKeyMetadata is the metadata key that carries a GenerateOTP
// idempotency key outside the request body: the gateway forwards the HTTP
// header Idempotency-Key (IETF httpapi-idempotency-key-header) under it,
// and a gRPC caller may send it too.
const IdempotencyKeyMetadata = "idempotency-key"

// withIdempotencyKey returns req with the call's idempotency-key metadata
// as its request_id when the body has none. A key that differs from the
// body's request_id, or keys that differ from one another, are refused
// with INVALID_REQUEST: which one the caller meant cannot be guessed. The
// key is validated as request_id is, by validateGenerateOTP.
func withIdempotencyKey(ctx context.Context, req *accessv1.GenerateOTPRequest) (*accessv1.GenerateOTPRequest, error) {
	keys := metadata.ValueFromIncomingContext(ctx, IdempotencyKeyMetadata)
	if len(keys) == 0 {
		return req, nil
	}
	var v violations
	key := keys[0]
	for _, k := range keys[1:] {
		if k != key {
			v.add("request_id", "the Idempotency-Key header is sent more than once, with different values")
			return nil, v.err()
		}
	}
	switch id := req.GetRequestId(); {
	case id == key:
		return req, nil
	case id != "":
		v.add("request_id", "differs from the Idempotency-Key header; send one, or both equal")
		return nil, v.err()
	}
	req = proto.CloneOf(req)
	req.RequestId = key
	return req, nil
}
