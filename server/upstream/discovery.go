package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/radkit/radkit-access-facade/internal/flight"
)

// wellKnownPath is where OpenID discovery lives, relative to the base URL.
const wellKnownPath = "/.well-known/openid-configuration"

// endpoints are the OAuth2 endpoints found by discovery, and what is built
// on them once.
type endpoints struct {
	token  *url.URL
	revoke *url.URL
	// credentials gets access tokens with the client credentials at the
	// token endpoint; nil when tokens come from the API token.
	credentials *clientcredentials.Config
}

// discover returns the discovered endpoints, running discovery if it has
// not succeeded yet. Concurrent callers share one discovery; a failure is
// not cached. Every error matches ErrDiscovery.
func (c *Client) discover(ctx context.Context) (*endpoints, error) {
	c.discMu.Lock()
	if ep := c.disc; ep != nil {
		c.discMu.Unlock()
		return ep, nil
	}
	if c.discClosed {
		c.discMu.Unlock()
		return nil, asDiscoveryError(&TransportError{Op: OpDiscovery, BeforeSend: true, Err: ErrClosed})
	}
	// Added before close is seen, so that Close waits for this caller and
	// so for any discovery it starts.
	c.wg.Add(1)
	c.discMu.Unlock()
	defer c.wg.Done()
	ep, err, _ := c.discoveries.Do(ctx, struct{}{}, c.runDiscovery)
	if err != nil && err == ctx.Err() {
		// ctx ended first (Do returns ctx's own error; discovery's are wrapped).
		return nil, asDiscoveryError(&TransportError{Op: OpDiscovery, BeforeSend: true, Err: err})
	}
	return ep, err
}

// runDiscovery is the shared discovery: it runs to its end even when its
// callers have left, and caches its success. With Config.Discovery the
// document comes from the Clients' shared Discovery.
func (c *Client) runDiscovery(ctx context.Context) (*endpoints, error) {
	ctx, cancel := bound(withoutSlot(ctx), c.lifetime)
	defer cancel()
	var ep *endpoints
	var err error
	if c.shared != nil {
		ep, err = c.shared.get(ctx, c.fetchDiscovery)
	} else {
		ep, err = c.fetchDiscovery(ctx)
	}
	if err == nil {
		ep = c.withCredentials(ep)
	}
	if err != nil {
		if c.lifetime.Err() == nil {
			c.failures.failed(OpDiscovery, err)
		}
		return nil, asDiscoveryError(err)
	}
	c.failures.succeeded(OpDiscovery)
	c.discMu.Lock()
	c.disc = ep
	c.discMu.Unlock()
	return ep, nil
}

// fetchDiscovery gets and checks the OpenID configuration.
func (c *Client) fetchDiscovery(ctx context.Context) (*endpoints, error) {
	req, st, err := c.newRequest(ctx, http.MethodGet, c.endpoint(wellKnownPath), nil, "")
	if err != nil {
		return nil, err
	}
	resp, body, err := c.roundTrip(req, st, OpDiscovery)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newError(OpDiscovery, resp.StatusCode, resp.Header, body, c.now())
	}
	doc, err := decodeDiscovery(body)
	if err != nil {
		return nil, malformed(OpDiscovery, resp.StatusCode, err)
	}
	if !sameBase(c.base, doc.Issuer) {
		return nil, fmt.Errorf("upstream: discovery: issuer %q does not match the configured base URL %q", doc.Issuer, c.base.String())
	}
	ep := &endpoints{}
	if ep.token, err = c.endpointURL("token_endpoint", doc.TokenEndpoint, "/oauth2/token"); err != nil {
		return nil, malformed(OpDiscovery, resp.StatusCode, err)
	}
	if ep.revoke, err = c.endpointURL("revocation_endpoint", doc.RevocationEndpoint, "/oauth2/revoke"); err != nil {
		return nil, malformed(OpDiscovery, resp.StatusCode, err)
	}
	return ep, nil
}

// withCredentials returns ep (as fetchDiscovery made it: the endpoints
// alone, which Clients may share) with c's own client-credentials
// configuration.
func (c *Client) withCredentials(ep *endpoints) *endpoints {
	own := &endpoints{token: ep.token, revoke: ep.revoke}
	if c.apiToken == "" {
		own.credentials = c.credentials(ep.token)
	}
	return own
}

// Discovery is the discovered endpoints of one upstream, shared by the
// Clients of several identities with the same BaseURL (Config.Discovery):
// the first Client to need them fetches the discovery document, concurrent
// ones wait for that fetch, and the others reuse its success. A failure
// is not kept. The zero Discovery is not usable; use NewDiscovery.
type Discovery struct {
	mu      sync.Mutex
	ep      *endpoints                         // the endpoints alone, no credentials
	fetches flight.Group[struct{}, *endpoints] // one fetch at a time
}

// NewDiscovery returns an empty Discovery.
func NewDiscovery() *Discovery { return &Discovery{} }

// get returns the shared endpoints, fetching them with fetch (one Client's
// fetchDiscovery) when none are held.
func (d *Discovery) get(ctx context.Context, fetch func(context.Context) (*endpoints, error)) (*endpoints, error) {
	d.mu.Lock()
	ep := d.ep
	d.mu.Unlock()
	if ep != nil {
		return ep, nil
	}
	ep, err, _ := d.fetches.Do(ctx, struct{}{}, func(ctx context.Context) (*endpoints, error) {
		ep, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.ep = ep
		d.mu.Unlock()
		return ep, nil
	})
	return ep, err
}

// credentials is the client-credentials configuration for a token
// endpoint. grant_type goes in the query, as the guide shows it, and in the
// form body, where RFC 6749 servers (and x/oauth2) put it.
func (c *Client) credentials(tokenURL *url.URL) *clientcredentials.Config {
	u := *tokenURL
	q := u.Query()
	q.Set("grant_type", "client_credentials")
	u.RawQuery = q.Encode()
	return &clientcredentials.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		TokenURL:     u.String(),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

// endpointURL checks a discovered endpoint, or falls back to base+path when
// the field is absent. Credentials go to these endpoints, so they must be
// absolute http(s) URLs and never downgrade https to http.
func (c *Client) endpointURL(field, raw, fallback string) (*url.URL, error) {
	if raw == "" {
		return c.endpoint(fallback), nil
	}
	u, err := url.Parse(raw)
	bad := func(why string) error {
		return fmt.Errorf("%w: %s %s", ErrMalformedResponse, field, why)
	}
	switch {
	case err != nil:
		return nil, bad("is not a URL")
	case !u.IsAbs() || u.Host == "":
		return nil, bad("is not an absolute URL")
	case u.User != nil:
		return nil, bad("has user info")
	case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https"):
		return nil, bad("is not http or https")
	case c.base.Scheme == "https" && !strings.EqualFold(u.Scheme, "https"):
		return nil, bad("downgrades https to http")
	case plainToRemote(u) && !c.allowInsecure:
		return nil, bad("is plain http to a host other than loopback")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}
