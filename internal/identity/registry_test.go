package identity_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/identity"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// tagged returns the upstream identity the emulator knows identity n as.
func tagged(n string) string { return "automation+" + n + "@example.com" }

// seed returns an emulator seed with one client-credentials pair per
// name in clients and one API token per name in tokens, each with its own
// tagged identity.
func seed(clients, tokens []string) emulator.Seed {
	s := emulator.DefaultSeed()
	s.Clients, s.APITokens = nil, nil
	both := []string{emulator.ClaimOTP, emulator.ClaimStatus}
	for _, n := range clients {
		s.Clients = append(s.Clients, emulator.Client{ID: "client-" + n, Secret: "secret-" + n, Identity: tagged(n), Claims: both})
	}
	for _, n := range tokens {
		s.APITokens = append(s.APITokens, emulator.APIToken{Token: "token-" + n, Identity: tagged(n), Claims: both})
	}
	return s
}

// creds returns the credentials seed gives identity n: client credentials
// when client is true, else an API token.
func creds(n string, client bool) identity.Credentials {
	if client {
		return identity.Credentials{ClientID: "client-" + n, ClientSecret: "secret-" + n}
	}
	return identity.Credentials{APIToken: "token-" + n}
}

type callerKey struct{}

// as returns ctx with the authenticated caller id, as callerauth would
// record it.
func as(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

func callerOf(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(callerKey{}).(string)
	return id, ok
}

// newRegistry returns a registry for spec against the emulator at url,
// closed when t ends.
func newRegistry(t *testing.T, url string, callerAuth bool, spec identity.Spec) *identity.Registry {
	t.Helper()
	r, err := identity.New(identity.Config{
		Upstream:   upstream.Config{BaseURL: url},
		Resilience: resilience.Config{BaseDelay: time.Millisecond},
		Caller:     callerOf,
		CallerAuth: callerAuth,
		Drain:      time.Hour,
	}, spec)
	if err != nil {
		t.Fatalf("identity.New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func otpRequest(ident string) *accessv1.GenerateOTPRequest {
	return &accessv1.GenerateOTPRequest{Owner: "owner@example.com", EndpointId: "ep-1", Identity: ident}
}

// reasonOf returns the ErrorInfo reason of err's status.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// upstreamIdentityOf returns the tagged identity the emulator recorded for
// otp.
func upstreamIdentityOf(t *testing.T, emu *emulator.Emulator, otp string) string {
	t.Helper()
	rec, ok := emu.OTP(otp)
	if !ok {
		t.Fatalf("the emulator has no record of OTP %q", otp)
	}
	return rec.Identity
}

func TestGrantsDecideTheIdentity(t *testing.T) {
	names := []string{"customer-a", "customer-b", "customer-c", "customer-d"}
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed(names[:2], names[2:])})
	spec := identity.Spec{FromFile: true, Grants: map[string][]string{
		"key:billing":        {"customer-b", "customer-a"},
		"cert:CN=enroll-bot": {"customer-c"},
		identity.AnyCaller:   {"customer-d"},
	}}
	for i, n := range names {
		spec.Identities = append(spec.Identities, identity.Identity{Name: n, Credentials: creds(n, i < 2)})
	}
	reg := newRegistry(t, srv.URL, true, spec)
	s := server.New(server.Config{Identities: reg})

	tests := []struct {
		caller, asked string
		want          string // the identity acted as; "" means refused
	}{
		{"key:billing", "", "customer-b"}, // the first grant is the default
		{"key:billing", "customer-a", "customer-a"},
		{"key:billing", "customer-d", "customer-d"}, // granted to every caller
		{"key:billing", "customer-c", ""},           // exists, not granted
		{"key:billing", "customer-z", ""},           // does not exist
		{"cert:CN=enroll-bot", "", "customer-c"},
		{"cert:CN=enroll-bot", "customer-b", ""},
		{"key:someone-else", "", "customer-d"}, // only "*"
		{"key:someone-else", "customer-a", ""},
		{"", "", ""}, // no caller identity: deny by default
	}
	var refusals []string
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s as %q", tt.caller, tt.asked), func(t *testing.T) {
			ctx := testkit.Context(t, 10*time.Second)
			if tt.caller != "" {
				ctx = as(ctx, tt.caller)
			}
			before := emu.Calls(emulator.RouteOTP)
			resp, err := s.GenerateOTP(ctx, otpRequest(tt.asked))
			if tt.want == "" {
				if status.Code(err) != codes.PermissionDenied || reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
					t.Fatalf("GenerateOTP error = %v, want PERMISSION_DENIED %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
				}
				if n := emu.Calls(emulator.RouteOTP) - before; n != 0 {
					t.Errorf("a refused call reached the upstream (%d OTP calls)", n)
				}
				refusals = append(refusals, status.Convert(err).Message())
				return
			}
			if err != nil {
				t.Fatalf("GenerateOTP: %v", err)
			}
			if got := upstreamIdentityOf(t, emu, resp.GetOtp()); got != tagged(tt.want) {
				t.Errorf("the upstream minted the OTP as %q, want %q", got, tagged(tt.want))
			}
		})
	}
	for _, m := range refusals {
		if m != refusals[0] {
			t.Errorf("refusals differ (%q vs %q): an unknown name must not be told apart from an ungranted one", m, refusals[0])
		}
	}
}

