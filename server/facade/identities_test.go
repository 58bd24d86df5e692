package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Caller keys of the identities tests.
const (
	aliceKey = "k-alice-Qm3Vb8Tn1Lz6Rw"
	bobKey   = "k-bob-Hd9Fs2Jk5Xc7Pv"
	carolKey = "k-carol-Ye4Gu6Io0Wa1Sq"
)

// identitiesFile writes an identities file and the emulator's seeded
// secrets it names into dir.
func identitiesFile(t *testing.T, dir, yaml string) string {
	t.Helper()
	for name, secret := range map[string]string{
		"customer-a.api-token":     emulator.DefaultAPIToken("emulator-api-token"),
		"customer-b.client-secret": "customer-b-secret",
		"customer-c.api-token":     emulator.DefaultAPIToken("customer-c-api-token"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "identities.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const identitiesAB = `
identities:
  customer-a:
    api_token_file: customer-a.api-token
  customer-b:
    client_id: customer-b-client
    client_secret_file: customer-b.client-secret
grants:
  alice: [customer-a]
  bob: [customer-b, customer-a]
`

// as sends an HTTP request to the gateway as the caller with key, and
// returns the status code and the decoded JSON body.
func (h *harness) as(t *testing.T, key, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(callCtx(t), method, h.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decoding the body: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// otpAs mints an OTP over HTTP as the caller with key, asking for
// identity, and returns the tagged identity the emulator minted it as.
func (h *harness) otpAs(t *testing.T, key, identity string) string {
	t.Helper()
	code, body := h.as(t, key, http.MethodPost, "/v1/otp",
		map[string]string{"owner": "owner@example.com", "endpoint_id": "ep-1", "identity": identity})
	if code != http.StatusOK {
		t.Fatalf("POST /v1/otp as %q: %d %v", identity, code, body)
	}
	otp, _ := body["otp"].(string)
	rec, ok := h.f.Emulator().OTP(otp)
	if !ok {
		t.Fatalf("the emulator has no record of the OTP")
	}
	return rec.Identity
}

// refused checks a 403 IDENTITY_NOT_GRANTED answer and returns its message.
func refused(t *testing.T, code int, body map[string]any) string {
	t.Helper()
	if code != http.StatusForbidden || !bytes.Contains(mustJSON(t, body), []byte(`"reason":"`+accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String()+`"`)) {
		t.Fatalf("answer %d %v, want 403 %s", code, body, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}
	msg, _ := body["message"].(string)
	return msg
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentitiesGrantsAndReload(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey})
	file := identitiesFile(t, dir, identitiesAB)
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: keysFile, IdentitiesFile: file})
	h.waitServing(t)
	emu := h.f.Emulator()

	// Each caller reaches the upstream as its identities, its first grant
	// by default.
	for _, c := range []struct{ key, asked, want string }{
		{aliceKey, "", "automation+customer-a@example.com"},
		{bobKey, "", "automation+customer-b@example.com"},
		{bobKey, "customer-a", "automation+customer-a@example.com"},
	} {
		if got := h.otpAs(t, c.key, c.asked); got != c.want {
			t.Errorf("OTP asked as %q minted as %q, want %q", c.asked, got, c.want)
		}
	}
	// Over gRPC too.
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+bobKey)
	resp, err := h.client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep", Identity: "customer-b"})
	if err != nil {
		t.Fatalf("gRPC GenerateOTP as customer-b: %v", err)
	}
	if rec, _ := emu.OTP(resp.GetOtp()); rec.Identity != "automation+customer-b@example.com" {
		t.Errorf("gRPC OTP minted as %q", rec.Identity)
	}

	// Not granted, not existing, and the facade's own default identity
	// (granted to no one): one answer, and nothing sent upstream.
	before := emu.Calls(emulator.RouteOTP)
	var msgs []string
	for _, asked := range []string{"customer-b", "no-such-identity", "default"} {
		code, body := h.as(t, aliceKey, http.MethodPost, "/v1/otp", map[string]string{"owner": "o@example.com", "endpoint_id": "ep", "identity": asked})
		msgs = append(msgs, refused(t, code, body))
	}
	code, body := h.as(t, aliceKey, http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n")+"?identity=customer-b", nil)
	msgs = append(msgs, refused(t, code, body))
	code, body = h.as(t, aliceKey, http.MethodPost, "/v1/tokens:revoke", map[string]string{"token": "x", "identity": "customer-b"})
	msgs = append(msgs, refused(t, code, body))
	for _, m := range msgs {
		if m != msgs[0] {
			t.Errorf("refusals differ: %q vs %q", m, msgs[0])
		}
	}
	if n := emu.Calls(emulator.RouteOTP) - before; n != 0 {
		t.Errorf("refused calls made %d upstream OTP calls", n)
	}
	_, err = h.client.GetServiceStatus(metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+aliceKey),
		&accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Identity: "customer-b"})
	wantError(t, err, codes.PermissionDenied, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())

	// ?identity= on status; a malformed name is INVALID_ARGUMENT.
	if code, body := h.as(t, aliceKey, http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n")+"?identity=customer-a", nil); code != http.StatusOK {
		t.Errorf("status as customer-a: %d %v", code, body)
	}
	if code, _ := h.as(t, aliceKey, http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n")+"?identity=Customer-A", nil); code != http.StatusBadRequest {
		t.Errorf("status with a malformed identity: %d, want 400", code)
	}

	// Reload: a new identity and grant, while calls keep flowing.
	var stop atomic.Bool
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+bobKey)
			for !stop.Load() {
				if _, err := h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Identity: "customer-b"}); err != nil {
					failed.Add(1)
					t.Errorf("call during the reload: %v", err)
					return
				}
			}
		}()
	}
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey, "carol": carolKey})
	// Appended to the grants: carol and "*" (alice gains customer-b).
	yamlC := identitiesAB + "  carol: [customer-c]\n  \"*\": [customer-b]\n"
	yamlC = "identities:\n  customer-c:\n    api_token_file: customer-c.api-token\n" + yamlC[len("\nidentities:\n"):]
	identitiesFile(t, dir, yamlC)
	if err := h.f.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := h.otpAs(t, carolKey, ""); got != "automation+customer-c@example.com" {
		t.Errorf("carol after the reload minted as %q", got)
	}
	if got := h.otpAs(t, aliceKey, "customer-b"); got != "automation+customer-b@example.com" {
		t.Errorf("alice as customer-b (granted to every caller) minted as %q", got)
	}
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d calls failed during the reload", n)
	}

	// A broken identities file keeps the whole previous configuration: the
	// caller keys written beside it are not applied either.
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey, "carol": carolKey, "dave": "k-dave-Bn5Mv7Cx9Zl2Kj"})
	identitiesFile(t, dir, yamlC+"  eve: [customer-z]\n")
	if err := h.f.Reload(); err == nil {
		t.Fatal("Reload with a grant of an unknown identity succeeded")
	}
	if got := h.otpAs(t, carolKey, "customer-c"); got != "automation+customer-c@example.com" {
		t.Errorf("carol after a failed reload minted as %q", got)
	}
	if code, _ := h.as(t, "k-dave-Bn5Mv7Cx9Zl2Kj", http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n"), nil); code != http.StatusUnauthorized {
		t.Errorf("dave's key after a failed reload: %d, want 401 (nothing applied)", code)
	}

	// And a broken keys file keeps the previous identities: carol's grant,
	// removed from a good identities file beside it, stays.
	identitiesFile(t, dir, identitiesAB)
	if err := os.WriteFile(keysFile, []byte("alice not-hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Reload(); err == nil {
		t.Fatal("Reload with a broken keys file succeeded")
	}
	if got := h.otpAs(t, carolKey, "customer-c"); got != "automation+customer-c@example.com" {
		t.Errorf("carol after a failed reload minted as %q", got)
	}
}

// readyzIdentities returns the "identities" of the /readyz body at url,
// and whether there were any.
func readyzIdentities(t *testing.T, c *http.Client, url string) ([]map[string]any, bool) {
	t.Helper()
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status     string           `json:"status"`
		Identities []map[string]any `json:"identities"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decoding: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || body.Status != "ready" {
		t.Fatalf("GET %s: %d %q, want 200 ready", url, resp.StatusCode, body.Status)
	}
	return body.Identities, body.Identities != nil
}

// TestReadyzListsIdentities checks /readyz's view of the identities: the
// primary one holds a token (readiness fetched it), the others none until
// first used; with caller authentication the names are shown only on the
// metrics listener.
func TestReadyzListsIdentities(t *testing.T) {
	dir := t.TempDir()
	file := identitiesFile(t, dir, identitiesAB)
	h := startFacade(t, facade.Config{Emulator: true, IdentitiesFile: file})
	h.waitServing(t)
	ids, _ := readyzIdentities(t, h.http, h.base+"/readyz")
	tokens := map[string]bool{}
	for _, id := range ids {
		tokens[id["name"].(string)], _ = id["token"].(bool)
	}
	if len(tokens) != 3 || !tokens["default"] || tokens["customer-a"] || tokens["customer-b"] {
		t.Errorf("/readyz identities = %v, want default with a token, the others none yet (fetched lazily)", ids)
	}
	h.otpAs(t, "", "customer-a")
	ids, _ = readyzIdentities(t, h.http, h.base+"/readyz")
	for _, id := range ids {
		if id["name"] == "customer-a" && (id["token"] != true || id["upstream_identity"] != "automation+customer-a@example.com") {
			t.Errorf("customer-a after its first call: %v, want a token of automation+customer-a@example.com", id)
		}
	}

	// Upstream series carry the identity.
	if r := h.do(t, http.MethodGet, "/metrics", nil); !bytes.Contains(r.body, []byte(`radkit_upstream_requests_total{code="200",identity="customer-a",route="otp"} 1`)) ||
		!bytes.Contains(r.body, []byte(`radkit_upstream_token_fetches_total{identity="customer-a",result="success"} 1`)) {
		t.Errorf("/metrics lacks customer-a's upstream series:\n%s", r.body)
	}

	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey})
	h2 := startFacade(t, facade.Config{Emulator: true, IdentitiesFile: file, CallerKeysFile: keysFile, MetricsAddr: "127.0.0.1:0"})
	h2.waitServing(t)
	if ids, ok := readyzIdentities(t, h2.http, h2.base+"/readyz"); ok {
		t.Errorf("the public /readyz shows identities %v to unauthenticated probes", ids)
	}
	if ids, ok := readyzIdentities(t, h2.http, "http://"+h2.f.MetricsAddr()+"/readyz"); !ok || len(ids) != 3 {
		t.Errorf("the metrics listener's /readyz identities = %v, want all three", ids)
	}
}

