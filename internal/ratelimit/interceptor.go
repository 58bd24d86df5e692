package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/reason"
)

// ErrorInfo metadata keys of a CALLER_RATE_LIMITED error
// (reason.CallerRateLimited).
const (
	// MetadataLimit is the sustained rate allowed, in calls per second.
	MetadataLimit = "limit"
	// MetadataBurst is the number of calls allowed at once.
	MetadataBurst = "burst"
)

// maxKeyInMessage bounds how much of a caller's key an error message
// repeats: keys come from callers, and a status message is no place for a
// kilobyte of someone's certificate subject.
const maxKeyInMessage = 128

// UnaryServerInterceptor returns an interceptor that refuses AccessService
// calls of callers over their limit with codes.ResourceExhausted, and
// passes every other method through. Use the same interceptor for the gRPC
// server and the gateway, after the interceptor that authenticates callers
// (so that Key can see who called) and after metrics and logging (so that
// refused calls are counted and logged).
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	if l.disabled {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	}
	// Only the AccessService's methods are limited: health checks and
	// reflection must keep answering a limited caller, or probes would take
	// a busy facade out of service.
	guarded := "/" + accessv1.AccessService_ServiceDesc.ServiceName + "/"
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, guarded) {
			return handler(ctx, req)
		}
		key := l.key(ctx)
		if ok, retryAfter := l.AllowContext(ctx, key); !ok {
			return nil, l.limitedError(key, retryAfter)
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls: a
// stream counts once against its caller's limit, when it opens.
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	guarded := "/" + accessv1.AccessService_ServiceDesc.ServiceName + "/"
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if l.disabled || !strings.HasPrefix(info.FullMethod, guarded) {
			return handler(srv, ss)
		}
		key := l.key(ss.Context())
		if ok, retryAfter := l.AllowContext(ss.Context(), key); !ok {
			return l.limitedError(key, retryAfter)
		}
		return handler(srv, ss)
	}
}

// limitedError is the status a limited caller gets.
func (l *Limiter) limitedError(key string, retryAfter time.Duration) error {
	msg := fmt.Sprintf("rate limit exceeded for caller %q: at most %s calls per second, bursts of %d; retry in %s",
		truncate(key, maxKeyInMessage), formatLimit(l.limit), l.burst, retryAfter)
	return reason.Error(reason.CallerRateLimited, msg,
		reason.WithMetadata(map[string]string{
			MetadataLimit: formatLimit(l.limit),
			MetadataBurst: strconv.Itoa(l.burst),
		}),
		reason.WithRetryAfter(retryAfter))
}

// formatLimit writes a rate as the shortest decimal that reads back the
// same: "5", "0.5".
func formatLimit(r rate.Limit) string {
	return strconv.FormatFloat(float64(r), 'g', -1, 64)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
