package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

const (
	knownService   = "1ryq-e8n8-5g5n"
	unknownService = "zzzz-unkn-0wn9"
)

// startEmulator serves the emulator with its default seed on 127.0.0.1.
func startEmulator(t *testing.T) (*httptest.Server, emulator.Client) {
	t.Helper()
	_, srv := testkit.StartEmulator(t, emulator.Config{})
	return srv, emulator.DefaultSeed().Clients[0]
}

// fetchToken gets an access token straight from the emulator, bypassing
// the instrumented client, so that the test can revoke it.
func fetchToken(t *testing.T, base string, c emulator.Client) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: status %d, decode error %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// newClient returns an upstream client of base whose transport m
// instruments.
func newClient(t *testing.T, m *telemetry.Metrics, base string, c emulator.Client) *upstream.Client {
	t.Helper()
	tr := upstream.NewTransport()
	client, err := upstream.New(upstream.Config{
		BaseURL:      base,
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		HTTPClient:   &http.Client{Transport: m.InstrumentTransport(tr)},
	})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		tr.CloseIdleConnections()
	})
	return client
}

func TestUpstreamMetrics(t *testing.T) {
	emu, creds := startEmulator(t)
	m := telemetry.NewMetrics()
	client := newClient(t, m, emu.URL, creds)
	m.ObserveIdentities(func() []telemetry.IdentityState {
		info, _ := client.TokenInfo()
		return []telemetry.IdentityState{{Name: telemetry.DefaultIdentity, TokenExpiry: info.Expiry}}
	})

	// Before any call: no token, so no expiry series; token fetch results
	// exist at zero.
	before := scrapeMetrics(t, m)
	if got := before.series(telemetry.MetricUpstreamTokenExpiry, nil); len(got) != 0 {
		t.Errorf("token expiry before any token: %d series, want none", len(got))
	}
	for _, r := range []string{telemetry.TokenFetchSuccess, telemetry.TokenFetchRejected, telemetry.TokenFetchError} {
		if v := before.value(t, telemetry.MetricUpstreamTokenFetches, map[string]string{"result": r}); v != 0 {
			t.Errorf("token fetches{result=%q} before any call = %v, want 0", r, v)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.ServiceStatus(ctx, knownService); err != nil {
		t.Fatalf("ServiceStatus(%q): %v", knownService, err)
	}
	var upErr *upstream.Error
	if _, err := client.ServiceStatus(ctx, unknownService); !errors.As(err, &upErr) || upErr.StatusCode != http.StatusNotFound {
		t.Fatalf("ServiceStatus(%q) = %v, want a 404 *upstream.Error", unknownService, err)
	}
	otp, err := client.GenerateOTP(ctx, upstream.OTPRequest{Owner: "owner@example.com", EndpointID: "ep-1", Description: "metrics test"})
	if err != nil {
		t.Fatalf("GenerateOTP: %v", err)
	}
	victim := fetchToken(t, emu.URL, creds)
	if err := client.RevokeToken(ctx, victim); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}

	s := scrapeMetrics(t, m)
	for _, tc := range []struct {
		route, code string
		want        float64
	}{
		{telemetry.RouteDiscovery, "200", 1},
		{telemetry.RouteToken, "200", 1},
		{telemetry.RouteStatus, "200", 1},
		{telemetry.RouteStatus, "404", 1},
		{telemetry.RouteOTP, "200", 1},
		{telemetry.RouteRevoke, "204", 1},
	} {
		if got := s.value(t, telemetry.MetricUpstreamRequests, map[string]string{"route": tc.route, "code": tc.code}); got != tc.want {
			t.Errorf("%s{route=%q,code=%q} = %v, want %v", telemetry.MetricUpstreamRequests, tc.route, tc.code, got, tc.want)
		}
	}
	if n := len(s.series(telemetry.MetricUpstreamRequests, nil)); n != 6 {
		t.Errorf("%s: %d series, want 6\n%s", telemetry.MetricUpstreamRequests, n, s.grep(telemetry.MetricUpstreamRequests))
	}
	for route, want := range map[string]float64{
		telemetry.RouteDiscovery: 1, telemetry.RouteToken: 1, telemetry.RouteStatus: 2,
		telemetry.RouteOTP: 1, telemetry.RouteRevoke: 1,
	} {
		if got := s.value(t, telemetry.MetricUpstreamRequestDuration, map[string]string{"route": route}); got != want {
			t.Errorf("%s{route=%q} count = %v, want %v", telemetry.MetricUpstreamRequestDuration, route, got, want)
		}
	}
	if got := s.value(t, telemetry.MetricUpstreamTokenFetches, map[string]string{"result": telemetry.TokenFetchSuccess}); got != 1 {
		t.Errorf("token fetches{result=success} = %v, want 1", got)
	}
	// The emulator's tokens live an hour.
	if got := s.value(t, telemetry.MetricUpstreamTokenExpiry, map[string]string{"identity": telemetry.DefaultIdentity}); got <= 3000 || got > 3600 {
		t.Errorf("%s = %v, want in (3000, 3600]", telemetry.MetricUpstreamTokenExpiry, got)
	}
	if !strings.Contains(s.text, "go_goroutines") || !strings.Contains(s.text, "process_") && !strings.Contains(s.text, "go_memstats") {
		t.Errorf("scrape lacks the Go and process collectors")
	}

	// Nothing secret or unbounded in any label or anywhere in the scrape.
	routes := map[string]bool{
		telemetry.RouteDiscovery: true, telemetry.RouteToken: true, telemetry.RouteAPIToken: true, telemetry.RouteOTP: true,
		telemetry.RouteStatus: true, telemetry.RouteRevoke: true, telemetry.RouteOther: true,
	}
	for v := range s.labelValues()["route"] {
		if !routes[v] {
			t.Errorf("route label %q is not one of the fixed routes", v)
		}
	}
	for _, secret := range []string{knownService, unknownService, victim, otp, creds.Secret, creds.ID} {
		if strings.Contains(s.text, secret) {
			t.Errorf("the scrape contains %q", secret)
		}
	}
}

func TestUpstreamMetricsTransportFailureAndRejection(t *testing.T) {
	// A port on which nothing listens: the dial fails.
	dead := "http://" + testkit.ClosedAddr(t)

	// A token endpoint that refuses the credentials.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"success": false, "details": "Invalid credentials", "retry": false}`))
	}))
	defer refuse.Close()
	// One that is rate limiting: the upstream in trouble, not a refusal.
	limiting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer limiting.Close()

	m := telemetry.NewMetrics()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: m.InstrumentTransport(tr)}
	post := func(u string) {
		t.Helper()
		resp, err := hc.Post(u, "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
		if err == nil {
			resp.Body.Close()
		}
	}
	post(dead + "/oauth2/token")
	post(refuse.URL + "/oauth2/token")
	post(refuse.URL + "/auth/token")
	post(limiting.URL + "/oauth2/token")

	s := scrapeMetrics(t, m)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{telemetry.MetricUpstreamRequests, map[string]string{"route": telemetry.RouteToken, "code": "error"}, 1},
		{telemetry.MetricUpstreamRequests, map[string]string{"route": telemetry.RouteToken, "code": "401"}, 1},
		{telemetry.MetricUpstreamRequests, map[string]string{"route": telemetry.RouteAPIToken, "code": "401"}, 1},
		{telemetry.MetricUpstreamRequests, map[string]string{"route": telemetry.RouteToken, "code": "429"}, 1},
		{telemetry.MetricUpstreamTokenFetches, map[string]string{"result": telemetry.TokenFetchError}, 2},
		{telemetry.MetricUpstreamTokenFetches, map[string]string{"result": telemetry.TokenFetchRejected}, 2},
		{telemetry.MetricUpstreamTokenFetches, map[string]string{"result": telemetry.TokenFetchSuccess}, 0},
		{telemetry.MetricUpstreamRequestDuration, map[string]string{"route": telemetry.RouteToken}, 3},
	} {
		if got := s.value(t, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestUpstreamRoute(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"https://cloud.example/.well-known/openid-configuration", telemetry.RouteDiscovery},
		{"https://cloud.example/prefix/.well-known/openid-configuration", telemetry.RouteDiscovery},
		{"https://cloud.example/oauth2/token", telemetry.RouteToken},
		{"https://cloud.example/oauth2/token?grant_type=client_credentials", telemetry.RouteToken},
		{"https://idp.example/oauth2/default/v1/token", telemetry.RouteToken},
		{"https://cloud.example/auth/token", telemetry.RouteAPIToken},
		{"https://cloud.example/prefix/auth/token", telemetry.RouteAPIToken},
		{"https://cloud.example/public/otp/certificate", telemetry.RouteOTP},
		{"https://cloud.example/public/admin/service/status/1ryq-e8n8-5g5n", telemetry.RouteStatus},
		{"https://cloud.example/prefix/public/admin/service/status/123-123-123", telemetry.RouteStatus},
		// An escaped ID stays one segment and cannot pose as another route.
		{"https://cloud.example/public/admin/service/status/x%2Fpublic%2Fotp%2Fcertificate", telemetry.RouteStatus},
		{"https://cloud.example/public/admin/service/status/x%2Foauth2%2Ftoken", telemetry.RouteStatus},
		{"https://cloud.example/public/admin/service/status/", telemetry.RouteOther},
		{"https://cloud.example/oauth2/revoke?token=secret", telemetry.RouteRevoke},
		{"https://cloud.example/oauth2/keys", telemetry.RouteOther},
		{"https://cloud.example/", telemetry.RouteOther},
		{"https://cloud.example", telemetry.RouteOther},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := telemetry.UpstreamRoute(req); got != tc.want {
			t.Errorf("UpstreamRoute(%s) = %q, want %q", tc.url, got, tc.want)
		}
	}
	if got := telemetry.UpstreamRoute(nil); got != telemetry.RouteOther {
		t.Errorf("UpstreamRoute(nil) = %q, want %q", got, telemetry.RouteOther)
	}
}

