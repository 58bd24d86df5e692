package facade_test

// The secrets test: whatever happens upstream, no credential, access token,
// token to revoke or OTP appears in the facade's log or in an error a
// caller receives.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Known, unusual secret values, so that any appearance of one is no
// coincidence.
const (
	secretClientID    = "facade-secrets-client"
	secretClient      = "s3cr3t-CLIENT-7f1c9a2e4b6d8f0a1c3e5a7b9d2f4e6a"
	secretAPIToken    = "apitok-SECRET-3b8e1d7c5a9f2e4b6d8c0a1f3e5b7d9c"
	secretWrongClient = "wr0ng-CLIENT-SECRET-5d3c1b9a7e5f3d1b9c7a5e3f1d"
	secretWrongToken  = "wr0ng-APITOKEN-SECRET-8a6c4e2f0b8d6a4c2e0f8b6d"
	// Tokens a caller asks to revoke: one the upstream does not know, one
	// the facade must refuse before sending, one too long to send.
	secretUnknownRevoke = "revoke-me-UNKNOWN-9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f"
	secretInvalidRevoke = "revoke me INVALID 1e2d3c4b5a69788796a5b4c3d2e1f0"
	secretLongRevoke    = "revoke-me-TOO-LONG-4f5e6d7c8b9a0f1e2d3c4b5a6978"
)

// jwtMarker starts every JWT: a base64url-encoded '{"'. No log line or
// error has reason to contain it, and an access token, an API token or a
// radkit_access_token that leaked would.
const jwtMarker = "eyJ"

// secretsMode is one way of configuring the facade's upstream credentials.
type secretsMode struct {
	name       string
	cfg        facade.Config // UpstreamURL is filled in
	tokenRoute emulator.Route
	// valid is false for credentials the upstream refuses.
	valid bool
	// revokes is true when RevokeToken can reach the upstream.
	revokes bool
}

// secretsRun is one step: one facade, the calls made to it, and what the
// callers saw.
type secretsRun struct {
	h    *harness
	emu  *emulator.Emulator
	mode secretsMode
	url  string // the upstream

	seen   []string // every error and error body a caller received
	otps   []string // OTPs callers received
	tokens []string // access tokens callers asked to revoke
}

// record keeps what a caller sees of err: its text and the whole status
// with its details.
func (r *secretsRun) record(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	b, merr := protojson.Marshal(status.Convert(err).Proto())
	if merr != nil {
		t.Fatalf("encode status: %v", merr)
	}
	r.seen = append(r.seen, err.Error(), string(b))
}

// recordHTTP keeps a gateway answer that is not a success.
func (r *secretsRun) recordHTTP(res httpResult) {
	if res.code != http.StatusOK {
		r.seen = append(r.seen, string(res.body))
	}
}

// mustFail records err and fails t if the call succeeded.
func (r *secretsRun) mustFail(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want an error", what)
	}
	r.record(t, err)
}