func TestWithoutCallerAuthEveryIdentityMayBeUsed(t *testing.T) {
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"a", "b"}, nil)})
	reg := newRegistry(t, srv.URL, false, identity.Spec{FromFile: true, Identities: []identity.Identity{
		{Name: "a", Credentials: creds("a", true)}, {Name: "b", Credentials: creds("b", true)},
	}})
	s := server.New(server.Config{Identities: reg})
	for asked, want := range map[string]string{"": "a", "a": "a", "b": "b"} {
		resp, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), otpRequest(asked))
		if err != nil {
			t.Fatalf("GenerateOTP as %q: %v", asked, err)
		}
		if got := upstreamIdentityOf(t, emu, resp.GetOtp()); got != tagged(want) {
			t.Errorf("as %q: minted as %q, want %q", asked, got, tagged(want))
		}
	}
	_, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), otpRequest("c"))
	if reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
		t.Errorf("unknown identity: error = %v, want %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}
}

func TestOneIdentitysRejectedCredentialsDoNotFailAnother(t *testing.T) {
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"good", "bad"}, nil)})
	bad := creds("bad", true)
	bad.ClientSecret = "wrong-secret"
	reg := newRegistry(t, srv.URL, false, identity.Spec{FromFile: true, Identities: []identity.Identity{
		{Name: "good", Credentials: creds("good", true)}, {Name: "bad", Credentials: bad},
	}})
	s := server.New(server.Config{Identities: reg})
	// Enough failures to open a shared breaker or throttle, were there one.
	for i := range 2 * resilience.DefaultBreakerMinRequests {
		_, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), otpRequest("bad"))
		if got := reasonOf(err); got != accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String() && got != accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String() && got != accessv1.ErrorReason_UPSTREAM_THROTTLED.String() {
			t.Fatalf("call %d as bad: error = %v, want %s", i, err, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String())
		}
		resp, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), otpRequest("good"))
		if err != nil {
			t.Fatalf("call %d as good failed beside the bad identity: %v", i, err)
		}
		if got := upstreamIdentityOf(t, emu, resp.GetOtp()); got != tagged("good") {
			t.Fatalf("minted as %q, want %q", got, tagged("good"))
		}
	}
}

func TestConcurrentCallsFetchOneTokenPerIdentity(t *testing.T) {
	const identities, calls = 10, 1000
	var names []string
	for i := range identities {
		names = append(names, fmt.Sprintf("id-%d", i))
	}
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed(names[:5], names[5:])})
	spec := identity.Spec{FromFile: true}
	for i, n := range names {
		spec.Identities = append(spec.Identities, identity.Identity{Name: n, Credentials: creds(n, i < 5)})
	}
	reg := newRegistry(t, srv.URL, false, spec)
	if n := emu.Calls(emulator.RouteToken) + emu.Calls(emulator.RouteAPIToken) + emu.Calls(emulator.RouteDiscovery); n != 0 {
		t.Fatalf("the registry made %d upstream calls before any identity was used; tokens must be fetched lazily", n)
	}
	s := server.New(server.Config{Identities: reg})
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := testkit.Context(t, 30*time.Second)
			_, err := s.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Identity: names[i%identities]})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("GetServiceStatus: %v", err)
		}
	}
	if n := emu.Calls(emulator.RouteDiscovery); n != 1 {
		t.Errorf("discovery requests = %d, want 1: every identity shares the one upstream's discovery", n)
	}
	clientFetches, tokenFetches := emu.Calls(emulator.RouteToken), emu.Calls(emulator.RouteAPIToken)
	t.Logf("%d calls over %d identities: %d client-credentials and %d API-token fetches", calls, identities, clientFetches, tokenFetches)
	if clientFetches != 5 || tokenFetches != 5 {
		t.Errorf("token fetches = %d + %d, want exactly one per identity (5 + 5)", clientFetches, tokenFetches)
	}
	for _, st := range reg.States() {
		if !st.Token || st.Upstream != tagged(st.Name) {
			t.Errorf("state of %s = %+v, want a token of %s", st.Name, st, tagged(st.Name))
		}
	}
}