// TestIdentitiesFileStandsInForCredentials checks that with an identities
// file the facade needs no credentials of its own (then there is no
// identity default), and still needs them without one.
func TestIdentitiesFileStandsInForCredentials(t *testing.T) {
	up := startUpstream(t, emulator.Config{Seed: emulator.DefaultSeed()}, nil)
	if err := (facade.Config{UpstreamURL: up.url}).Validate(); err == nil {
		t.Error("Validate accepted an upstream with no credentials and no identities file")
	}
	file := identitiesFile(t, t.TempDir(), identitiesAB)
	h := startFacade(t, facade.Config{UpstreamURL: up.url, IdentitiesFile: file})
	h.waitServing(t) // the file's first identity, customer-a, is the primary one
	r := h.do(t, http.MethodPost, "/v1/otp", map[string]string{"owner": "o@example.com", "endpoint_id": "ep"})
	var body struct{ Otp string }
	if err := json.Unmarshal(r.body, &body); err != nil || r.code != http.StatusOK {
		t.Fatalf("POST /v1/otp: %d %s", r.code, r.body)
	}
	if rec, _ := up.emu.OTP(body.Otp); rec.Identity != "automation+customer-a@example.com" {
		t.Errorf("minted as %q, want the file's first identity, automation+customer-a@example.com", rec.Identity)
	}
	r = h.do(t, http.MethodPost, "/v1/otp", map[string]string{"owner": "o@example.com", "endpoint_id": "ep", "identity": "default"})
	if r.code != http.StatusForbidden {
		t.Errorf("identity default without the facade's own credentials: %d, want 403 (it does not exist)", r.code)
	}
}