// mint gets an access token straight from the upstream with the mode's
// valid credentials, for a caller to revoke.
func (r *secretsRun) mint(t *testing.T) string {
	t.Helper()
	var req *http.Request
	var err error
	if r.mode.cfg.APIToken != "" || r.mode.cfg.ClientSecret == "" {
		req, err = http.NewRequestWithContext(callCtx(t), http.MethodPost, r.url+string(emulator.RouteAPIToken), nil)
		if err == nil {
			req.Header.Set("Authorization", "JWT "+secretAPIToken)
		}
	} else {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, err = http.NewRequestWithContext(callCtx(t), http.MethodPost,
			r.url+string(emulator.RouteToken)+"?"+form.Encode(), strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(secretClientID, secretClient)
		}
	}
	if err != nil {
		t.Fatalf("build token request: %v", err)
	}
	resp, err := r.h.http.Do(req)
	if err != nil {
		t.Fatalf("mint an access token: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.AccessToken == "" {
		t.Fatalf("mint an access token: HTTP %d, %v", resp.StatusCode, err)
	}
	if !strings.HasPrefix(body.AccessToken, jwtMarker) {
		t.Fatalf("minted access token does not start with %q: the JWT check below would miss it", jwtMarker)
	}
	r.tokens = append(r.tokens, body.AccessToken)
	return body.AccessToken
}

// secretsStep is one situation the facade is put in.
type secretsStep struct {
	name string
	// route must have been called during the step (so that the step
	// exercised the upstream path it is about); "" for none.
	route emulator.Route
	run   func(t *testing.T, r *secretsRun)
}

// steps returns the matrix for mode.
func (m secretsMode) steps() []secretsStep {
	status := func(t *testing.T, r *secretsRun) {
		t.Helper()
		_, err := r.h.status(liveService)
		r.mustFail(t, "GetServiceStatus", err)
		r.recordHTTP(r.h.do(t, http.MethodGet, httpStatusPath(liveService), nil))
	}
	if !m.valid {
		return []secretsStep{{"credentials rejected", m.tokenRoute, func(t *testing.T, r *secretsRun) {
			_, err := r.h.status(liveService)
			wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String(), accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String())
			r.record(t, err)
			r.recordHTTP(r.h.do(t, http.MethodGet, httpStatusPath(liveService), nil))
			_, err = r.h.otp()
			r.mustFail(t, "GenerateOTP", err)
			_, err = r.h.client.RevokeToken(callCtx(t), &accessv1.RevokeTokenRequest{Token: secretUnknownRevoke})
			r.mustFail(t, "RevokeToken", err)
		}}}
	}

	steps := []secretsStep{
		{"success", emulator.RouteOTP, func(t *testing.T, r *secretsRun) {
			r.h.mustStatus(t)
			if res := r.h.do(t, http.MethodGet, httpStatusPath(liveService), nil); res.code != http.StatusOK {
				t.Fatalf("HTTP GetServiceStatus: %d %s", res.code, res.body)
			}
			resp, err := r.h.otp()
			if err != nil {
				t.Fatalf("GenerateOTP: %v", err)
			}
			r.otps = append(r.otps, resp.GetOtp())
			res := r.h.do(t, http.MethodPost, "/v1/otp", otpRequest())
			var body struct {
				OTP string `json:"otp"`
			}
			if res.code != http.StatusOK || json.Unmarshal(res.body, &body) != nil || body.OTP == "" {
				t.Fatalf("HTTP GenerateOTP: %d %s", res.code, res.body)
			}
			r.otps = append(r.otps, body.OTP)
		}},
		{"token revoked upstream", m.tokenRoute, func(t *testing.T, r *secretsRun) {
			r.emu.RevokeAccessTokens()
			r.h.mustStatus(t)
		}},
		{"401 after a new token", emulator.RouteStatus, func(t *testing.T, r *secretsRun) {
			r.emu.Script(emulator.RouteStatus, emulator.Fault{Status: http.StatusUnauthorized}, emulator.Fault{Status: http.StatusUnauthorized})
			_, err := r.h.status(liveService)
			wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String())
			r.record(t, err)
		}},
	}

	// The token endpoint fails while the facade needs a new token. Its
	// bodies carry access tokens: mangled, they must still never show.
	tokenFaults := []struct {
		name  string
		fault emulator.Fault
	}{
		{"503", emulator.Fault{Status: http.StatusServiceUnavailable}},
		{"401", emulator.Fault{Status: http.StatusUnauthorized, Details: "invalid_client"}},
		{"malformed", emulator.Fault{Body: emulator.BodyMalformed}},
		{"truncated", emulator.Fault{Body: emulator.BodyTruncated}},
		{"oversized", emulator.Fault{Body: emulator.BodyOversized}},
		{"reset", emulator.Fault{Body: emulator.BodyReset}},
	}
	for _, tf := range tokenFaults {
		steps = append(steps, secretsStep{"token endpoint " + tf.name, m.tokenRoute, func(t *testing.T, r *secretsRun) {
			r.emu.SetFailureRate(m.tokenRoute, 1, tf.fault)
			r.emu.RevokeAccessTokens()
			status(t, r)
		}})
	}

	// Mangled answers to status and OTP calls. The OTP bodies carry the
	// OTP the emulator minted.
	for _, body := range []emulator.BodyFault{emulator.BodyMalformed, emulator.BodyTruncated, emulator.BodyOversized, emulator.BodyReset} {
		steps = append(steps,
			secretsStep{"status body " + string(body), emulator.RouteStatus, func(t *testing.T, r *secretsRun) {
				r.emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Body: body})
				status(t, r)
			}},
			secretsStep{"otp body " + string(body), emulator.RouteOTP, func(t *testing.T, r *secretsRun) {
				r.emu.SetFailureRate(emulator.RouteOTP, 1, emulator.Fault{Body: body})
				_, err := r.h.otp()
				r.mustFail(t, "GenerateOTP", err)
				r.recordHTTP(r.h.do(t, http.MethodPost, "/v1/otp", otpRequest()))
			}},
		)
	}

	revokeRoute := emulator.Route("")
	if m.revokes {
		revokeRoute = emulator.RouteRevoke
	}
	steps = append(steps,
		secretsStep{"revoke token", revokeRoute, func(t *testing.T, r *secretsRun) {
			r.tokens = append(r.tokens, secretUnknownRevoke)
			_, err := r.h.client.RevokeToken(callCtx(t), &accessv1.RevokeTokenRequest{Token: r.mint(t)})
			if m.revokes && err != nil {
				t.Fatalf("RevokeToken of a live token: %v", err)
			}
			if !m.revokes {
				wantError(t, err, codes.FailedPrecondition, accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String())
			}
			r.record(t, err)
			res := r.h.do(t, http.MethodPost, "/v1/tokens:revoke", map[string]string{"token": r.mint(t)})
			if m.revokes && res.code != http.StatusOK {
				t.Fatalf("HTTP RevokeToken of a live token: %d %s", res.code, res.body)
			}
			r.recordHTTP(res)
			_, err = r.h.client.RevokeToken(callCtx(t), &accessv1.RevokeTokenRequest{Token: secretUnknownRevoke})
			r.mustFail(t, "RevokeToken of an unknown token", err)
		}},
		secretsStep{"invalid arguments", "", func(t *testing.T, r *secretsRun) {
			long := secretLongRevoke + strings.Repeat("x", 8200)
			r.tokens = append(r.tokens, secretInvalidRevoke, secretLongRevoke)
			revokes := r.emu.Calls(emulator.RouteRevoke)
			for _, tok := range []string{secretInvalidRevoke, long} {
				_, err := r.h.client.RevokeToken(callCtx(t), &accessv1.RevokeTokenRequest{Token: tok})
				wantError(t, err, codes.InvalidArgument, accessv1.ErrorReason_INVALID_REQUEST.String())
				r.record(t, err)
				r.recordHTTP(r.h.do(t, http.MethodPost, "/v1/tokens:revoke", map[string]string{"token": tok}))
			}
			_, err := r.h.client.GenerateOTP(callCtx(t), &accessv1.GenerateOTPRequest{Owner: "not an address", EndpointId: "router-1"})
			wantError(t, err, codes.InvalidArgument, accessv1.ErrorReason_INVALID_REQUEST.String())
			r.record(t, err)
			if got := r.emu.Calls(emulator.RouteRevoke) - revokes; got != 0 {
				t.Errorf("invalid tokens reached the revocation endpoint %d times", got)
			}
		}},
	)
	return steps
}

