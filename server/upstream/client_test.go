package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in these tests: generous for a loaded
// machine, short enough that broken code fails instead of hanging.
const testTimeout = 10 * time.Second

func TestCredentialModes(t *testing.T) {
	for _, tc := range []struct {
		name            string
		mode            mode
		wantCC, wantAPI int64
	}{
		{"client credentials", modeCC, 1, 0},
		{"api token", modeAPI, 0, 1},
		{"both set: tokens from the api token", modeBoth, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			c := newClient(t, f.config(tc.mode))
			ctx := testkit.Context(t, 5*time.Second)
			if _, ok := c.TokenInfo(); ok {
				t.Fatal("TokenInfo before any fetch: ok = true")
			}
			if f.nDiscovery.Load() != 0 {
				t.Fatal("New did network I/O")
			}
			if err := c.Ready(ctx); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			otp, err := c.GenerateOTP(ctx, OTPRequest{Owner: "user@example.com", EndpointID: "ep-1", Description: "d"})
			checkErr(t, err)
			if err != nil || otp != "otp-for-ep-1" {
				t.Fatalf("GenerateOTP = %q, %v", otp, err)
			}
			st, err := c.ServiceStatus(ctx, "123-123-123")
			checkErr(t, err)
			if want := (ServiceStatus{ServiceID: "123-123-123", Active: true, Online: false}); err != nil || st != want {
				t.Fatalf("ServiceStatus = %+v, %v; want %+v", st, err, want)
			}
			if got := f.nTokenCC.Load(); got != tc.wantCC {
				t.Errorf("client-credentials fetches = %d, want %d", got, tc.wantCC)
			}
			if got := f.nTokenAPI.Load(); got != tc.wantAPI {
				t.Errorf("api-token fetches = %d, want %d", got, tc.wantAPI)
			}
			if got := f.nDiscovery.Load(); got != 1 {
				t.Errorf("discoveries = %d, want 1", got)
			}
			info, ok := c.TokenInfo()
			if !ok || info.Identity != "user@example.com" || info.AdminLevel != 2 || info.TokenType != "Bearer" ||
				info.RefreshRemainingLifetime != 600*time.Second {
				t.Errorf("TokenInfo = %+v, %v", info, ok)
			}
			if d := time.Until(info.Expiry); d < 3590*time.Second || d > 3600*time.Second {
				t.Errorf("Expiry in %v, want about 1h", d)
			}
			if s := fmt.Sprintf("%v %+v", info, info); strings.Contains(s, secretMarker) {
				t.Errorf("TokenInfo shows a secret: %s", s)
			}
			for _, route := range []string{"otp", "status"} {
				for _, r := range f.requests(route) {
					if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer AT-") {
						t.Errorf("%s: Authorization is not a Bearer token", route)
					}
					if r.Header.Get("User-Agent") != defaultUserAgent {
						t.Errorf("%s: User-Agent = %q", route, r.Header.Get("User-Agent"))
					}
				}
			}
			if tc.mode == modeCC {
				r := f.requests("token")[0]
				want := "Basic " + base64.StdEncoding.EncodeToString([]byte("client-id-1:cs-SECRET-zq9%2B%2F%3D"))
				if r.Header.Get("Authorization") != want {
					t.Errorf("token: Authorization header is not the expected Basic credentials")
				}
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	t.Run("issuer mismatch, then fixed: failure not cached", func(t *testing.T) {
		f := newFake(t)
		f.set(func() { f.issuer = "https://evil.example.com" })
		c := newClient(t, f.config(modeCC))
		ctx := testkit.Context(t, 5*time.Second)
		err := c.Ready(ctx)
		checkErr(t, err)
		if !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("Ready = %v, want an issuer ErrDiscovery", err)
		}
		if _, err := c.GenerateOTP(ctx, OTPRequest{}); !errors.Is(err, ErrDiscovery) {
			t.Fatalf("GenerateOTP = %v, want ErrDiscovery", err)
		}
		if f.nTokenCC.Load() != 0 {
			t.Fatal("credentials were sent despite an issuer mismatch")
		}
		f.set(func() { f.issuer = f.srv.URL + "/" }) // trailing slash normalised
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("Ready after fix: %v", err)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.nDiscovery.Load(); got != 3 {
			t.Errorf("discoveries = %d, want 3 (two failures, then cached)", got)
		}
	})
	t.Run("missing endpoints fall back", func(t *testing.T) {
		f := newFake(t)
		f.set(func() {
			f.discDoc = func(base string) map[string]any { return map[string]any{"issuer": base} }
		})
		c := newClient(t, f.config(modeCC))
		ctx := testkit.Context(t, 5*time.Second)
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.RevokeToken(ctx, "AT-"+secretMarker+"-1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("discovered endpoints are used", func(t *testing.T) {
		f := newFake(t)
		f.set(func() {
			f.discDoc = func(base string) map[string]any {
				return map[string]any{"issuer": base, "token_endpoint": base + "/custom/token?x=1", "revocation_endpoint": base + "/custom/revoke"}
			}
		})
		c := newClient(t, f.config(modeCC))
		ctx := testkit.Context(t, 5*time.Second)
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		r := f.requests("token")[0]
		if r.URL.Path != "/custom/token" || r.URL.RawQuery != "grant_type=client_credentials&x=1" {
			t.Errorf("token request to %q with query %q", r.URL.Path, r.URL.RawQuery)
		}
		if err := c.RevokeToken(ctx, "AT-"+secretMarker+"-1"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name   string
		handle http.HandlerFunc
		check  func(t *testing.T, err error)
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { writeErr(w, 500, "boom", true) }, func(t *testing.T, err error) {
			var e *Error
			if !errors.As(err, &e) || e.Op != "discovery" || e.StatusCode != 500 || e.Details != "boom" || !e.Retry {
				t.Errorf("got %v, want *Error discovery 500", err)
			}
		}},
		{"bad JSON", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"issuer":`) }, wantMalformed},
		{"no issuer", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"token_endpoint":"http://x/t"}`) }, wantMalformed},
		{"relative token endpoint", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":"http://%s","token_endpoint":"/oauth2/token"}`, r.Host)
		}, wantMalformed},
		{"ftp revocation endpoint", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":"http://%s","revocation_endpoint":"ftp://%s/r"}`, r.Host, r.Host)
		}, wantMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("discovery", tc.handle)
			c := newClient(t, f.config(modeCC))
			err := c.Ready(testkit.Context(t, 5*time.Second))
			checkErr(t, err)
			if !errors.Is(err, ErrDiscovery) {
				t.Errorf("err = %v, want ErrDiscovery", err)
			}
			tc.check(t, err)
		})
	}
	t.Run("https is never downgraded", func(t *testing.T) {
		c, err := New(Config{BaseURL: "https://radkit.example.com", APIToken: testAPIToken})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.endpointURL("token_endpoint", "http://radkit.example.com/oauth2/token", "/x"); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("http endpoint under https base: %v", err)
		}
		u, err := c.endpointURL("token_endpoint", "https://sso.example.com/oauth2/token", "/x")
		if err != nil || u.String() != "https://sso.example.com/oauth2/token" {
			t.Errorf("https endpoint: %v, %v", u, err)
		}
	})
	t.Run("concurrent callers share one discovery", func(t *testing.T) {
		f := newFake(t)
		f.handle("discovery", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(50 * time.Millisecond)
			f.serveDiscovery(w, r)
		})
		c := newClient(t, f.config(modeCC))
		ctx := testkit.Context(t, 5*time.Second)
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := c.discover(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := f.nDiscovery.Load(); got != 1 {
			t.Errorf("discoveries = %d, want 1", got)
		}
	})
}

func wantMalformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("err = %v, want ErrMalformedResponse", err)
	}
	var e *Error
	var te *TransportError
	if errors.As(err, &e) || errors.As(err, &te) {
		t.Errorf("err = %v is also an *Error or *TransportError", err)
	}
}

func TestConcurrentFirstCallsFetchOnce(t *testing.T) {
	for _, m := range []mode{modeCC, modeAPI} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			f := newFake(t)
			f.tokenDelay.Store(int64(100 * time.Millisecond))
			c := newClient(t, f.config(m))
			ctx := testkit.Context(t, 10*time.Second)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					<-start
					if _, err := c.GenerateOTP(ctx, OTPRequest{Owner: "o", EndpointID: fmt.Sprint(i)}); err != nil {
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			if got := f.nTokenCC.Load() + f.nTokenAPI.Load(); got != 1 {
				t.Errorf("token fetches = %d, want 1", got)
			}
			if got := f.nDiscovery.Load(); got != 1 {
				t.Errorf("discoveries = %d, want 1", got)
			}
			if got := f.nOTP.Load(); got != 200 {
				t.Errorf("otp calls = %d, want 200", got)
			}
		})
	}
}

// TestAbandonedFetchStillStoresToken: a token fetch or a discovery whose
// only caller gave up runs to its end, and the next caller gets its result
// without a fetch of its own (the fetch is shared and outlives its
// callers). Ready is the caller that waits for discovery itself; a call
// waits for the token fetch, which waits for discovery in turn.
func TestAbandonedFetchStillStoresToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    mode
		route   string
		serve   func(f *fake) http.HandlerFunc
		running func(c *Client) bool
		fetches func(f *fake) int64
	}{
		{"client-credentials token", modeCC, "token",
			func(f *fake) http.HandlerFunc { return f.serveTokenCC },
			func(c *Client) bool { return c.tokens.fetches.Running(struct{}{}) },
			func(f *fake) int64 { return f.nTokenCC.Load() }},
		{"api token", modeAPI, "apitoken",
			func(f *fake) http.HandlerFunc { return f.serveTokenAPI },
			func(c *Client) bool { return c.tokens.fetches.Running(struct{}{}) },
			func(f *fake) int64 { return f.nTokenAPI.Load() }},
		{"discovery", modeCC, "discovery",
			func(f *fake) http.HandlerFunc { return f.serveDiscovery },
			func(c *Client) bool { return c.discoveries.Running(struct{}{}) },
			func(f *fake) int64 { return f.nDiscovery.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			release := make(chan struct{})
			arrived := make(chan struct{}, 1)
			serve := tc.serve(f)
			f.handle(tc.route, func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				serve(w, r)
			})
			c := newClient(t, f.config(tc.mode))

			ctx, cancel := context.WithCancel(testkit.Context(t, testTimeout))
			errc := make(chan error, 1)
			go func() {
				if tc.route == "discovery" {
					errc <- c.Ready(ctx)
					return
				}
				_, err := c.GenerateOTP(ctx, OTPRequest{Owner: "o", EndpointID: "e", Description: "d"})
				errc <- err
			}()
			testkit.Receive(t, arrived, testTimeout, "the request to reach the upstream")
			cancel()
			if err := testkit.Receive(t, errc, testTimeout, "the caller to give up"); !errors.Is(err, context.Canceled) {
				t.Fatalf("caller that gave up: %v, want context.Canceled", err)
			}
			if !tc.running(c) {
				t.Fatal("the abandoned fetch was cancelled")
			}
			close(release)
			if _, err := c.GenerateOTP(testkit.Context(t, testTimeout), OTPRequest{Owner: "o", EndpointID: "e", Description: "d"}); err != nil {
				t.Fatalf("next caller: %v", err)
			}
			if got := tc.fetches(f); got != 1 {
				t.Errorf("%s fetches = %d, want 1: the next caller got the abandoned fetch's result", tc.route, got)
			}
		})
	}
}