func TestPrepareApplyKeepsUnchangedIdentitiesAndAddsNewOnes(t *testing.T) {
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"a", "b"}, nil)})
	spec := identity.Spec{FromFile: true, Identities: []identity.Identity{{Name: "a", Credentials: creds("a", true)}},
		Grants: map[string][]string{"key:svc": {"a"}}}
	reg := newRegistry(t, srv.URL, true, spec)
	s := server.New(server.Config{Identities: reg})
	ctx := as(testkit.Context(t, 10*time.Second), "key:svc")
	if _, err := s.GenerateOTP(ctx, otpRequest("a")); err != nil {
		t.Fatalf("GenerateOTP as a: %v", err)
	}
	if _, err := s.GenerateOTP(ctx, otpRequest("b")); reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
		t.Fatalf("b before the reload: error = %v, want %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}

	// A failed Prepare changes nothing.
	broken := spec
	broken.Grants = map[string][]string{"key:svc": {"a", "nope"}}
	if _, err := reg.Prepare(broken); err == nil {
		t.Fatal("Prepare accepted a grant of an unknown identity")
	}

	spec.Identities = append(spec.Identities, identity.Identity{Name: "b", Credentials: creds("b", true)})
	spec.Grants = map[string][]string{"key:svc": {"a", "b"}}
	p, err := reg.Prepare(spec)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if _, err := s.GenerateOTP(ctx, otpRequest("b")); reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
		t.Fatalf("b after Prepare, before Apply: error = %v, want %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}
	reg.Apply(p)
	resp, err := s.GenerateOTP(ctx, otpRequest("b"))
	if err != nil {
		t.Fatalf("GenerateOTP as b after Apply: %v", err)
	}
	if got := upstreamIdentityOf(t, emu, resp.GetOtp()); got != tagged("b") {
		t.Errorf("minted as %q, want %q", got, tagged("b"))
	}
	if _, err := s.GenerateOTP(ctx, otpRequest("a")); err != nil {
		t.Fatalf("GenerateOTP as a after Apply: %v", err)
	}
	// a's client, token and all, carried over: one fetch for a, one for b.
	if n := emu.Calls(emulator.RouteToken); n != 2 {
		t.Errorf("token fetches = %d, want 2: an unchanged identity must keep its token across a reload", n)
	}
}

func TestRevokeUsesTheIdentitysClientCredentials(t *testing.T) {
	_, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"cc"}, []string{"tok"})})
	reg := newRegistry(t, srv.URL, false, identity.Spec{FromFile: true, Identities: []identity.Identity{
		{Name: "cc", Credentials: creds("cc", true)}, {Name: "tok", Credentials: creds("tok", false)},
	}})
	s := server.New(server.Config{Identities: reg})
	_, err := s.RevokeToken(testkit.Context(t, 10*time.Second), &accessv1.RevokeTokenRequest{Token: "some-token", Identity: "tok"})
	if got := reasonOf(err); got != accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String() {
		t.Errorf("revoke as an API-token identity: error = %v, want %s", err, accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String())
	}
	_, err = s.RevokeToken(testkit.Context(t, 10*time.Second), &accessv1.RevokeTokenRequest{Token: "some-token", Identity: "cc"})
	if got := reasonOf(err); got == accessv1.ErrorReason_REVOCATION_NOT_CONFIGURED.String() || got == accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String() {
		t.Errorf("revoke as a client-credentials identity: error = %v", err)
	}
}

