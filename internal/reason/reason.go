// Package reason is the facade's catalog of google.rpc.ErrorInfo reasons:
// each reason is declared here once, with the gRPC code it is sent with,
// the caller-facing message that says what it means, and whether a retry
// may help. New builds the status of a reason, so that no package writes
// "status, details, fall back on failure" again.
//
// The reasons are part of the API: the ErrorReason enum
// (proto/radkit/access/v1/error_reason.proto) lists them for callers of
// every language, as accessv1.ErrorReason_X.String() for Go.
package reason

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the google.rpc.ErrorInfo domain of every error the facade
// returns.
const Domain = "radkit-access-facade"

// Reason is a google.rpc.ErrorInfo reason. Callers branch on them, so a
// reason never changes meaning.
type Reason string

// The reasons. The comment of each says when it is given; the catalog row
// in row gives its code and message.
const (
	// Refused by the facade before any upstream call.

	InvalidRequest        Reason = "INVALID_REQUEST"        // the request fails validation
	CallerUnauthenticated Reason = "CALLER_UNAUTHENTICATED" // no valid caller key or client certificate
	CallerRateLimited     Reason = "CALLER_RATE_LIMITED"    // the caller exceeded the facade's own limit
	RequestIDReused       Reason = "REQUEST_ID_REUSED"      // a request_id reused with other fields
	TooManyRequestIDs     Reason = "TOO_MANY_REQUEST_IDS"   // the request_id store is full
	RequestTooLarge       Reason = "REQUEST_TOO_LARGE"      // an HTTP body over the limit
	MethodNotAllowed      Reason = "METHOD_NOT_ALLOWED"     // an HTTP method the path does not serve
	NotFound              Reason = "NOT_FOUND"              // an HTTP path the facade does not serve
	TooManyWatches        Reason = "TOO_MANY_WATCHES"       // the caller or the replica is at its open-watch limit
	ShuttingDown          Reason = "SHUTTING_DOWN"          // the replica is shutting down; reconnect elsewhere
	IdentityNotGranted    Reason = "IDENTITY_NOT_GRANTED"   // the identity asked for is not the caller's, or does not exist
	// CredentialsExpired: the identity's upstream credential (API token,
	// or client secret) is past its expiry, so the facade does not send it.
	CredentialsExpired Reason = "CREDENTIALS_EXPIRED"
	StateUnavailable   Reason = "STATE_UNAVAILABLE" // the shared state store (Redis) is unreachable, or a result could not be stored in time
	StateLost          Reason = "STATE_LOST"        // the shared state store lost acknowledged data: unknown request_ids are refused for a while
	StateKeyUnknown    Reason = "STATE_KEY_UNKNOWN" // a remembered result is sealed under a state key this replica does not hold
	// UpstreamBudgetExhausted: the facade's own budget of upstream calls
	// per second (summed over replicas) is spent.
	UpstreamBudgetExhausted Reason = "UPSTREAM_BUDGET_EXHAUSTED"

	// The upstream's answer, or the lack of one.

	UpstreamBadRequest      Reason = "UPSTREAM_BAD_REQUEST"
	UpstreamPermission      Reason = "UPSTREAM_PERMISSION_DENIED"
	UpstreamNotFound        Reason = "UPSTREAM_NOT_FOUND"
	UpstreamRateLimited     Reason = "UPSTREAM_RATE_LIMITED"
	CredentialsRejected     Reason = "UPSTREAM_CREDENTIALS_REJECTED"
	UpstreamUnavailable     Reason = "UPSTREAM_UNAVAILABLE"
	UpstreamCircuitOpen     Reason = "UPSTREAM_CIRCUIT_OPEN"
	UpstreamThrottled       Reason = "UPSTREAM_THROTTLED" // refused locally: the upstream answers too few calls
	UpstreamError           Reason = "UPSTREAM_ERROR"
	MalformedResponse       Reason = "UPSTREAM_MALFORMED_RESPONSE"
	UpstreamTimeout         Reason = "UPSTREAM_TIMEOUT"
	RevocationNotConfigured Reason = "REVOCATION_NOT_CONFIGURED"
	Canceled                Reason = "CANCELED"
	Internal                Reason = "INTERNAL"

	// The facade's own bound on upstream calls in flight was reached and
	// no slot freed up before the call's deadline; nothing was sent.
	UpstreamConcurrencyLimit Reason = "UPSTREAM_CONCURRENCY_LIMIT"
)

// entry is one row of the catalog.
type entry struct {
	code      codes.Code
	message   string // caller-facing; never names internal URLs or secrets
	retryable bool   // a retry may help: the status carries RetryInfo
}

