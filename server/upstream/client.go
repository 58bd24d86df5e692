// Package upstream is a client of the RADKit Access Cloud public REST API:
// OpenID discovery, OAuth2 access tokens (client credentials or API token),
// service OTPs, service status and token revocation. It knows REST, JSON and
// OAuth2, and nothing of gRPC.
//
// Failures are typed: *Error for a non-2xx answer, *TransportError when no
// complete answer came, and the sentinel errors for the rest. No error and
// no log line carries a secret.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/flight"
	"github.com/radkit/radkit-access-facade/internal/requestid"
)

// fetchTimeout bounds a shared fetch (discovery or token), which runs
// detached from the callers waiting for it (see flight.Group), so that one
// caller giving up does not fail the others.
const fetchTimeout = 30 * time.Second

// bound returns ctx limited to fetchTimeout and to the Client's lifetime.
func bound(ctx, lifetime context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	stop := context.AfterFunc(lifetime, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Client calls the upstream. It is safe for concurrent use. Close it to
// stop its background token refresh.
type Client struct {
	base             *url.URL
	clientID         string
	clientSecret     string
	apiToken         string
	http             *http.Client
	tokenHTTP        *http.Client // http with tokenTransport, for x/oauth2
	ownTransport     *http.Transport
	userAgent        string
	headers          headerValues
	maxResponseBytes int64
	refreshFraction  float64
	log              *slog.Logger
	failures         *failureLog // failed discoveries and token fetches
	allowInsecure    bool        // Config.AllowInsecureHTTP

	lifetime context.Context // ends at Close
	stop     context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
	closing  sync.Once

	discMu      sync.Mutex
	disc        *endpoints
	discClosed  bool
	discoveries flight.Group[struct{}, *endpoints] // Finish: a success is cached
	shared      *Discovery                         // nil: this Client's own discovery

	tokens *tokenCache
}

// New validates cfg and returns a Client. It does no network I/O: discovery
// and the first token fetch happen on first use (or Ready).
func New(cfg Config) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:             s.base,
		clientID:         s.clientID,
		clientSecret:     s.clientSecret,
		apiToken:         s.apiToken,
		http:             s.httpClient,
		tokenHTTP:        tokenHTTPClient(s.httpClient, s.maxResponseBytes, s.userAgent),
		ownTransport:     s.ownTransport,
		userAgent:        s.userAgent,
		headers:          newHeaderValues(s.userAgent),
		maxResponseBytes: s.maxResponseBytes,
		refreshFraction:  s.refreshFraction,
		log:              s.logger,
		failures:         newFailureLog(s.logger),
		allowInsecure:    s.allowInsecure,
		shared:           cfg.Discovery,
	}
	c.discoveries.Finish = true
	c.lifetime, c.stop = context.WithCancel(context.Background())
	c.tokens = newTokenCache(c.lifetime, &c.wg, c.log, c.failures, c.fetchToken)
	return c, nil
}

// Close stops the background token refresh and any fetch in flight, and
// waits for them. Calls made after Close fail with ErrClosed. Close is
// idempotent and always returns nil.
func (c *Client) Close() error {
	c.closing.Do(func() {
		c.closed.Store(true)
		c.tokens.close()
		c.discMu.Lock()
		c.discClosed = true
		c.discMu.Unlock()
		c.stop()
		c.wg.Wait()
		// No new shared fetch starts once the callers have returned; the
		// ones they abandoned end with the lifetime.
		c.tokens.fetches.Wait()
		c.discoveries.Wait()
		if c.ownTransport != nil {
			c.ownTransport.CloseIdleConnections()
		}
	})
	return nil
}

// Ready reports whether the Client can serve calls: discovery has succeeded
// (it is cached once it has) and a valid access token is held, fetching one
// if needed. It is meant for health checks.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.checkOpen(OpToken); err != nil {
		return err
	}
	if _, err := c.discover(ctx); err != nil {
		return err
	}
	_, err := c.tokens.get(ctx, OpToken)
	return err
}

// TokenInfo returns the non-secret facts of the cached access token, and
// false when none is cached.
func (c *Client) TokenInfo() (TokenInfo, bool) { return c.tokens.info() }

