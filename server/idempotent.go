package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// generateOTPOnce is GenerateOTP with a request_id (AIP-155): the first
// call mints the OTP, and repeats with the same fields within the TTL get
// that OTP back (replayed is true) instead of a new one. Concurrent
// duplicates wait for the first one's upstream call.
//
// The key is scoped by the caller's identity as well as the request_id, so
// that one caller cannot read another's OTP by guessing its request_id, and
// each caller may hold only so many request_ids at once, so that one caller
// cannot use up the store for the others. Key and fields are kept only as
// SHA-256 digests; the OTP itself is held in memory for the TTL, never
// logged. Nothing of ctx outlives the call.
func (s *Server) generateOTPOnce(ctx context.Context, requestID, ident string, up Upstream, r upstream.OTPRequest) (otp string, replayed bool, err error) {
	fields := idempotency.Fingerprint(r.Owner, r.EndpointID, r.Description, ident) // an OTP is never replayed to another identity
	otp, replayed, err = s.otps.Do(ctx, callerFrom(ctx), requestID, fields, func(ctx context.Context) (string, error) {
		// ctx has outlived the first caller's deadline on purpose (other
		// callers may be waiting); the call still gets one of its own.
		ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
		defer cancel()
		return s.generateOTP(ctx, up, r)
	})
	var full *idempotency.FullError
	var lost *idempotency.LostError
	var keyErr *idempotency.StateKeyError
	switch {
	case errors.Is(err, idempotency.ErrRequestIDReused):
		return "", false, requestIDReusedStatus(s.otps.TTL())
	case errors.As(err, &full):
		return "", false, tooManyRequestIDsStatus(full)
	case errors.As(err, &lost):
		// The shared store lost what it had acknowledged: this request_id
		// may have been answered before, so refuse rather than mint.
		return "", false, reason.Error(reason.StateLost, "", reason.WithRetryAfter(max(lost.RetryAfter, time.Second)))
	case errors.As(err, &keyErr):
		return "", false, reason.Error(reason.StateKeyUnknown, "", reason.WithMetadata(map[string]string{"key_id": keyErr.KeyID}))
	case errors.Is(err, idempotency.ErrUnavailable):
		// The shared store is down, or the OTP could not be stored before
		// the deadline: giving it out, or minting without the store, could
		// give a retry on another replica a second OTP, so refuse instead.
		return "", false, reason.Error(reason.StateUnavailable, "", reason.WithRetryAfter(idempotency.RetryAfterUnavailable))
	case err != nil:
		// The upstream's failure, already a status, or this caller's
		// context ending while it waited.
		return "", false, Status(err)
	}
	return otp, replayed, nil
}

// requestIDReusedStatus is the INVALID_ARGUMENT answer to a request_id
// reused with different fields, shaped like every other validation error: a
// BadRequest field violation on request_id and an ErrorInfo.
func requestIDReusedStatus(ttl time.Duration) error {
	desc := "was already used with a different owner, endpoint_id or description within the last " +
		humanDuration(ttl) + "; use a new request_id for a new request"
	return reason.Error(reason.RequestIDReused, "invalid request: request_id: "+desc,
		reason.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "request_id", Description: desc},
		}}))
}

// tooManyRequestIDsStatus is the RESOURCE_EXHAUSTED answer when the facade
// cannot remember another request_id: this caller holds its quota, or, as a
// last resort, the facade holds as many as it may (the catalog's message).
// Refusing is honest where evicting a remembered one would silently let its
// retry mint a second OTP.
func tooManyRequestIDsStatus(full *idempotency.FullError) error {
	msg := ""
	if full.PerOwner {
		msg = "this caller holds too many unexpired request_ids to use a new one; retry when the oldest expires, or send fewer new request_ids"
	}
	return reason.Error(reason.TooManyRequestIDs, msg, reason.WithRetryAfter(max(full.RetryAfter, time.Second)))
}

// humanDuration writes whole minutes as "10 minutes", anything else as
// time.Duration does.
func humanDuration(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "minute"
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	default:
		return d.String()
	}
}
