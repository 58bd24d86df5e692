package identity_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/internal/identity"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// expiryEnv is a registry of two identities against an emulator sharing
// one settable clock: "token" holds an API token the emulator minted with
// the given lifetime, "client" a client secret with the given expiry.
type expiryEnv struct {
	emu   *emulator.Emulator
	reg   *identity.Registry
	clock *testkit.Clock
	log   *testkit.Buffer
	token time.Time // the API token's expiry
}

func newExpiryEnv(t *testing.T, tokenLifetime time.Duration, secretExpiry time.Time) *expiryEnv {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	s := seed([]string{"client"}, nil)
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: s, Now: clock.Now})
	minted, err := emu.MintAPIToken(tagged("token"), 0, []string{emulator.ClaimOTP, emulator.ClaimStatus}, tokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	client := creds("client", true)
	client.ClientSecretExpiresAt = secretExpiry
	log := new(testkit.Buffer)
	reg, err := identity.New(identity.Config{
		Upstream:   upstream.Config{BaseURL: srv.URL},
		Resilience: resilience.Config{BaseDelay: time.Millisecond},
		Drain:      time.Hour,
		Logger:     slog.New(slog.NewJSONHandler(log, nil)),
		Now:        clock.Now,
	}, identity.Spec{
		Identities: []identity.Identity{
			{Name: "token", Credentials: identity.Credentials{APIToken: minted.Token}},
			{Name: "client", Credentials: client},
		},
		Grants: map[string][]string{identity.AnyCaller: {"token", "client"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return &expiryEnv{emu: emu, reg: reg, clock: clock, log: log, token: minted.ExpiresAt}
}

// status calls ServiceStatus as identity name.
func (e *expiryEnv) status(t *testing.T, name string) error {
	t.Helper()
	_, up, err := e.reg.Resolve(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.ServiceStatus(context.Background(), "1ryq-e8n8-5g5n")
	return err
}

// warnings returns the messages of the expiry records logged so far.
func (e *expiryEnv) warnings(t *testing.T) []string {
	var out []string
	for _, r := range e.log.Records(t) {
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "upstream credential") {
			out = append(out, r["identity"].(string)+" "+r["kind"].(string)+": "+msg)
		}
	}
	return out
}

// TestExpiries: the API token's exp and the client secret's configured
// expiry are what Expiries and States report.
func TestExpiries(t *testing.T) {
	secret := time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
	e := newExpiryEnv(t, 10*24*time.Hour, secret)
	got := e.reg.Expiries()
	want := []identity.CredentialExpiry{
		{Identity: "token", Expiry: identity.Expiry{Kind: identity.KindAPIToken, At: e.token}},
		{Identity: "client", Expiry: identity.Expiry{Kind: identity.KindClientSecret, At: secret}},
	}
	if len(got) != len(want) {
		t.Fatalf("Expiries = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Identity != want[i].Identity || got[i].Kind != want[i].Kind || !got[i].At.Equal(want[i].At) {
			t.Errorf("Expiries[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, st := range e.reg.States() {
		if len(st.Credentials) != 1 {
			t.Errorf("state of %s: credentials %v, want one", st.Name, st.Credentials)
		}
	}
	// An opaque API token and a secret without expiry report nothing.
	if ex := (identity.Credentials{APIToken: "opaque", ClientID: "c", ClientSecret: "s"}).Expiries(); len(ex) != 0 {
		t.Errorf("Expiries of opaque credentials = %v, want none", ex)
	}
}

// TestWarnExpiry: each warning is logged once per credential as the clock
// passes 7 days, 1 day and 1 hour before expiry, then one error at
// expiry; a start inside the last hour logs the 1-hour warning alone.
func TestWarnExpiry(t *testing.T) {
	e := newExpiryEnv(t, 8*24*time.Hour, time.Time{})
	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, nil},
		{24 * time.Hour, []string{"token api_token: upstream credential expires within 7 days: replace it"}},
		{time.Hour, nil}, // said once
		{6 * 24 * time.Hour, []string{"token api_token: upstream credential expires within 1 day: replace it"}},
		{21 * time.Hour, nil},
		{90 * time.Minute, []string{"token api_token: upstream credential expires within 1 hour: replace it"}},
		{10 * time.Minute, nil},
		{20 * time.Minute, []string{"token api_token: upstream credential expired: calls as this identity fail with CREDENTIALS_EXPIRED until it is replaced"}},
		{time.Hour, nil},
	}
	var said int
	for i, s := range steps {
		e.clock.Advance(s.advance)
		e.reg.WarnExpiry()
		got := e.warnings(t)[said:]
		said += len(got)
		if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("step %d (+%v): logged %q, want %q", i, s.advance, got, s.want)
		}
	}

	late := newExpiryEnv(t, 30*time.Minute, time.Time{})
	late.reg.WarnExpiry()
	late.reg.WarnExpiry()
	if got := late.warnings(t); len(got) != 1 || !strings.Contains(got[0], "within 1 hour") {
		t.Errorf("start 30 minutes before expiry logged %q, want the 1-hour warning once", got)
	}
}

// TestExpiredCredentialRefused: once the credential that gets access
// tokens has expired, calls as its identity are refused with
// CREDENTIALS_EXPIRED (UNAVAILABLE, not retryable) and reach nothing
// upstream; the other identity is unaffected.
func TestExpiredCredentialRefused(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration // of the API token
		secret   time.Duration // client secret expiry from now; 0 none
		expired  string        // the identity refused
	}{
		{"api token minted expired", -time.Hour, 0, "token"},
		{"client secret past its expiry", time.Hour, -time.Minute, "client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			var secret time.Time
			if tc.secret != 0 {
				secret = start.Add(tc.secret)
			}
			e := newExpiryEnv(t, tc.lifetime, secret)
			before := e.emu.Calls(emulator.RouteAPIToken) + e.emu.Calls(emulator.RouteToken) + e.emu.Calls(emulator.RouteStatus)
			err := e.status(t, tc.expired)
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "expired") {
				t.Fatalf("call as %s: %v, want UNAVAILABLE CREDENTIALS_EXPIRED", tc.expired, err)
			}
			if got := reasonOf(err); got != reason.CredentialsExpired.String() {
				t.Errorf("reason %q, want %s", got, reason.CredentialsExpired)
			}
			if reason.CredentialsExpired.Retryable() {
				t.Error("CREDENTIALS_EXPIRED is retryable")
			}
			after := e.emu.Calls(emulator.RouteAPIToken) + e.emu.Calls(emulator.RouteToken) + e.emu.Calls(emulator.RouteStatus)
			if after != before {
				t.Errorf("the emulator saw %d calls for an expired credential, want none", after-before)
			}
			other := "client"
			if tc.expired == "client" {
				other = "token"
			}
			if err := e.status(t, other); err != nil {
				t.Errorf("call as %s (not expired): %v", other, err)
			}
		})
	}
}
