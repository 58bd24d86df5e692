package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Claims a client or API token may hold. They gate the public endpoints.
const (
	// ClaimOTP allows POST /public/otp/certificate.
	ClaimOTP = "otp"
	// ClaimStatus allows GET /public/admin/service/status/{service_id}.
	ClaimStatus = "status"
)

// Seed is the data an Emulator starts with. Its JSON form is what
// LoadSeed reads (see testdata/seed.json).
type Seed struct {
	Services  []Service  `json:"services"`
	Clients   []Client   `json:"clients"`
	APITokens []APIToken `json:"api_tokens"`
}

// Service is a registered RADKit service, as the status endpoint reports it.
type Service struct {
	ID     string `json:"service_id"`
	Active bool   `json:"active"`
	Online bool   `json:"online"`
}

// Client is an OAuth2 client-credentials pair and the identity it acts as.
type Client struct {
	ID         string   `json:"client_id"`
	Secret     string   `json:"client_secret"`
	Identity   string   `json:"identity"`
	AdminLevel int      `json:"admin_level"`
	Claims     []string `json:"claims"`
}

// APIToken is an API token accepted as "Authorization: JWT <token>" by
// /auth/token, and the identity it acts as. The emulator looks the token up
// as a whole string, as the cloud looks up the tokens it issued: DefaultSeed
// and MintAPIToken make JWTs whose exp claim equals ExpiresAt (what the
// facade reads to see expiry coming), while a hand-written seed may use any
// string.
type APIToken struct {
	Token      string   `json:"token"`
	Identity   string   `json:"identity"`
	AdminLevel int      `json:"admin_level"`
	Claims     []string `json:"claims"`
	// ExpiresAt is when the token stops being accepted; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Revoked tokens are refused as if unknown.
	Revoked bool `json:"revoked,omitempty"`

	name string // DefaultSeed's name for the token (its jti)
}

// DefaultSeed is the built-in data set: four services covering every
// active/online combination the tests need, a client holding both claims, a
// client holding none, and API tokens that are valid, expired and revoked;
// and for tagged identities (one automation account, one identity per
// customer: deploy/identities.example.yaml names them) a client and API
// tokens of customers b, c and d. The credentials are fake, public, and
// only mean something to the emulator.
func DefaultSeed() Seed {
	both := func() []string { return []string{ClaimOTP, ClaimStatus} }
	revoked := func(t APIToken) APIToken { t.Revoked = true; return t }
	// Valid seeded tokens expire far enough away that tests never meet it,
	// at a fixed instant so that the token strings are stable.
	seedTokenExpiry := time.Date(2036, time.January, 1, 0, 0, 0, 0, time.UTC)
	return Seed{
		Services: []Service{
			{ID: "1ryq-e8n8-5g5n", Active: true, Online: true},
			{ID: "123-123-123", Active: true, Online: true},
			{ID: "offl-ine0-0001", Active: true, Online: false},
			{ID: "inac-tive-0001", Active: false, Online: false},
		},
		Clients: []Client{
			{ID: "emulator-client", Secret: "emulator-secret", Identity: "automation@example.com", Claims: both()},
			{ID: "no-claims-client", Secret: "no-claims-secret", Identity: "no-claims@example.com"},
			{ID: "customer-b-client", Secret: "customer-b-secret", Identity: "automation+customer-b@example.com", Claims: both()},
		},
		APITokens: []APIToken{
			seedAPIToken("emulator-api-token", "automation+customer-a@example.com", seedTokenExpiry),
			seedAPIToken("expired-api-token", "automation+expired@example.com", time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)),
			revoked(seedAPIToken("revoked-api-token", "automation+revoked@example.com", seedTokenExpiry)),
			seedAPIToken("customer-c-api-token", "automation+customer-c@example.com", seedTokenExpiry),
			seedAPIToken("customer-d-api-token", "automation+customer-d@example.com", seedTokenExpiry),
		},
	}
}

// DefaultAPIToken returns the token string of DefaultSeed's API token named
// name (its jti claim: "emulator-api-token", "expired-api-token",
// "revoked-api-token", "customer-c-api-token", "customer-d-api-token"), or
// "" if there is none. The strings are stable across runs, so that
// deploy/emulator-secrets can hold them.
func DefaultAPIToken(name string) string {
	for _, t := range DefaultSeed().APITokens {
		if t.name == name {
			return t.Token
		}
	}
	return ""
}

// LoadSeed reads and validates a JSON seed file.
func LoadSeed(path string) (Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return Seed{}, fmt.Errorf("load seed: %w", err)
	}
	defer f.Close()
	s, err := ParseSeed(f)
	if err != nil {
		return Seed{}, fmt.Errorf("load seed %s: %w", path, err)
	}
	return s, nil
}

// ParseSeed decodes and validates a JSON seed. Unknown fields are errors, so
// that typos in hand-written seeds do not pass silently.
func ParseSeed(r io.Reader) (Seed, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return Seed{}, fmt.Errorf("read seed: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("decode seed: %w", err)
	}
	if dec.More() {
		return Seed{}, errors.New("decode seed: trailing data after JSON object")
	}
	if err := s.Validate(); err != nil {
		return Seed{}, err
	}
	return s, nil
}

// Validate reports missing or duplicate IDs and unknown claims.
func (s Seed) Validate() error {
	var errs []error
	seen := make(map[string]bool)
	for i, sv := range s.Services {
		switch {
		case sv.ID == "":
			errs = append(errs, fmt.Errorf("services[%d]: empty service_id", i))
		case seen[sv.ID]:
			errs = append(errs, fmt.Errorf("services[%d]: duplicate service_id %q", i, sv.ID))
		}
		seen[sv.ID] = true
	}
	clear(seen)
	for i, c := range s.Clients {
		switch {
		case c.ID == "" || c.Secret == "":
			errs = append(errs, fmt.Errorf("clients[%d]: empty client_id or client_secret", i))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("clients[%d]: duplicate client_id %q", i, c.ID))
		case c.Identity == "":
			errs = append(errs, fmt.Errorf("clients[%d]: empty identity", i))
		}
		seen[c.ID] = true
		errs = append(errs, checkClaims(fmt.Sprintf("clients[%d]", i), c.Claims))
	}
	clear(seen)
	for i, t := range s.APITokens {
		switch {
		case t.Token == "":
			errs = append(errs, fmt.Errorf("api_tokens[%d]: empty token", i))
		case seen[t.Token]:
			errs = append(errs, fmt.Errorf("api_tokens[%d]: duplicate token", i))
		case t.Identity == "":
			errs = append(errs, fmt.Errorf("api_tokens[%d]: empty identity", i))
		}
		seen[t.Token] = true
		errs = append(errs, checkClaims(fmt.Sprintf("api_tokens[%d]", i), t.Claims))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid seed: %w", err)
	}
	return nil
}

func checkClaims(where string, claims []string) error {
	for _, c := range claims {
		if c != ClaimOTP && c != ClaimStatus {
			return fmt.Errorf("%s: unknown claim %q (want %q or %q)", where, c, ClaimOTP, ClaimStatus)
		}
	}
	return nil
}

func hasClaim(claims []string, want string) bool {
	return slices.Contains(claims, want)
}
