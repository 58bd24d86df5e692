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

// Error is a non-2xx answer from the upstream.
type Error struct {
	// Op is the operation: "discovery", "token", "otp", "status" or "revoke".
	Op string
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
	Op string
	// BeforeSend is true only when provably no byte of the request reached
	// the upstream (DNS, dial or TLS failure, connection refused, the
	// caller's context ended while waiting for a token), so that even a
	// non-idempotent call is safe to retry.
	BeforeSend bool
	// Err is the cause. URLs in it have their query removed.
	Err error
}

// Error describes the failure.
func (e *TransportError) Error() string {
	if e.BeforeSend {
		return fmt.Sprintf("upstream: %s: request not sent: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("upstream: %s: transport error: %v", e.Op, e.Err)
}

// Unwrap returns the cause, so that errors.Is(err, context.DeadlineExceeded)
// works.
func (e *TransportError) Unwrap() error { return e.Err }

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
func newError(op string, status int, h http.Header, body []byte, now time.Time) *Error {
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