func TestBackgroundRefresh(t *testing.T) {
	f := newFake(t)
	f.expiresIn.Store(2)
	f.tokenDelay.Store(int64(300 * time.Millisecond))
	cfg := f.config(modeCC)
	cfg.RefreshFraction = 0.3 // refresh due at 0.6s, token used until 1.3s
	c := newClient(t, cfg)
	ctx := testkit.Context(t, 10*time.Second)
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := c.TokenInfo()
	var slowest time.Duration
	expiries := map[time.Time]bool{first.Expiry: true}
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		t0 := time.Now()
		if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
			t.Fatalf("ServiceStatus: %v", err)
		}
		slowest = max(slowest, time.Since(t0))
		info, _ := c.TokenInfo()
		expiries[info.Expiry] = true
	}
	if got := f.nTokenCC.Load(); got < 3 {
		t.Errorf("token fetches = %d, want >= 3 (background refreshes)", got)
	}
	if len(expiries) < 3 {
		t.Errorf("saw %d distinct tokens, want >= 3", len(expiries))
	}
	if got := c.tokens.waits.Load(); got != 1 {
		t.Errorf("callers that waited for a fetch = %d, want 1 (only the first)", got)
	}
	// The waits counter above is what proves no call waited for a refresh;
	// the slowest call's time is only reported, since a loaded machine can
	// stall any call for longer than the 300 ms fetch.
	t.Logf("slowest call took %v (each token fetch takes 300 ms)", slowest)
}

// TestIdleClientStopsRefreshing checks that a token nobody used since the
// last refresh is not refreshed again (an identity nobody calls must not
// fetch tokens forever), and that the first use afterwards, while the
// token is still usable, resumes the refresh without a caller waiting.
func TestIdleClientStopsRefreshing(t *testing.T) {
	f := newFake(t)
	f.expiresIn.Store(20)
	cfg := f.config(modeCC)
	cfg.RefreshFraction = 0.03 // refresh due 0.6s after each fetch, token used until ~10s: wide margins on a loaded machine
	c := newClient(t, cfg)
	ctx := testkit.Context(t, 10*time.Second)
	if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	// Used since its fetch: refreshed once at 0.6s; then unused, so not at
	// 1.2s, 1.8s...
	testkit.Eventually(t, 5*time.Second, "the first background refresh", func() bool { return f.nTokenCC.Load() == 2 })
	time.Sleep(1500 * time.Millisecond)
	if got := f.nTokenCC.Load(); got != 2 {
		t.Fatalf("token fetches = %d after idle refresh periods, want 2 (fetch, one refresh, then none while unused)", got)
	}
	// Used again: the refresh resumes (the token's refresh is overdue).
	if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the refresh to resume after a use", func() bool { return f.nTokenCC.Load() == 3 })
	if got := c.tokens.waits.Load(); got != 1 {
		t.Errorf("callers that waited for a fetch = %d, want 1 (only the first)", got)
	}
}

func TestBackgroundRefreshFailureKeepsToken(t *testing.T) {
	f := newFake(t)
	f.expiresIn.Store(6)
	cfg := f.config(modeCC)
	cfg.RefreshFraction = 0.1 // refresh due at 0.6s, token used until 3.3s
	c := newClient(t, cfg)
	ctx := testkit.Context(t, 10*time.Second)
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	f.handle("token", func(w http.ResponseWriter, r *http.Request) {
		f.nTokenCC.Add(1)
		writeErr(w, http.StatusServiceUnavailable, "down", true)
	})
	time.Sleep(1900 * time.Millisecond) // failed refresh at 0.6s, retried 1s later
	if got := f.nTokenCC.Load(); got < 3 {
		t.Errorf("token fetches = %d, want >= 3 (first, failed refresh, retry)", got)
	}
	if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
		t.Fatalf("old token not used after a failed refresh: %v", err)
	}
	if got := c.tokens.waits.Load(); got != 1 {
		t.Errorf("callers that waited = %d, want 1", got)
	}
}

func TestUnauthorizedRetry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reject     int64
		wantErr    bool
		wantTokens int64
	}{
		{"one 401: new token, retried once", 1, false, 2},
		{"two 401s: error", 2, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			c := newClient(t, f.config(modeCC))
			ctx := testkit.Context(t, 5*time.Second)
			if err := c.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			f.reject401.Store(tc.reject)
			_, err := c.ServiceStatus(ctx, "svc")
			checkErr(t, err)
			var e *Error
			if tc.wantErr != (err != nil) || (tc.wantErr && (!errors.As(err, &e) || e.StatusCode != 401 || e.Op != "status")) {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := f.nTokenCC.Load(); got != tc.wantTokens {
				t.Errorf("token fetches = %d, want %d", got, tc.wantTokens)
			}
			if got := f.nStatus.Load(); got != 2 {
				t.Errorf("status calls = %d, want 2", got)
			}
		})
	}
	t.Run("only the cached token is dropped", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeCC))
		if err := c.Ready(testkit.Context(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		c.tokens.invalidate(&token{access: "other"})
		if _, ok := c.TokenInfo(); !ok {
			t.Error("invalidating a stale token dropped the cached one")
		}
	})
}

