package reason

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

// all lists every reason; TestCatalog fails if one has no row of its own.
var all = []Reason{
	InvalidRequest, CallerUnauthenticated, CallerRateLimited, RequestIDReused,
	TooManyRequestIDs, StateUnavailable, StateLost, StateKeyUnknown, UpstreamBudgetExhausted, RequestTooLarge, MethodNotAllowed, NotFound, TooManyWatches, ShuttingDown,
	UpstreamBadRequest, UpstreamPermission, UpstreamNotFound, UpstreamRateLimited,
	CredentialsRejected, CredentialsExpired, UpstreamUnavailable, UpstreamCircuitOpen, UpstreamThrottled, UpstreamError,
	MalformedResponse, UpstreamTimeout, UpstreamConcurrencyLimit, RevocationNotConfigured, Canceled, Internal,
}

func TestCatalog(t *testing.T) {
	fallback := Reason("NO_SUCH_REASON").row()
	seen := map[Reason]bool{}
	for _, r := range all {
		if seen[r] {
			t.Errorf("%s listed twice", r)
		}
		seen[r] = true
		if r != Internal && r.row() == fallback {
			t.Errorf("%s has no catalog row: it falls back to INTERNAL", r)
		}
		if r.Message() == "" || r.Code() == codes.OK {
			t.Errorf("%s: code %v, message %q", r, r.Code(), r.Message())
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		r         Reason
		msg       string
		opts      []Option
		wantMsg   string
		wantRetry time.Duration // -1: no RetryInfo
		wantBR    bool
	}{
		{"catalog message", UpstreamNotFound, "", nil, UpstreamNotFound.Message(), -1, false},
		{"own message", CallerUnauthenticated, "no key", nil, "no key", -1, false},
		{"retry", CallerRateLimited, "", []Option{WithRetryAfter(1500 * time.Millisecond), WithMetadata(map[string]string{"limit": "5"})}, CallerRateLimited.Message(), 1500 * time.Millisecond, false},
		{"negative retry", TooManyRequestIDs, "", []Option{WithRetryAfter(-time.Second)}, TooManyRequestIDs.Message(), 0, false},
		{"extra detail", InvalidRequest, "bad", []Option{WithDetails(&errdetails.BadRequest{})}, "bad", -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := New(tc.r, tc.msg, tc.opts...)
			if st.Code() != tc.r.Code() || st.Message() != tc.wantMsg {
				t.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), tc.r.Code(), tc.wantMsg)
			}
			var info *errdetails.ErrorInfo
			retry := time.Duration(-1)
			br := false
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d.GetRetryDelay().AsDuration()
				case *errdetails.BadRequest:
					br = true
				}
			}
			if info == nil || info.GetReason() != string(tc.r) || info.GetDomain() != Domain {
				t.Errorf("ErrorInfo = %v, want reason %s in %s", info, tc.r, Domain)
			}
			if retry != tc.wantRetry || br != tc.wantBR {
				t.Errorf("RetryInfo %v BadRequest %v, want %v %v", retry, br, tc.wantRetry, tc.wantBR)
			}
		})
	}
}
