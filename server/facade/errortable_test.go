package facade_test

// The error table of docs/errors.md, row by row: each upstream outcome is made by
// the emulator's fault knobs, and the answer checked through both doors
// (gRPC code, HTTP status, ErrorInfo reason and metadata, RetryInfo).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// tableCall is an AccessService call of the error table, made through one
// door.
type tableCall struct {
	method string // "otp", "status" or "revoke"
	body   map[string]any
}

var (
	callOTP          = tableCall{"otp", map[string]any{"owner": "owner@example.com", "endpoint_id": "router-1", "description": "error table"}}
	callInvalidOTP   = tableCall{"otp", map[string]any{"owner": "", "endpoint_id": "router-1", "description": "error table"}}
	callStatus       = tableCall{"status", map[string]any{"service_id": liveService}}
	callUnknownStatu = tableCall{"status", map[string]any{"service_id": "no-such-service"}}
	callRevoke       = tableCall{"revoke", map[string]any{"token": "some-access-token"}}
)

// tableAnswer is what a caller sees of an error.
type tableAnswer struct {
	code       codes.Code
	httpStatus int // 0 over gRPC
	info       *errdetails.ErrorInfo
	retry      *errdetails.RetryInfo
	retryAfter string // the Retry-After header over HTTP
}

// answer collects the answer from a status (proto) and its transport.
func answer(st *status.Status, httpStatus int, retryAfter string) tableAnswer {
	a := tableAnswer{code: st.Code(), httpStatus: httpStatus, retryAfter: retryAfter}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			a.info = d
		case *errdetails.RetryInfo:
			a.retry = d
		}
	}
	return a
}

// callGRPC makes c through the generated gRPC client with the deadline.
func (h *harness) callGRPC(t *testing.T, c tableCall, deadline time.Duration) tableAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var err error
	switch c.method {
	case "otp":
		_, err = h.client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{
			Owner: c.body["owner"].(string), EndpointId: c.body["endpoint_id"].(string), Description: c.body["description"].(string),
		})
	case "status":
		_, err = h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: c.body["service_id"].(string)})
	case "revoke":
		_, err = h.client.RevokeToken(ctx, &accessv1.RevokeTokenRequest{Token: c.body["token"].(string)})
	}
	if err == nil {
		t.Fatalf("gRPC %s succeeded, want an error", c.method)
	}
	return answer(status.Convert(err), 0, "")
}

