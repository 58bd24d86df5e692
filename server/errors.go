package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/radkit/radkit-access-facade/server/resilience"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the facade
// returns.
const ErrorDomain = "radkit-access-facade"

// ErrorInfo reasons, as documented in access.proto. Callers branch on these,
// so they never change meaning.
const (
	ReasonInvalidRequest          = "INVALID_REQUEST"
	ReasonUpstreamBadRequest      = "UPSTREAM_BAD_REQUEST"
	ReasonUpstreamPermission      = "UPSTREAM_PERMISSION_DENIED"
	ReasonUpstreamNotFound        = "UPSTREAM_NOT_FOUND"
	ReasonUpstreamRateLimited     = "UPSTREAM_RATE_LIMITED"
	ReasonCredentialsRejected     = "UPSTREAM_CREDENTIALS_REJECTED"
	ReasonUpstreamUnavailable     = "UPSTREAM_UNAVAILABLE"
	ReasonUpstreamCircuitOpen     = "UPSTREAM_CIRCUIT_OPEN"
	ReasonUpstreamError           = "UPSTREAM_ERROR"
	ReasonMalformedResponse       = "UPSTREAM_MALFORMED_RESPONSE"
	ReasonUpstreamTimeout         = "UPSTREAM_TIMEOUT"
	ReasonRevocationNotConfigured = "REVOCATION_NOT_CONFIGURED"
	ReasonCanceled                = "CANCELED"
	ReasonInternal                = "INTERNAL"

	// Reasons the facade itself gives, before any upstream call.

	// ReasonCallerUnauthenticated: no valid caller key or client
	// certificate (UNAUTHENTICATED; package callerauth).
	ReasonCallerUnauthenticated = "CALLER_UNAUTHENTICATED"
	// ReasonCallerRateLimited: the caller exceeded the facade's own
	// per-caller limit (RESOURCE_EXHAUSTED with RetryInfo; package
	// ratelimit), as opposed to ReasonUpstreamRateLimited.
	ReasonCallerRateLimited = "CALLER_RATE_LIMITED"
	// ReasonRequestIDReused: the request_id was used within the TTL with
	// a different owner, endpoint_id or description (INVALID_ARGUMENT).
	ReasonRequestIDReused = "REQUEST_ID_REUSED"
	// ReasonTooManyRequestIDs: the facade remembers as many request_ids as
	// it may, and refuses new ones until the oldest expires
	// (RESOURCE_EXHAUSTED, with RetryInfo).
	ReasonTooManyRequestIDs = "TOO_MANY_REQUEST_IDS"
)

// ErrorInfo metadata keys.
const (
	MetadataUpstreamStatus  = "upstream_status"
	MetadataUpstreamDetails = "upstream_details"
	MetadataUpstreamOp      = "upstream_op"
)

// defaultRetryDelay is the RetryInfo delay offered when the upstream says a
// retry may help but not when.
const defaultRetryDelay = time.Second

// mapping is one row of the error table: the gRPC code and reason for a
// class of failure, and whether a retry may help.
type mapping struct {
	code      codes.Code
	reason    string
	retryable bool
}

// classify is the error table, in one place (README "Error mapping"). It
// asks the classifiers of the upstream client and of its resilience layer,
// never strings or the error types' fields.
func classify(err error) mapping {
	switch {
	case errors.Is(err, resilience.ErrCircuitOpen):
		// The facade stopped calling a failing upstream for a while; nothing
		// was sent.
		return mapping{codes.Unavailable, ReasonUpstreamCircuitOpen, true}
	case errors.Is(err, context.DeadlineExceeded):
		return mapping{codes.DeadlineExceeded, ReasonUpstreamTimeout, false}
	case errors.Is(err, context.Canceled):
		return mapping{codes.Canceled, ReasonCanceled, false}
	case errors.Is(err, upstream.ErrInvalidArgument):
		// Validation here catches these first; this is the client's own
		// last line of defence.
		return mapping{codes.InvalidArgument, ReasonInvalidRequest, false}
	case errors.Is(err, upstream.ErrRevokeNeedsClientCredentials):
		return mapping{codes.FailedPrecondition, ReasonRevocationNotConfigured, false}
	case errors.Is(err, upstream.ErrMalformedResponse):
		return mapping{codes.Internal, ReasonMalformedResponse, false}
	case upstream.IsSetupFailure(err):
		// Discovery and token endpoints answer for the facade's own
		// set-up, never for anything the caller sent: our credentials or
		// configuration are wrong, and the caller can only wait for
		// operators.
		return mapping{codes.Unavailable, ReasonCredentialsRejected, false}
	case upstream.StatusCode(err) != 0:
		return classifyStatus(err)
	case upstream.IsUnanswered(err), errors.Is(err, upstream.ErrDiscovery):
		return mapping{codes.Unavailable, ReasonUpstreamUnavailable, true}
	default:
		return mapping{codes.Internal, ReasonInternal, false}
	}
}

