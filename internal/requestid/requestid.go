// Package requestid owns the facade's request IDs: the identifier that a
// caller may send as x-request-id (an HTTP header or gRPC metadata), that
// the facade generates when the caller sent none, returns on every answer,
// writes to the call's log line and audit record, and sends upstream as
// X-Request-ID, so that a caller, the facade and the upstream can be
// correlated.
//
// An ID is at most MaxLen characters from [A-Za-z0-9._:-]. A caller's ID
// that is empty, too long or has any other character is not refused: it is
// replaced by a generated one (see Ensure), which the answer carries, so a
// caller's proxy that sends an odd ID never makes a call fail, and nothing
// a caller sends reaches a log line or the upstream unchecked.
//
// The package knows neither gRPC nor HTTP; it is shared by the server (the
// interceptor), the gateway (the HTTP header) and the upstream client.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Key is the name of the request ID as gRPC metadata key (lower case, as
// gRPC requires) and, in any case, as HTTP header.
const Key = "x-request-id"

// MaxLen bounds the length of a request ID.
const MaxLen = 128

// Valid reports whether id is a well-formed request ID: 1 to MaxLen
// characters, each a letter, digit, '.', '_', ':' or '-'.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// New returns a fresh request ID: 128 random bits as 32 hex digits.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// Ensure returns id when it is Valid, else a New one.
func Ensure(id string) string {
	if Valid(id) {
		return id
	}
	return New()
}

type ctxKey struct{}

// NewContext returns ctx carrying the request ID id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID carried by ctx, if any.
func FromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok && id != ""
}