func TestRevoke(t *testing.T) {
	cached := "AT-" + secretMarker + "-1"
	t.Run("revoking the cached token drops it", func(t *testing.T) {
		for _, m := range []mode{modeCC, modeBoth} {
			f := newFake(t)
			c := newClient(t, f.config(m))
			ctx := testkit.Context(t, 5*time.Second)
			if err := c.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.RevokeToken(ctx, cached); err != nil {
				t.Fatalf("RevokeToken: %v", err)
			}
			if _, ok := c.TokenInfo(); ok {
				t.Error("revoked token still cached")
			}
			r := f.requests("revoke")[0]
			if r.Method != http.MethodPost || r.URL.Query().Get("token") != cached {
				t.Errorf("revoke request: %s with token in query = %v", r.Method, r.URL.Query().Get("token") == cached)
			}
			if got := f.body("revoke", 0); got != "token="+cached || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Error("revoke request: token not in the form body (RFC 7009)")
			}
			if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
				t.Fatalf("call after revoke: %v", err)
			}
			if got := f.nTokenCC.Load() + f.nTokenAPI.Load(); got != 2 {
				t.Errorf("token fetches = %d, want 2", got)
			}
		}
	})
	t.Run("revoking another token keeps the cached one", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeCC))
		ctx := testkit.Context(t, 5*time.Second)
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		f.handle("revoke", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		if err := c.RevokeToken(ctx, "other-"+secretMarker); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.TokenInfo(); !ok {
			t.Error("cached token dropped")
		}
	})
	t.Run("api token only", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeAPI))
		err := c.RevokeToken(testkit.Context(t, 5*time.Second), cached)
		checkErr(t, err)
		if !errors.Is(err, ErrRevokeNeedsClientCredentials) {
			t.Errorf("err = %v", err)
		}
		if f.nRevoke.Load()+f.nDiscovery.Load() != 0 {
			t.Error("a request was made")
		}
	})
	t.Run("empty token", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeCC))
		if err := c.RevokeToken(testkit.Context(t, 5*time.Second), ""); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("upstream refuses: token not in the error", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeCC))
		err := c.RevokeToken(testkit.Context(t, 5*time.Second), "unknown-"+secretMarker)
		checkErr(t, err)
		var e *Error
		if !errors.As(err, &e) || e.Op != "revoke" || e.StatusCode != 400 || e.Details != "Token unknown or expired" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("transport failure: token not in the error", func(t *testing.T) {
		f := newFake(t)
		dead := testkit.ClosedAddr(t)
		f.set(func() {
			f.discDoc = func(base string) map[string]any {
				return map[string]any{"issuer": base, "revocation_endpoint": "http://" + dead + "/oauth2/revoke"}
			}
		})
		c := newClient(t, f.config(modeCC))
		err := c.RevokeToken(testkit.Context(t, 5*time.Second), cached)
		checkErr(t, err)
		var te *TransportError
		if !errors.As(err, &te) || te.Op != "revoke" || !te.BeforeSend || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %#v", err)
		}
	})
}

// TestUpstreamErrors checks that every documented (and expected) error
// status becomes an *Error with the upstream's details, retry flag and
// Retry-After, for every operation.
func TestUpstreamErrors(t *testing.T) {
	retryDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	for _, code := range []int{400, 401, 403, 404, 429, 500, 502, 503, 504} {
		for _, op := range []string{"otp", "status", "token", "revoke"} {
			t.Run(fmt.Sprintf("%s/%d", op, code), func(t *testing.T) {
				f := newFake(t)
				retry := code == 429 || code >= 500
				details := fmt.Sprintf("details for %d", code)
				f.handle(op, func(w http.ResponseWriter, r *http.Request) {
					switch code {
					case 429:
						w.Header().Set("Retry-After", "7")
					case 503:
						w.Header().Set("Retry-After", retryDate)
					}
					writeErr(w, code, details, retry)
				})
				c := newClient(t, f.config(modeCC))
				ctx := testkit.Context(t, 5*time.Second)
				var err error
				switch op {
				case "otp", "token":
					_, err = c.GenerateOTP(ctx, OTPRequest{Owner: "o", EndpointID: "e", Description: "d"})
				case "status":
					_, err = c.ServiceStatus(ctx, "svc")
				case "revoke":
					err = c.RevokeToken(ctx, "AT-"+secretMarker+"-x")
				}
				checkErr(t, err)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *Error", err)
				}
				if string(e.Op) != op || e.StatusCode != code || e.Details != details || e.Retry != retry {
					t.Errorf("got %+v", *e)
				}
				switch code {
				case 429:
					if e.RetryAfter != 7*time.Second {
						t.Errorf("RetryAfter = %v, want 7s", e.RetryAfter)
					}
				case 503:
					if e.RetryAfter < 25*time.Second || e.RetryAfter > 31*time.Second {
						t.Errorf("RetryAfter = %v, want about 30s", e.RetryAfter)
					}
				default:
					if e.RetryAfter != 0 {
						t.Errorf("RetryAfter = %v, want 0", e.RetryAfter)
					}
				}
				if !strings.Contains(err.Error(), fmt.Sprint(code)) || !strings.Contains(err.Error(), details) {
					t.Errorf("message %q lacks status or details", err)
				}
			})
		}
	}
	for _, tc := range []struct {
		name, route, ctype, body string
		code                     int
		wantDetails              string
	}{
		{"non-JSON 502 on a call", "otp", "text/html", "<html>Bad Gateway</html>", 502, "Bad Gateway"},
		{"empty 500 on a call", "status", "", "", 500, "Internal Server Error"},
		{"non-JSON 502 on the token endpoint", "token", "text/html", "<html>Bad Gateway</html>", 502, "Bad Gateway"},
		{"RFC 6749 error on the token endpoint", "token", "application/json", `{"error":"invalid_client","error_description":"Client authentication failed"}`, 401, "Client authentication failed"},
		{"RFC 6749 error code only", "token", "application/json", `{"error":"invalid_client"}`, 400, "invalid_client"},
		{"error shape with trailing comma", "otp", "application/json", `{"success": false, "details": "Missing required field 'owner'", "retry": false,}`, 400, "Missing required field 'owner'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(tc.route, func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.code)
				fmt.Fprint(w, tc.body)
			})
			c := newClient(t, f.config(modeCC))
			ctx := testkit.Context(t, 5*time.Second)
			var err error
			if tc.route == "status" {
				_, err = c.ServiceStatus(ctx, "svc")
			} else {
				_, err = c.GenerateOTP(ctx, OTPRequest{})
			}
			checkErr(t, err)
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tc.code || e.Details != tc.wantDetails || e.Retry {
				t.Errorf("err = %v (%+v)", err, e)
			}
		})
	}
}

