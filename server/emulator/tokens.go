package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token uses, carried in the token_use claim so that a radkit_access_token
// is never mistaken for an access token.
const (
	tokenUseAccess = "access"
	tokenUseRadkit = "radkit_access"
)

// maxAccessRecords bounds the issued-token table; expired records are swept
// when it grows past this.
const maxAccessRecords = 4096

// signer holds the emulator's ES256 key, generated at start.
type signer struct {
	key *ecdsa.PrivateKey
	jwk jwk
}

// jwk is one public key in the JWKS document (RFC 7517, RFC 7518 §6.2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// jwks is the document served at /oauth2/keys.
type jwks struct {
	Keys []jwk `json:"keys"`
}

func newSigner() (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	// Uncompressed point: 0x04 || X || Y, 32 bytes each for P-256.
	enc := base64.RawURLEncoding
	k := jwk{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(point[1:33]), Y: enc.EncodeToString(point[33:65]), Use: "sig", Alg: "ES256"}
	// RFC 7638 thumbprint as the key ID.
	sum := sha256.Sum256(fmt.Appendf(nil, `{"crv":"%s","kty":"%s","x":"%s","y":"%s"}`, k.Crv, k.Kty, k.X, k.Y))
	k.Kid = enc.EncodeToString(sum[:])
	return &signer{key: key, jwk: k}, nil
}

// principal is who a token or credential acts as.
type principal struct {
	Identity   string
	AdminLevel int
	Claims     []string
}

// accessRecord is what the emulator remembers of an issued access token.
type accessRecord struct {
	principal
	expiresAt time.Time
}

// tokenClaims are the claims of both JWTs the token endpoints issue.
type tokenClaims struct {
	jwt.RegisteredClaims
	Identity   string   `json:"identity"`
	AdminLevel int      `json:"admin_level"`
	Claims     []string `json:"claims,omitempty"`
	TokenUse   string   `json:"token_use"`
}

// tokenResponse is the body both token endpoints answer with (guide §5.1).
type tokenResponse struct {
	AccessToken              string `json:"access_token"`
	TokenType                string `json:"token_type"`
	ExpiresIn                int64  `json:"expires_in"`
	RefreshRemainingLifetime int64  `json:"refresh_remaining_lifetime"`
	RadkitAccessToken        string `json:"radkit_access_token"`
	Identity                 string `json:"identity"`
	AdminLevel               int    `json:"admin_level"`
}

// issue mints an access token and a radkit_access_token for p and records
// the access token so that it can be checked and revoked later.
func (e *Emulator) issue(issuer string, p principal) (tokenResponse, error) {
	now := e.now()
	exp := now.Add(e.lifetime)
	jti, err := randomHex(16)
	if err != nil {
		return tokenResponse{}, err
	}
	access, err := e.sign(issuer, p, jti, tokenUseAccess, now, exp)
	if err != nil {
		return tokenResponse{}, err
	}
	rjti, err := randomHex(16)
	if err != nil {
		return tokenResponse{}, err
	}
	radkit, err := e.sign(issuer, p, rjti, tokenUseRadkit, now, exp)
	if err != nil {
		return tokenResponse{}, err
	}
	e.mu.Lock()
	if len(e.access) >= maxAccessRecords {
		for id, rec := range e.access {
			if !now.Before(rec.expiresAt) {
				delete(e.access, id)
			}
		}
	}
	e.access[jti] = accessRecord{principal: p, expiresAt: exp}
	e.mu.Unlock()
	return tokenResponse{
		AccessToken:              access,
		TokenType:                "Bearer",
		ExpiresIn:                int64(e.lifetime / time.Second),
		RefreshRemainingLifetime: int64(e.refreshRemaining / time.Second),
		RadkitAccessToken:        radkit,
		Identity:                 p.Identity,
		AdminLevel:               p.AdminLevel,
	}, nil
}

func (e *Emulator) sign(issuer string, p principal, jti, use string, now, exp time.Time) (string, error) {
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   p.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
		Identity:   p.Identity,
		AdminLevel: p.AdminLevel,
		Claims:     p.Claims,
		TokenUse:   use,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = e.signer.jwk.Kid
	s, err := tok.SignedString(e.signer.key)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", use, err)
	}
	return s, nil
}

// errTokenInvalid is returned for any access token the emulator refuses:
// malformed, badly signed, not an access token, unknown, expired or revoked.
var errTokenInvalid = errors.New("access token unknown, expired or revoked")