// OTPRequest asks for a service one-time password.
type OTPRequest struct {
	// Owner is the e-mail address of the service's owner.
	Owner string
	// EndpointID is the endpoint (identity) the OTP is for.
	EndpointID string
	// Description says what the OTP is for.
	Description string
}

// GenerateOTP requests a new service OTP. The OTP is a secret of the
// caller's: it is never logged.
func (c *Client) GenerateOTP(ctx context.Context, r OTPRequest) (string, error) {
	const op = OpOTP
	if err := c.checkOpen(op); err != nil {
		return "", err
	}
	payload, err := json.Marshal(struct {
		Owner       string `json:"owner"`
		EndpointID  string `json:"endpoint_id"`
		Description string `json:"description"`
	}{r.Owner, r.EndpointID, r.Description})
	if err != nil {
		return "", fmt.Errorf("upstream: otp: encoding request: %w", err)
	}
	code, body, err := c.call(ctx, op, http.MethodPost, c.endpoint("/public/otp/certificate"), payload)
	if err != nil {
		return "", err
	}
	otp, err := decodeOTP(body)
	if err != nil {
		return "", malformed(op, code, err)
	}
	return otp, nil
}

// ServiceStatus is the status of a registered RADKit service.
type ServiceStatus struct {
	// ServiceID is the service's ID as the upstream reports it.
	ServiceID string
	// Active reports whether the service is enabled.
	Active bool
	// Online reports whether the service is connected.
	Online bool
}

// ServiceStatus returns the status of a registered service. serviceID is
// sent as one escaped path segment, whatever it contains; it must not be
// empty, "." or "..".
func (c *Client) ServiceStatus(ctx context.Context, serviceID string) (ServiceStatus, error) {
	const op = OpStatus
	if err := c.checkOpen(op); err != nil {
		return ServiceStatus{}, err
	}
	if serviceID == "" || serviceID == "." || serviceID == ".." {
		return ServiceStatus{}, fmt.Errorf("upstream: status: %w: service ID must not be empty, \".\" or \"..\"", ErrInvalidArgument)
	}
	code, body, err := c.call(ctx, op, http.MethodGet, c.endpoint("/public/admin/service/status/", serviceID), nil)
	if err != nil {
		return ServiceStatus{}, err
	}
	st, err := decodeStatus(body)
	if err != nil {
		return ServiceStatus{}, malformed(op, code, err)
	}
	return st, nil
}

// RevokeToken revokes an access token at the discovered revocation
// endpoint, authenticated with the client credentials. When it is the
// cached access token, the cache drops it. Any 2xx answer is success.
func (c *Client) RevokeToken(ctx context.Context, tok string) error {
	const op = OpRevoke
	if err := c.checkOpen(op); err != nil {
		return err
	}
	if c.clientID == "" {
		return fmt.Errorf("upstream: revoke: %w", ErrRevokeNeedsClientCredentials)
	}
	if tok == "" {
		return fmt.Errorf("upstream: revoke: %w: empty token", ErrInvalidArgument)
	}
	ep, err := c.discover(ctx)
	if err != nil {
		return err
	}
	u := *ep.revoke
	q := u.Query()
	q.Set("token", tok) // as the guide shows; RFC 7009 servers read the form body
	u.RawQuery = q.Encode()
	form := url.Values{"token": {tok}}.Encode()
	req, st, err := c.newRequest(ctx, http.MethodPost, &u, []byte(form), "application/x-www-form-urlencoded")
	if err != nil {
		return err
	}
	// Escaped as RFC 6749 section 2.3.1 says, like x/oauth2 does for the
	// token endpoint, so both endpoints see the same credentials.
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	resp, body, err := c.roundTrip(req, st, op)
	if err != nil {
		return err
	}
	reportAnswer(ctx, resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(op, resp.StatusCode, resp.Header, body, c.now())
	}
	if c.tokens.dropAccess(tok) {
		c.log.Info("upstream: revoked the cached access token")
	}
	return nil
}