func TestMalformedResponses(t *testing.T) {
	for _, tc := range []struct {
		name, route, body string
		maxBytes          int64
		mode              mode
	}{
		{"otp: bad JSON", "otp", `{"otp": "x"`, 0, modeCC},
		{"otp: missing", "otp", `{"success": true}`, 0, modeCC},
		{"otp: empty", "otp", `{"otp": ""}`, 0, modeCC},
		{"otp: null", "otp", `{"otp": null}`, 0, modeCC},
		{"otp: number", "otp", `{"otp": 12}`, 0, modeCC},
		{"otp: top-level null", "otp", `null`, 0, modeCC},
		{"otp: array", "otp", `["x"]`, 0, modeCC},
		{"otp: two values", "otp", `{"otp":"x"}{"otp":"y"}`, 0, modeCC},
		{"otp: empty body", "otp", ``, 0, modeCC},
		{"otp: oversized", "otp", `{"otp": "` + strings.Repeat("a", 200) + `"}`, 100, modeCC},
		{"status: missing online", "status", `{"service_id": "svc", "active": true}`, 0, modeCC},
		{"status: missing active", "status", `{"service_id": "svc", "online": false}`, 0, modeCC},
		{"status: missing service_id", "status", `{"active": true, "online": true}`, 0, modeCC},
		{"status: empty service_id", "status", `{"service_id": "", "active": true, "online": true}`, 0, modeCC},
		{"status: string bool", "status", `{"service_id": "svc", "active": "true", "online": true}`, 0, modeCC},
		{"status: oversized", "status", `{"service_id": "svc", "active": true, "online": true, "pad": "` + strings.Repeat("a", 200) + `"}`, 100, modeCC},
		{"token: missing access_token", "token", `{"token_type": "Bearer", "expires_in": 60}`, 0, modeCC},
		{"token: bad JSON", "token", `{"access_token": `, 0, modeCC},
		{"token: oversized", "token", `{"access_token": "` + strings.Repeat("a", 300) + `"}`, 200, modeCC},
		{"token: identity not a string", "token", `{"access_token": "a", "identity": 5}`, 0, modeCC},
		{"api token: missing access_token", "apitoken", `{"token_type": "Bearer"}`, 0, modeAPI},
		{"api token: bad JSON", "apitoken", `not json`, 0, modeAPI},
		{"api token: admin_level not an integer", "apitoken", `{"access_token": "a", "admin_level": 1.5}`, 0, modeAPI},
		{"api token: oversized", "apitoken", `{"access_token": "` + strings.Repeat("a", 300) + `"}`, 200, modeAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(tc.route, func(w http.ResponseWriter, r *http.Request) {
				if (tc.route == "otp" || tc.route == "status") && !f.authorized(w, r) {
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tc.body)
			})
			cfg := f.config(tc.mode)
			cfg.MaxResponseBytes = tc.maxBytes
			c := newClient(t, cfg)
			ctx := testkit.Context(t, 5*time.Second)
			var err error
			switch tc.route {
			case "status":
				var st ServiceStatus
				st, err = c.ServiceStatus(ctx, "svc")
				if st != (ServiceStatus{}) {
					t.Errorf("status = %+v alongside an error", st)
				}
			default:
				var otp string
				otp, err = c.GenerateOTP(ctx, OTPRequest{})
				if otp != "" {
					t.Errorf("otp = %q alongside an error", otp)
				}
			}
			checkErr(t, err)
			wantMalformed(t, err)
			if tc.maxBytes > 0 && !strings.Contains(fmt.Sprint(err), fmt.Sprintf("exceeds %d bytes", tc.maxBytes)) {
				t.Errorf("err = %v, want it to name the bound", err)
			}
			if strings.Contains(fmt.Sprint(err), f.srv.URL) {
				t.Errorf("err = %v names the upstream's URL", err)
			}
		})
	}
}

// TestTokenResponses: the token answer as the guide prints it (valid JSON)
// is read in both modes; the API-token answer, which the client decodes
// itself, is read however sloppily it comes (trailing commas, text/plain),
// like every other body. The client-credentials answer is x/oauth2's to
// parse, as RFC 6749 defines it (application/json): a JSON body sent as
// text/plain or with trailing commas is a malformed response there.
func TestTokenResponses(t *testing.T) {
	const guide = `{
"access_token": "AT-` + secretMarker + `-tc",
"token_type": "Bearer",
"expires_in": 3600,
"refresh_remaining_lifetime": 600,
"radkit_access_token": "RAT-` + secretMarker + `",
"identity": "user@example.com",
"admin_level": 1
}`
	const sloppy = `{
"access_token": "AT-` + secretMarker + `-tc",
"token_type": "Bearer",
"expires_in": 3600,
"identity": "user@example.com",
"admin_level": 1,
}`
	for _, tc := range []struct {
		name      string
		mode      mode
		ctype     string
		body      string
		wantError bool
	}{
		{"client credentials: the guide's answer", modeCC, "application/json", guide, false},
		{"api token: the guide's answer", modeAPI, "application/json", guide, false},
		{"api token: trailing comma, text/plain", modeAPI, "text/plain", sloppy, false},
		{"client credentials: trailing comma", modeCC, "application/json", sloppy, true},
		{"client credentials: JSON as text/plain", modeCC, "text/plain", guide, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			route := map[mode]string{modeCC: "token", modeAPI: "apitoken"}[tc.mode]
			f.handle(route, func(w http.ResponseWriter, r *http.Request) {
				f.mu.Lock()
				f.valid["AT-"+secretMarker+"-tc"] = time.Now().Add(time.Hour)
				f.mu.Unlock()
				w.Header().Set("Content-Type", tc.ctype)
				fmt.Fprint(w, tc.body)
			})
			c := newClient(t, f.config(tc.mode))
			ctx := testkit.Context(t, testTimeout)
			// The fake's OTP and status answers carry the guide's trailing commas.
			otp, err := c.GenerateOTP(ctx, OTPRequest{Owner: "o", EndpointID: "e", Description: "d"})
			checkErr(t, err)
			if tc.wantError {
				wantMalformed(t, err)
				return
			}
			if err != nil || otp != "otp-for-e" {
				t.Fatalf("GenerateOTP = %q, %v", otp, err)
			}
			if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
				t.Fatal(err)
			}
			if info, _ := c.TokenInfo(); info.AdminLevel != 1 || info.Identity != "user@example.com" {
				t.Errorf("TokenInfo = %+v", info)
			}
		})
	}
}

