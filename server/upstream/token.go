package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/radkit/radkit-access-facade/internal/flight"
)

// TokenInfo is what may be told about the cached access token: nothing
// secret.
type TokenInfo struct {
	// Identity is the token's identity ("identity", or the SDK's
	// "endpoint_id").
	Identity string
	// AdminLevel is the token's admin level.
	AdminLevel int
	// TokenType is the token type, "Bearer".
	TokenType string
	// Expiry is when the token expires.
	Expiry time.Time
	// RefreshRemainingLifetime is the upstream's refresh_remaining_lifetime.
	RefreshRemainingLifetime time.Duration
}

// token is one access token held by the cache. Its secrets are never logged.
type token struct {
	access string
	// authorization is the Authorization header value ("Bearer " +
	// access), built once per token rather than once per call.
	authorization []string
	info          TokenInfo
	refreshAt     time.Time // background refresh is due
	usableUntil   time.Time // callers stop using it (a little before expiry)
}

// Background refresh retry backoff after a failure.
const (
	minRefreshBackoff = time.Second
	maxRefreshBackoff = 30 * time.Second
)

// newToken builds a cache entry from a token response fetched at start.
// The lifetime is expires_in, else the access token's "exp" claim (read
// without verification: only to schedule the refresh), else 5 minutes.
func newToken(tr tokenResponse, start time.Time, fraction float64) *token {
	lifetime := tr.ExpiresIn
	if lifetime <= 0 {
		lifetime = jwtLifetime(tr.AccessToken, start)
	}
	if lifetime <= 0 {
		lifetime = defaultTokenLifetime
	}
	lifetime = min(lifetime, maxTokenLifetime)
	expiry := start.Add(lifetime)
	// Stop using the token a little before it expires, but after the
	// refresh is due, so that a refresh in time never makes anyone wait.
	skew := min(10*time.Second, time.Duration(float64(lifetime)*(1-fraction)/2))
	return &token{
		access:        tr.AccessToken,
		authorization: []string{"Bearer " + tr.AccessToken}[:1:1],
		info: TokenInfo{
			Identity:                 tr.Identity,
			AdminLevel:               tr.AdminLevel,
			TokenType:                tr.TokenType,
			Expiry:                   expiry,
			RefreshRemainingLifetime: tr.RefreshRemaining,
		},
		refreshAt:   start.Add(time.Duration(float64(lifetime) * fraction)),
		usableUntil: expiry.Add(-skew),
	}
}

// TokenExpiry returns the "exp" claim of token read as an unverified JWT,
// as the access token's is: an API token's expiry, for warning before it
// comes. ok is false when token is not a JWT or has no exp. The facade
// never trusts the claim for more than that: the upstream decides.
func TokenExpiry(token string) (exp time.Time, ok bool) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, false
	}
	e, err := claims.GetExpirationTime()
	if err != nil || e == nil {
		return time.Time{}, false
	}
	return e.Time, true
}

// jwtLifetime is the time from now to the "exp" claim of an access token
// read as an unverified JWT; 0 if it is not one or has no future exp.
func jwtLifetime(access string, now time.Time) time.Duration {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(access, claims); err != nil {
		return 0
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return 0
	}
	return exp.Sub(now)
}

// tokenCache holds the access token, fetches it with at most one fetch in
// flight, and refreshes it in the background before it expires.
type tokenCache struct {
	fetch    func(ctx context.Context) (*token, error)
	log      *slog.Logger
	failures *failureLog
	lifetime context.Context // ends at Close
	wg       *sync.WaitGroup

	// fetches runs the one token fetch. A fetch that every caller has left
	// still runs to its end (bounded by fetchTimeout and lifetime): the
	// token it gets is stored for the next caller.
	fetches flight.Group[struct{}, *token]

	mu        sync.Mutex
	cur       *token
	refresher bool // the refresh goroutine runs
	closed    bool
	wake      chan struct{} // a new token was stored

	waits atomic.Int64 // callers that blocked on a fetch (for tests)

	// used is set by every caller of get and cleared by each background
	// refresh: a token nobody used since the last refresh is not
	// refreshed again, so that an idle client (an identity nobody calls)
	// stops fetching tokens until it is used again.
	used atomic.Bool
}