// forbidden is every value that must never be seen, by a label to report
// it with (the label, not the value, goes in the failure message).
func (r *secretsRun) forbidden() map[string]string {
	basic := func(id, secret string) string {
		return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	}
	f := map[string]string{
		"client secret":                        secretClient,
		"API token":                            secretAPIToken,
		"wrong client secret":                  secretWrongClient,
		"wrong API token":                      secretWrongToken,
		"basic credentials":                    basic(secretClientID, secretClient),
		"wrong basic credentials":              basic(secretClientID, secretWrongClient),
		"a JWT (access or radkit token)":       jwtMarker,
		"the unknown token to revoke":          secretUnknownRevoke,
		"the invalid token to revoke":          secretInvalidRevoke,
		"the over-long token to revoke":        secretLongRevoke,
		"the second half of the client secret": secretClient[len(secretClient)/2:],
	}
	for i, tok := range r.tokens {
		f[fmt.Sprintf("token %d a caller asked to revoke", i)] = tok
	}
	for i, otp := range r.otps {
		f[fmt.Sprintf("OTP %d a caller received", i)] = otp
	}
	for i, rec := range r.emu.OTPs() {
		f[fmt.Sprintf("OTP %d minted by the emulator", i)] = rec.OTP
	}
	return f
}

// check fails t for every forbidden value in the facade's log or in what
// callers saw.
func (r *secretsRun) check(t *testing.T) {
	t.Helper()
	places := map[string]string{
		"the facade log":         r.h.logs.String(),
		"errors seen by callers": strings.Join(r.seen, "\n"),
	}
	for where, text := range places {
		for label, value := range r.forbidden() {
			if value == "" {
				continue
			}
			if i := strings.Index(text, value); i >= 0 {
				t.Errorf("%s contains %s, at: %q", where, label, text[max(0, i-120):i])
			}
		}
	}
}