func TestTokenLifetime(t *testing.T) {
	jwtWithExp := func(exp time.Time) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d,"x":"%s"}`, exp.Unix(), secretMarker))) + ".sig"
	}
	inHour := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name         string
		body         map[string]any
		wantLifetime time.Duration
		wantExpiry   time.Time
		wantIdentity string
	}{
		{"expires_in", map[string]any{"expires_in": 120, "identity": "a@b"}, 120 * time.Second, time.Time{}, "a@b"},
		{"expires_in as string", map[string]any{"expires_in": "90"}, 90 * time.Second, time.Time{}, ""},
		{"no expires_in: exp claim", map[string]any{"access_token": jwtWithExp(inHour)}, 0, inHour, ""},
		{"expires_in 0: exp claim", map[string]any{"expires_in": 0, "access_token": jwtWithExp(inHour)}, 0, inHour, ""},
		{"no expires_in, opaque token: 5 minutes", map[string]any{}, 5 * time.Minute, time.Time{}, ""},
		{"expired exp claim: 5 minutes", map[string]any{"access_token": jwtWithExp(time.Now().Add(-time.Hour))}, 5 * time.Minute, time.Time{}, ""},
		{"endpoint_id for identity", map[string]any{"expires_in": 60, "endpoint_id": "automation+a@cisco.com"}, 60 * time.Second, time.Time{}, "automation+a@cisco.com"},
	} {
		for _, m := range []mode{modeCC, modeAPI} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, m), func(t *testing.T) {
				f := newFake(t)
				h := func(w http.ResponseWriter, r *http.Request) {
					body := map[string]any{"access_token": "AT-" + secretMarker, "token_type": "Bearer"}
					for k, v := range tc.body {
						body[k] = v
					}
					writeJSON(w, http.StatusOK, body)
				}
				f.handle("token", h)
				f.handle("apitoken", h)
				c := newClient(t, f.config(m))
				before := time.Now()
				if err := c.Ready(testkit.Context(t, 5*time.Second)); err != nil {
					t.Fatal(err)
				}
				info, ok := c.TokenInfo()
				if !ok {
					t.Fatal("no token cached")
				}
				want := tc.wantExpiry
				if tc.wantLifetime > 0 {
					want = before.Add(tc.wantLifetime)
				}
				if d := info.Expiry.Sub(want); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("Expiry = %v, want about %v", info.Expiry, want)
				}
				if info.Identity != tc.wantIdentity {
					t.Errorf("Identity = %q, want %q", info.Identity, tc.wantIdentity)
				}
			})
		}
	}
}

func TestPathEscaping(t *testing.T) {
	for _, tc := range []struct{ id, wantPath string }{
		{"1ryq-e8n8-5g5n", "1ryq-e8n8-5g5n"},
		{"../x", "..%2Fx"},
		{"../../oauth2/token", "..%2F..%2Foauth2%2Ftoken"},
		{"a%2Fb", "a%252Fb"},
		{"a/b", "a%2Fb"},
		{"a?b", "a%3Fb"},
		{"a#b", "a%23b"},
		{"a b", "a%20b"},
		{"é", "%C3%A9"},
		{"...", "..."},
	} {
		t.Run(tc.id, func(t *testing.T) {
			f := newFake(t)
			c := newClient(t, f.config(modeCC))
			st, err := c.ServiceStatus(testkit.Context(t, 5*time.Second), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if st.ServiceID != tc.id {
				t.Errorf("server decoded the ID as %q", st.ServiceID)
			}
			r := f.requests("status")[0]
			if got, want := r.URL.EscapedPath(), "/public/admin/service/status/"+tc.wantPath; got != want {
				t.Errorf("server saw path %q, want %q", got, want)
			}
			if r.URL.RawQuery != "" || r.URL.Fragment != "" {
				t.Errorf("server saw query %q fragment %q", r.URL.RawQuery, r.URL.Fragment)
			}
		})
	}
	t.Run("rejected IDs", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.config(modeCC))
		for _, id := range []string{"", ".", ".."} {
			_, err := c.ServiceStatus(testkit.Context(t, 5*time.Second), id)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("ServiceStatus(%q) = %v, want ErrInvalidArgument", id, err)
			}
		}
		if f.nStatus.Load()+f.nDiscovery.Load() != 0 {
			t.Error("a request was made")
		}
	})
	t.Run("base URL with a path", func(t *testing.T) {
		c, err := New(Config{BaseURL: "https://h.example.com/pre%20fix/", APIToken: testAPIToken})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, want := c.endpoint("/public/admin/service/status/", "a/b").String(), "https://h.example.com/pre%20fix/public/admin/service/status/a%2Fb"; got != want {
			t.Errorf("endpoint = %q, want %q", got, want)
		}
		if got, want := c.endpoint(wellKnownPath).String(), "https://h.example.com/pre%20fix/.well-known/openid-configuration"; got != want {
			t.Errorf("discovery URL = %q, want %q", got, want)
		}
	})
}

func TestTransportFailures(t *testing.T) {
	hijackReset := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	}
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	slowBody := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"otp":`)
		w.(http.Flusher).Flush()
		slow(w, r)
	}
	truncated := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"otp":`)
		w.(http.Flusher).Flush()
		hijackReset(w, r)
	}
	for _, tc := range []struct {
		name           string
		route          string
		handler        http.HandlerFunc
		timeout        time.Duration
		wantOp         string
		wantBeforeSend bool
		wantDeadline   bool
	}{
		{"otp: connection reset", "otp", hijackReset, 5 * time.Second, "otp", false, false},
		{"status: connection reset", "status", hijackReset, 5 * time.Second, "status", false, false},
		{"otp: slow upstream", "otp", slow, 150 * time.Millisecond, "otp", false, true},
		{"status: slow upstream", "status", slow, 150 * time.Millisecond, "status", false, true},
		{"otp: body stalls", "otp", slowBody, 150 * time.Millisecond, "otp", false, true},
		{"otp: body cut short", "otp", truncated, 5 * time.Second, "otp", false, false},
		{"token: connection reset", "token", hijackReset, 5 * time.Second, "token", false, false},
		{"token: slow: the caller gives up waiting", "token", slow, 150 * time.Millisecond, "otp", true, true},
		{"discovery: slow", "discovery", slow, 150 * time.Millisecond, "otp", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(tc.route, tc.handler)
			c := newClient(t, f.config(modeCC))
			ctx := testkit.Context(t, 5*time.Second)
			if tc.route == "otp" || tc.route == "status" {
				if err := c.Ready(ctx); err != nil {
					t.Fatal(err)
				}
			}
			ctx = testkit.Context(t, tc.timeout)
			start := time.Now()
			var err error
			if tc.route == "status" {
				_, err = c.ServiceStatus(ctx, "svc")
			} else {
				_, err = c.GenerateOTP(ctx, OTPRequest{})
			}
			checkErr(t, err)
			if took := time.Since(start); took > tc.timeout+time.Second {
				t.Errorf("took %v", took)
			}
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *TransportError", err)
			}
			if string(te.Op) != tc.wantOp || te.BeforeSend != tc.wantBeforeSend {
				t.Errorf("got Op %q BeforeSend %v, want %q %v (%v)", te.Op, te.BeforeSend, tc.wantOp, tc.wantBeforeSend, err)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tc.wantDeadline {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v (%v)", got, tc.wantDeadline, err)
			}
		})
	}
	t.Run("refused: discovery", func(t *testing.T) {
		c := newClient(t, Config{BaseURL: "http://" + testkit.ClosedAddr(t), ClientID: testClientID, ClientSecret: testClientSecret})
		err := c.Ready(testkit.Context(t, 5*time.Second))
		checkErr(t, err)
		var te *TransportError
		if !errors.Is(err, ErrDiscovery) || !errors.As(err, &te) || !te.BeforeSend || te.Op != "discovery" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("refused: token endpoint", func(t *testing.T) {
		f := newFake(t)
		dead := testkit.ClosedAddr(t)
		f.set(func() {
			f.discDoc = func(base string) map[string]any {
				return map[string]any{"issuer": base, "token_endpoint": "http://" + dead + "/oauth2/token"}
			}
		})
		c := newClient(t, f.config(modeCC))
		err := c.Ready(testkit.Context(t, 5*time.Second))
		checkErr(t, err)
		var te *TransportError
		if !errors.As(err, &te) || !te.BeforeSend || te.Op != "token" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("refused: call", func(t *testing.T) {
		f := newFake(t)
		dead := testkit.ClosedAddr(t)
		var refuse sync.Mutex
		refusing := false
		tr := NewTransport()
		tr.DisableKeepAlives = true
		dialer := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			refuse.Lock()
			if refusing {
				addr = dead
			}
			refuse.Unlock()
			return dialer.DialContext(ctx, network, addr)
		}
		t.Cleanup(tr.CloseIdleConnections)
		cfg := f.config(modeCC)
		cfg.HTTPClient = &http.Client{Transport: tr}
		c := newClient(t, cfg)
		ctx := testkit.Context(t, 5*time.Second)
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		refuse.Lock()
		refusing = true
		refuse.Unlock()
		_, err := c.GenerateOTP(ctx, OTPRequest{})
		checkErr(t, err)
		var te *TransportError
		if !errors.As(err, &te) || !te.BeforeSend || te.Op != "otp" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := newFake(t)
	f.expiresIn.Store(1)
	c, err := New(f.config(modeCC))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t, 5*time.Second)
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// A fetch in flight when Close is called is cut short.
	f.handle("token", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c.tokens.mu.Lock()
	cur := c.tokens.cur
	c.tokens.mu.Unlock()
	c.tokens.invalidate(cur)
	errc := make(chan error, 1)
	go func() {
		_, err := c.GenerateOTP(ctx, OTPRequest{})
		errc <- err
	}()
	testkit.Eventually(t, testTimeout, "the call to wait for the token fetch", func() bool { return c.tokens.fetches.Waiters(struct{}{}) == 1 })
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := testkit.Receive(t, errc, testTimeout, "the call in flight to return after Close"); err == nil {
		t.Error("call in flight at Close succeeded")
	}
	for _, err := range []error{
		c.Ready(ctx),
		func() error { _, err := c.GenerateOTP(ctx, OTPRequest{}); return err }(),
		func() error { _, err := c.ServiceStatus(ctx, "s"); return err }(),
		c.RevokeToken(ctx, "x"),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	f.srv.Close()
}

// TestFetchFailuresAreLogged: credentials refused from the start must leave
// a line in the log. Every class of failed
// discovery or token fetch is logged when it first happens, then at most
// once per interval with the count of failures left out, and the log never
// shows a secret.
func TestFetchFailuresAreLogged(t *testing.T) {
	refusedEndpoint := func(f *fake) {
		dead := testkit.ClosedAddr(t)
		f.set(func() {
			f.discDoc = func(base string) map[string]any {
				return map[string]any{"issuer": base, "token_endpoint": "http://" + dead + "/oauth2/token"}
			}
		})
	}
	for _, tc := range []struct {
		name      string
		mode      mode
		setup     func(f *fake)
		wantMsg   string
		wantClass string
		wantLevel string
	}{
		{"client credentials refused", modeCC, func(f *fake) {
			f.handle("token", func(w http.ResponseWriter, r *http.Request) {
				writeErr(w, http.StatusUnauthorized, "Invalid credentials", false)
			})
		}, "upstream: token failed", "token: HTTP 401", "ERROR"},
		{"api token refused", modeAPI, func(f *fake) {
			f.handle("apitoken", func(w http.ResponseWriter, r *http.Request) { writeErr(w, http.StatusForbidden, "Forbidden", false) })
		}, "upstream: token failed", "token: HTTP 403", "ERROR"},
		{"token endpoint down", modeCC, func(f *fake) {
			f.handle("token", func(w http.ResponseWriter, r *http.Request) { writeErr(w, http.StatusServiceUnavailable, "down", true) })
		}, "upstream: token failed", "token: HTTP 503", "WARN"},
		{"token endpoint refuses connections", modeCC, refusedEndpoint, "upstream: token failed", "token: transport", "WARN"},
		{"token answer malformed", modeCC, func(f *fake) {
			f.handle("token", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer"})
			})
		}, "upstream: token failed", "token: malformed response", "WARN"},
		{"discovery fails", modeCC, func(f *fake) {
			f.handle("discovery", func(w http.ResponseWriter, r *http.Request) {
				writeErr(w, http.StatusInternalServerError, "boom", true)
			})
		}, "upstream: discovery failed", "discovery: HTTP 500", "WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			logs := &testkit.Buffer{}
			cfg := f.config(tc.mode)
			cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			c := newClient(t, cfg)
			clock := testkit.NewClock(time.Now())
			c.failures.now = clock.Now
			ctx := testkit.Context(t, testTimeout)

			const tries = 4
			for range tries {
				if err := c.Ready(ctx); err == nil {
					t.Fatal("Ready succeeded")
				}
			}
			lines := logLines(t, logs, tc.wantMsg)
			if len(lines) != 1 {
				t.Fatalf("after %d failures at start: %d lines %q, want 1:\n%s", tries, len(lines), tc.wantMsg, logs)
			}
			if l := lines[0]; l["class"] != tc.wantClass || l["level"] != tc.wantLevel || l["suppressed"] != 0.0 || l["error"] == "" {
				t.Errorf("first line = %v, want class %q at %s, suppressed 0, and the error", l, tc.wantClass, tc.wantLevel)
			}

			// An interval later, the next failure is logged with the
			// count of those left out.
			clock.Advance(failureLogInterval)
			if err := c.Ready(ctx); err == nil {
				t.Fatal("Ready succeeded")
			}
			lines = logLines(t, logs, tc.wantMsg)
			if len(lines) != 2 || lines[1]["class"] != tc.wantClass || lines[1]["suppressed"] != float64(tries-1) {
				t.Fatalf("an interval later: lines %v, want a second with suppressed %d:\n%s", lines, tries-1, logs)
			}
			if s := logs.String(); strings.Contains(s, secretMarker) {
				t.Errorf("a secret leaked into the log:\n%s", s)
			}
		})
	}
}

// TestFetchRecoveryIsLogged: once fetches succeed again, one line says so
// with the failures left out of the log, and the next failure is logged at
// once.
func TestFetchRecoveryIsLogged(t *testing.T) {
	f := newFake(t)
	refuse := func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusUnauthorized, "Invalid credentials", false)
	}
	f.handle("token", refuse)
	logs := &testkit.Buffer{}
	cfg := f.config(modeCC)
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	c := newClient(t, cfg)
	ctx := testkit.Context(t, testTimeout)
	for range 3 {
		if err := c.Ready(ctx); err == nil {
			t.Fatal("Ready succeeded")
		}
	}
	f.handle("token", nil)
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready after the credentials were accepted: %v", err)
	}
	if lines := logLines(t, logs, "upstream: token succeeded again"); len(lines) != 1 || lines[0]["suppressed"] != 2.0 {
		t.Fatalf("recovery lines %v, want one with suppressed 2:\n%s", lines, logs)
	}
	f.handle("token", refuse)
	c.tokens.mu.Lock()
	cur := c.tokens.cur
	c.tokens.mu.Unlock()
	c.tokens.invalidate(cur)
	if err := c.Ready(ctx); err == nil {
		t.Fatal("Ready succeeded")
	}
	if lines := logLines(t, logs, "upstream: token failed"); len(lines) != 2 {
		t.Fatalf("%d failure lines, want 2: the failure after a recovery is logged at once:\n%s", len(lines), logs)
	}
}

// logLines returns the JSON log lines in logs whose message is msg.
func logLines(t *testing.T, logs *testkit.Buffer, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range logs.Records(t) {
		if l["msg"] == msg {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestSharedDiscovery checks that Clients sharing a Discovery fetch the
// document once between them, each still using its own credentials, and
// that a failed discovery is not kept.
func TestSharedDiscovery(t *testing.T) {
	f := newFake(t)
	f.handle("discovery", func(w http.ResponseWriter, r *http.Request) {
		if f.nDiscovery.Load() == 0 {
			f.nDiscovery.Add(1)
			writeErr(w, http.StatusServiceUnavailable, "warming up", true)
			return
		}
		f.serveDiscovery(w, r)
	})
	shared := NewDiscovery()
	cc, api := f.config(modeCC), f.config(modeAPI)
	cc.Discovery, api.Discovery = shared, shared
	first, second := newClient(t, cc), newClient(t, api)
	ctx := testkit.Context(t, 10*time.Second)
	if err := first.Ready(ctx); !errors.Is(err, ErrDiscovery) {
		t.Fatalf("Ready with discovery failing: %v, want ErrDiscovery", err)
	}
	for _, c := range []*Client{first, second, first} {
		if _, err := c.ServiceStatus(ctx, "svc"); err != nil {
			t.Fatalf("ServiceStatus: %v", err)
		}
	}
	if got := f.nDiscovery.Load(); got != 2 {
		t.Errorf("discovery requests = %d, want 2 (the failed one, then one for both Clients)", got)
	}
	if cc, api := f.nTokenCC.Load(), f.nTokenAPI.Load(); cc != 1 || api != 1 {
		t.Errorf("token fetches: client credentials %d, API token %d; want 1 each (each Client its own credentials)", cc, api)
	}
}