func newTokenCache(lifetime context.Context, wg *sync.WaitGroup, log *slog.Logger, failures *failureLog, fetch func(context.Context) (*token, error)) *tokenCache {
	tc := &tokenCache{fetch: fetch, log: log, failures: failures, lifetime: lifetime, wg: wg, wake: make(chan struct{}, 1)}
	tc.fetches.Finish = true
	return tc
}

// get returns a usable token, waiting for a fetch only when none is held.
// op names the caller's operation in the error when ctx ends first.
func (tc *tokenCache) get(ctx context.Context, op Op) (*token, error) {
	// A load first: no write to the shared cache line per call. The first
	// use after a refresh wakes the refresh loop, in case it went idle.
	if !tc.used.Load() && !tc.used.Swap(true) {
		select {
		case tc.wake <- struct{}{}:
		default:
		}
	}
	tc.mu.Lock()
	if t := tc.cur; t != nil && time.Now().Before(t.usableUntil) {
		tc.mu.Unlock()
		return t, nil
	}
	if tc.closed {
		tc.mu.Unlock()
		return nil, &TransportError{Op: op, BeforeSend: true, Err: ErrClosed}
	}
	// Added before close is seen, so that Close waits for this caller and
	// so for any fetch it starts.
	tc.wg.Add(1)
	tc.mu.Unlock()
	defer tc.wg.Done()
	tc.waits.Add(1)
	t, err, _ := tc.fetches.Do(ctx, struct{}{}, tc.fetchAndStore)
	if err != nil && err == ctx.Err() {
		// ctx ended first (Do returns ctx's own error; a fetch's are wrapped).
		return nil, &TransportError{Op: op, BeforeSend: true, Err: fmt.Errorf("waiting for an access token: %w", err)}
	}
	return t, err
}

// fetchAndStore is the shared fetch: it gets a token and stores it, and
// starts the background refresh after the first success.
func (tc *tokenCache) fetchAndStore(ctx context.Context) (*token, error) {
	ctx, cancel := bound(ctx, tc.lifetime)
	defer cancel()
	t, err := tc.fetch(ctx)
	if err != nil {
		// Not logged: a fetch cut short by Close, and a failed discovery,
		// which is logged where it ran (runDiscovery).
		if tc.lifetime.Err() == nil && !errors.Is(err, ErrDiscovery) {
			tc.failures.failed(OpToken, err)
		}
		return nil, err
	}
	tc.failures.succeeded(OpToken)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.cur = t
	if !tc.refresher && !tc.closed {
		tc.refresher = true
		tc.wg.Add(1)
		go tc.refreshLoop()
	}
	select {
	case tc.wake <- struct{}{}:
	default:
	}
	return t, nil
}

// refreshLoop refreshes the token when its refresh is due, and after a
// failure retries with backoff while the old token is still usable. A
// token that nobody used since the last refresh (or fetch) is left to
// expire: the next caller fetches a new one, which wakes the loop again.
func (tc *tokenCache) refreshLoop() {
	defer tc.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failures := 0
	idle := false
	for {
		tc.mu.Lock()
		cur := tc.cur
		tc.mu.Unlock()
		timer.Stop()
		var due <-chan time.Time
		if now := time.Now(); !idle && cur != nil && now.Before(cur.usableUntil) {
			d := cur.refreshAt.Sub(now)
			if failures > 0 {
				d = min(minRefreshBackoff<<min(failures-1, 5), maxRefreshBackoff)
			}
			timer.Reset(max(d, 0))
			due = timer.C
		}
		// With no usable token, sleep until a caller's fetch stores one.
		select {
		case <-tc.lifetime.Done():
			return
		case <-tc.wake:
			failures, idle = 0, false
			continue
		case <-due:
		}
		if failures == 0 && !tc.used.Swap(false) {
			tc.log.Debug("upstream: access token unused since the last refresh; not refreshing it until it is used")
			idle = true
			continue
		}
		tc.mu.Lock()
		stale := tc.closed || tc.cur != cur
		tc.mu.Unlock()
		if stale {
			continue
		}
		_, err, _ := tc.fetches.Do(tc.lifetime, struct{}{}, tc.fetchAndStore)
		switch {
		case tc.lifetime.Err() != nil:
			return
		case err != nil:
			// fetchAndStore has logged the failure (rate-limited).
			failures++
			tc.log.Debug("upstream: background token refresh failed; keeping the current token", "failures", failures, "token_expiry", cur.info.Expiry)
		default:
			failures = 0
			tc.log.Debug("upstream: access token refreshed")
		}
	}
}

