package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	admin := func(method, path, body string) response {
		return e.do(t, request{method: method, path: "/_emulator" + path, body: body})
	}
	keys := func() int { return e.do(t, request{method: http.MethodGet, path: "/oauth2/keys"}).status }
	tok := e.clientToken(t, clientID, clientSecret)

	// Faults: an array is a script, a single object one fault.
	if r := admin(http.MethodPut, "/faults?route=/oauth2/keys", `[{"status":500},{"status":429,"retry":true,"retry_after":"1s"}]`); r.status != 204 {
		t.Fatalf("PUT faults: %d %s", r.status, r.body)
	}
	if r := admin(http.MethodPut, "/faults?route=/oauth2/keys", `{"status":502}`); r.status != 204 {
		t.Fatalf("PUT fault: %d %s", r.status, r.body)
	}
	if got := []int{keys(), keys(), keys(), keys()}; !jsonEqual(got, []int{500, 429, 502, 200}) {
		t.Errorf("statuses = %v", got)
	}
	admin(http.MethodPut, "/faults?route=/oauth2/keys", `{"status":500}`)
	if r := admin(http.MethodDelete, "/faults?route=/oauth2/keys", ""); r.status != 204 || keys() != 200 {
		t.Errorf("DELETE route faults: %d", r.status)
	}

	// Failure rate and global reset.
	if r := admin(http.MethodPut, "/failure-rate?route=/oauth2/keys", `{"rate":1,"fault":{"status":503}}`); r.status != 204 || keys() != 503 {
		t.Errorf("failure rate: %d %s", r.status, r.body)
	}
	if r := admin(http.MethodDelete, "/faults", ""); r.status != 204 || keys() != 200 {
		t.Errorf("DELETE all faults: %d", r.status)
	}

	// Latency, every route, then cleared.
	if r := admin(http.MethodPut, "/latency", `{"latency":"1ms"}`); r.status != 204 {
		t.Errorf("PUT latency: %d %s", r.status, r.body)
	}
	if r := admin(http.MethodPut, "/latency?route=/oauth2/keys", `{"latency":"0s"}`); r.status != 204 {
		t.Errorf("PUT route latency: %d %s", r.status, r.body)
	}

	// Services and revocation.
	if r := admin(http.MethodPut, "/services", `{"service_id":"adm-svc","active":true,"online":true}`); r.status != 204 {
		t.Errorf("PUT service: %d %s", r.status, r.body)
	}
	if r := e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/adm-svc", header: bearer(tok)}); r.status != 200 {
		t.Errorf("status of admin-added service: %d", r.status)
	}
	if r := e.do(t, otpRequest(tok, otpBody)); r.status != 200 {
		t.Errorf("otp: %d", r.status)
	}
	r := admin(http.MethodGet, "/otps", "")
	var otps []emulator.OTPRecord
	if err := json.Unmarshal(r.body, &otps); err != nil || len(otps) != 1 || otps[0].Owner != "user@example.com" {
		t.Errorf("GET otps = %s (%v)", r.body, err)
	}
	if r := admin(http.MethodPost, "/revoke-tokens", ""); r.status != 204 {
		t.Errorf("revoke-tokens: %d", r.status)
	}
	wantError(t, e.do(t, request{method: http.MethodGet, path: "/oauth2/user_info", header: bearer(tok)}), 401, "Invalid token")

	// Counters: admin calls are not counted.
	var c emulator.Counters
	if err := json.Unmarshal(admin(http.MethodGet, "/counters", "").body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Calls[emulator.RouteKeys] != 7 || c.Calls[emulator.RouteToken] != 1 || c.Cancelled[emulator.RouteKeys] != 0 || len(c.Calls) != len(emulator.Routes()) {
		t.Errorf("counters = %+v", c)
	}
}

