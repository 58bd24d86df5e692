package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

const (
	clientID     = "emulator-client"
	clientSecret = "emulator-secret"
)

// apiToken is the seeded API token that holds both claims.
var apiToken = emulator.DefaultAPIToken("emulator-api-token")

// env is an emulator on a loopback httptest server and a client for it.
type env struct {
	emu    *emulator.Emulator
	srv    *httptest.Server
	client *http.Client
}

func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	emu, srv := testkit.StartEmulator(t, cfg)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{emu: emu, srv: srv, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode body %q: %v", r.body, err)
	}
	return m
}

type request struct {
	method string
	path   string // escaped path and query
	header map[string]string
	body   string
	basic  [2]string // client id, secret
}

func (e *env) do(t *testing.T, req request) response {
	t.Helper()
	resp, err := e.send(t, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, req.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.method, req.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) send(t *testing.T, req request) (*http.Response, error) {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	u, err := url.Parse(e.srv.URL + req.path)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequestWithContext(t.Context(), req.method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	if req.basic[0] != "" {
		hr.SetBasicAuth(req.basic[0], req.basic[1])
	}
	return e.client.Do(hr)
}

// clientToken fetches an access token with client credentials.
func (e *env) clientToken(t *testing.T, id, secret string) string {
	t.Helper()
	r := e.do(t, request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{id, secret}})
	if r.status != http.StatusOK {
		t.Fatalf("token: status %d body %s", r.status, r.body)
	}
	return r.json(t)["access_token"].(string)
}

func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func otpRequest(tok, body string) request {
	return request{method: http.MethodPost, path: "/public/otp/certificate", body: body,
		header: map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}}
}

// wantError checks the guide's error body exactly.
func wantError(t *testing.T, r response, status int, details string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	want := map[string]any{"success": false, "details": details, "retry": false}
	if !jsonEqual(got, want) {
		t.Errorf("error body = %s, want %v", r.body, want)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
