package resilience

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// The emulator's default seed.
const (
	clientID       = "emulator-client"
	clientSecret   = "emulator-secret"
	knownService   = "1ryq-e8n8-5g5n"
	otherService   = "123-123-123"
	unknownService = "no-such-service"
)

// env is the emulator on a loopback httptest server, the real upstream
// client pointed at it, and a Client guarding that.
type env struct {
	emu *emulator.Emulator
	srv *httptest.Server
	up  *upstream.Client
	c   *Client
}

// envOptions are the optional parts of an env.
type envOptions struct {
	// wrap, if set, wraps the emulator's handler (see gate).
	wrap func(http.Handler) http.Handler
	// httpClient, if set, is the upstream client's HTTP client.
	httpClient *http.Client
}

func newEnv(t *testing.T, cfg Config, opts envOptions) *env {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: emulator.DefaultSeed()})
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	var h http.Handler = emu
	if opts.wrap != nil {
		h = opts.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	up, err := upstream.New(upstream.Config{
		BaseURL:      srv.URL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		HTTPClient:   opts.httpClient,
	})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() { up.Close() })
	cfg.Upstream = up
	return &env{emu: emu, srv: srv, up: up, c: New(cfg)}
}

// fast is a Config whose backoff is short enough for tests to run many
// retries quickly.
func fast() Config {
	return Config{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
}

// testCtx is a context bounded generously, so that a hung test fails rather
// than stalls.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	return testkit.Context(t, 30*time.Second)
}

// eventually polls cond until it holds, failing the test after a generous
// bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, what, cond)
}

// waiters is how many callers wait on the shared status lookup for
// serviceID.
func (c *Client) waiters(serviceID string) int { return c.lookups.Waiters(serviceID) }

// gate holds every status request in front of the emulator until opened,
// so that tests can make lookups overlap without depending on timing.
type gate struct {
	arrived   atomic.Int32
	abandoned atomic.Int32 // requests whose client went away at the gate
	open      chan struct{}
	opening   sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	// Registered before the server's cleanup, so it runs first: the
	// server's Close waits for held requests.
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.opening.Do(func() { close(g.open) }) }

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, string(emulator.RouteStatus)) {
			g.arrived.Add(1)
			select {
			case <-g.open:
			case <-r.Context().Done():
				g.abandoned.Add(1)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refusingDialer makes the next Refuse dials fail with a real "connection
// refused" from a closed loopback port, then dials for real.
type refusingDialer struct {
	refuse atomic.Int32
	closed string // address of a port nobody listens on, reserved until the test ends
	dialer net.Dialer
}

func newRefusingDialer(t *testing.T) *refusingDialer {
	t.Helper()
	return &refusingDialer{closed: testkit.ClosedAddr(t)}
}

func (d *refusingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.refuse.Add(-1) >= 0 {
		return d.dialer.DialContext(ctx, network, d.closed)
	}
	return d.dialer.DialContext(ctx, network, addr)
}

// accessToken gets an access token of the emulator's, for RevokeToken to
// revoke.
func accessToken(t *testing.T, e *env) string {
	t.Helper()
	req, err := http.NewRequestWithContext(testkit.Context(t, 30*time.Second), http.MethodPost, e.srv.URL+string(emulator.RouteToken),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: HTTP %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// statusCode is the HTTP status of an *upstream.Error in err, or 0.
func statusCode(err error) int {
	var upErr *upstream.Error
	if errors.As(err, &upErr) {
		return upErr.StatusCode
	}
	return 0
}

// never is a throttle random source under which the throttle refuses
// nothing (it refuses when the draw is below its probability, which is
// below 1), for tests of what lies behind it.
func never() float64 { return 1 }
