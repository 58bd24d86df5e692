package emulator_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// keyFromJWKS fetches /oauth2/keys and rebuilds the ES256 public key.
func keyFromJWKS(t *testing.T, e *env) (string, *ecdsa.PublicKey) {
	t.Helper()
	r := e.do(t, request{method: http.MethodGet, path: "/oauth2/keys"})
	if r.status != 200 {
		t.Fatalf("keys: status %d", r.status)
	}
	keys, _ := r.json(t)["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("keys = %s, want one key", r.body)
	}
	k := keys[0].(map[string]any)
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] == "" {
		t.Fatalf("jwk = %v", k)
	}
	x, err1 := base64.RawURLEncoding.DecodeString(k["x"].(string))
	y, err2 := base64.RawURLEncoding.DecodeString(k["y"].(string))
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		t.Fatalf("jwk x/y: %v %v", err1, err2)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("jwk point: %v", err)
	}
	return k["kid"].(string), pub
}

func TestJWTVerifiableWithJWKS(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	e := newEnv(t, emulator.Config{Now: clock.Now})
	kid, pub := keyFromJWKS(t, e)
	if !pub.Equal(e.emu.PublicKey()) {
		t.Error("JWKS key differs from PublicKey()")
	}
	for _, tc := range []struct {
		name, identity string
		req            request
	}{
		{"client credentials", "automation@example.com", request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}}},
		{"api token", "automation+customer-a@example.com", request{method: http.MethodPost, path: "/auth/token", header: map[string]string{"Authorization": "JWT " + apiToken}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := e.do(t, tc.req).json(t)
			for _, field := range []string{"access_token", "radkit_access_token"} {
				claims := jwt.MapClaims{}
				tok, err := jwt.ParseWithClaims(body[field].(string), claims, func(tok *jwt.Token) (any, error) { return pub, nil },
					jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(e.srv.URL), jwt.WithSubject(tc.identity),
					jwt.WithTimeFunc(clock.Now), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
				if err != nil {
					t.Fatalf("%s: verify: %v", field, err)
				}
				if tok.Header["kid"] != kid {
					t.Errorf("%s: kid = %v, want %s", field, tok.Header["kid"], kid)
				}
				iat, _ := claims.GetIssuedAt()
				exp, _ := claims.GetExpirationTime()
				if exp.Sub(iat.Time) != time.Hour {
					t.Errorf("%s: exp-iat = %v, want 1h", field, exp.Sub(iat.Time))
				}
				if claims["identity"] != tc.identity || claims["admin_level"] != 0.0 || claims["jti"] == "" {
					t.Errorf("%s: claims = %v", field, claims)
				}
			}
		})
	}
}

func TestForgedTokenRefused(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	other := newEnv(t, emulator.Config{})
	forged := other.clientToken(t, clientID, clientSecret) // signed by another key
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "automation@example.com", "token_use": "access"})
	unsigned, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{forged, unsigned} {
		wantError(t, e.do(t, request{method: http.MethodGet, path: "/oauth2/user_info", header: bearer(tok)}), 401, "Invalid token")
	}
}