// TestMutualTLSCallerGrants checks that a grant keyed by a client
// certificate's subject, as callerauth names it ("cert:" and the subject's
// RFC 2253 form), applies to a caller presenting that certificate.
func TestMutualTLSCallerGrants(t *testing.T) {
	pki := newPKI(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := pki.write(t, dir)
	file := identitiesFile(t, dir, `
identities:
  customer-a:
    api_token_file: customer-a.api-token
  customer-b:
    client_id: customer-b-client
    client_secret_file: customer-b.client-secret
grants:
  "cert:CN=billing,O=Example": [customer-b]
`)
	s := startSecured(t, facade.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, ClientCAFile: caFile, IdentitiesFile: file}, pki.clientTLS(true))
	resp, err := s.access.GenerateOTP(callCtx(t), &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep"})
	if err != nil {
		t.Fatalf("GenerateOTP as the mTLS caller: %v", err)
	}
	if rec, _ := s.f.Emulator().OTP(resp.GetOtp()); rec.Identity != "automation+customer-b@example.com" {
		t.Errorf("minted as %q, want automation+customer-b@example.com (the caller's grant)", rec.Identity)
	}
	_, err = s.access.GenerateOTP(callCtx(t), &accessv1.GenerateOTPRequest{Owner: "o@example.com", EndpointId: "ep", Identity: "customer-a"})
	wantError(t, err, codes.PermissionDenied, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
}

// TestWatchActsAsTheCallersDefaultIdentity checks that WatchServiceStatus,
// which names no identity, polls as the caller's default identity, and
// that a caller granted none may not watch.
func TestWatchActsAsTheCallersDefaultIdentity(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"bob": bobKey, "carol": carolKey})
	file := identitiesFile(t, dir, identitiesAB)
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: keysFile, IdentitiesFile: file})
	h.waitServing(t)

	ctx := metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+bobKey)
	stream, err := h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{
		ServiceId: "1ryq-e8n8-5g5n", Until: accessv1.WatchServiceStatusRequest_UNTIL_ONLINE})
	if err != nil {
		t.Fatalf("WatchServiceStatus as bob: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first watch message as bob: %v", err)
	}
	r := h.do(t, http.MethodGet, "/metrics", nil)
	if !bytes.Contains(r.body, []byte(`radkit_upstream_requests_total{code="200",identity="customer-b",route="status"}`)) {
		t.Errorf("no status poll as bob's default identity customer-b in /metrics:\n%s", r.body)
	}

	ctx = metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+carolKey)
	stream, err = h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantError(t, err, codes.PermissionDenied, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
}

