package emulator_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

func TestDiscovery(t *testing.T) {
	t.Run("derived", func(t *testing.T) {
		e := newEnv(t, emulator.Config{})
		r := e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"})
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		base := e.srv.URL
		want := map[string]any{
			"issuer":              base,
			"jwks_uri":            base + "/oauth2/keys",
			"token_endpoint":      base + "/oauth2/token",
			"revocation_endpoint": base + "/oauth2/revoke",
			"userinfo_endpoint":   base + "/oauth2/user_info",
		}
		if got := r.json(t); !jsonEqual(got, want) {
			t.Errorf("discovery = %v, want %v", got, want)
		}
	})
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, emulator.Config{Issuer: "https://devel.radkit-cloud.example.com/"})
		got := e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"}).json(t)
		if got["issuer"] != "https://devel.radkit-cloud.example.com" || got["token_endpoint"] != "https://devel.radkit-cloud.example.com/oauth2/token" {
			t.Errorf("discovery = %v", got)
		}
	})
	t.Run("tls", func(t *testing.T) {
		emu, err := emulator.New(emulator.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(emu)
		defer srv.Close()
		c := srv.Client()
		defer c.CloseIdleConnections()
		resp, err := c.Get(srv.URL + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := response{status: resp.StatusCode}
		var err2 error
		if r.body, err2 = io.ReadAll(resp.Body); err2 != nil {
			t.Fatal(err2)
		}
		if got := r.json(t)["issuer"]; got != srv.URL || !strings.HasPrefix(srv.URL, "https://") {
			t.Errorf("issuer = %v, want %s", got, srv.URL)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]emulator.Config{
		"relative issuer":   {Issuer: "/foo"},
		"ftp issuer":        {Issuer: "ftp://x"},
		"negative lifetime": {TokenLifetime: -time.Second},
		"admin shadows":     {AdminPrefix: "/oauth2"},
		"admin relative":    {AdminPrefix: "admin"},
		"bad seed":          {Seed: emulator.Seed{Services: []emulator.Service{{ID: ""}}}},
	} {
		if _, err := emulator.New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want error", name)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name    string
		req     request
		status  int
		details string
	}{
		{"grant in query", request{path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}}, 200, ""},
		{"grant in form", request{path: "/oauth2/token", header: form, body: "grant_type=client_credentials", basic: [2]string{clientID, clientSecret}}, 200, ""},
		{"urlencoded credentials", request{path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{"emulator%2Dclient", clientSecret}}, 200, ""},
		{"missing grant", request{path: "/oauth2/token", basic: [2]string{clientID, clientSecret}}, 400, "unsupported grant_type"},
		{"wrong grant", request{path: "/oauth2/token", header: form, body: "grant_type=password", basic: [2]string{clientID, clientSecret}}, 400, "unsupported grant_type"},
		{"wrong secret", request{path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, "nope"}}, 401, "Invalid credentials"},
		{"unknown client", request{path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{"who", clientSecret}}, 401, "Invalid credentials"},
		{"no credentials", request{path: "/oauth2/token?grant_type=client_credentials"}, 401, "Invalid credentials"},
		{"credentials in form only", request{path: "/oauth2/token", header: form, body: "grant_type=client_credentials&client_id=emulator-client&client_secret=emulator-secret"}, 401, "Invalid credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.method = http.MethodPost
			r := e.do(t, tt.req)
			if tt.status != http.StatusOK {
				wantError(t, r, tt.status, tt.details)
				return
			}
			checkTokenResponse(t, r, "automation@example.com")
		})
	}
}

func checkTokenResponse(t *testing.T, r response, identity string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	got := r.json(t)
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"access_token", "admin_level", "expires_in", "identity", "radkit_access_token", "refresh_remaining_lifetime", "token_type"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys = %v, want %v", keys, wantKeys)
	}
	if got["token_type"] != "Bearer" || got["expires_in"] != 3600.0 || got["refresh_remaining_lifetime"] != 600.0 ||
		got["identity"] != identity || got["admin_level"] != 0.0 {
		t.Errorf("token response = %v", got)
	}
	for _, k := range []string{"access_token", "radkit_access_token"} {
		if s, _ := got[k].(string); strings.Count(s, ".") != 2 || !strings.HasPrefix(s, "eyJ") {
			t.Errorf("%s = %q, want a JWT", k, s)
		}
	}
	if got["access_token"] == got["radkit_access_token"] {
		t.Error("access_token and radkit_access_token are equal")
	}
}