// callHTTP makes c through the gateway, with the deadline sent as
// Grpc-Timeout (and the HTTP client waiting longer, to read the answer).
func (h *harness) callHTTP(t *testing.T, c tableCall, deadline time.Duration) tableAnswer {
	t.Helper()
	method, path := http.MethodPost, "/v1/otp"
	var body io.Reader
	switch c.method {
	case "status":
		method, path = http.MethodGet, httpStatusPath(c.body["service_id"].(string))
	case "revoke":
		path = "/v1/tokens:revoke"
	}
	if method == http.MethodPost {
		b, err := json.Marshal(c.body)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Grpc-Timeout", strconv.FormatInt(deadline.Milliseconds(), 10)+"m")
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("HTTP %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("HTTP %s %s: reading body: %v", method, path, err)
	}
	var st spb.Status
	if err := protojson.Unmarshal(raw, &st); err != nil {
		t.Fatalf("HTTP %d body %q is not a google.rpc.Status: %v", resp.StatusCode, raw, err)
	}
	return answer(status.FromProto(&st), resp.StatusCode, resp.Header.Get("Retry-After"))
}

// TestErrorTable drives every upstream row of the error table (docs/errors.md)
// through the emulator and both doors.
func TestErrorTable(t *testing.T) {
	const clientID, clientSecret, apiToken = "table-client", "table-secret", "table-api-token"
	always := func(route emulator.Route, f emulator.Fault) func(*emulator.Emulator) {
		return func(e *emulator.Emulator) { e.SetFailureRate(route, 1, f) }
	}
	script := func(route emulator.Route, f ...emulator.Fault) func(*emulator.Emulator) {
		return func(e *emulator.Emulator) { e.Script(route, f...) }
	}
	const absent = "" // metadata value: the key must be absent
	tests := []struct {
		name    string
		apiOnly bool                     // upstream credentials: the API token alone
		faults  func(*emulator.Emulator) // set before the facade starts
		trip    bool                     // fail calls until the circuit breaker opens
		call    tableCall
		timeout time.Duration // the facade's CallTimeout; 0: its default
		code    codes.Code
		http    int
		reason  string
		md      map[string]string // keys not listed are not checked
		retry   time.Duration     // RetryInfo delay; 0: none
		atLeast bool              // the RetryInfo delay is at least retry
	}{
		{name: "validation", call: callInvalidOTP,
			code: codes.InvalidArgument, http: 400, reason: accessv1.ErrorReason_INVALID_REQUEST.String(),
			md: map[string]string{server.MetadataUpstreamOp: absent, server.MetadataUpstreamStatus: absent}},
		{name: "400", faults: script(emulator.RouteOTP, emulator.Fault{Status: 400, Details: "Missing required field 'owner'"}), call: callOTP,
			code: codes.InvalidArgument, http: 400, reason: accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(),
			md: map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "400", server.MetadataUpstreamDetails: "Missing required field 'owner'"}},
		{name: "other 4xx", faults: script(emulator.RouteStatus, emulator.Fault{Status: 409}), call: callStatus,
			code: codes.InvalidArgument, http: 400, reason: accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(),
			md: map[string]string{server.MetadataUpstreamOp: "status", server.MetadataUpstreamStatus: "409"}},
		{name: "401 after a token refresh", faults: script(emulator.RouteStatus, emulator.Fault{Status: 401}, emulator.Fault{Status: 401}), call: callStatus,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(),
			md: map[string]string{server.MetadataUpstreamOp: "status", server.MetadataUpstreamStatus: "401"}},
		{name: "401 from the token endpoint", faults: always(emulator.RouteToken, emulator.Fault{Status: 401}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(),
			md: map[string]string{server.MetadataUpstreamOp: "token", server.MetadataUpstreamStatus: "401"}},
		{name: "400 from the token endpoint", faults: always(emulator.RouteToken, emulator.Fault{Status: 400}), call: callStatus,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(),
			md: map[string]string{server.MetadataUpstreamOp: "token", server.MetadataUpstreamStatus: "400"}},
		{name: "404 from the discovery endpoint", faults: always(emulator.RouteDiscovery, emulator.Fault{Status: 404}), call: callStatus,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(),
			md: map[string]string{server.MetadataUpstreamOp: "discovery", server.MetadataUpstreamStatus: "404"}},
		{name: "429 from the token endpoint", faults: always(emulator.RouteToken, emulator.Fault{Status: 429}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "token", server.MetadataUpstreamStatus: "429"},
			retry: time.Second},
		{name: "429 from the discovery endpoint", faults: always(emulator.RouteDiscovery, emulator.Fault{Status: 429}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "discovery", server.MetadataUpstreamStatus: "429"},
			retry: time.Second},
		{name: "403", faults: script(emulator.RouteOTP, emulator.Fault{Status: 403}), call: callOTP,
			code: codes.PermissionDenied, http: 403, reason: accessv1.ErrorReason_UPSTREAM_PERMISSION_DENIED.String(),
			md: map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "403"}},
		{name: "404", call: callUnknownStatu,
			code: codes.NotFound, http: 404, reason: accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String(),
			md: map[string]string{server.MetadataUpstreamOp: "status", server.MetadataUpstreamStatus: "404"}},
		{name: "429", faults: script(emulator.RouteOTP, emulator.Fault{Status: 429, RetryAfter: 3 * time.Second}), call: callOTP,
			code: codes.ResourceExhausted, http: 429, reason: accessv1.ErrorReason_UPSTREAM_RATE_LIMITED.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "429"},
			retry: 3 * time.Second},
		{name: "429 without Retry-After", faults: script(emulator.RouteOTP, emulator.Fault{Status: 429}), call: callOTP,
			code: codes.ResourceExhausted, http: 429, reason: accessv1.ErrorReason_UPSTREAM_RATE_LIMITED.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "429"},
			retry: time.Second},
		{name: "502", faults: script(emulator.RouteOTP, emulator.Fault{Status: 502}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "502"},
			retry: time.Second},
		{name: "503 with Retry-After", faults: script(emulator.RouteRevoke, emulator.Fault{Status: 503, RetryAfter: 2 * time.Second}), call: callRevoke,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "revoke", server.MetadataUpstreamStatus: "503"},
			retry: 2 * time.Second},
		{name: "5xx with retry true", faults: always(emulator.RouteOTP, emulator.Fault{Status: 500, Retry: true}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "500"},
			retry: time.Second},
		{name: "network failure", faults: always(emulator.RouteOTP, emulator.Fault{Body: emulator.BodyReset}), call: callOTP,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: absent},
			retry: time.Second},
		{name: "discovery failure", faults: always(emulator.RouteDiscovery, emulator.Fault{Body: emulator.BodyReset}), call: callStatus,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			md:    map[string]string{server.MetadataUpstreamOp: "discovery", server.MetadataUpstreamStatus: absent},
			retry: time.Second},
		{name: "circuit breaker open", faults: always(emulator.RouteStatus, emulator.Fault{Status: 503}), trip: true, call: callStatus,
			code: codes.Unavailable, http: 503, reason: accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(),
			md:    map[string]string{server.MetadataUpstreamOp: absent},
			retry: time.Second, atLeast: true},
		{name: "other 5xx", faults: script(emulator.RouteOTP, emulator.Fault{Status: 500}), call: callOTP,
			code: codes.Internal, http: 500, reason: accessv1.ErrorReason_UPSTREAM_ERROR.String(),
			md: map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "500"}},
		{name: "unusable body", faults: script(emulator.RouteOTP, emulator.Fault{Body: emulator.BodyEmptyOTP}), call: callOTP,
			code: codes.Internal, http: 500, reason: accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(),
			md: map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "200"}},
		{name: "unusable discovery document", faults: always(emulator.RouteDiscovery, emulator.Fault{Body: emulator.BodyMalformed}), call: callStatus,
			code: codes.Internal, http: 500, reason: accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(),
			md: map[string]string{server.MetadataUpstreamOp: "discovery", server.MetadataUpstreamStatus: "200"}},
		{name: "body over 1 MiB", faults: script(emulator.RouteOTP, emulator.Fault{Body: emulator.BodyOversized}), call: callOTP,
			code: codes.Internal, http: 500, reason: accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(),
			md: map[string]string{server.MetadataUpstreamOp: "otp", server.MetadataUpstreamStatus: "200"}},
		// The facade's deadline for the call, which is the caller's when that
		// is sooner: set on the facade, so that the caller is still there to
		// read the answer.
		{name: "call's deadline first", faults: func(e *emulator.Emulator) { e.SetLatency(emulator.RouteOTP, 5*time.Second) }, call: callOTP, timeout: 300 * time.Millisecond,
			code: codes.DeadlineExceeded, http: 504, reason: accessv1.ErrorReason_UPSTREAM_TIMEOUT.String()},
		{name: "revocation not configured", apiOnly: true, call: callRevoke,
			code: codes.FailedPrecondition, http: 400, reason: accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String()},
	}
	for _, tt := range tests {
		for _, door := range []string{"grpc", "http"} {
			t.Run(tt.name+"/"+door, func(t *testing.T) {
				up := startUpstream(t, emulator.Config{Seed: testSeed(clientID, clientSecret, apiToken)}, nil)
				if tt.faults != nil {
					tt.faults(up.emu)
				}
				cfg := facade.Config{UpstreamURL: up.url, ClientID: clientID, ClientSecret: clientSecret}
				if tt.apiOnly {
					cfg = facade.Config{UpstreamURL: up.url, APIToken: apiToken}
				}
				cfg.CallTimeout = tt.timeout
				h := startFacade(t, cfg)
				if tt.trip {
					tripBreaker(t, h, tt.call)
				}
				var got tableAnswer
				if door == "grpc" {
					got = h.callGRPC(t, tt.call, callTimeout)
				} else {
					got = h.callHTTP(t, tt.call, callTimeout)
				}
				checkAnswer(t, got, tt.code, tt.http, tt.reason, tt.md, tt.retry, tt.atLeast)
			})
		}
	}
}

