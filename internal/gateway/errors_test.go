package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/callerauth"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// erroring is an AccessService whose GetServiceStatus returns the error
// of errs for the service ID asked for, and a fixed status for any other.
type erroring struct {
	accessv1.UnimplementedAccessServiceServer
	errs map[string]error
}

func (s *erroring) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	if err := s.errs[req.GetServiceId()]; err != nil {
		return nil, err
	}
	return &accessv1.GetServiceStatusResponse{ServiceId: req.GetServiceId(), Active: true, Online: true}, nil
}

// testKey is the one caller key the gateways of these tests accept.
const testKey = "gateway-test-key"

// startGateway serves the gateway for svc on a loopback httptest server,
// behind the real caller authentication with testKey, when auth is set.
func startGateway(t *testing.T, svc accessv1.AccessServiceServer, auth bool) *httptest.Server {
	t.Helper()
	var chain grpc.UnaryServerInterceptor
	if auth {
		sum := sha256.Sum256([]byte(testKey))
		keys := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(keys, []byte("tester "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := callerauth.New(callerauth.Config{KeysFile: keys})
		if err != nil {
			t.Fatalf("callerauth.New: %v", err)
		}
		chain = a.UnaryServerInterceptor()
	}
	h, err := gateway.New(t.Context(), gateway.Config{
		Service:     svc,
		Interceptor: chain,
		Ready:       func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// errorBody is the google.rpc.Status JSON of an error answer.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type     string            `json:"@type"`
		Reason   string            `json:"reason"`
		Domain   string            `json:"domain"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
}

// reasonOf returns the ErrorInfo reason of the body, or "".
func (b errorBody) reasonOf() string {
	for _, d := range b.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") && d.Domain == reason.Domain {
			return d.Reason
		}
	}
	return ""
}

// do sends a request with a deadline and returns the answer and its
// decoded error body.
func do(t *testing.T, method, url string, header http.Header) (*http.Response, errorBody) {
	t.Helper()
	ctx := testkit.Context(t, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	var body errorBody
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("error body %q: %v", raw, err)
		}
	}
	return resp, body
}

// TestUnauthenticatedChallenge checks the exact WWW-Authenticate value of
// a 401 (RFC 6750): the realm when no credentials came, and
// error="invalid_token" when refused ones did.
func TestUnauthenticatedChallenge(t *testing.T) {
	srv := startGateway(t, &erroring{}, true)
	url := srv.URL + "/v1/services/1ryq-e8n8-5g5n/status"
	tests := []struct {
		name   string
		header http.Header
		status int
		want   string // WWW-Authenticate, exactly; "" means absent
	}{
		{"no credentials", nil, http.StatusUnauthorized, `Bearer realm="radkit-access-facade"`},
		{"wrong key", http.Header{"Authorization": {"Bearer not-the-key"}}, http.StatusUnauthorized, `Bearer realm="radkit-access-facade", error="invalid_token"`},
		{"other scheme", http.Header{"Authorization": {"Basic eDp5"}}, http.StatusUnauthorized, `Bearer realm="radkit-access-facade", error="invalid_token"`},
		{"right key", http.Header{"Authorization": {"Bearer " + testKey}}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, url, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Values("WWW-Authenticate"); (tt.want == "" && len(got) != 0) || (tt.want != "" && (len(got) != 1 || got[0] != tt.want)) {
				t.Errorf("WWW-Authenticate = %q, want exactly %q", got, tt.want)
			}
			if tt.status == http.StatusUnauthorized && body.reasonOf() != reason.CallerUnauthenticated.String() {
				t.Errorf("reason %q, want %s", body.reasonOf(), reason.CallerUnauthenticated)
			}
		})
	}
}

// TestErrorPaths drives the gateway's own error handling through a real
// HTTP server: routing errors, errors raised by the gateway itself and a
// service's status, each checked for HTTP status, gRPC code, reason and
// the headers derived from the status.
func TestErrorPaths(t *testing.T) {
	srv := startGateway(t, &erroring{errs: map[string]error{
		"unavailable": reason.Error(reason.UpstreamUnavailable, "", reason.WithRetryAfter(2*time.Second)),
		// An INVALID_ARGUMENT that has its own reason keeps it.
		"reused": reason.Error(reason.RequestIDReused, ""),
	}}, false)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		status     int
		code       int // gRPC code in the body
		reason     reason.Reason
		retryAfter string // Retry-After header, exactly; "" means absent
	}{
		{"wrong method", http.MethodGet, "/v1/otp", "", http.StatusMethodNotAllowed, 12, reason.MethodNotAllowed, ""},
		{"wrong method on a path with a variable", http.MethodDelete, "/v1/services/x/status", "", http.StatusMethodNotAllowed, 12, reason.MethodNotAllowed, ""},
		{"unknown path", http.MethodGet, "/v1/nothing-here", "", http.StatusNotFound, 5, reason.NotFound, ""},
		{"unknown root path", http.MethodGet, "/nope", "", http.StatusNotFound, 5, reason.NotFound, ""},
		{"undecodable JSON", http.MethodPost, "/v1/otp", "{", http.StatusBadRequest, 3, reason.InvalidRequest, ""},
		{"unknown field", http.MethodPost, "/v1/otp", `{"nope": 1}`, http.StatusBadRequest, 3, reason.InvalidRequest, ""},
		{"body over the limit", http.MethodPost, "/v1/otp", `{"description": "` + strings.Repeat("a", gateway.DefaultMaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, 8, reason.RequestTooLarge, ""},
		// Sent chunked (no Content-Length): cut off while it is decoded.
		{"chunked body over the limit", http.MethodPost, "/v1/otp", `{"description": "` + strings.Repeat("a", gateway.DefaultMaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, 8, reason.RequestTooLarge, ""},
		// A service's own status passes through with its code, reason and
		// RetryInfo (as Retry-After; its rounding: TestRetryAfterRoundsUp).
		{"service status with RetryInfo", http.MethodGet, "/v1/services/unavailable/status", "", http.StatusServiceUnavailable, 14, reason.UpstreamUnavailable, "2"},
		{"service's own INVALID_ARGUMENT reason", http.MethodGet, "/v1/services/reused/status", "", http.StatusBadRequest, 3, reason.RequestIDReused, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testkit.Context(t, 10*time.Second)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			if strings.HasPrefix(tt.name, "chunked") {
				body = io.MultiReader(body) // hides the length: the client sends it chunked
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				t.Fatal(err)
			}
			var got errorBody
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("body %q is not a google.rpc.Status: %v", raw, err)
			}
			if resp.StatusCode != tt.status || got.Code != tt.code || got.reasonOf() != tt.reason.String() {
				t.Errorf("HTTP %d code %d reason %q, want HTTP %d code %d reason %q (body %s)",
					resp.StatusCode, got.Code, got.reasonOf(), tt.status, tt.code, tt.reason, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if ra := resp.Header.Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", ra, tt.retryAfter)
			}
		})
	}
}
