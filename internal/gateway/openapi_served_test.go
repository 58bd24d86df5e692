package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// servedSwagger is the part of the served OpenAPI v2 document that says
// how to authenticate and how each route can fail.
type servedSwagger struct {
	SecurityDefinitions map[string]struct {
		Type string `json:"type"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"securityDefinitions"`
	Security []map[string][]string `json:"security"`
	Paths    map[string]map[string]struct {
		Security   *[]map[string][]string `json:"security"`
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]struct {
			Description string `json:"description"`
			Schema      struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
			Headers map[string]any `json:"headers"`
		} `json:"responses"`
	} `json:"paths"`
}

// TestServedOpenAPISecurityAndErrors checks the document served at
// /openapi.json: a caller-key scheme (apiKey in the Authorization header)
// required by every route, and per route the HTTP statuses of the error
// table (docs/errors.md), each a google.rpc.Status, with Retry-After and
// WWW-Authenticate where they are sent (the reasons each names:
// TestOpenAPIErrorResponsesNameTheirReasons).
func TestServedOpenAPISecurityAndErrors(t *testing.T) {
	srv := startCORSGateway(t, nil)
	req, err := http.NewRequestWithContext(testkit.Context(t, 10*time.Second), http.MethodGet, srv.URL+"/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc servedSwagger
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("the served document is not JSON: %v", err)
	}

	scheme, ok := doc.SecurityDefinitions["CallerKey"]
	if !ok || scheme.Type != "apiKey" || scheme.In != "header" || scheme.Name != "Authorization" {
		t.Errorf("securityDefinitions %+v, want CallerKey: apiKey in header Authorization", doc.SecurityDefinitions)
	}
	if len(doc.Security) != 1 || doc.Security[0]["CallerKey"] == nil {
		t.Errorf("security %v, want CallerKey required by default", doc.Security)
	}

	const (
		retryAfter = "Retry-After"
		wwwAuth    = "Www-Authenticate" // as the generator spells it
	)
	common := map[string][]string{"400": nil, "401": {wwwAuth}, "403": nil, "429": {retryAfter}, "500": nil, "503": {retryAfter}, "504": nil}
	routes := []struct {
		path, method string
		extra        []string // statuses beyond common
		headers      []string // header parameters
	}{
		{"/v1/otp", "post", []string{"413"}, []string{"X-Request-ID", "Idempotency-Key"}},
		{"/v1/services/{service_id}/status", "get", []string{"404"}, []string{"X-Request-ID"}},
		{"/v1/tokens:revoke", "post", []string{"413"}, []string{"X-Request-ID"}},
		{"/v1/services/{service_id}/status:watch", "get", []string{"404"}, []string{"X-Request-ID"}},
	}
	for _, r := range routes {
		op, ok := doc.Paths[r.path][r.method]
		if !ok {
			t.Errorf("%s %s: missing", r.method, r.path)
			continue
		}
		if op.Security != nil && len(*op.Security) == 0 {
			t.Errorf("%s %s: security turned off", r.method, r.path)
		}
		want := map[string][]string{}
		for k, v := range common {
			want[k] = v
		}
		for _, k := range r.extra {
			want[k] = nil
		}
		for code, headers := range want {
			got, ok := op.Responses[code]
			if !ok {
				t.Errorf("%s %s: no %s response", r.method, r.path, code)
				continue
			}
			if got.Schema.Ref != "#/definitions/rpcStatus" {
				t.Errorf("%s %s %s: schema %q, want rpcStatus", r.method, r.path, code, got.Schema.Ref)
			}
			for _, h := range headers {
				if _, ok := got.Headers[h]; !ok {
					t.Errorf("%s %s %s: no %s header", r.method, r.path, code, h)
				}
			}
		}
		var params []string
		for _, p := range op.Parameters {
			if p.In == "header" {
				params = append(params, p.Name)
			}
		}
		for _, h := range r.headers {
			if !slices.Contains(params, h) {
				t.Errorf("%s %s: header parameters %q lack %s", r.method, r.path, params, h)
			}
		}
	}
	for _, unauthenticated := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if _, ok := doc.Paths[unauthenticated]; ok {
			t.Errorf("%s is in the document, under its default security", unauthenticated)
		}
	}
}

// servedOpenAPI3 is the part of the served OpenAPI 3 document that says
// how to authenticate and how each route can fail.
type servedOpenAPI3 struct {
	OpenAPI    string `json:"openapi"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
	Security []map[string][]string `json:"security"`
	Paths    map[string]map[string]struct {
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
			Headers map[string]any `json:"headers"`
		} `json:"responses"`
	} `json:"paths"`
}

// getJSON fetches url and decodes its JSON body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testkit.Context(t, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: not JSON: %v", url, err)
	}
}

// TestServedOpenAPI3 checks the document served at /openapi.v3.json: an
// OpenAPI 3 document with the caller key as an HTTP bearer scheme required
// by every route, and the same error responses and headers as the v2
// document.
func TestServedOpenAPI3(t *testing.T) {
	srv := startCORSGateway(t, nil)
	var doc servedOpenAPI3
	getJSON(t, srv.URL+"/openapi.v3.json", &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["CallerKey"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("securitySchemes %+v, want CallerKey: http bearer", doc.Components.SecuritySchemes)
	}
	if len(doc.Security) != 1 || doc.Security[0]["CallerKey"] == nil {
		t.Errorf("security %v, want CallerKey required by default", doc.Security)
	}
	routes := []struct {
		path, method string
		codes        []string
	}{
		{"/v1/otp", "post", []string{"400", "401", "403", "413", "429", "500", "503", "504"}},
		{"/v1/services/{service_id}/status", "get", []string{"400", "401", "403", "404", "429", "500", "503", "504"}},
		{"/v1/tokens:revoke", "post", []string{"400", "401", "403", "413", "429", "500", "503", "504"}},
		{"/v1/services/{service_id}/status:watch", "get", []string{"400", "401", "403", "404", "429", "500", "503", "504"}},
	}
	headers := map[string]string{"401": "Www-Authenticate", "429": "Retry-After", "503": "Retry-After"}
	for _, r := range routes {
		op, ok := doc.Paths[r.path][r.method]
		if !ok {
			t.Errorf("%s %s: missing", r.method, r.path)
			continue
		}
		for _, code := range r.codes {
			resp, ok := op.Responses[code]
			if !ok {
				t.Errorf("%s %s: no %s response", r.method, r.path, code)
				continue
			}
			if ref := resp.Content["application/json"].Schema.Ref; ref != "#/components/schemas/rpcStatus" {
				t.Errorf("%s %s %s: schema %q, want rpcStatus", r.method, r.path, code, ref)
			}
			if h, ok := headers[code]; ok && resp.Headers[h] == nil {
				t.Errorf("%s %s %s: no %s header", r.method, r.path, code, h)
			}
		}
		if !slices.ContainsFunc(op.Parameters, func(p struct {
			Name string `json:"name"`
			In   string `json:"in"`
		}) bool {
			return p.In == "header" && p.Name == "X-Request-ID"
		}) {
			t.Errorf("%s %s: no X-Request-ID header parameter", r.method, r.path)
		}
	}
}
