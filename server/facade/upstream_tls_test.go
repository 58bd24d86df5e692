package facade_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// tlsFacadeConfig is a facade configuration against te, trusting its
// certificate through the CA-file option, as in production.
func tlsFacadeConfig(te *testkit.TLSEmulator) facade.Config {
	client := emulator.DefaultSeed().Clients[0]
	return facade.Config{
		UpstreamURL:    te.URL(),
		ClientID:       client.ID,
		ClientSecret:   client.Secret,
		UpstreamCAFile: te.CAFile,
	}
}

// TestUpstreamOverTLSAndHTTP2 runs the main scenarios (OTP, status,
// revoke, and a rejected token refreshed and retried) against the emulator
// over TLS with the facade trusting its CA file, and checks with the
// emulator's counters that every request used HTTP/2, on one connection.
func TestUpstreamOverTLSAndHTTP2(t *testing.T) {
	checkGoroutines(t)
	te := testkit.StartTLSEmulator(t, emulator.Config{})
	h := startFacade(t, tlsFacadeConfig(te))
	h.waitServing(t)

	otp, err := h.otp()
	if err != nil || otp.GetOtp() == "" {
		t.Fatalf("GenerateOTP over TLS = %v, %v", otp, err)
	}
	h.mustStatus(t)

	// A token of the facade's identity, revoked through the facade.
	tok := clientToken(t, te)
	if _, err := h.client.RevokeToken(callCtx(t), &accessv1.RevokeTokenRequest{Token: tok}); err != nil {
		t.Fatalf("RevokeToken over TLS: %v", err)
	}

	// The upstream forgets every access token: the next call gets a 401,
	// the facade fetches a new token and retries, and the caller sees
	// nothing of it.
	tokensBefore := te.Emulator.Calls(emulator.RouteToken)
	te.Emulator.RevokeAccessTokens()
	h.mustStatus(t)
	if got := te.Emulator.Calls(emulator.RouteToken) - tokensBefore; got != 1 {
		t.Errorf("token fetches after the upstream dropped every token: %d, want 1", got)
	}

	protos := te.Emulator.Protocols()
	if protos["HTTP/2.0"] < 6 || len(protos) != 1 {
		t.Errorf("requests by protocol = %v, want only HTTP/2.0 (discovery, tokens, OTP, status, revoke)", protos)
	}
	// The test's own token request above is one connection; the facade's
	// calls share one more.
	if got := te.Emulator.Connections(); got > 2 {
		t.Errorf("connections accepted = %d, want the facade's calls on one HTTP/2 connection", got)
	}
}

// clientToken gets an access token of the default client straight from
// te, over HTTP/2.
func clientToken(t *testing.T, te *testkit.TLSEmulator) string {
	t.Helper()
	client := emulator.DefaultSeed().Clients[0]
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodPost, te.URL()+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ID, client.Secret)
	resp, err := te.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token answer %d: %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestUpstreamTrustFailures checks that an upstream certificate the facade
// does not trust, and a discovery issuer other than the configured URL,
// keep the facade not ready with a log line that says why, refuse calls
// with UNAVAILABLE, and never fall back to anything in clear: the emulator
// answers no API request.
func TestUpstreamTrustFailures(t *testing.T) {
	otherCA, err := emulator.SelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	otherCAFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCAFile, otherCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		emu       emulator.Config
		caFile    func(te *testkit.TLSEmulator) string
		wantLog   string
		wantCalls bool // discovery answered (the issuer case)
	}{
		{"no CA file", emulator.Config{}, func(*testkit.TLSEmulator) string { return "" },
			"certificate signed by unknown authority", false},
		{"another CA", emulator.Config{}, func(*testkit.TLSEmulator) string { return otherCAFile },
			"certificate signed by unknown authority", false},
		{"issuer mismatch", emulator.Config{Issuer: "https://radkit.example.com"}, func(te *testkit.TLSEmulator) string { return te.CAFile },
			"does not match the configured base URL", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			te := testkit.StartTLSEmulator(t, tc.emu)
			cfg := tlsFacadeConfig(te)
			cfg.UpstreamCAFile = tc.caFile(te)
			h := startFacade(t, cfg)
			testkit.Eventually(t, readyTimeout, "a log line saying why the upstream is unusable", func() bool {
				return strings.Contains(h.logs.String(), tc.wantLog)
			})
			_, err := h.status(liveService)
			wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String())
			if got := te.Emulator.Calls(emulator.RouteStatus) + te.Emulator.Calls(emulator.RouteToken); got != 0 {
				t.Errorf("the emulator answered %d token or status requests, want none", got)
			}
			if got := te.Emulator.Calls(emulator.RouteDiscovery) > 0; got != tc.wantCalls {
				t.Errorf("discovery reached the emulator: %t, want %t", got, tc.wantCalls)
			}
		})
	}
}

// TestUpstreamCAFileReload checks that the CA file is read again by Reload:
// a facade that trusted the wrong CA becomes ready once the file holds the
// right one, without a restart; and that a broken file at reload keeps the
// previous roots and reports the error.
func TestUpstreamCAFileReload(t *testing.T) {
	checkGoroutines(t)
	te := testkit.StartTLSEmulator(t, emulator.Config{})
	other, err := emulator.SelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, other.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := tlsFacadeConfig(te)
	cfg.UpstreamCAFile = caFile
	h := startFacade(t, cfg)
	testkit.Eventually(t, readyTimeout, "a certificate failure in the log", func() bool {
		return strings.Contains(h.logs.String(), "certificate signed by unknown authority")
	})

	if err := os.WriteFile(caFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Reload(); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("Reload with a broken CA file = %v, want an error naming the file's problem", err)
	}
	if err := os.WriteFile(caFile, te.Cert.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	h.waitServing(t)
	h.mustStatus(t)
}

// TestUpstreamStartErrors checks the configuration errors of the upstream
// connection that stop the facade at start.
func TestUpstreamStartErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	client := emulator.DefaultSeed().Clients[0]
	for _, tc := range []struct {
		name string
		cfg  facade.Config
		want string
	}{
		{"empty CA file", facade.Config{UpstreamURL: "https://radkit.example.com", UpstreamCAFile: empty}, "holds no PEM certificate"},
		{"missing CA file", facade.Config{UpstreamURL: "https://radkit.example.com", UpstreamCAFile: filepath.Join(dir, "none.pem")}, "no such file"},
		{"plain http to a remote host", facade.Config{UpstreamURL: "http://radkit.example.com"}, "credentials would travel in clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ClientID, tc.cfg.ClientSecret = client.ID, client.Secret
			tc.cfg.GRPCAddr, tc.cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
			f, err := facade.New(testkit.Context(t, 10*time.Second), tc.cfg)
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = f.Run(ctx)
				t.Fatalf("facade.New succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("facade.New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
