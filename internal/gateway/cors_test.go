package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/gateway"
)

const (
	allowedOrigin = "https://admin.example.com"
	refusedOrigin = "https://evil.example.net"
)

// startCORSGateway serves the gateway with CORS for origins.
func startCORSGateway(t *testing.T, origins []string) *httptest.Server {
	t.Helper()
	h, err := gateway.New(t.Context(), gateway.Config{
		Service:            &erroring{},
		Ready:              func() (bool, string) { return true, "" },
		CORSAllowedOrigins: origins,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// headerList splits a comma-separated header's values, lower-cased.
func headerList(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, item := range strings.Split(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(item)))
		}
	}
	return out
}

// TestCORS checks preflights and simple requests from an allowed and a
// refused origin, and that CORS is off without allowed origins.
func TestCORS(t *testing.T) {
	on := startCORSGateway(t, []string{allowedOrigin, "http://localhost:3000"})
	off := startCORSGateway(t, nil)
	preflight := http.Header{
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization,content-type,idempotency-key,x-request-id"},
	}
	tests := []struct {
		name      string
		srv       *httptest.Server
		method    string
		path      string
		origin    string
		header    http.Header
		wantAllow bool // Access-Control-Allow-Origin: origin
		wantCode  int
	}{
		{"preflight allowed", on, http.MethodOptions, "/v1/otp", allowedOrigin, preflight, true, http.StatusNoContent},
		{"preflight refused", on, http.MethodOptions, "/v1/otp", refusedOrigin, preflight, false, 0},
		{"simple allowed", on, http.MethodGet, "/v1/services/svc-1/status", allowedOrigin, nil, true, http.StatusOK},
		{"simple refused", on, http.MethodGet, "/v1/services/svc-1/status", refusedOrigin, nil, false, http.StatusOK},
		{"preflight with CORS off", off, http.MethodOptions, "/v1/otp", allowedOrigin, preflight, false, 0},
		{"simple with CORS off", off, http.MethodGet, "/v1/services/svc-1/status", allowedOrigin, nil, false, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{"Origin": {tt.origin}}
			for k, v := range tt.header {
				header[k] = v
			}
			resp, _ := do(t, tt.method, tt.srv.URL+tt.path, header)
			if tt.wantCode != 0 && resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if !tt.wantAllow {
				if got != "" {
					t.Errorf("Access-Control-Allow-Origin %q for a refused origin", got)
				}
				return
			}
			if got != tt.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.origin)
			}
			if v := resp.Header.Get("Access-Control-Allow-Credentials"); v != "" {
				t.Errorf("Access-Control-Allow-Credentials %q: credentials must not be allowed", v)
			}
			if !slices.Contains(headerList(resp.Header, "Vary"), "origin") {
				t.Errorf("Vary %q, want Origin", resp.Header.Values("Vary"))
			}
			var want map[string][]string
			if tt.method == http.MethodOptions {
				want = map[string][]string{
					"Access-Control-Allow-Methods": {"post"},
					"Access-Control-Allow-Headers": {"authorization", "content-type", "idempotency-key", "x-request-id"},
				}
			} else {
				want = map[string][]string{
					"Access-Control-Expose-Headers": {"x-request-id", "retry-after", "www-authenticate"},
				}
			}
			for name, items := range want {
				have := headerList(resp.Header, name)
				for _, item := range items {
					if !slices.Contains(have, item) {
						t.Errorf("%s %q lacks %s", name, resp.Header.Values(name), item)
					}
				}
			}
		})
	}
}

// TestCORSOriginsChecked checks that only exact origins are accepted, as
// browsers send them in the Origin header: an origin that no browser
// sends (a default port, a Unicode host) is refused with the spelling a
// browser would use.
func TestCORSOriginsChecked(t *testing.T) {
	for _, tc := range []struct{ origin, want string }{
		{"*", "wildcards"},
		{"https://*.example.com", "wildcards"},
		{"https://admin.example.com/", `"https://admin.example.com"`},
		{"https://Admin.example.com", `"https://admin.example.com"`},
		{"admin.example.com", "scheme"},
		{"ftp://admin.example.com", "scheme"},
		{"https://user@admin.example.com", `"https://admin.example.com"`},
		{"https://admin.example.com?x=1", `"https://admin.example.com"`},
		{"https://a.example:443", `"https://a.example"`},
		{"http://a.example:80", `"http://a.example"`},
		{"https://a.example:", `"https://a.example"`},
		{"https://a.example:0443", `"https://a.example"`},
		{"http://a.example:08080", `"http://a.example:8080"`},
		{"https://a.example:70000", "port"},
		{"https://bücher.example", `"https://xn--bcher-kva.example"`},
		{"https://BÜCHER.example:443", `"https://xn--bcher-kva.example"`},
		{"https://straße.example", `"https://xn--strae-oqa.example"`},
		{"http://[::1]:80", `"http://[::1]"`},
		{"https://a..example", "not a valid domain name"},
	} {
		err := gateway.CheckOrigin(tc.origin)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckOrigin(%q) = %v, want an error saying %s", tc.origin, err, tc.want)
		}
		if _, err := gateway.New(t.Context(), gateway.Config{Service: &erroring{}, Ready: func() (bool, string) { return true, "" },
			CORSAllowedOrigins: []string{tc.origin}}); err == nil {
			t.Errorf("gateway.New accepted the origin %q", tc.origin)
		}
	}
	for _, o := range []string{"https://admin.example.com", "http://localhost:3000", "http://[::1]:8080", "https://a.example:8443",
		"http://a.example:443", "https://xn--bcher-kva.example"} {
		if err := gateway.CheckOrigin(o); err != nil {
			t.Errorf("CheckOrigin(%q): %v", o, err)
		}
	}
}