func TestAdminErrors(t *testing.T) {
	e := newEnv(t, emulator.Config{AdminPrefix: "/admin/"})
	tests := []struct {
		method, path, body string
		status             int
		details            string
	}{
		{http.MethodPut, "/admin/faults", `{"status":500}`, 400, ""},
		{http.MethodPut, "/admin/faults?route=/nope", `{"status":500}`, 400, ""},
		{http.MethodPut, "/admin/faults?route=/oauth2/keys", `{"status":200}`, 400, ""},
		{http.MethodPut, "/admin/faults?route=/oauth2/keys", `[{"body":"weird"}]`, 400, ""},
		{http.MethodPut, "/admin/faults?route=/oauth2/keys", `{"status":500} x`, 400, ""},
		{http.MethodPut, "/admin/failure-rate?route=/oauth2/keys", `{"rate":2}`, 400, ""},
		{http.MethodPut, "/admin/latency", `{"latency":"soon"}`, 400, ""},
		{http.MethodPut, "/admin/services", `{"service_id":""}`, 400, ""},
		{http.MethodPut, "/admin/services", `{"id":"x"}`, 400, ""},
		{http.MethodGet, "/admin/nope", "", 404, "Not Found"},
		{http.MethodPost, "/admin/counters", "", 404, "Not Found"},
		{http.MethodGet, "/_emulator/counters", "", 404, "Not Found"},
	}
	for _, tt := range tests {
		r := e.do(t, request{method: tt.method, path: tt.path, body: tt.body})
		if tt.details != "" {
			wantError(t, r, tt.status, tt.details)
			continue
		}
		if r.status != tt.status || !strings.Contains(string(r.body), `"success":false`) || !strings.Contains(string(r.body), "bad admin request") {
			t.Errorf("%s %s %s: got %d %s", tt.method, tt.path, tt.body, r.status, r.body)
		}
	}
}

func TestAdminDisabled(t *testing.T) {
	e := newEnv(t, emulator.Config{DisableAdmin: true})
	wantError(t, e.do(t, request{method: http.MethodGet, path: "/_emulator/counters"}), 404, "Not Found")
}

// TestMintAPIToken: an API token minted through the admin API is a JWT
// whose exp is its expiry; it works until then and is refused (401) after,
// and one minted already expired is refused at once.
func TestMintAPIToken(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, emulator.Config{Now: clock.Now})
	mint := func(body string) (int, map[string]any) {
		r := e.do(t, request{method: http.MethodPost, path: "/_emulator/api-tokens", body: body})
		if r.status != 200 {
			return r.status, nil
		}
		return r.status, r.json(t)
	}
	exchange := func(tok string) int {
		return e.do(t, request{method: http.MethodPost, path: "/auth/token", header: map[string]string{"Authorization": "JWT " + tok}}).status
	}
	status, hour := mint(`{"identity":"mint@example.com","claims":["otp"],"lifetime":"1h"}`)
	if status != 200 {
		t.Fatalf("mint: %d", status)
	}
	tok, _ := hour["token"].(string)
	wantExp := clock.Now().Add(time.Hour)
	if exp, _ := jwtClaims(t, tok)["exp"].(float64); int64(exp) != wantExp.Unix() {
		t.Errorf("exp = %v, want %d", exp, wantExp.Unix())
	}
	if got := hour["expires_at"]; got != wantExp.Format(time.RFC3339) {
		t.Errorf("expires_at = %v, want %s", got, wantExp.Format(time.RFC3339))
	}
	if got := exchange(tok); got != 200 {
		t.Errorf("exchange before expiry: %d, want 200", got)
	}
	clock.Advance(time.Hour)
	if got := exchange(tok); got != 401 {
		t.Errorf("exchange at expiry: %d, want 401", got)
	}
	_, expired := mint(`{"identity":"mint@example.com","claims":["otp"],"lifetime":"-1h"}`)
	if got := exchange(expired["token"].(string)); got != 401 {
		t.Errorf("exchange of a token minted expired: %d, want 401", got)
	}
	for _, bad := range []string{`{"identity":"","lifetime":"1h"}`, `{"identity":"a@example.com","lifetime":"soon"}`, `{"identity":"a@example.com","claims":["root"],"lifetime":"1h"}`} {
		if status, _ := mint(bad); status != 400 {
			t.Errorf("mint %s: %d, want 400", bad, status)
		}
	}
}