// lookupAccess verifies raw and returns its jti and record. Expiry is
// checked against the record, to the nanosecond, with the emulator's clock.
func (e *Emulator) lookupAccess(raw string) (string, accessRecord, error) {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		return &e.signer.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())
	if err != nil {
		return "", accessRecord{}, fmt.Errorf("%w: %w", errTokenInvalid, err)
	}
	if claims.TokenUse != tokenUseAccess {
		return "", accessRecord{}, fmt.Errorf("%w: token_use %q", errTokenInvalid, claims.TokenUse)
	}
	e.mu.Lock()
	rec, ok := e.access[claims.ID]
	e.mu.Unlock()
	if !ok || !e.now().Before(rec.expiresAt) {
		return "", accessRecord{}, errTokenInvalid
	}
	return claims.ID, rec, nil
}

// revokeAccess forgets one access token, reporting whether it was live.
func (e *Emulator) revokeAccess(raw string) bool {
	jti, _, err := e.lookupAccess(raw)
	if err != nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.access[jti]
	delete(e.access, jti)
	return ok
}

// RevokeAccessTokens revokes every access token issued so far, as if the
// upstream had revoked them: later calls bearing them get 401.
func (e *Emulator) RevokeAccessTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.access)
}

// RevokeAPIToken marks a seeded API token revoked, reporting whether it
// existed.
func (e *Emulator) RevokeAPIToken(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.apiTokens[token]
	if ok {
		t.Revoked = true
		e.apiTokens[token] = t
	}
	return ok
}

// PublicKey returns the public half of the signing key, for tests that
// verify issued tokens without fetching /oauth2/keys.
func (e *Emulator) PublicKey() *ecdsa.PublicKey {
	return &e.signer.key.PublicKey
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// tokenUseAPI marks an API token, so that it is never mistaken for an
// access token.
const tokenUseAPI = "api"

// seedTokenKey signs DefaultSeed's API tokens. It is public on purpose: the
// seeded tokens must be the same strings on every run (deploy/emulator-secrets
// holds them), and the emulator never trusts a signature on an API token, it
// looks the whole string up in its store.
const seedTokenKey = "radkit-access-emulator public seed key, not a secret"

// apiTokenClaims are the claims of an API token JWT.
type apiTokenClaims struct {
	jwt.RegisteredClaims
	Identity string `json:"identity"`
	TokenUse string `json:"token_use"`
}

// seedAPIToken builds one of DefaultSeed's API tokens, holding both claims,
// as a deterministic HS256 JWT named name (its jti).
func seedAPIToken(name, identity string, exp time.Time) APIToken {
	iat := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	if exp.Before(iat) {
		iat = exp.Add(-7 * 24 * time.Hour)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, apiTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   identity,
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        name,
		},
		Identity: identity,
		TokenUse: tokenUseAPI,
	})
	s, err := tok.SignedString([]byte(seedTokenKey))
	if err != nil {
		// HS256 over a fixed key and marshalable claims cannot fail.
		panic(fmt.Sprintf("emulator: sign seed api token: %v", err))
	}
	return APIToken{Token: s, Identity: identity, Claims: []string{ClaimOTP, ClaimStatus}, ExpiresAt: exp, name: name}
}

// MintAPIToken issues a new API token for identity holding claims, valid
// for lifetime from now on the emulator's clock (a lifetime of zero or less
// gives a token that has already expired), as the admin client's
// generate_api_token does. The token is a JWT signed with the emulator's key
// whose exp claim is its expiry.
func (e *Emulator) MintAPIToken(identity string, adminLevel int, claims []string, lifetime time.Duration) (APIToken, error) {
	if identity == "" {
		return APIToken{}, errors.New("emulator: mint api token: empty identity")
	}
	if err := checkClaims("api token", claims); err != nil {
		return APIToken{}, fmt.Errorf("emulator: mint api token: %w", err)
	}
	now := e.now()
	// Whole seconds, as the exp claim carries them, so that the emulator
	// and a reader of the claim agree on the instant.
	exp := now.Add(lifetime).Truncate(time.Second)
	jti, err := randomHex(16)
	if err != nil {
		return APIToken{}, err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, apiTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   identity,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
		Identity: identity,
		TokenUse: tokenUseAPI,
	})
	tok.Header["kid"] = e.signer.jwk.Kid
	s, err := tok.SignedString(e.signer.key)
	if err != nil {
		return APIToken{}, fmt.Errorf("emulator: sign api token: %w", err)
	}
	t := APIToken{Token: s, Identity: identity, AdminLevel: adminLevel, Claims: cloneStrings(claims), ExpiresAt: exp}
	e.mu.Lock()
	e.apiTokens[s] = t
	e.mu.Unlock()
	t.Claims = cloneStrings(claims)
	return t, nil
}