// tripBreaker makes failing gRPC calls until the facade's circuit breaker
// refuses one. It opens when 90% of at least 20 calls within a second
// failed (docs/adr/0002-proportional-degradation.md); the calls that the
// adaptive throttle refuses on the way count as failures and are quick.
func tripBreaker(t *testing.T, h *harness, c tableCall) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := h.callGRPC(t, c, callTimeout); got.info.GetReason() == accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String() {
			return
		}
	}
	t.Fatal("20s of failing calls did not open the circuit breaker")
}

// checkAnswer compares an answer with one row of the table.
func checkAnswer(t *testing.T, got tableAnswer, code codes.Code, httpStatus int, reason string, md map[string]string, retry time.Duration, atLeast bool) {
	t.Helper()
	if got.code != code || got.info.GetReason() != reason || got.info.GetDomain() != server.ErrorDomain {
		t.Errorf("answer %s, reason %q in %q; want %s, reason %q in %q", got.code, got.info.GetReason(), got.info.GetDomain(), code, reason, server.ErrorDomain)
	}
	if got.httpStatus != 0 && got.httpStatus != httpStatus {
		t.Errorf("HTTP status %d, want %d", got.httpStatus, httpStatus)
	}
	for k, want := range md {
		v, ok := got.info.GetMetadata()[k]
		switch {
		case want == "" && ok:
			t.Errorf("metadata %s = %q, want it absent (metadata %v)", k, v, got.info.GetMetadata())
		case want != "" && v != want:
			t.Errorf("metadata %s = %q, want %q (metadata %v)", k, v, want, got.info.GetMetadata())
		}
	}
	delay := got.retry.GetRetryDelay().AsDuration()
	switch {
	case retry == 0 && got.retry != nil:
		t.Errorf("RetryInfo %v on an error that a retry cannot fix", got.retry)
	case retry != 0 && got.retry == nil:
		t.Errorf("no RetryInfo, want %v", retry)
	case retry != 0 && !atLeast && delay != retry, atLeast && delay < retry:
		t.Errorf("RetryInfo %v, want %v (at least: %v)", delay, retry, atLeast)
	}
	if got.httpStatus != 0 {
		// Retry-After is the RetryInfo delay in seconds, rounded up.
		want := ""
		if got.retry != nil {
			want = strconv.FormatInt(int64((delay+time.Second-1)/time.Second), 10)
		}
		if got.retryAfter != want {
			t.Errorf("Retry-After %q, want %q", got.retryAfter, want)
		}
	}
}
