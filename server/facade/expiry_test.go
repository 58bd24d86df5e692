package facade_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestCredentialExpiryExported: each identity's credential expiry is a
// series of radkit_facade_credential_expiry_timestamp_seconds and part of
// /readyz's identity detail; an identity removed by a reload takes its
// series with it.
func TestCredentialExpiryExported(t *testing.T) {
	dir := t.TempDir()
	secretExpiry := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	withSecretExpiry := strings.Replace(identitiesAB, "    client_secret_file: customer-b.client-secret\n",
		"    client_secret_file: customer-b.client-secret\n    client_secret_expires_at: 2027-06-30T00:00:00Z\n", 1)
	file := identitiesFile(t, dir, withSecretExpiry)
	h := startFacade(t, facade.Config{Emulator: true, IdentitiesFile: file})
	h.waitServing(t)

	seedExp := time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC) // emulator.DefaultSeed's valid tokens
	series := func(identity, kind string, at time.Time) string {
		return fmt.Sprintf(`radkit_facade_credential_expiry_timestamp_seconds{identity=%q,kind=%q} %g`, identity, kind, float64(at.Unix()))
	}
	body := h.do(t, http.MethodGet, "/metrics", nil).body
	for _, want := range []string{series("customer-a", "api_token", seedExp), series("customer-b", "client_secret", secretExpiry)} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "credential_expiry"))
		}
	}
	ids, _ := readyzIdentities(t, h.http, h.base+"/readyz")
	var shown int
	for _, id := range ids {
		creds, _ := id["credentials"].([]any)
		for _, c := range creds {
			c := c.(map[string]any)
			switch {
			case id["name"] == "customer-a" && c["kind"] == "api_token" && c["expires_at"] == seedExp.Format(time.RFC3339):
				shown++
			case id["name"] == "customer-b" && c["kind"] == "client_secret" && c["expires_at"] == secretExpiry.Format(time.RFC3339):
				shown++
			}
		}
	}
	if shown != 2 {
		t.Errorf("/readyz identities = %v, want customer-a's api_token and customer-b's client_secret expiry", ids)
	}

	onlyA := "identities:\n  customer-a:\n    api_token_file: customer-a.api-token\ngrants:\n  alice: [customer-a]\n"
	if err := os.WriteFile(file, []byte(onlyA), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Reload(); err != nil {
		t.Fatal(err)
	}
	body = h.do(t, http.MethodGet, "/metrics", nil).body
	if bytes.Contains(body, []byte(`identity="customer-b",kind=`)) || !bytes.Contains(body, []byte(series("customer-a", "api_token", seedExp))) {
		t.Errorf("after customer-b's removal, /metrics shows:\n%s", grepLines(string(body), "credential_expiry"))
	}
}

// TestExpiredAPITokenRefused: a facade whose own API token has expired
// answers CREDENTIALS_EXPIRED and sends nothing upstream; swapping in a
// fresh token file and reloading makes it work again.
func TestExpiredAPITokenRefused(t *testing.T) {
	up := startUpstream(t, emulator.Config{Seed: emulator.DefaultSeed()}, nil)
	expired, err := up.emu.MintAPIToken("automation+customer-a@example.com", 0, []string{emulator.ClaimOTP, emulator.ClaimStatus}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte(expired.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startFacade(t, facade.Config{UpstreamURL: up.url, APITokenFile: tokenFile})
	calls := func() int64 {
		return up.emu.Calls(emulator.RouteAPIToken) + up.emu.Calls(emulator.RouteStatus)
	}
	before := calls()
	_, err = h.status("1ryq-e8n8-5g5n")
	wantError(t, err, codes.Unavailable, "CREDENTIALS_EXPIRED")
	if got := calls() - before; got != 0 {
		t.Errorf("%d calls reached the emulator with an expired API token, want none", got)
	}
	if !strings.Contains(h.logs.String(), "upstream credential expired") {
		t.Errorf("no expiry error in the log:\n%s", tail(h.logs.String(), 4<<10))
	}

	if err := os.WriteFile(tokenFile, []byte(emulator.DefaultAPIToken("emulator-api-token")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.status("1ryq-e8n8-5g5n"); err != nil {
		t.Errorf("after the token file was replaced and reloaded: %v", err)
	}
}
