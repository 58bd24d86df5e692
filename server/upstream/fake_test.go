package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// Every secret in this suite contains "SECRET", so that one substring check
// finds any leak in an error string or a log line.
const (
	testClientID     = "client-id-1"
	testClientSecret = "cs-SECRET-zq9+/="
	testAPIToken     = "api-SECRET-xk7"
	secretMarker     = "SECRET"
)

// fake is a loopback stand-in for RADKit Access Cloud, strict about what the
// guide says a client sends.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	expiresIn  atomic.Int64 // token lifetime in seconds; 0: omit expires_in
	tokenDelay atomic.Int64 // nanoseconds each token fetch takes
	reject401  atomic.Int64 // reject this many API calls with 401

	nDiscovery, nTokenCC, nTokenAPI, nOTP, nStatus, nRevoke atomic.Int64

	mu       sync.Mutex
	serial   int
	valid    map[string]time.Time // access token -> expiry
	revoked  []string
	issuer   string                           // "" means the server URL
	handlers map[string]http.HandlerFunc      // override per route name
	seen     map[string][]*http.Request       // requests per route name (clones)
	bodies   map[string][]string              // request bodies per route name
	discDoc  func(base string) map[string]any // override discovery document
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{
		t:        t,
		valid:    map[string]time.Time{},
		handlers: map[string]http.HandlerFunc{},
		seen:     map[string][]*http.Request{},
		bodies:   map[string][]string{},
	}
	f.expiresIn.Store(3600)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// handle overrides the handler of a route: "discovery", "token", "apitoken",
// "otp", "status", "revoke".
func (f *fake) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// set changes the fake's state under its lock.
func (f *fake) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// body returns the body of the i-th request of a route.
func (f *fake) body(route string, i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[route][i]
}