// call makes an authenticated API call and returns the 2xx answer's status
// and body. On a 401 it drops the token, gets a new one and retries once.
func (c *Client) call(ctx context.Context, op Op, method string, u *url.URL, payload []byte) (int, []byte, error) {
	contentType := ""
	if payload != nil {
		contentType = "application/json"
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.get(ctx, op)
		if err != nil {
			return 0, nil, err
		}
		req, st, err := c.newRequest(ctx, method, u, payload, contentType)
		if err != nil {
			return 0, nil, err
		}
		req.Header["Authorization"] = tok.authorization
		resp, body, err := c.roundTrip(req, st, op)
		if err != nil {
			return 0, nil, err
		}
		reportAnswer(ctx, resp.StatusCode)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.log.Debug("upstream: access token rejected; fetching a new one", "op", op)
			c.tokens.invalidate(tok)
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return 0, nil, newError(op, resp.StatusCode, resp.Header, body, c.now())
		}
		return resp.StatusCode, body, nil
	}
}

// newRequest builds a request for u (used as is, so that an escaped path
// segment stays one segment) with our standard headers. The request carries
// a send trace (see withSendTrace) for roundTrip, so that roundTrip need
// not copy the request to add it. Header values are shared slices of one
// element (len == cap, so an Add elsewhere copies rather than writes into
// them): a call allocates its header map, not one slice per header.
func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, body []byte, contentType string) (*http.Request, *sendTrace, error) {
	ctx, st := withSendTrace(ctx)
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, "", bytes.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(ctx, method, "", nil)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: building request: %w", err)
	}
	req.URL = u
	req.Host = u.Host
	req.Header["Accept"] = c.headers.accept
	req.Header["User-Agent"] = c.headers.userAgent
	switch contentType {
	case "":
	case "application/json":
		req.Header["Content-Type"] = c.headers.contentJSON
	default:
		req.Header.Set("Content-Type", contentType)
	}
	setRequestID(ctx, req)
	return req, st, nil
}

// headerValues are the header values every request shares (see newRequest).
type headerValues struct {
	accept, userAgent, contentJSON []string
}

func newHeaderValues(userAgent string) headerValues {
	one := func(v string) []string { return []string{v}[:1:1] }
	return headerValues{accept: one("application/json"), userAgent: one(userAgent), contentJSON: one("application/json")}
}

// setRequestID sends the request ID of the call in ctx, if any, as
// X-Request-ID, so that the upstream's records can be correlated with the
// caller's and the facade's. A shared (coalesced) request carries the ID
// of the call that started it.
func setRequestID(ctx context.Context, req *http.Request) {
	if id, ok := requestid.FromContext(ctx); ok {
		req.Header.Set("X-Request-ID", id)
	}
}

// roundTrip sends req and reads its body, bounded. Failures come back as
// *TransportError (with URLs redacted) or ErrMalformedResponse; any HTTP
// status is a success here.
func (c *Client) roundTrip(req *http.Request, st *sendTrace, op Op) (*http.Response, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, &TransportError{Op: op, BeforeSend: st.beforeSend(), Queued: st.queued(req.Context()), Err: sanitize(err)}
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, c.maxResponseBytes)
	if err != nil {
		if errors.Is(err, ErrMalformedResponse) {
			return nil, nil, malformed(op, resp.StatusCode, err)
		}
		return nil, nil, &TransportError{Op: op, Err: fmt.Errorf("reading response body: %w", sanitize(err))}
	}
	return resp, body, nil
}

// endpoint returns the base URL joined with path and, if given, one escaped
// path segment. It never parses raw input: RawPath carries the escaping.
//
// When nothing needed escaping (the usual case) it builds the path once and
// no RawPath: one string and the URL per call.
func (c *Client) endpoint(path string, segment ...string) *url.URL {
	u := *c.base
	rawBase := c.base.EscapedPath()
	var seg, rawSeg string
	for _, s := range segment {
		seg += s
		rawSeg += url.PathEscape(s)
	}
	u.Path = c.base.Path + path + seg
	u.RawPath = ""
	// An escaped form is never shorter than what it escapes, so the two
	// paths are equal exactly when both of their parts are.
	if rawBase != c.base.Path || rawSeg != seg {
		u.RawPath = rawBase + path + rawSeg
	}
	return &u
}

// checkOpen fails calls made after Close.
func (c *Client) checkOpen(op Op) error {
	if c.closed.Load() {
		return &TransportError{Op: op, BeforeSend: true, Err: ErrClosed}
	}
	return nil
}

// now is the clock for Retry-After dates.
func (c *Client) now() time.Time { return time.Now() }