// identitiesWatch adds to identitiesAB an identity whose credentials lack
// the upstream's status claim, so that the emulator itself shows which
// identity a poll was made as.
const identitiesWatch = `
identities:
  customer-a:
    api_token_file: customer-a.api-token
  customer-b:
    client_id: customer-b-client
    client_secret_file: customer-b.client-secret
  no-claims:
    client_id: no-claims-client
    client_secret_file: no-claims.client-secret
grants:
  alice: [customer-a]
  bob: [customer-b, customer-a, no-claims]
`

// TestWatchAsTheRequestedIdentity checks WatchServiceStatus's identity
// field: a refused or malformed identity starts no poller and sends
// nothing upstream; a granted one is polled as that identity, in a poller
// of its own (shared by every caller watching the service as it); and
// over HTTP it is ?identity=.
func TestWatchAsTheRequestedIdentity(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": aliceKey, "bob": bobKey})
	if err := os.WriteFile(filepath.Join(dir, "no-claims.client-secret"), []byte("no-claims-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := identitiesFile(t, dir, identitiesWatch)
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: keysFile, IdentitiesFile: file})
	h.waitServing(t)
	emu := h.f.Emulator()
	as := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer "+key)
	}
	watch := func(key, identity string) (grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse], error) {
		t.Helper()
		return h.client.WatchServiceStatus(as(key), &accessv1.WatchServiceStatusRequest{ServiceId: liveService, Identity: identity})
	}
	// opened opens a watch and returns its first message's error.
	opened := func(key, identity string) error {
		t.Helper()
		stream, err := watch(key, identity)
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}

	// Refused before any poller: not granted and not existing answer
	// alike, over gRPC and HTTP; a malformed name is INVALID_ARGUMENT.
	before := emu.Calls(emulator.RouteStatus)
	var msgs []string
	for _, asked := range []string{"customer-b", "no-such-identity"} {
		err := opened(aliceKey, asked)
		wantError(t, err, codes.PermissionDenied, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
		msgs = append(msgs, status.Convert(err).Message())
		code, body := h.as(t, aliceKey, http.MethodGet, "/v1/services/"+liveService+"/status:watch?identity="+asked, nil)
		msgs = append(msgs, refused(t, code, body))
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Errorf("refusals differ: %q vs %q", m, msgs[0])
		}
	}
	wantError(t, opened(bobKey, "Customer-A"), codes.InvalidArgument, accessv1.ErrorReason_INVALID_REQUEST.String())
	if code, _ := h.as(t, bobKey, http.MethodGet, "/v1/services/"+liveService+"/status:watch?identity=Customer-A", nil); code != http.StatusBadRequest {
		t.Errorf("HTTP watch with a malformed identity: %d, want 400", code)
	}
	if n := emu.Calls(emulator.RouteStatus) - before; n != 0 {
		t.Errorf("refused watches made %d upstream status calls", n)
	}
	if got := watchMetric(t, h, "radkit_watch_pollers"); got != 0 {
		t.Errorf("radkit_watch_pollers %v after refused watches, want 0", got)
	}

	// bob as customer-a and as his default customer-b: two pollers of one
	// service; alice (default customer-a) shares bob's customer-a poller.
	for _, w := range []struct {
		key, identity string
		pollers       float64
	}{{bobKey, "customer-a", 1}, {bobKey, "", 2}, {aliceKey, "", 2}} {
		if err := opened(w.key, w.identity); err != nil {
			t.Fatalf("watch as %q: %v", w.identity, err)
		}
		if got := watchMetric(t, h, "radkit_watch_pollers"); got != w.pollers {
			t.Errorf("radkit_watch_pollers %v after a watch as %q, want %v: one per identity watching the service", got, w.identity, w.pollers)
		}
	}
	r := h.do(t, http.MethodGet, "/metrics", nil)
	for _, ident := range []string{"customer-a", "customer-b"} {
		if !bytes.Contains(r.body, []byte(`radkit_upstream_requests_total{code="200",identity="`+ident+`",route="status"}`)) {
			t.Errorf("no status poll as %s in /metrics:\n%s", ident, r.body)
		}
	}

	// The emulator refuses the status claim to no-claims' credentials: the
	// watch ends as the upstream answered that identity.
	stream, err := watch(bobKey, "no-claims")
	if err == nil {
		err = end(t, stream)
	}
	wantError(t, err, codes.PermissionDenied, accessv1.ErrorReason_UPSTREAM_PERMISSION_DENIED.String())

	// Over HTTP: ?identity=, here until the (online) service is online.
	code, body := h.as(t, bobKey, http.MethodGet, "/v1/services/"+liveService+"/status:watch?identity=customer-a&until=UNTIL_ONLINE", nil)
	if res, _ := body["result"].(map[string]any); code != http.StatusOK || res["service_id"] != liveService || res["online"] != true {
		t.Errorf("HTTP watch as customer-a: %d %v, want 200 and the online status", code, body)
	}
}
