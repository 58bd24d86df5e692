// Package reason is the facade's catalog of google.rpc.ErrorInfo reasons:
// for each reason of the API, the gRPC code it is sent with, the
// caller-facing message that says what it means, and whether a retry may
// help. New builds the status of a reason, so that no package writes
// "status, details, fall back on failure" again.
//
// The reasons themselves are the API's ErrorReason enum
// (proto/radkit/access/v1/error_reason.proto), which says when each is
// given: a Reason is one of its values and its wire string is the value's
// name, so Go code cannot send a reason the API does not list, and
// TestCatalogCoversTheEnum fails for a value added there without a row
// here. Callers outside the module compare ErrorInfo.reason with
// accessv1.ErrorReason_X.String().
package reason

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// Domain is the google.rpc.ErrorInfo domain of every error the facade
// returns.
const Domain = "radkit-access-facade"

// Reason is a google.rpc.ErrorInfo reason: a value of the API's
// ErrorReason enum. Callers branch on them, so a reason never changes
// meaning.
type Reason accessv1.ErrorReason

// The reasons, by their Go names; error_reason.proto says when each is
// given.
const (
	// Refused by the facade before any upstream call.

	InvalidRequest           = Reason(accessv1.ErrorReason_INVALID_REQUEST)
	CallerUnauthenticated    = Reason(accessv1.ErrorReason_CALLER_UNAUTHENTICATED)
	CallerRateLimited        = Reason(accessv1.ErrorReason_CALLER_RATE_LIMITED)
	RequestIDReused          = Reason(accessv1.ErrorReason_REQUEST_ID_REUSED)
	TooManyRequestIDs        = Reason(accessv1.ErrorReason_TOO_MANY_REQUEST_IDS)
	RequestTooLarge          = Reason(accessv1.ErrorReason_REQUEST_TOO_LARGE)
	MethodNotAllowed         = Reason(accessv1.ErrorReason_METHOD_NOT_ALLOWED)
	NotFound                 = Reason(accessv1.ErrorReason_NOT_FOUND)
	TooManyWatches           = Reason(accessv1.ErrorReason_TOO_MANY_WATCHES)
	ShuttingDown             = Reason(accessv1.ErrorReason_SHUTTING_DOWN)
	IdentityNotGranted       = Reason(accessv1.ErrorReason_IDENTITY_NOT_GRANTED)
	CredentialsExpired       = Reason(accessv1.ErrorReason_CREDENTIALS_EXPIRED)
	StateUnavailable         = Reason(accessv1.ErrorReason_STATE_UNAVAILABLE)
	StateLost                = Reason(accessv1.ErrorReason_STATE_LOST)
	StateKeyUnknown          = Reason(accessv1.ErrorReason_STATE_KEY_UNKNOWN)
	UpstreamBudgetExhausted  = Reason(accessv1.ErrorReason_UPSTREAM_BUDGET_EXHAUSTED)
	UpstreamConcurrencyLimit = Reason(accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT)
	UpstreamCircuitOpen      = Reason(accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN)
	UpstreamThrottled        = Reason(accessv1.ErrorReason_UPSTREAM_THROTTLED)

	// The upstream's answer, or the lack of one.

	UpstreamBadRequest      = Reason(accessv1.ErrorReason_UPSTREAM_BAD_REQUEST)
	UpstreamPermission      = Reason(accessv1.ErrorReason_UPSTREAM_PERMISSION_DENIED)
	UpstreamNotFound        = Reason(accessv1.ErrorReason_UPSTREAM_NOT_FOUND)
	UpstreamRateLimited     = Reason(accessv1.ErrorReason_UPSTREAM_RATE_LIMITED)
	CredentialsRejected     = Reason(accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED)
	UpstreamUnavailable     = Reason(accessv1.ErrorReason_UPSTREAM_UNAVAILABLE)
	UpstreamError           = Reason(accessv1.ErrorReason_UPSTREAM_ERROR)
	MalformedResponse       = Reason(accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE)
	UpstreamTimeout         = Reason(accessv1.ErrorReason_UPSTREAM_TIMEOUT)
	RevocationNotConfigured = Reason(accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED)

	// Neither: the caller left, or the facade failed.

	Canceled = Reason(accessv1.ErrorReason_CANCELED)
	Internal = Reason(accessv1.ErrorReason_INTERNAL)
)

// String is r as sent in ErrorInfo.reason: its ErrorReason value's name.
func (r Reason) String() string { return accessv1.ErrorReason(r).String() }

// entry is one row of the catalog.
type entry struct {
	code      codes.Code
	message   string // caller-facing; never names internal URLs or secrets
	retryable bool   // a retry may help: the status carries RetryInfo
}

