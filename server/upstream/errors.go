package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is: they are always wrapped with
// context.
var (
	// ErrMalformedResponse reports an upstream answer that does not have the
	// documented shape: bad JSON, a 200 without an OTP, a status without
	// its fields, a body over Config.MaxResponseBytes, a bad discovery
	// document.
	ErrMalformedResponse = errors.New("upstream: malformed response")
	// ErrDiscovery is matched by every failure of OpenID discovery, which
	// also wraps its cause (*Error, *TransportError, ErrMalformedResponse or
	// an issuer mismatch).
	ErrDiscovery = errors.New("upstream: discovery failed")
	// ErrRevokeNeedsClientCredentials is returned by RevokeToken when the
	// Client has no client credentials to authenticate the revocation.
	ErrRevokeNeedsClientCredentials = errors.New("upstream: token revocation needs client credentials")
	// ErrInvalidArgument reports a caller argument that cannot be sent
	// upstream (an empty token to revoke, a service ID that is not a path
	// segment). No request was made.
	ErrInvalidArgument = errors.New("upstream: invalid argument")
	// ErrClosed is returned (wrapped) by calls made after Close.
	ErrClosed = errors.New("upstream: client closed")
)

// Op names an operation of the client: the request that failed. It is the
// upstream_op of the facade's errors and the route of its metrics.
type Op string

// The operations. Discovery and token are the client's own set-up: they
// answer for the facade's configuration and credentials, never for what a
// caller sent.
const (
	OpDiscovery Op = "discovery" // GET .well-known/openid-configuration
	OpToken     Op = "token"     // fetching an access token
	OpOTP       Op = "otp"       // POST /public/otp/certificate
	OpStatus    Op = "status"    // GET /public/admin/service/status/{id}
	OpRevoke    Op = "revoke"    // the revocation endpoint
)

// IsSetup reports whether op is a step that the client takes before it
// sends a call's own request (discovery, getting an access token).
func (op Op) IsSetup() bool { return op == OpDiscovery || op == OpToken }

// Error is a non-2xx answer from the upstream.
type Error struct {
	// Op is the operation that got the answer.
	Op Op
	// StatusCode is the HTTP status code.
	StatusCode int
	// Details is the upstream's "details" field, or http.StatusText when the
	// body is not the documented JSON error shape.
	Details string
	// Retry is the upstream's "retry" field.
	Retry bool
	// RetryAfter is the parsed Retry-After header (seconds or HTTP date), 0
	// if absent.
	RetryAfter time.Duration
}

// Error describes the answer. Details come from the upstream and are quoted.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream: %s: HTTP %d", e.Op, e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" " + text)
	}
	if e.Details != "" && e.Details != http.StatusText(e.StatusCode) {
		fmt.Fprintf(&b, ": %q", e.Details)
	}
	if e.Retry {
		b.WriteString(" (retryable")
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " after %s", e.RetryAfter)
		}
		b.WriteString(")")
	}
	return b.String()
}

// TransportError reports a request that got no complete response: connection
// refused or reset, timeout, TLS failure, failure reading the body.
type TransportError struct {
	// Op is the operation, as in Error.
	Op Op
	// BeforeSend is true only when provably no byte of the request reached
	// the upstream (DNS, dial or TLS failure, connection refused, the
	// caller's context ended while waiting for a token), so that even a
	// non-idempotent call is safe to retry.
	BeforeSend bool
	// Queued is true when the request's context ended while it waited in
	// the facade's own transport for a connection or an HTTP/2 stream,
	// before it wrote its headers or dialled: the wait was the facade's,
	// and says nothing about the upstream's health (see IsQueued).
	Queued bool
	// Err is the cause. URLs in it have their query removed.
	Err error
}

