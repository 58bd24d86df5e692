package telemetry

import (
	"net/http"
	"slices"
	"testing"
)

func TestGatewayRoutesFromProtos(t *testing.T) {
	var got []string
	for _, r := range gatewayRoutes() {
		got = append(got, r.method+" "+r.template)
	}
	slices.Sort(got)
	want := []string{"GET /v1/services/{service_id}/status", "GET /v1/services/{service_id}/status:watch", "POST /v1/otp", "POST /v1/tokens:revoke"}
	if !slices.Equal(got, want) {
		t.Errorf("gateway routes %q, want %q", got, want)
	}
}

func TestRouteMatch(t *testing.T) {
	var table routeTable
	for _, b := range []struct{ method, tmpl string }{
		{http.MethodGet, "/v1/services/{service_id}/status"},
		{http.MethodPost, "/v1/otp"},
		{http.MethodPost, "/v1/tokens:revoke"},
		{http.MethodGet, "/v1/{name=shelves/*}/books"},
		{http.MethodGet, "/v1/files/{path=**}"},
		{http.MethodPost, "/v1/jobs/{id}:cancel"},
	} {
		r, ok := compileRoute(b.method, b.tmpl)
		if !ok {
			t.Fatalf("compileRoute(%q) failed", b.tmpl)
		}
		table = append(table, r)
	}
	for _, bad := range []string{"", "v1/otp", "/v1//otp"} {
		if _, ok := compileRoute(http.MethodGet, bad); ok {
			t.Errorf("compileRoute(%q) succeeded", bad)
		}
	}

	for _, tc := range []struct {
		method, path, want string
	}{
		{"GET", "/v1/services/1ryq-e8n8-5g5n/status", "/v1/services/{service_id}/status"},
		{"GET", "/v1/services/a%2Fb/status", "/v1/services/{service_id}/status"},
		{"GET", "/v1/services//status", ""},
		{"GET", "/v1/services/x/y/status", ""},
		{"GET", "/v1/services/x/status/extra", ""},
		{"POST", "/v1/services/x/status", ""},
		{"POST", "/v1/otp", "/v1/otp"},
		{"POST", "/v1/otp/", ""},
		{"POST", "/v1/tokens:revoke", "/v1/tokens:revoke"},
		{"POST", "/v1/tokens", ""},
		{"POST", "/v1/tokens:other", ""},
		{"GET", "/v1/shelves/s1/books", "/v1/{name=shelves/*}/books"},
		{"GET", "/v1/racks/s1/books", ""},
		{"GET", "/v1/files/a/b/c", "/v1/files/{path=**}"},
		{"POST", "/v1/jobs/42:cancel", "/v1/jobs/{id}:cancel"},
		{"POST", "/v1/jobs/42", ""},
		{"GET", "/", ""},
	} {
		req, err := http.NewRequest(tc.method, "http://facade.example"+tc.path, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got := table.match(req); got != tc.want {
			t.Errorf("match(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"token=abc", "token=REDACTED"},
		{"token=abc&grant_type=client_credentials", "grant_type=REDACTED&token=REDACTED"},
		{"a=1&a=2", "a=REDACTED&a=REDACTED"},
		{"token=%zz", "REDACTED"},
		{"flag", "flag=REDACTED"},
	} {
		if got := redactQuery(tc.in); got != tc.want {
			t.Errorf("redactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMuxRoute(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"/", ""},
		{"GET /", ""},
		{"GET /healthz", "/healthz"},
		{"/openapi.json", "/openapi.json"},
		{"GET example.com/items/{id}", "/items/{id}"},
	} {
		if got := muxRoute(tc.in); got != tc.want {
			t.Errorf("muxRoute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