func TestAPIToken(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.emu.RevokeAPIToken("emulator-api-token-unused") // unknown: no effect
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"valid", "JWT " + apiToken, 200},
		{"scheme case-insensitive", "jwt " + apiToken, 200},
		{"expired", "JWT " + emulator.DefaultAPIToken("expired-api-token"), 401},
		{"revoked", "JWT " + emulator.DefaultAPIToken("revoked-api-token"), 401},
		{"unknown", "JWT nope", 401},
		{"name instead of token", "JWT emulator-api-token", 401},
		{"bearer scheme", "Bearer " + apiToken, 401},
		{"empty", "JWT ", 401},
		{"missing", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request{method: http.MethodPost, path: "/auth/token", header: map[string]string{}}
			if tt.auth != "" {
				req.header["Authorization"] = tt.auth
			}
			r := e.do(t, req)
			if tt.status == 200 {
				checkTokenResponse(t, r, "automation+customer-a@example.com")
				return
			}
			wantError(t, r, tt.status, "Invalid credentials")
		})
	}
	t.Run("revoked at run time", func(t *testing.T) {
		e := newEnv(t, emulator.Config{})
		if !e.emu.RevokeAPIToken(apiToken) {
			t.Fatal("RevokeAPIToken: not found")
		}
		r := e.do(t, request{method: http.MethodPost, path: "/auth/token", header: map[string]string{"Authorization": "JWT " + apiToken}})
		wantError(t, r, 401, "Invalid credentials")
	})
}

func TestUserInfo(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	r := e.do(t, request{method: http.MethodGet, path: "/oauth2/user_info", header: bearer(tok)})
	want := map[string]any{"sub": "automation@example.com", "identity": "automation@example.com", "email": "automation@example.com", "admin_level": 0}
	if got := r.json(t); r.status != 200 || !jsonEqual(got, want) {
		t.Errorf("user_info = %d %v, want %v", r.status, got, want)
	}
	wantError(t, e.do(t, request{method: http.MethodGet, path: "/oauth2/user_info"}), 401, "Invalid token")
	wantError(t, e.do(t, request{method: http.MethodGet, path: "/oauth2/user_info", header: bearer("garbage")}), 401, "Invalid token")
}

var otpFormat = regexp.MustCompile(`^[a-z]{4}-[0-9]{4}-[a-z]{4}-[0-9]{4}$`)

func TestOTP(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	noClaims := e.clientToken(t, "no-claims-client", "no-claims-secret")
	big := `{"owner":"` + strings.Repeat("a", emulator.MaxRequestBodyBytes) + `"}`
	tests := []struct {
		name    string
		req     request
		status  int
		details string
	}{
		{"ok", otpRequest(tok, `{"owner":"user@example.com","endpoint_id":"ep-1","description":"why"}`), 200, ""},
		{"ok without description", otpRequest(tok, `{"owner":"user@example.com","endpoint_id":"ep-1"}`), 200, ""},
		{"missing owner", otpRequest(tok, `{"endpoint_id":"ep-1","description":"d"}`), 400, "Missing required field 'owner'"},
		{"blank owner", otpRequest(tok, `{"owner":"  ","endpoint_id":"ep-1"}`), 400, "Missing required field 'owner'"},
		{"missing endpoint_id", otpRequest(tok, `{"owner":"user@example.com"}`), 400, "Missing required field 'endpoint_id'"},
		{"missing both", otpRequest(tok, `{}`), 400, "Missing required field 'owner'"},
		{"invalid JSON", otpRequest(tok, `{"owner":`), 400, "Invalid JSON body"},
		{"trailing comma", otpRequest(tok, `{"owner":"u","endpoint_id":"e",}`), 400, "Invalid JSON body"},
		{"trailing data", otpRequest(tok, `{"owner":"u","endpoint_id":"e"} {}`), 400, "Invalid JSON body"},
		{"wrong type", otpRequest(tok, `{"owner":5,"endpoint_id":"e"}`), 400, "Invalid JSON body"},
		{"too large", otpRequest(tok, big), 413, "Request body too large"},
		{"wrong content type", request{method: http.MethodPost, path: "/public/otp/certificate", body: `{"owner":"u","endpoint_id":"e"}`,
			header: map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "text/plain"}}, 400, "Content-Type must be application/json"},
		{"no token", request{method: http.MethodPost, path: "/public/otp/certificate", body: `{}`}, 401, "Invalid token"},
		{"invalid token", otpRequest("not.a.jwt", `{"owner":"u","endpoint_id":"e"}`), 401, "Invalid token"},
		{"radkit_access_token is not a bearer", otpRequest(radkitToken(t, e), `{"owner":"u","endpoint_id":"e"}`), 401, "Invalid token"},
		{"no otp claim", otpRequest(noClaims, `{"owner":"u","endpoint_id":"e"}`), 403, "Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.req)
			if tt.status != 200 {
				wantError(t, r, tt.status, tt.details)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			got := r.json(t)
			otp, _ := got["otp"].(string)
			if len(got) != 1 || !otpFormat.MatchString(otp) {
				t.Fatalf("body = %s, want {\"otp\": \"abcd-1234-efgh-5678\"}", r.body)
			}
			rec, ok := e.emu.OTP(otp)
			if !ok || rec.Owner != "user@example.com" || rec.EndpointID != "ep-1" || rec.Identity != "automation@example.com" || rec.CreatedAt.IsZero() {
				t.Errorf("OTP record = %+v, %v", rec, ok)
			}
		})
	}
	if n := len(e.emu.OTPs()); n != 2 {
		t.Errorf("OTPs() has %d records, want 2", n)
	}
}

