package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the facade
// returns.
const ErrorDomain = reason.Domain

// ErrorInfo metadata keys.
const (
	MetadataUpstreamStatus  = "upstream_status"
	MetadataUpstreamDetails = "upstream_details"
	MetadataUpstreamOp      = "upstream_op"
)

// defaultRetryDelay is the RetryInfo delay offered when the upstream says a
// retry may help but not when.
const defaultRetryDelay = time.Second

// classify is the error table, in one place (docs/errors.md). It
// asks the classifiers of the upstream client and of its resilience layer,
// never strings or the error types' fields.
func classify(err error) reason.Reason {
	var panicErr *panics.Error
	switch {
	case errors.As(err, &panicErr):
		// A shared call panicked; it was reported where it was recovered.
		return reason.Internal
	case errors.Is(err, resilience.ErrCircuitOpen):
		// The facade stopped calling a failing upstream for a while; nothing
		// was sent.
		return reason.UpstreamCircuitOpen
	case errors.Is(err, resilience.ErrThrottled):
		// The upstream answers too few calls; this one was refused locally.
		return reason.UpstreamThrottled
	case upstream.IsQueued(err):
		// The facade's own bound on calls in flight, or its transport's
		// wait for a connection or stream; nothing was sent.
		return reason.UpstreamConcurrencyLimit
	case errors.Is(err, resilience.ErrBudgetExhausted):
		// The facade's own budget of upstream calls is spent; nothing was
		// sent.
		return reason.UpstreamBudgetExhausted
	case errors.Is(err, context.DeadlineExceeded):
		return reason.UpstreamTimeout
	case errors.Is(err, context.Canceled):
		return reason.Canceled
	case errors.Is(err, upstream.ErrInvalidArgument):
		// Validation here catches these first; this is the client's own
		// last line of defence.
		return reason.InvalidRequest
	case errors.Is(err, upstream.ErrRevokeNeedsClientCredentials):
		return reason.RevocationNotConfigured
	case errors.Is(err, upstream.ErrMalformedResponse):
		return reason.MalformedResponse
	case upstream.IsSetupFailure(err):
		// Discovery and token endpoints answer for the facade's own
		// set-up, never for anything the caller sent: our credentials or
		// configuration are wrong, and the caller can only wait for
		// operators.
		return reason.CredentialsRejected
	case upstream.StatusCode(err) != 0:
		return classifyStatus(err)
	case upstream.IsUnanswered(err), errors.Is(err, upstream.ErrDiscovery):
		return reason.UpstreamUnavailable
	default:
		return reason.Internal
	}
}

// classifyStatus maps an upstream HTTP error answer to a call (set-up
// failures are classified before).
func classifyStatus(err error) reason.Reason {
	switch code := upstream.StatusCode(err); {
	case upstream.OpOf(err).IsSetup():
		// 429 or 5xx from discovery or the token endpoint: the upstream
		// is in trouble, whatever the call.
		return reason.UpstreamUnavailable
	case code == http.StatusUnauthorized:
		// The client already fetched a new token and retried once.
		return reason.CredentialsRejected
	case code == http.StatusForbidden:
		return reason.UpstreamPermission
	case code == http.StatusNotFound:
		return reason.UpstreamNotFound
	case code == http.StatusTooManyRequests:
		return reason.UpstreamRateLimited
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return reason.UpstreamUnavailable
	case code >= 500 && upstream.RetryAdvised(err):
		return reason.UpstreamUnavailable
	case code >= 500:
		return reason.UpstreamError
	default: // 400 and any other 4xx: the request as sent was refused
		return reason.UpstreamBadRequest
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
	r := classify(err)
	md := map[string]string{}
	// The message never includes the wrapped error's text, which may name
	// internal URLs.
	msg := r.Message()
	if op := upstream.OpOf(err); op != "" {
		md[MetadataUpstreamOp] = string(op)
	}
	if code := upstream.StatusCode(err); code != 0 {
		md[MetadataUpstreamStatus] = strconv.Itoa(code)
	}
	if d := upstream.Details(err); d != "" {
		md[MetadataUpstreamDetails] = d
		msg += ": " + d
	}
	opts := []reason.Option{reason.WithMetadata(md)}
	if r.Retryable() {
		retryAfter := upstream.RetryAfter(err)
		var openErr *resilience.CircuitOpenError
		if errors.As(err, &openErr) {
			// Until the breaker lets probes through; never less than the
			// default, so that callers do not spin while probes are in
			// flight.
			retryAfter = max(openErr.RetryAfter, defaultRetryDelay)
		}
		var budgetErr *resilience.BudgetError
		if errors.As(err, &budgetErr) {
			retryAfter = budgetErr.RetryAfter
		}
		if retryAfter <= 0 {
			retryAfter = defaultRetryDelay
		}
		opts = append(opts, reason.WithRetryAfter(retryAfter))
	}
	return reason.Error(r, msg, opts...)
}