// Error describes the failure.
func (e *TransportError) Error() string {
	if e.Queued {
		return fmt.Sprintf("upstream: %s: request not sent: still waiting for a connection or stream: %v", e.Op, e.Err)
	}
	if e.BeforeSend {
		return fmt.Sprintf("upstream: %s: request not sent: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("upstream: %s: transport error: %v", e.Op, e.Err)
}

// Unwrap returns the cause, so that errors.Is(err, context.DeadlineExceeded)
// works.
func (e *TransportError) Unwrap() error { return e.Err }

// MalformedError is an answer that the client cannot use (see
// ErrMalformedResponse, which it matches): the upstream did answer, with
// StatusCode, but not in the documented shape.
type MalformedError struct {
	// Op is the operation that got the answer.
	Op Op
	// StatusCode is the HTTP status of the unusable answer.
	StatusCode int
	// Err says what is wrong with the answer, never quoting its body. It
	// wraps ErrMalformedResponse.
	Err error
}

// Error describes the answer.
func (e *MalformedError) Error() string { return fmt.Sprintf("upstream: %s: %v", e.Op, e.Err) }

// Unwrap returns the cause.
func (e *MalformedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformedResponse) true even when Err does
// not wrap it.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformedResponse }

// malformed returns err (which wraps ErrMalformedResponse) as the
// *MalformedError of op's answer with status.
func malformed(op Op, status int, err error) error {
	var me *MalformedError
	if errors.As(err, &me) {
		return err
	}
	return &MalformedError{Op: op, StatusCode: status, Err: err}
}

// The classifiers below are the one place that says what an error of this
// package means. Other packages (error mapping, retries, the circuit
// breaker, logs, metrics) ask them rather than look inside the error types,
// as grpc's status.Code is asked rather than the error's text.

// OpOf returns the operation that err failed in, and "" when err is not an
// error of this package or names no operation (a malformed token answer,
// an issuer mismatch).
func OpOf(err error) Op {
	var upErr *Error
	var tErr *TransportError
	var mErr *MalformedError
	switch {
	case errors.As(err, &upErr):
		return upErr.Op
	case errors.As(err, &mErr):
		return mErr.Op
	case errors.As(err, &tErr):
		return tErr.Op
	case errors.Is(err, ErrDiscovery):
		return OpDiscovery
	}
	return ""
}

// StatusCode returns the HTTP status of the upstream's answer that err
// reports (a non-2xx *Error, or a *MalformedError's unusable answer), and
// 0 when the upstream did not answer.
func StatusCode(err error) int {
	var upErr *Error
	var mErr *MalformedError
	switch {
	case errors.As(err, &upErr):
		return upErr.StatusCode
	case errors.As(err, &mErr):
		return mErr.StatusCode
	}
	return 0
}

// Details returns the upstream's "details" text of a non-2xx answer, and ""
// for any other error.
func Details(err error) string {
	var upErr *Error
	if errors.As(err, &upErr) {
		return upErr.Details
	}
	return ""
}

// IsRefused reports whether err is the client refusing a call without
// contacting the upstream at all: an invalid argument, revocation without
// client credentials, a closed client, no free slot among the calls in
// flight (ErrConcurrencyLimit). Such an error says nothing about the
// upstream's health.
func IsRefused(err error) bool {
	return errors.Is(err, ErrInvalidArgument) ||
		errors.Is(err, ErrRevokeNeedsClientCredentials) ||
		errors.Is(err, ErrClosed) ||
		errors.Is(err, ErrConcurrencyLimit)
}

// IsQueued reports whether err is a request whose context ended while it
// waited for one of the facade's own resources: a slot of the bound on
// calls in flight (ErrConcurrencyLimit), or a connection or HTTP/2 stream
// in the transport (TransportError.Queued). Like IsRefused, such an error
// says nothing about the upstream's health: a slow upstream is not a
// failing one.
func IsQueued(err error) bool {
	var tErr *TransportError
	return errors.Is(err, ErrConcurrencyLimit) || (errors.As(err, &tErr) && tErr.Queued)
}

// NeverReached reports whether the call that failed with err provably
// never reached the upstream, so that even a call that is not idempotent
// (an OTP, a revocation) is safe to repeat: the client refused it, its
// request failed before any byte was sent, or the client failed while
// still getting ready to send it (discovery, getting a token).
func NeverReached(err error) bool {
	if err == nil {
		return false
	}
	var tErr *TransportError
	if errors.As(err, &tErr) && tErr.BeforeSend {
		return true
	}
	return IsRefused(err) || OpOf(err).IsSetup()
}

// IsTransient reports whether the upstream answered err with a status
// that says the same request may succeed later: 429 or any 5xx.
func IsTransient(err error) bool {
	code := StatusCode(err)
	var mErr *MalformedError
	if errors.As(err, &mErr) {
		return false // it answered, with something unusable
	}
	return code == http.StatusTooManyRequests || code >= 500
}

// RetryAdvised reports whether the upstream's answer said, in its "retry"
// field, that repeating the request may help.
func RetryAdvised(err error) bool {
	var upErr *Error
	return errors.As(err, &upErr) && upErr.Retry
}

// RetryAfter returns the upstream's Retry-After in err, and 0 when it sent
// none.
func RetryAfter(err error) time.Duration {
	var upErr *Error
	if errors.As(err, &upErr) {
		return upErr.RetryAfter
	}
	return 0
}

// IsSetupFailure reports whether err is the upstream refusing the
// facade's own set-up: an error answer other than 429 or 5xx (in practice
// a 4xx) from the discovery or token endpoint. The facade's configuration or credentials are wrong; nothing
// the caller sent, and no retry, can help. (A 429 or 5xx there is the
// upstream in trouble: see IsTransient.)
func IsSetupFailure(err error) bool {
	var upErr *Error
	return errors.As(err, &upErr) && upErr.Op.IsSetup() && RefusesSetup(upErr.StatusCode)
}

// RefusesSetup reports whether an answer with HTTP status code from the
// discovery or token endpoint refuses the facade's set-up (see
// IsSetupFailure): an error status other than 429 and 5xx. It is for those
// that see only the answer's status, such as the metrics of token fetches.
func RefusesSetup(code int) bool {
	return (code < 200 || code > 299) && code < 500 && code != http.StatusTooManyRequests
}

// IsUnanswered reports whether err is a request that got no complete
// answer: a *TransportError (refused, reset, timed out, body cut short).
func IsUnanswered(err error) bool {
	var tErr *TransportError
	return errors.As(err, &tErr)
}

// discoveryError marks a cause as a discovery failure: it matches
// ErrDiscovery and unwraps to the cause.
type discoveryError struct{ err error }

func (e *discoveryError) Error() string        { return e.err.Error() }
func (e *discoveryError) Unwrap() error        { return e.err }
func (e *discoveryError) Is(target error) bool { return target == ErrDiscovery }

func asDiscoveryError(err error) error {
	if err == nil || errors.Is(err, ErrDiscovery) {
		return err
	}
	return &discoveryError{err: err}
}

// newError builds the *Error for a non-2xx response.
func newError(op Op, status int, h http.Header, body []byte, now time.Time) *Error {
	details, retry := decodeErrorBody(status, body)
	return &Error{
		Op:         op,
		StatusCode: status,
		Details:    details,
		Retry:      retry,
		RetryAfter: parseRetryAfter(h.Get("Retry-After"), now),
	}
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an HTTP date.
// Anything else, and a date in the past, gives 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		const maxSeconds = int64(365 * 24 * time.Hour / time.Second)
		return time.Duration(min(n, maxSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// redactURL returns u without user info, query or fragment: the revocation
// URL carries the token in its query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<redacted URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// sanitize returns err with every *url.Error's URL redacted, keeping the
// error chain (Timeout, errors.Is on the cause) intact.
func sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// Any wrapping text around a url.Error may repeat its URL: keep
		// only the url.Error itself, redacted.
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}