// TestSecretsNeverLeak runs the facade in each credential mode through
// successes, revoked tokens, 401s, token endpoint failures, mangled bodies,
// revocations and invalid requests, each step on a facade of its own (so
// that breaker state never hides an upstream path), and checks the whole
// log, at debug level, and every error callers received.
func TestSecretsNeverLeak(t *testing.T) {
	checkGoroutines(t)
	seed := emulator.Seed{
		Services: emulator.DefaultSeed().Services,
		Clients: []emulator.Client{{ID: secretClientID, Secret: secretClient, Identity: "secrets@example.com",
			Claims: []string{emulator.ClaimOTP, emulator.ClaimStatus}}},
		APITokens: []emulator.APIToken{{Token: secretAPIToken, Identity: "secrets+token@example.com",
			Claims: []string{emulator.ClaimOTP, emulator.ClaimStatus}}},
	}
	up := startUpstream(t, emulator.Config{Seed: seed}, nil)

	modes := []secretsMode{
		{name: "client credentials", cfg: facade.Config{ClientID: secretClientID, ClientSecret: secretClient},
			tokenRoute: emulator.RouteToken, valid: true, revokes: true},
		{name: "API token", cfg: facade.Config{APIToken: secretAPIToken},
			tokenRoute: emulator.RouteAPIToken, valid: true},
		{name: "API token and client credentials", cfg: facade.Config{APIToken: secretAPIToken, ClientID: secretClientID, ClientSecret: secretClient},
			tokenRoute: emulator.RouteAPIToken, valid: true, revokes: true},
		{name: "wrong client secret", cfg: facade.Config{ClientID: secretClientID, ClientSecret: secretWrongClient},
			tokenRoute: emulator.RouteToken},
		{name: "wrong API token", cfg: facade.Config{APIToken: secretWrongToken},
			tokenRoute: emulator.RouteAPIToken},
	}
	for _, m := range modes {
		m.cfg.UpstreamURL = up.url
		t.Run(m.name, func(t *testing.T) {
			var logs strings.Builder // the whole mode's, for the checks below
			steps, ran := m.steps(), 0
			for _, step := range steps {
				t.Run(step.name, func(t *testing.T) {
					ran++
					r := &secretsRun{emu: up.emu, mode: m, url: up.url}
					// Registered first, so they run once the facade has
					// stopped and logged its last line.
					t.Cleanup(func() {
						if r.h == nil {
							return // the facade never started; the test has failed already
						}
						r.check(t)
						logs.WriteString(r.h.logs.String())
					})
					t.Cleanup(up.emu.ResetFaults)
					r.h = startFacade(t, m.cfg)
					if m.valid {
						r.h.waitServing(t)
					}
					calls := up.emu.Calls(step.route)
					step.run(t, r)
					if step.route != "" && up.emu.Calls(step.route) == calls {
						t.Errorf("the step never reached %s: it tested nothing upstream", step.route)
					}
				})
			}
			if ran < len(steps) {
				return // some steps were filtered out with -run
			}
			// The log must have been there to look at: the upstream
			// client's own lines included (it has none to write when
			// the credentials are refused before any call).
			if m.valid && !strings.Contains(logs.String(), `"component":"upstream"`) {
				t.Errorf("no log line from the upstream client was captured")
			}
			if !strings.Contains(logs.String(), `"rpc":"RevokeToken"`) {
				t.Errorf("no audit line for RevokeToken was captured")
			}
		})
	}
}