// classifyStatus maps an upstream HTTP error answer to a call (set-up
// failures are classified before).
func classifyStatus(err error) mapping {
	switch code := upstream.StatusCode(err); {
	case upstream.OpOf(err).IsSetup():
		// 429 or 5xx from discovery or the token endpoint: the upstream
		// is in trouble, whatever the call.
		return mapping{codes.Unavailable, ReasonUpstreamUnavailable, true}
	case code == http.StatusUnauthorized:
		// The client already fetched a new token and retried once.
		return mapping{codes.Unavailable, ReasonCredentialsRejected, false}
	case code == http.StatusForbidden:
		return mapping{codes.PermissionDenied, ReasonUpstreamPermission, false}
	case code == http.StatusNotFound:
		return mapping{codes.NotFound, ReasonUpstreamNotFound, false}
	case code == http.StatusTooManyRequests:
		return mapping{codes.ResourceExhausted, ReasonUpstreamRateLimited, true}
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return mapping{codes.Unavailable, ReasonUpstreamUnavailable, true}
	case code >= 500 && upstream.RetryAdvised(err):
		return mapping{codes.Unavailable, ReasonUpstreamUnavailable, true}
	case code >= 500:
		return mapping{codes.Internal, ReasonUpstreamError, false}
	default: // 400 and any other 4xx: the request as sent was refused
		return mapping{codes.InvalidArgument, ReasonUpstreamBadRequest, false}
	}
}

// Status turns an error from the upstream client into the gRPC status the
// caller sees: code and reason from the error table, the upstream's own
// details text in the message and in ErrorInfo metadata, and RetryInfo where
// a retry may help. A status error passes through unchanged.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	m := classify(err)
	info := &errdetails.ErrorInfo{Reason: m.reason, Domain: ErrorDomain, Metadata: map[string]string{}}
	msg := message(m)

	if op := upstream.OpOf(err); op != "" {
		info.Metadata[MetadataUpstreamOp] = string(op)
	}
	if code := upstream.StatusCode(err); code != 0 {
		info.Metadata[MetadataUpstreamStatus] = strconv.Itoa(code)
	}
	if d := upstream.Details(err); d != "" {
		info.Metadata[MetadataUpstreamDetails] = d
		msg += ": " + d
	}
	retryAfter := upstream.RetryAfter(err)
	var openErr *resilience.CircuitOpenError
	if errors.As(err, &openErr) {
		// Until the breaker lets probes through; never less than the
		// default, so that callers do not spin while probes are in flight.
		retryAfter = max(openErr.RetryAfter, defaultRetryDelay)
	}

	details := []protoMessage{info}
	if m.retryable {
		if retryAfter <= 0 {
			retryAfter = defaultRetryDelay
		}
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	}
	return newStatus(m.code, msg, details...)
}

// message is the caller-facing summary of a class of failure. It never
// includes the wrapped error's text, which may name internal URLs.
func message(m mapping) string {
	switch m.reason {
	case ReasonCredentialsRejected:
		return "the facade's upstream credentials were rejected by RADKit Access Cloud; operators must fix its configuration"
	case ReasonUpstreamBadRequest:
		return "RADKit Access Cloud refused the request"
	case ReasonUpstreamPermission:
		return "the facade's RADKit identity is not allowed to do this"
	case ReasonUpstreamNotFound:
		return "not found on RADKit Access Cloud"
	case ReasonUpstreamRateLimited:
		return "RADKit Access Cloud is rate limiting the facade"
	case ReasonUpstreamUnavailable:
		return "RADKit Access Cloud is unavailable"
	case ReasonUpstreamCircuitOpen:
		return "RADKit Access Cloud has been failing; the facade stopped calling it for a while"
	case ReasonUpstreamError:
		return "RADKit Access Cloud failed"
	case ReasonMalformedResponse:
		return "RADKit Access Cloud sent a response the facade cannot use"
	case ReasonUpstreamTimeout:
		return "the deadline passed before RADKit Access Cloud answered"
	case ReasonRevocationNotConfigured:
		return "token revocation needs upstream client credentials, and the facade has none"
	case ReasonCanceled:
		return "the call was canceled"
	default:
		return "internal error"
	}
}