func (f *fake) requests(route string) []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen[route]...)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	route := ""
	p := r.URL.Path
	switch {
	case p == "/.well-known/openid-configuration":
		route = "discovery"
	case p == "/oauth2/token", p == "/custom/token":
		route = "token"
	case p == "/auth/token":
		route = "apitoken"
	case p == "/oauth2/revoke", p == "/custom/revoke":
		route = "revoke"
	case p == "/public/otp/certificate":
		route = "otp"
	case strings.HasPrefix(r.URL.EscapedPath(), "/public/admin/service/status/"):
		route = "status"
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "details": "no route", "retry": false})
		return
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	r.Body.Close()
	f.mu.Lock()
	f.seen[route] = append(f.seen[route], r.Clone(r.Context()))
	f.bodies[route] = append(f.bodies[route], body.String())
	h := f.handlers[route]
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body.Bytes()))

	if got := r.Header.Get("User-Agent"); got == "" || strings.HasPrefix(got, "Go-http-client") {
		f.t.Errorf("%s: User-Agent = %q, want ours", route, got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		f.t.Errorf("%s: Accept = %q, want application/json", route, got)
	}
	if h != nil {
		h(w, r)
		return
	}
	switch route {
	case "discovery":
		f.serveDiscovery(w, r)
	case "token":
		f.serveTokenCC(w, r)
	case "apitoken":
		f.serveTokenAPI(w, r)
	case "revoke":
		f.serveRevoke(w, r)
	case "otp":
		f.serveOTP(w, r)
	case "status":
		f.serveStatus(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, details string, retry bool) {
	writeJSON(w, status, map[string]any{"success": false, "details": details, "retry": retry})
}

func (f *fake) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	f.nDiscovery.Add(1)
	base := f.srv.URL
	f.mu.Lock()
	issuer, doc := f.issuer, f.discDoc
	f.mu.Unlock()
	if issuer == "" {
		issuer = base
	}
	m := map[string]any{
		"issuer":              issuer,
		"jwks_uri":            base + "/oauth2/keys",
		"token_endpoint":      base + "/oauth2/token",
		"revocation_endpoint": base + "/oauth2/revoke",
		"userinfo_endpoint":   base + "/oauth2/user_info",
	}
	if doc != nil {
		m = doc(base)
	}
	writeJSON(w, http.StatusOK, m)
}

func (f *fake) checkBasic(route string, r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != testClientID || secret != testClientSecret {
		f.t.Errorf("%s: bad Basic credentials (ok=%v id=%q)", route, ok, id)
		return false
	}
	return true
}

func (f *fake) serveTokenCC(w http.ResponseWriter, r *http.Request) {
	f.nTokenCC.Add(1)
	if r.Method != http.MethodPost {
		f.t.Errorf("token: method %s", r.Method)
	}
	if got := r.URL.Query().Get("grant_type"); got != "client_credentials" {
		f.t.Errorf("token: query grant_type = %q", got)
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		f.t.Errorf("token: form grant_type = %q (%v)", r.PostForm.Get("grant_type"), err)
	}
	if !f.checkBasic("token", r) {
		writeErr(w, http.StatusUnauthorized, "Invalid credentials", false)
		return
	}
	f.issue(w, r)
}

func (f *fake) serveTokenAPI(w http.ResponseWriter, r *http.Request) {
	f.nTokenAPI.Add(1)
	if r.Method != http.MethodPost {
		f.t.Errorf("apitoken: method %s", r.Method)
	}
	if got := r.Header.Get("Authorization"); got != "JWT "+testAPIToken {
		f.t.Errorf("apitoken: bad Authorization header")
		writeErr(w, http.StatusUnauthorized, "Invalid credentials", false)
		return
	}
	f.issue(w, r)
}

func (f *fake) issue(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(f.tokenDelay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	exp := f.expiresIn.Load()
	f.mu.Lock()
	f.serial++
	tok := fmt.Sprintf("AT-%s-%d", secretMarker, f.serial)
	life := time.Duration(exp) * time.Second
	if exp == 0 {
		life = defaultTokenLifetime
	}
	f.valid[tok] = time.Now().Add(life)
	f.mu.Unlock()
	m := map[string]any{
		"access_token":               tok,
		"token_type":                 "Bearer",
		"refresh_remaining_lifetime": 600,
		"radkit_access_token":        "RAT-" + secretMarker,
		"identity":                   "user@example.com",
		"admin_level":                2,
	}
	if exp != 0 {
		m["expires_in"] = exp
	}
	writeJSON(w, http.StatusOK, m)
}

// authorized checks the Bearer token of an API call.
func (f *fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.reject401.Add(-1) >= 0 {
		writeErr(w, http.StatusUnauthorized, "Unauthorized", false)
		return false
	}
	f.reject401.Store(0)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, known := f.valid[tok]
	f.mu.Unlock()
	if !ok || !known || time.Now().After(exp) {
		writeErr(w, http.StatusUnauthorized, "Invalid token", false)
		return false
	}
	return true
}

func (f *fake) serveOTP(w http.ResponseWriter, r *http.Request) {
	f.nOTP.Add(1)
	if !f.authorized(w, r) {
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("otp: method %s content type %q", r.Method, r.Header.Get("Content-Type"))
	}
	var req struct {
		Owner       *string `json:"owner"`
		EndpointID  *string `json:"endpoint_id"`
		Description *string `json:"description"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Owner == nil || req.EndpointID == nil || req.Description == nil {
		writeErr(w, http.StatusBadRequest, "Missing required field 'owner'", false)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// The guide's example, trailing comma and all.
	fmt.Fprintf(w, "{\n\"otp\": %q,\n}", "otp-for-"+*req.EndpointID)
}

func (f *fake) serveStatus(w http.ResponseWriter, r *http.Request) {
	f.nStatus.Add(1)
	if !f.authorized(w, r) {
		return
	}
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/public/admin/service/status/"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad id", false)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(id)
	fmt.Fprintf(w, "{\n\"service_id\": %s,\n\"active\": true,\n\"online\": false,\n}", b)
}

func (f *fake) serveRevoke(w http.ResponseWriter, r *http.Request) {
	f.nRevoke.Add(1)
	if !f.checkBasic("revoke", r) {
		writeErr(w, http.StatusUnauthorized, "Invalid credentials", false)
		return
	}
	tok := r.URL.Query().Get("token")
	f.mu.Lock()
	_, known := f.valid[tok]
	delete(f.valid, tok)
	f.revoked = append(f.revoked, tok)
	f.mu.Unlock()
	if !known {
		writeErr(w, http.StatusBadRequest, "Token unknown or expired", false)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type mode int

const (
	modeCC   mode = iota // client credentials
	modeAPI              // API token only
	modeBoth             // API token for tokens, client credentials for revoke
)

// config returns a Config for f in the given mode, logging at debug level
// into a buffer that is checked for secrets when the test ends.
func (f *fake) config(m mode) Config {
	logs := &testkit.Buffer{}
	f.t.Cleanup(func() {
		if s := logs.String(); strings.Contains(s, secretMarker) {
			f.t.Errorf("a secret leaked into the logs:\n%s", s)
		}
	})
	cfg := Config{
		BaseURL: f.srv.URL + "/",
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if m == modeCC || m == modeBoth {
		cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	}
	if m == modeAPI || m == modeBoth {
		cfg.APIToken = testAPIToken
	}
	return cfg
}

// newClient returns a Client for cfg, closed when the test ends.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// checkErr fails the test if any error in err's chain shows a secret.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var walk func(error, int)
	walk = func(e error, depth int) {
		if e == nil || depth > 20 {
			return
		}
		for _, s := range []string{e.Error(), fmt.Sprintf("%v", e), fmt.Sprintf("%+v", e)} {
			if strings.Contains(s, secretMarker) {
				t.Errorf("a secret leaked into an error: %s", s)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x, depth+1)
			}
		}
	}
	walk(err, 0)
}
