package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/requestid"
)

// audit writes the audit record of a call that mints or revokes
// credentials: who asked, for what, and how it ended. The OTP and the token
// never appear; a revoked token is identified by the first 12 hex digits of
// its SHA-256, enough to correlate with the caller's own records and useless
// to anyone else.
func (s *Server) audit(ctx context.Context, rpc string, err error, attrs ...slog.Attr) {
	if s.auditLog == nil {
		return
	}
	if !s.auditLog.Enabled(ctx, slog.LevelInfo) {
		return
	}
	outcome := codes.OK
	if err != nil {
		outcome = status.Code(Status(err))
	}
	var buf [10]slog.Attr
	all := append(buf[:0],
		slog.String("rpc", rpc),
		slog.String("caller", callerFrom(ctx)),
		slog.String("outcome", outcome.String()),
	)
	if id, ok := requestid.FromContext(ctx); ok {
		// x_request_id: request_id is GenerateOTP's idempotency key.
		all = append(all, slog.String("x_request_id", id))
	}
	logRecord(ctx, s.auditLog, slog.LevelInfo, "audit", append(all, attrs...))
}

// tokenFingerprint identifies a token in the audit log without revealing it.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// callerFrom returns the caller identity recorded by SetCaller, or
// "anonymous" when callers are not authenticated.
func callerFrom(ctx context.Context) string {
	if ci := callInfoFrom(ctx); ci != nil {
		ci.mu.Lock()
		defer ci.mu.Unlock()
		if ci.caller != "" {
			return ci.caller
		}
	}
	return "anonymous"
}