// row is the catalog: one row per reason, and the only place that says
// which code and message go with a reason. A value with no row of its own
// (ERROR_REASON_UNSPECIFIED) gets Internal's, and false.
func (r Reason) row() (entry, bool) {
	switch r {
	case InvalidRequest:
		return entry{codes.InvalidArgument, "invalid request", false}, true
	case CallerUnauthenticated:
		return entry{codes.Unauthenticated, "missing or invalid caller credentials", false}, true
	case CallerRateLimited:
		return entry{codes.ResourceExhausted, "the caller exceeded its rate limit at the facade", true}, true
	case RequestIDReused:
		return entry{codes.InvalidArgument, "the request_id was already used with different fields", false}, true
	case TooManyRequestIDs:
		return entry{codes.ResourceExhausted, "the facade remembers too many request_ids to accept a new one; retry later", true}, true
	case RequestTooLarge:
		return entry{codes.ResourceExhausted, "request body is too large", false}, true
	case StateUnavailable:
		return entry{codes.Unavailable, "the facade's shared state store is unavailable, so it cannot keep the request_id promise; retry, or send no request_id", true}, true
	case StateLost:
		return entry{codes.Unavailable, "the facade's shared state store lost data it had acknowledged, so the facade cannot tell whether this request_id was already answered; it refuses request_ids it does not find until the remembering window since the loss has passed (see RetryInfo)", true}, true
	case StateKeyUnknown:
		return entry{codes.Internal, "the result remembered for this request_id is sealed under a state key this facade replica does not hold (its ID is in the ErrorInfo metadata key_id); operators must restore that key to the keyring", false}, true
	case UpstreamBudgetExhausted:
		return entry{codes.ResourceExhausted, "the facade's budget of calls to RADKit Access Cloud is spent for now; retry later", true}, true
	case MethodNotAllowed:
		return entry{codes.Unimplemented, "method not allowed for this path", false}, true
	case NotFound:
		return entry{codes.NotFound, "no such path", false}, true
	case TooManyWatches:
		return entry{codes.ResourceExhausted, "too many open watches; close one, or retry later", false}, true
	case ShuttingDown:
		return entry{codes.Unavailable, "the facade replica is shutting down; reconnect", true}, true
	case IdentityNotGranted:
		// One message for "not granted" and "no such identity", so that
		// names cannot be probed.
		return entry{codes.PermissionDenied, "the caller may not act as this identity", false}, true
	case UpstreamBadRequest:
		return entry{codes.InvalidArgument, "RADKit Access Cloud refused the request", false}, true
	case UpstreamPermission:
		return entry{codes.PermissionDenied, "the facade's RADKit identity is not allowed to do this", false}, true
	case UpstreamNotFound:
		return entry{codes.NotFound, "not found on RADKit Access Cloud", false}, true
	case UpstreamRateLimited:
		return entry{codes.ResourceExhausted, "RADKit Access Cloud is rate limiting the facade", true}, true
	case CredentialsExpired:
		// UNAVAILABLE, as CREDENTIALS_REJECTED: the caller can do nothing
		// about the facade's own credential (FAILED_PRECONDITION would
		// tell it to fix its request's state), and clients that handle a
		// rejected credential handle this the same way. Not retryable: only
		// an operator's new credential helps.
		return entry{codes.Unavailable, "the facade's upstream credential for this identity has expired; operators must install a new one", false}, true
	case CredentialsRejected:
		return entry{codes.Unavailable, "the facade's upstream credentials were rejected by RADKit Access Cloud; operators must fix its configuration", false}, true
	case UpstreamUnavailable:
		return entry{codes.Unavailable, "RADKit Access Cloud is unavailable", true}, true
	case UpstreamCircuitOpen:
		return entry{codes.Unavailable, "RADKit Access Cloud has been failing; the facade stopped calling it for a while", true}, true
	case UpstreamThrottled:
		return entry{codes.Unavailable, "RADKit Access Cloud is failing many calls; the facade refused this one to spare it", true}, true
	case UpstreamError:
		return entry{codes.Internal, "RADKit Access Cloud failed", false}, true
	case MalformedResponse:
		return entry{codes.Internal, "RADKit Access Cloud sent a response the facade cannot use", false}, true
	case UpstreamTimeout:
		return entry{codes.DeadlineExceeded, "the deadline passed before RADKit Access Cloud answered", false}, true
	case UpstreamConcurrencyLimit:
		return entry{codes.ResourceExhausted, "the facade has as many RADKit Access Cloud calls in flight as it allows; none finished before the deadline", true}, true
	case RevocationNotConfigured:
		return entry{codes.FailedPrecondition, "token revocation needs upstream client credentials, and the identity used has none (it has an API token)", false}, true
	case Canceled:
		return entry{codes.Canceled, "the call was canceled", false}, true
	case Internal:
		return entry{codes.Internal, "internal error", false}, true
	default:
		e, _ := Internal.row()
		return e, false
	}
}

// Code is the gRPC code that r is sent with.
func (r Reason) Code() codes.Code { e, _ := r.row(); return e.code }

// Message is the caller-facing summary of what r means.
func (r Reason) Message() string { e, _ := r.row(); return e.message }

// Retryable reports whether a retry may help after r: such a status
// carries RetryInfo.
func (r Reason) Retryable() bool { e, _ := r.row(); return e.retryable }

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
// options add. A value with no catalog row (ERROR_REASON_UNSPECIFIED,
// which is never sent) goes out as Internal. Details only fail to marshal
// on a programming error; the status then goes out with its code and
// message alone rather than not at all.
func New(r Reason, msg string, opts ...Option) *status.Status {
	if _, ok := r.row(); !ok {
		r = Internal
	}
	var s spec
	for _, o := range opts {
		o(&s)
	}
	if msg == "" {
		msg = r.Message()
	}
	st := status.New(r.Code(), msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: r.String(), Domain: Domain, Metadata: s.metadata}}
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