// invalidate drops t if it is still the cached token (after a 401).
func (tc *tokenCache) invalidate(t *token) {
	tc.mu.Lock()
	if tc.cur == t {
		tc.cur = nil
	}
	tc.mu.Unlock()
}

// dropAccess drops the cached token if its access token is access.
func (tc *tokenCache) dropAccess(access string) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.cur != nil && tc.cur.access == access {
		tc.cur = nil
		return true
	}
	return false
}

// info returns the cached token's non-secret facts.
func (tc *tokenCache) info() (TokenInfo, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.cur == nil {
		return TokenInfo{}, false
	}
	return tc.cur.info, true
}

// close stops new fetches; the caller then ends lifetime and waits.
func (tc *tokenCache) close() {
	tc.mu.Lock()
	tc.closed = true
	tc.mu.Unlock()
}

// fetchToken runs discovery if needed, then gets a new access token with
// the configured credentials.
func (c *Client) fetchToken(ctx context.Context) (*token, error) {
	ep, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var ot *oauth2.Token
	if c.apiToken != "" {
		ot, err = c.fetchAPIToken(ctx)
	} else {
		// Config.Token makes one token request each time. Not a TokenSource
		// kept across fetches: x/oauth2 wraps it in a ReuseTokenSource,
		// which would hand the background refresh (due well before expiry)
		// the token it already holds, and would keep the context of its
		// first fetch, while each shared fetch has its own deadline and
		// trace.
		ot, err = ep.credentials.Token(context.WithValue(ctx, oauth2.HTTPClient, c.tokenHTTP))
		if err != nil {
			err = c.tokenError(err)
		}
	}
	if err != nil {
		return nil, err
	}
	tr, err := readToken(ot)
	if err != nil {
		return nil, fmt.Errorf("upstream: token: %w", err)
	}
	return newToken(tr, start, c.refreshFraction), nil
}

// tokenError maps a failure of x/oauth2's token request to *Error,
// *TransportError or ErrMalformedResponse. The transport (tokenTransport)
// has already classified what happened on the wire; x/oauth2's own
// messages may quote the response body or the token URL, so they are not
// passed on.
func (c *Client) tokenError(err error) error {
	var te *TransportError
	var ue *url.Error
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &te):
		return te // without the *url.Error around it, which names the URL
	case errors.Is(err, ErrMalformedResponse) && errors.As(err, &ue):
		return ue.Err // tokenTransport's own error, again without the URL
	case errors.As(err, &re):
		if re.Response == nil {
			return fmt.Errorf("upstream: token: %w: unusable token response", ErrMalformedResponse)
		}
		status := re.Response.StatusCode
		if status >= 200 && status <= 299 {
			return fmt.Errorf("upstream: token: %w: error %q in a %d response", ErrMalformedResponse, re.ErrorCode, status)
		}
		e := newError(OpToken, status, re.Response.Header, re.Body, c.now())
		if e.Details == http.StatusText(status) && re.ErrorCode != "" {
			e.Details = re.ErrorCode
		}
		return e
	}
	// x/oauth2 reports a 2xx body it cannot use with a plain error.
	return fmt.Errorf("upstream: token: %w: unusable token response", ErrMalformedResponse)
}

// fetchAPIToken gets an access token with the API token: POST
// {base}/auth/token with "Authorization: JWT <api token>". Its errors are
// *Error, *TransportError or ErrMalformedResponse.
func (c *Client) fetchAPIToken(ctx context.Context) (*oauth2.Token, error) {
	req, st, err := c.newRequest(ctx, http.MethodPost, c.endpoint("/auth/token"), nil, "")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "JWT "+c.apiToken)
	resp, body, err := c.roundTrip(req, st, OpToken)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newError(OpToken, resp.StatusCode, resp.Header, body, c.now())
	}
	ot, err := decodeAPIToken(body)
	if err != nil {
		return nil, fmt.Errorf("upstream: token: %w", err)
	}
	return ot, nil
}