func TestGauges(t *testing.T) {
	m := telemetry.NewMetrics()
	s := scrapeMetrics(t, m)
	for _, name := range []string{telemetry.MetricUpstreamTokenExpiry, telemetry.MetricUpstreamBreakerState} {
		if got := s.series(name, nil); len(got) != 0 {
			t.Errorf("%s before any Observe: %d series, want none", name, len(got))
		}
	}

	// Two identities: each its own series, labelled by name.
	expiry := time.Now().Add(90 * time.Second)
	var states atomic.Pointer[[]telemetry.IdentityState]
	set := func(st ...telemetry.IdentityState) { states.Store(&st) }
	m.ObserveIdentities(func() []telemetry.IdentityState { return *states.Load() })
	for _, tc := range []struct {
		state string
		want  float64 // NaN: absent
	}{
		{"closed", 0},
		{"half-open", 1},
		{"HALF_OPEN", 1},
		{"open", 2},
		{" Open ", 2},
		{"", math.NaN()},
		{"tripped", math.NaN()},
	} {
		set(telemetry.IdentityState{Name: "customer-a", Breaker: tc.state}, telemetry.IdentityState{Name: "customer-b", Breaker: "closed"})
		s := scrapeMetrics(t, m)
		if v := s.value(t, telemetry.MetricUpstreamBreakerState, map[string]string{"identity": "customer-b"}); v != 0 {
			t.Errorf("customer-b's breaker state = %v, want 0", v)
		}
		got := s.series(telemetry.MetricUpstreamBreakerState, map[string]string{"identity": "customer-a"})
		if math.IsNaN(tc.want) {
			if len(got) != 0 {
				t.Errorf("breaker state %q: %d series, want none", tc.state, len(got))
			}
			continue
		}
		if v := s.value(t, telemetry.MetricUpstreamBreakerState, map[string]string{"identity": "customer-a"}); v != tc.want {
			t.Errorf("breaker state %q = %v, want %v", tc.state, v, tc.want)
		}
	}

	set(telemetry.IdentityState{Name: "customer-a", TokenExpiry: expiry}, telemetry.IdentityState{Name: "customer-b"})
	s = scrapeMetrics(t, m)
	if v := s.value(t, telemetry.MetricUpstreamTokenExpiry, map[string]string{"identity": "customer-a"}); v <= 80 || v > 90 {
		t.Errorf("token expiry = %v, want in (80, 90]", v)
	}
	if got := s.series(telemetry.MetricUpstreamTokenExpiry, map[string]string{"identity": "customer-b"}); len(got) != 0 {
		t.Errorf("token expiry of an identity with no token: %d series, want none", len(got))
	}
	// An identity no longer in force has no series.
	set(telemetry.IdentityState{Name: "customer-b", Breaker: "open"})
	s = scrapeMetrics(t, m)
	for _, name := range []string{telemetry.MetricUpstreamTokenExpiry, telemetry.MetricUpstreamBreakerState} {
		if got := s.series(name, map[string]string{"identity": "customer-a"}); len(got) != 0 {
			t.Errorf("%s of a removed identity: %d series, want none", name, len(got))
		}
	}
}

func TestRegistryIsPrivate(t *testing.T) {
	// Two Metrics in one process must not collide (a global registry would
	// panic on the second registration).
	a, b := telemetry.NewMetrics(), telemetry.NewMetrics()
	if a.Registry() == b.Registry() {
		t.Fatal("two Metrics share a registry")
	}
	if _, err := a.Registry().Gather(); err != nil {
		t.Fatalf("Gather: %v", err)
	}
}
