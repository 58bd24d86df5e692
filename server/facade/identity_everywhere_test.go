package facade_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// identitiesA is identitiesAB after customer-b was removed.
const identitiesA = `
identities:
  customer-a:
    api_token_file: customer-a.api-token
grants:
  alice: [customer-a]
  bob: [customer-a]
`

// TestIdentityEverywhere checks that every record of a call names its
// upstream identity: the audit record and the log line of a call refused
// IDENTITY_NOT_GRANTED name the identity asked for, those of a call served
// the identity it acted as; and that the token-expiry and breaker gauges
// have a series per identity in force, the removed one's gone after a real
// reload of the identities file.
func TestIdentityEverywhere(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey})
	file := identitiesFile(t, dir, identitiesAB)
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: keysFile, IdentitiesFile: file})
	h.waitServing(t)

	send := func(key, method, path, requestID string, body any) int {
		t.Helper()
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(mustJSON(t, body))
		}
		req, err := http.NewRequestWithContext(callCtx(t), method, h.base+path, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Request-ID", requestID)
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// lines returns the log line and the audit record (nil for a call
	// that has none) of the call with requestID.
	lines := func(requestID string, audited bool) (call, audit map[string]any) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, "the log line and audit record of "+requestID, func() bool {
			call, audit = nil, nil
			for _, m := range testkit.JSONLines(h.logs.String()) {
				if m["x_request_id"] != requestID {
					continue
				}
				switch m["msg"] {
				case "finished call":
					call = m
				case "audit":
					audit = m
				}
			}
			return call != nil && (audit != nil || !audited)
		})
		return call, audit
	}

	otp := func(identity string) map[string]string {
		return map[string]string{"owner": "owner@example.com", "endpoint_id": "ep-1", "identity": identity}
	}
	for _, c := range []struct {
		name, key, method, path string
		body                    any
		code                    int
		identity, outcome       string
		audited                 bool
	}{
		{"otp refused", aliceKey, "POST", "/v1/otp", otp("customer-b"), 403, "customer-b", "PermissionDenied", true},
		{"otp refused, no such identity", aliceKey, "POST", "/v1/otp", otp("no-such-one"), 403, "no-such-one", "PermissionDenied", true},
		{"revoke refused", aliceKey, "POST", "/v1/tokens:revoke", map[string]string{"token": "t", "identity": "customer-b"}, 403, "customer-b", "PermissionDenied", true},
		{"status refused", aliceKey, "GET", httpStatusPath(liveService) + "?identity=customer-b", nil, 403, "customer-b", "", false},
		{"otp as the default", aliceKey, "POST", "/v1/otp", otp(""), 200, "customer-a", "OK", true},
		{"otp as asked", bobKey, "POST", "/v1/otp", otp("customer-b"), 200, "customer-b", "OK", true},
		{"status as the default", bobKey, "GET", httpStatusPath(liveService), nil, 200, "customer-b", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "ident-" + strings.ReplaceAll(c.name, " ", "-")
			id = strings.ReplaceAll(id, ",", "")
			if code := send(c.key, c.method, c.path, id, c.body); code != c.code {
				t.Fatalf("answer %d, want %d", code, c.code)
			}
			call, audit := lines(id, c.audited)
			if call["identity"] != c.identity {
				t.Errorf("log line identity %v, want %q: %v", call["identity"], c.identity, call)
			}
			if c.audited && (audit["identity"] != c.identity || audit["outcome"] != c.outcome) {
				t.Errorf("audit record identity %v, outcome %v; want %q, %q: %v", audit["identity"], audit["outcome"], c.identity, c.outcome, audit)
			}
		})
	}

	// Both identities have fetched a token above: a series each.
	metrics := func() string {
		t.Helper()
		resp, err := h.http.Get(h.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	text := metrics()
	for _, want := range []string{
		`radkit_upstream_token_expiry_seconds{identity="customer-a"} `,
		`radkit_upstream_token_expiry_seconds{identity="customer-b"} `,
		`radkit_upstream_breaker_state{identity="customer-a"} 0`,
		`radkit_upstream_breaker_state{identity="customer-b"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	identitiesFile(t, dir, identitiesA)
	if err := h.f.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	text = metrics()
	for _, gone := range []string{
		`radkit_upstream_token_expiry_seconds{identity="customer-b"}`,
		`radkit_upstream_breaker_state{identity="customer-b"}`,
	} {
		if strings.Contains(text, gone) {
			t.Errorf("/metrics still has %s after customer-b was removed", gone)
		}
	}
	for _, kept := range []string{
		`radkit_upstream_token_expiry_seconds{identity="customer-a"} `,
		`radkit_upstream_breaker_state{identity="customer-a"} 0`,
	} {
		if !strings.Contains(text, kept) {
			t.Errorf("/metrics lost %s in the reload", kept)
		}
	}
}

// TestRevocationNotConfiguredNamesTheIdentity checks the message of
// REVOCATION_NOT_CONFIGURED when another identity holds client
// credentials: it is about the identity used, not "the facade".
func TestRevocationNotConfiguredNamesTheIdentity(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey})
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: keysFile, IdentitiesFile: identitiesFile(t, dir, identitiesAB)})
	h.waitServing(t)

	// customer-a has an API token only; customer-b client credentials.
	code, body := h.as(t, bobKey, http.MethodPost, "/v1/tokens:revoke", map[string]string{"token": "some-token", "identity": "customer-a"})
	msg, _ := body["message"].(string)
	if code != http.StatusBadRequest || !strings.Contains(string(mustJSON(t, body)), `"reason":"REVOCATION_NOT_CONFIGURED"`) {
		t.Fatalf("revoke as customer-a: %d %v, want 400 REVOCATION_NOT_CONFIGURED", code, body)
	}
	if !strings.Contains(msg, `"customer-a"`) || strings.Contains(msg, "facade has none") {
		t.Errorf("message %q: want it about the identity customer-a, not the facade", msg)
	}
	code, body = h.as(t, bobKey, http.MethodPost, "/v1/tokens:revoke", map[string]string{"token": "some-token", "identity": "customer-b"})
	if strings.Contains(string(mustJSON(t, body)), "REVOCATION_NOT_CONFIGURED") {
		t.Errorf("revoke as customer-b, which has client credentials: %d %v", code, body)
	}
}