// row is the catalog: one row per reason, and the only place that says
// which code and message go with a reason. An unknown reason is INTERNAL.
func (r Reason) row() entry {
	switch r {
	case InvalidRequest:
		return entry{codes.InvalidArgument, "invalid request", false}
	case CallerUnauthenticated:
		return entry{codes.Unauthenticated, "missing or invalid caller credentials", false}
	case CallerRateLimited:
		return entry{codes.ResourceExhausted, "the caller exceeded its rate limit at the facade", true}
	case RequestIDReused:
		return entry{codes.InvalidArgument, "the request_id was already used with different fields", false}
	case TooManyRequestIDs:
		return entry{codes.ResourceExhausted, "the facade remembers too many request_ids to accept a new one; retry later", true}
	case RequestTooLarge:
		return entry{codes.ResourceExhausted, "request body is too large", false}
	case StateUnavailable:
		return entry{codes.Unavailable, "the facade's shared state store is unavailable, so it cannot keep the request_id promise; retry, or send no request_id", true}
	case StateLost:
		return entry{codes.Unavailable, "the facade's shared state store lost data it had acknowledged, so the facade cannot tell whether this request_id was already answered; it refuses request_ids it does not find until the remembering window since the loss has passed (see RetryInfo)", true}
	case StateKeyUnknown:
		return entry{codes.Internal, "the result remembered for this request_id is sealed under a state key this facade replica does not hold (its ID is in the ErrorInfo metadata key_id); operators must restore that key to the keyring", false}
	case UpstreamBudgetExhausted:
		return entry{codes.ResourceExhausted, "the facade's budget of calls to RADKit Access Cloud is spent for now; retry later", true}
	case MethodNotAllowed:
		return entry{codes.Unimplemented, "method not allowed for this path", false}
	case NotFound:
		return entry{codes.NotFound, "no such path", false}
	case TooManyWatches:
		return entry{codes.ResourceExhausted, "too many open watches; close one, or retry later", false}
	case ShuttingDown:
		return entry{codes.Unavailable, "the facade replica is shutting down; reconnect", true}
	case IdentityNotGranted:
		// One message for "not granted" and "no such identity", so that
		// names cannot be probed.
		return entry{codes.PermissionDenied, "the caller may not act as this identity", false}
	case UpstreamBadRequest:
		return entry{codes.InvalidArgument, "RADKit Access Cloud refused the request", false}
	case UpstreamPermission:
		return entry{codes.PermissionDenied, "the facade's RADKit identity is not allowed to do this", false}
	case UpstreamNotFound:
		return entry{codes.NotFound, "not found on RADKit Access Cloud", false}
	case UpstreamRateLimited:
		return entry{codes.ResourceExhausted, "RADKit Access Cloud is rate limiting the facade", true}
	case CredentialsExpired:
		// UNAVAILABLE, as CREDENTIALS_REJECTED: the caller can do nothing
		// about the facade's own credential (FAILED_PRECONDITION would
		// tell it to fix its request's state), and clients that handle a
		// rejected credential handle this the same way. Not retryable: only
		// an operator's new credential helps.
		return entry{codes.Unavailable, "the facade's upstream credential for this identity has expired; operators must install a new one", false}
	case CredentialsRejected:
		return entry{codes.Unavailable, "the facade's upstream credentials were rejected by RADKit Access Cloud; operators must fix its configuration", false}
	case UpstreamUnavailable:
		return entry{codes.Unavailable, "RADKit Access Cloud is unavailable", true}
	case UpstreamCircuitOpen:
		return entry{codes.Unavailable, "RADKit Access Cloud has been failing; the facade stopped calling it for a while", true}
	case UpstreamThrottled:
		return entry{codes.Unavailable, "RADKit Access Cloud is failing many calls; the facade refused this one to spare it", true}
	case UpstreamError:
		return entry{codes.Internal, "RADKit Access Cloud failed", false}
	case MalformedResponse:
		return entry{codes.Internal, "RADKit Access Cloud sent a response the facade cannot use", false}
	case UpstreamTimeout:
		return entry{codes.DeadlineExceeded, "the deadline passed before RADKit Access Cloud answered", false}
	case UpstreamConcurrencyLimit:
		return entry{codes.ResourceExhausted, "the facade has as many RADKit Access Cloud calls in flight as it allows; none finished before the deadline", true}
	case RevocationNotConfigured:
		return entry{codes.FailedPrecondition, "token revocation needs upstream client credentials, and the identity used has none (it has an API token)", false}
	case Canceled:
		return entry{codes.Canceled, "the call was canceled", false}
	default:
		return entry{codes.Internal, "internal error", false}
	}
}

// Code is the gRPC code that r is sent with.
func (r Reason) Code() codes.Code { return r.row().code }

// Message is the caller-facing summary of what r means.
func (r Reason) Message() string { return r.row().message }

// Retryable reports whether a retry may help after r: such a status
// carries RetryInfo.
func (r Reason) Retryable() bool { return r.row().retryable }

// Option adds to the status that New builds.
type Option func(*spec)

type spec struct {
	metadata   map[string]string
	retryAfter *time.Duration
	details    []protoadapt.MessageV1
}

// WithMetadata sets the ErrorInfo metadata.
func WithMetadata(md map[string]string) Option {
	return func(s *spec) { s.metadata = md }
}

// WithRetryAfter adds a google.rpc.RetryInfo with delay d (negative counts
// as 0).
func WithRetryAfter(d time.Duration) Option {
	return func(s *spec) { d := max(d, 0); s.retryAfter = &d }
}

// WithDetails adds details after the ErrorInfo (and RetryInfo), such as a
// google.rpc.BadRequest.
func WithDetails(d ...protoadapt.MessageV1) Option {
	return func(s *spec) { s.details = append(s.details, d...) }
}

// New returns the status of reason r: r's code; msg, or r's own message
// when msg is empty; a google.rpc.ErrorInfo in Domain; and whatever the
// options add. Details only fail to marshal on a programming error; the
// status then goes out with its code and message alone rather than not at
// all.
func New(r Reason, msg string, opts ...Option) *status.Status {
	var s spec
	for _, o := range opts {
		o(&s)
	}
	if msg == "" {
		msg = r.Message()
	}
	st := status.New(r.Code(), msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: string(r), Domain: Domain, Metadata: s.metadata}}
	if s.retryAfter != nil {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(*s.retryAfter)})
	}
	details = append(details, s.details...)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st
	}
	return withDetails
}

// Error is New(r, msg, opts...).Err().
func Error(r Reason, msg string, opts ...Option) error {
	return New(r, msg, opts...).Err()
}
