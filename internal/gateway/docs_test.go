package gateway_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func startDocsGateway(t *testing.T, docs bool) *httptest.Server {
	t.Helper()
	h, err := gateway.New(t.Context(), gateway.Config{
		Service: &erroring{},
		Ready:   func() (bool, string) { return true, "" },
		APIDocs: docs,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// getDocs makes a GET with header, without the transport's own gzip
// handling, and returns the answer with its body read.
func getDocs(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testkit.Context(t, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		// A redirect is an answer to check, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return res, body
}

// TestAPIDocs checks the answers under /docs: the page and its files with
// the strict Content-Security-Policy, the compressed bundle to a browser
// and decompressed to a client that takes no gzip, unknown files and the
// page turned off. A query string (?url= naming another document), which
// the page never reads, is refused as on every other route.
func TestAPIDocs(t *testing.T) {
	on := startDocsGateway(t, true)
	off := startDocsGateway(t, false)
	gz := http.Header{"Accept-Encoding": {"gzip, deflate, br"}}
	noGzip := http.Header{"Accept-Encoding": {"gzip;q=0, identity"}}

	_, index := getDocs(t, on.URL+"/docs/", nil)
	_, bundle := getDocs(t, on.URL+"/docs/swagger-ui-bundle.js", noGzip)
	tests := []struct {
		name       string
		srv        *httptest.Server
		path       string
		header     http.Header
		status     int
		wantHeader map[string]string // headers wanted, "" for absent
		body       func([]byte) bool // nil: not checked
		docsPage   bool              // carries the page's security headers
	}{
		{name: "page", srv: on, path: "/docs/", status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Type": "text/html; charset=utf-8", "Content-Encoding": ""},
			body:       func(b []byte) bool { return bytes.Contains(b, []byte(`<script src="init.js">`)) }},
		{name: "a query names another document: refused", srv: on,
			path: "/docs/?url=https://evil.example/x.json&configUrl=https://evil.example/c.json", status: 400,
			body: func(b []byte) bool {
				return bytes.Contains(b, []byte(`"reason":"INVALID_REQUEST"`)) && !bytes.Equal(b, index)
			}},
		{name: "a query on a file: refused", srv: on, path: "/docs/init.js?configUrl=x", status: 400},
		{name: "redirect to the page", srv: on, path: "/docs", status: 301, docsPage: true,
			wantHeader: map[string]string{"Location": "docs/"}},
		{name: "bundle, gzip accepted", srv: on, path: "/docs/swagger-ui-bundle.js", header: gz, status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/javascript; charset=utf-8", "Vary": "Accept-Encoding"},
			body:       func(b []byte) bool { return gunzipEquals(b, bundle) }},
		{name: "bundle, gzip refused", srv: on, path: "/docs/swagger-ui-bundle.js", header: noGzip, status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"},
			body:       func(b []byte) bool { return bytes.Contains(b, []byte("SwaggerUIBundle")) && len(b) > 1<<20 }},
		{name: "stylesheet", srv: on, path: "/docs/swagger-ui.css", header: gz, status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/css; charset=utf-8"}},
		{name: "init script", srv: on, path: "/docs/init.js", status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Type": "text/javascript; charset=utf-8"},
			body:       func(b []byte) bool { return bytes.Contains(b, []byte("queryConfigEnabled: false")) }},
		{name: "licence", srv: on, path: "/docs/LICENSE", status: 200, docsPage: true,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{name: "unknown file", srv: on, path: "/docs/swagger-ui-standalone-preset.js", status: 404,
			body: func(b []byte) bool { return bytes.Contains(b, []byte(`"reason":"NOT_FOUND"`)) }},
		{name: "turned off", srv: off, path: "/docs/", status: 404,
			body: func(b []byte) bool { return bytes.Contains(b, []byte(`"reason":"NOT_FOUND"`)) }},
		{name: "turned off, no redirect", srv: off, path: "/docs", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := getDocs(t, tc.srv.URL+tc.path, tc.header)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200q", res.StatusCode, tc.status, body)
			}
			for k, want := range tc.wantHeader {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if tc.docsPage {
				for k, want := range map[string]string{
					"Content-Security-Policy": gateway.APIDocsCSP,
					"X-Content-Type-Options":  "nosniff",
					"X-Frame-Options":         "DENY",
					"Referrer-Policy":         "no-referrer",
				} {
					if got := res.Header.Get(k); got != want {
						t.Errorf("%s: %q, want %q", k, got, want)
					}
				}
			} else if csp := res.Header.Get("Content-Security-Policy"); csp != "" {
				t.Errorf("Content-Security-Policy %q on an answer that is not the page's", csp)
			}
			if tc.body != nil && !tc.body(body) {
				t.Errorf("unexpected body (%d bytes): %.300q", len(body), body)
			}
		})
	}
}

// TestAPIDocsCSPSelfOnly checks the policy itself: every fetch directive
// allows the facade's own origin at most (data: images aside), with no
// inline script or style, no eval and no framing.
func TestAPIDocsCSPSelfOnly(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(gateway.APIDocsCSP, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"img-src":         "'self' data:",
		"connect-src":     "'self'",
		"base-uri":        "'none'",
		"form-action":     "'none'",
		"frame-ancestors": "'none'",
	}
	for name, value := range want {
		if directives[name] != value {
			t.Errorf("%s %q, want %q", name, directives[name], value)
		}
	}
	for name := range directives {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected directive %s %q", name, directives[name])
		}
	}
}

// TestAPIDocsRevalidation checks that a browser's cached copy is
// revalidated: the ETag of the variant it holds gives a 304.
func TestAPIDocsRevalidation(t *testing.T) {
	srv := startDocsGateway(t, true)
	for _, path := range []string{"/docs/", "/docs/swagger-ui-bundle.js"} {
		gz := http.Header{"Accept-Encoding": {"gzip"}}
		res, _ := getDocs(t, srv.URL+path, gz)
		etag := res.Header.Get("ETag")
		if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q, Cache-Control %q; want an ETag and no-cache", path, etag, res.Header.Get("Cache-Control"))
		}
		gz.Set("If-None-Match", etag)
		if res, _ := getDocs(t, srv.URL+path, gz); res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match %s: status %d, want 304", path, etag, res.StatusCode)
		}
	}
}

// TestAPIDocsPageFilesServed checks that every file the page names (its
// scripts, stylesheet and icon) is served: a file left out of the
// embedded directory shows here, not in a user's browser.
func TestAPIDocsPageFilesServed(t *testing.T) {
	srv := startDocsGateway(t, true)
	_, index := getDocs(t, srv.URL+"/docs/", nil)
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(index, -1)
	if len(refs) < 4 {
		t.Fatalf("index.html names %d files, want its stylesheet, icon and two scripts:\n%s", len(refs), index)
	}
	for _, m := range refs {
		ref := string(m[1])
		if ref == "../openapi.v3.json" {
			continue // the document, served by the gateway itself
		}
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
			t.Errorf("index.html names %q: the page's files must be relative, on the facade", ref)
			continue
		}
		if res, _ := getDocs(t, srv.URL+"/docs/"+ref, http.Header{"Accept-Encoding": {"gzip"}}); res.StatusCode != http.StatusOK {
			t.Errorf("/docs/%s: status %d, want 200", ref, res.StatusCode)
		}
	}
}

func gunzipEquals(compressed, want []byte) bool {
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return false
	}
	got, err := io.ReadAll(zr)
	return err == nil && bytes.Equal(got, want)
}