func TestMalformedIdentityIsInvalidArgument(t *testing.T) {
	s := server.New(server.Config{Upstream: nil})
	for _, name := range []string{"Customer-A", "-a", strings.Repeat("a", 64), "a b"} {
		_, err := s.GenerateOTP(testkit.Context(t, time.Second), otpRequest(name))
		if status.Code(err) != codes.InvalidArgument || reasonOf(err) != accessv1.ErrorReason_INVALID_REQUEST.String() {
			t.Errorf("identity %q: error = %v, want INVALID_ARGUMENT", name, err)
		}
		_, err = s.GetServiceStatus(testkit.Context(t, time.Second), &accessv1.GetServiceStatusRequest{ServiceId: "x", Identity: name})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("status, identity %q: error = %v, want INVALID_ARGUMENT", name, err)
		}
		_, err = s.RevokeToken(testkit.Context(t, time.Second), &accessv1.RevokeTokenRequest{Token: "x", Identity: name})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("revoke, identity %q: error = %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

func TestSingleIdentityServesEveryCallerAsDefault(t *testing.T) {
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"solo"}, nil)})
	reg := newRegistry(t, srv.URL, true, identity.SingleSpec(creds("solo", true)))
	s := server.New(server.Config{Identities: reg})
	for _, asked := range []string{"", identity.Default} {
		resp, err := s.GenerateOTP(as(testkit.Context(t, 10*time.Second), "key:anyone"), otpRequest(asked))
		if err != nil {
			t.Fatalf("GenerateOTP as %q: %v", asked, err)
		}
		if got := upstreamIdentityOf(t, emu, resp.GetOtp()); got != tagged("solo") {
			t.Errorf("minted as %q", got)
		}
	}
	if err := reg.Ready(testkit.Context(t, 10*time.Second)); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if _, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), otpRequest("other")); reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
		t.Errorf("other identity: error = %v, want %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}
}

// TestReplayNeverCrossesIdentities checks that a request_id replays only
// to calls for the same identity: the same request_id for another identity
// is REQUEST_ID_REUSED, never the first identity's OTP; and that the audit
// record names the identity.
func TestReplayNeverCrossesIdentities(t *testing.T) {
	emu, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"a", "b"}, nil)})
	reg := newRegistry(t, srv.URL, false, identity.Spec{FromFile: true, Identities: []identity.Identity{
		{Name: "a", Credentials: creds("a", true)}, {Name: "b", Credentials: creds("b", true)},
	}})
	audit := &testkit.Buffer{}
	s := server.New(server.Config{Identities: reg, AuditLog: slog.New(slog.NewJSONHandler(audit, nil))})
	req := func(ident string) *accessv1.GenerateOTPRequest {
		r := otpRequest(ident)
		r.RequestId = "req-1"
		return r
	}
	first, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), req("a"))
	if err != nil {
		t.Fatalf("GenerateOTP as a: %v", err)
	}
	again, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), req(""))
	if err != nil || again.GetOtp() != first.GetOtp() {
		t.Fatalf("replay as the default identity (a) = %v, %v; want the first OTP", again, err)
	}
	other, err := s.GenerateOTP(testkit.Context(t, 10*time.Second), req("b"))
	if reasonOf(err) != accessv1.ErrorReason_REQUEST_ID_REUSED.String() {
		t.Fatalf("same request_id as b = %v, %v; want %s, never a's OTP", other, err, accessv1.ErrorReason_REQUEST_ID_REUSED.String())
	}
	if n := emu.Calls(emulator.RouteOTP); n != 1 {
		t.Errorf("upstream OTP calls = %d, want 1", n)
	}
	var idents []string
	for _, rec := range audit.Records(t) {
		id, _ := rec["identity"].(string)
		idents = append(idents, id)
	}
	if want := []string{"a", "a", "b"}; !slices.Equal(idents, want) {
		t.Errorf("audit records' identity = %q, want %q", idents, want)
	}
}

func TestUpstreamLooksUpWithoutGrants(t *testing.T) {
	_, srv := testkit.StartEmulator(t, emulator.Config{Seed: seed([]string{"a"}, nil)})
	reg := newRegistry(t, srv.URL, true, identity.Spec{FromFile: true, Identities: []identity.Identity{{Name: "a", Credentials: creds("a", true)}}})
	if up, ok := reg.Upstream("a"); !ok || up == nil {
		t.Error(`Upstream("a") found nothing`)
	}
	if _, ok := reg.Upstream("b"); ok {
		t.Error(`Upstream("b") found an identity that is not configured`)
	}
	if _, _, err := reg.Resolve(testkit.Context(t, time.Second), "a"); reasonOf(err) != accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String() {
		t.Errorf("Resolve with no grants: %v, want %s", err, accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String())
	}
}