func radkitToken(t *testing.T, e *env) string {
	t.Helper()
	r := e.do(t, request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}})
	return r.json(t)["radkit_access_token"].(string)
}

func TestStatus(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	noClaims := e.clientToken(t, "no-claims-client", "no-claims-secret")
	tests := []struct {
		name    string
		path    string
		tok     string
		status  int
		details string
		body    string
		lastID  string
	}{
		{"guide example", "123-123-123", tok, 200, "", `{"service_id":"123-123-123","active":true,"online":true}`, "123-123-123"},
		{"real-looking", "1ryq-e8n8-5g5n", tok, 200, "", `{"service_id":"1ryq-e8n8-5g5n","active":true,"online":true}`, "1ryq-e8n8-5g5n"},
		{"offline", "offl-ine0-0001", tok, 200, "", `{"service_id":"offl-ine0-0001","active":true,"online":false}`, "offl-ine0-0001"},
		{"inactive", "inac-tive-0001", tok, 200, "", `{"service_id":"inac-tive-0001","active":false,"online":false}`, "inac-tive-0001"},
		{"unnecessarily escaped", "123%2D123-123", tok, 200, "", `{"service_id":"123-123-123","active":true,"online":true}`, "123%2D123-123"},
		{"unknown", "nope", tok, 404, "Unknown Service ID", "", "nope"},
		{"escaped slash is one segment", "123-123-123%2Fx", tok, 404, "Unknown Service ID", "", "123-123-123%2Fx"},
		{"extra segment", "123-123-123/x", tok, 404, "Not Found", "", "123-123-123/x"},
		{"no status claim", "123-123-123", noClaims, 403, "Forbidden", "", "123-123-123"},
		{"no token", "123-123-123", "", 401, "Invalid token", "", "123-123-123"},
		{"bad token", "123-123-123", "x", 401, "Invalid token", "", "123-123-123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request{method: http.MethodGet, path: "/public/admin/service/status/" + tt.path}
			if tt.tok != "" {
				req.header = bearer(tt.tok)
			}
			r := e.do(t, req)
			if got := e.emu.LastServiceID(); got != tt.lastID {
				t.Errorf("LastServiceID = %q, want %q", got, tt.lastID)
			}
			if tt.status != 200 {
				wantError(t, r, tt.status, tt.details)
				return
			}
			if r.status != 200 || string(r.body) != tt.body {
				t.Errorf("got %d %s, want 200 %s", r.status, r.body, tt.body)
			}
		})
	}
	t.Run("SetService", func(t *testing.T) {
		e.emu.SetService(emulator.Service{ID: "new-svc", Active: true})
		r := e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/new-svc", header: bearer(tok)})
		if r.status != 200 || string(r.body) != `{"service_id":"new-svc","active":true,"online":false}` {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	other := e.clientToken(t, clientID, clientSecret)
	creds := [2]string{clientID, clientSecret}
	revoke := func(token string, basic [2]string) response {
		return e.do(t, request{method: http.MethodPost, path: "/oauth2/revoke?token=" + token, basic: basic})
	}
	wantError(t, revoke(tok, [2]string{}), 401, "Invalid credentials")
	wantError(t, revoke(tok, [2]string{clientID, "bad"}), 401, "Invalid credentials")
	wantError(t, revoke("unknown", creds), 400, "Token unknown or expired")
	wantError(t, e.do(t, request{method: http.MethodPost, path: "/oauth2/revoke", basic: creds}), 400, "Token unknown or expired")
	if r := revoke(tok, creds); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("revoke = %d %q, want 204 and no body", r.status, r.body)
	}
	wantError(t, revoke(tok, creds), 400, "Token unknown or expired")
	wantError(t, e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/123-123-123", header: bearer(tok)}), 401, "Invalid token")
	if r := e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/123-123-123", header: bearer(other)}); r.status != 200 {
		t.Errorf("other token after revoke: status %d, want 200", r.status)
	}
}

func TestExpiryAndRevokeAll(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	e := newEnv(t, emulator.Config{TokenLifetime: 1500 * time.Millisecond, Now: clock.Now})
	status := func(tok string) response {
		return e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/123-123-123", header: bearer(tok)})
	}
	r := e.do(t, request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}})
	if got := r.json(t)["expires_in"]; got != 2.0 {
		t.Errorf("expires_in = %v, want 2 (1.5s rounded up)", got)
	}
	tok := r.json(t)["access_token"].(string)
	clock.Advance(1900 * time.Millisecond)
	if r := status(tok); r.status != 200 {
		t.Fatalf("before expiry: status %d", r.status)
	}
	clock.Advance(100 * time.Millisecond)
	wantError(t, status(tok), 401, "Invalid token")
	wantError(t, e.do(t, request{method: http.MethodPost, path: "/oauth2/revoke?token=" + tok, basic: [2]string{clientID, clientSecret}}), 400, "Token unknown or expired")

	a, b := e.clientToken(t, clientID, clientSecret), e.clientToken(t, clientID, clientSecret)
	e.emu.RevokeAccessTokens()
	wantError(t, status(a), 401, "Invalid token")
	wantError(t, status(b), 401, "Invalid token")
	if r := status(e.clientToken(t, clientID, clientSecret)); r.status != 200 {
		t.Errorf("fresh token after RevokeAccessTokens: status %d", r.status)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tests := []struct {
		method, path string
		status       int
		details      string
		allow        string
	}{
		{http.MethodGet, "/nope", 404, "Not Found", ""},
		{http.MethodGet, "/", 404, "Not Found", ""},
		{http.MethodGet, "/public/admin/service/status/", 404, "Not Found", ""},
		{http.MethodGet, "/oauth2/token", 405, "Method Not Allowed", "POST"},
		{http.MethodPost, "/.well-known/openid-configuration", 405, "Method Not Allowed", "GET"},
		{http.MethodGet, "/public/otp/certificate", 405, "Method Not Allowed", "POST"},
		{http.MethodDelete, "/public/admin/service/status/123-123-123", 405, "Method Not Allowed", "GET"},
		{http.MethodGet, "/oauth2/revoke", 405, "Method Not Allowed", "POST"},
	}
	for _, tt := range tests {
		r := e.do(t, request{method: tt.method, path: tt.path})
		wantError(t, r, tt.status, tt.details)
		if got := r.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
	if r := e.do(t, request{method: http.MethodHead, path: "/oauth2/keys"}); r.status != 200 {
		t.Errorf("HEAD keys: status %d", r.status)
	}
}

// TestOTPsBounded checks that the emulator remembers only the last
// MaxOTPs OTPs, so that a long run keeps a bounded memory: the oldest is
// forgotten, the newest are found, in order, and new OTPs keep coming.
func TestOTPsBounded(t *testing.T) {
	const max = 3
	e := newEnv(t, emulator.Config{MaxOTPs: max})
	tok := e.clientToken(t, clientID, clientSecret)
	var issued []string
	for range 2*max + 1 {
		r := e.do(t, otpRequest(tok, `{"owner":"user@example.com","endpoint_id":"ep-1"}`))
		if r.status != http.StatusOK {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		issued = append(issued, r.json(t)["otp"].(string))
	}
	var kept []string
	for _, rec := range e.emu.OTPs() {
		kept = append(kept, rec.OTP)
	}
	if want := issued[len(issued)-max:]; !slices.Equal(kept, want) {
		t.Errorf("OTPs() = %q, want the last %d issued, oldest first: %q", kept, max, want)
	}
	for i, otp := range issued {
		_, ok := e.emu.OTP(otp)
		if want := i >= len(issued)-max; ok != want {
			t.Errorf("OTP(issued[%d]) found = %v, want %v", i, ok, want)
		}
	}
	if n := e.emu.Calls(emulator.RouteOTP); n != int64(len(issued)) {
		t.Errorf("Calls(RouteOTP) = %d, want every one issued (%d)", n, len(issued))
	}
}
