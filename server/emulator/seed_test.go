package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

func TestDefaultSeed(t *testing.T) {
	s := emulator.DefaultSeed()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	services := map[string][2]bool{}
	for _, sv := range s.Services {
		services[sv.ID] = [2]bool{sv.Active, sv.Online}
	}
	want := map[string][2]bool{"1ryq-e8n8-5g5n": {true, true}, "123-123-123": {true, true}, "offl-ine0-0001": {true, false}, "inac-tive-0001": {false, false}}
	if !jsonEqual(services, want) {
		t.Errorf("services = %v, want %v", services, want)
	}
	// Mutating one copy must not change the next.
	s.Clients[0].Claims[0] = "changed"
	if emulator.DefaultSeed().Clients[0].Claims[0] != emulator.ClaimOTP {
		t.Error("DefaultSeed shares slices between calls")
	}
}

func TestLoadSeed(t *testing.T) {
	seed, err := emulator.LoadSeed(filepath.Join("testdata", "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, emulator.Config{Seed: seed})
	tok := e.clientToken(t, "seed-client", "seed-secret")
	r := e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/seed-svc-0001", header: bearer(tok)})
	if string(r.body) != `{"service_id":"seed-svc-0001","active":true,"online":false}` {
		t.Errorf("status = %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, otpRequest(tok, otpBody)), 403, "Forbidden") // seed-client has only "status"
	r = e.do(t, request{method: http.MethodPost, path: "/auth/token", header: map[string]string{"Authorization": "JWT seed-api-token"}})
	if got := r.json(t); got["identity"] != "seed+tag@example.com" {
		t.Errorf("api token identity = %v", got["identity"])
	}
	if tok := r.json(t)["access_token"].(string); e.do(t, otpRequest(tok, otpBody)).status != 200 {
		t.Error("seed api token cannot get an OTP")
	}
	wantError(t, e.do(t, request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}}), 401, "Invalid credentials")

	if _, err := emulator.LoadSeed(filepath.Join("testdata", "missing.json")); err == nil {
		t.Error("LoadSeed(missing) succeeded")
	}
}

func TestParseSeedErrors(t *testing.T) {
	tests := map[string]string{
		"not json":          `{`,
		"unknown field":     `{"service": []}`,
		"trailing data":     `{} {}`,
		"empty service id":  `{"services":[{"service_id":""}]}`,
		"duplicate service": `{"services":[{"service_id":"a"},{"service_id":"a"}]}`,
		"client no secret":  `{"clients":[{"client_id":"c","identity":"i"}]}`,
		"duplicate client":  `{"clients":[{"client_id":"c","client_secret":"s","identity":"i"},{"client_id":"c","client_secret":"s","identity":"i"}]}`,
		"unknown claim":     `{"clients":[{"client_id":"c","client_secret":"s","identity":"i","claims":["admin"]}]}`,
		"token no identity": `{"api_tokens":[{"token":"t"}]}`,
		"bad expires_at":    `{"api_tokens":[{"token":"t","identity":"i","expires_at":"tomorrow"}]}`,
	}
	for name, in := range tests {
		if _, err := emulator.ParseSeed(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ParseSeed succeeded, want error", name)
		}
	}
	if s, err := emulator.ParseSeed(strings.NewReader(`{}`)); err != nil || len(s.Services) != 0 {
		t.Errorf("ParseSeed({}) = %+v, %v", s, err)
	}
}

// TestDefaultAPITokens: the seeded API tokens are JWTs whose exp is their
// expiry, stable across runs, and deploy/emulator-secrets holds them.
func TestDefaultAPITokens(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		exp        time.Time
	}{
		{"emulator-api-token", "customer-a.api-token", time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"customer-c-api-token", "customer-c.api-token", time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"expired-api-token", "", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := emulator.DefaultAPIToken(tc.name)
			if tok == "" || tok != emulator.DefaultAPIToken(tc.name) {
				t.Fatalf("DefaultAPIToken(%q) = %q, not stable", tc.name, tok)
			}
			claims := jwtClaims(t, tok)
			if exp, _ := claims["exp"].(float64); int64(exp) != tc.exp.Unix() {
				t.Errorf("exp = %v, want %d", claims["exp"], tc.exp.Unix())
			}
			if claims["jti"] != tc.name {
				t.Errorf("jti = %v, want %s", claims["jti"], tc.name)
			}
			if tc.file == "" {
				return
			}
			b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "emulator-secrets", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); got != tok {
				t.Errorf("deploy/emulator-secrets/%s = %q, want DefaultAPIToken(%q) = %q", tc.file, got, tc.name, tok)
			}
		})
	}
	if emulator.DefaultAPIToken("nope") != "" {
		t.Error("DefaultAPIToken of an unknown name is not empty")
	}
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload of %q: %v", tok, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload of %q: %v", tok, err)
	}
	return m
}
