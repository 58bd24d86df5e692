package facade

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// DefaultUpstreamMaxInFlight is the default bound on upstream calls in
// flight (Config.UpstreamMaxInFlight): sized for one replica, far above
// what the upstream's rate limits let one replica use, far below what
// exhausts its memory.
const DefaultUpstreamMaxInFlight = 256

// upstreamMaxInFlight is cfg's bound on upstream calls in flight.
func upstreamMaxInFlight(cfg Config) int {
	if cfg.UpstreamMaxInFlight > 0 {
		return cfg.UpstreamMaxInFlight
	}
	return DefaultUpstreamMaxInFlight
}

// newUpstreamTransport builds the one transport of upstream requests from
// cfg: the tuned upstream.NewTransport, trusting the system roots plus
// cfg.UpstreamCAFile, through cfg.UpstreamProxy (the environment's proxy
// by default), with at most cfg.UpstreamMaxInFlight connections (over
// HTTP/1.1 each call in flight holds one; over HTTP/2 a connection holds
// as many as the upstream's stream limit, and upstream.SwapTransport's
// Pool opens the connections one at a time, see upstream.Pool).
func newUpstreamTransport(cfg Config) (*http.Transport, error) {
	t := upstream.NewTransport()
	if proxy := cfg.UpstreamProxy; proxy != nil {
		t.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	}
	t.MaxConnsPerHost = upstreamMaxInFlight(cfg)
	if cfg.UpstreamCAFile != "" {
		roots, err := upstream.LoadRoots(cfg.UpstreamCAFile)
		if err != nil {
			return nil, fmt.Errorf("facade: upstream trust: %w", err)
		}
		t.TLSClientConfig.RootCAs = roots
	}
	return t, nil
}

// loadUpstreamTrust reads the upstream CA file again and returns a new
// transport trusting what it holds now, for Reload to swap in (new
// connections use it, calls in flight finish on the connections they
// have); nil when there is no CA file.
func (f *Facade) loadUpstreamTrust() (*http.Transport, error) {
	if f.cfg.UpstreamCAFile == "" {
		return nil, nil
	}
	return newUpstreamTransport(f.cfg)
}

// checkUpstreamConnection checks the settings of the connection to the
// upstream: the bound on calls in flight, and no clear-text http:// to a
// host other than loopback unless InsecureUpstreamHTTP.
func (c *Config) checkUpstreamConnection() error {
	if c.UpstreamMaxInFlight < 0 {
		return configError("%s must not be negative", "UpstreamMaxInFlight")
	}
	if c.Emulator || c.UpstreamURL == "" {
		return nil
	}
	err := upstream.Config{BaseURL: c.UpstreamURL, AllowInsecureHTTP: c.InsecureUpstreamHTTP}.CheckBaseURL()
	if errors.Is(err, upstream.ErrInsecureHTTP) {
		return configError("%s is plain http:// to a host other than loopback: the credentials would travel in clear; use https://, or set %s",
			"UpstreamURL", "InsecureUpstreamHTTP")
	}
	return nil // other faults of the URL are the upstream client's to report
}

// limitUpstream returns the bound on upstream requests in flight,
// cfg.UpstreamMaxInFlight, with its metrics exported: one for the whole
// facade, every identity's requests counted against it. Its Transport
// goes outside the metrics and tracing of the wrapped transport, so that
// the upstream's latency does not include the wait for a slot.
func (f *Facade) limitUpstream() *upstream.Limiter {
	l := upstream.NewLimiter(upstreamMaxInFlight(f.cfg))
	f.metrics.ObserveUpstreamConcurrency(l.Limit(), l.InFlight, l.Waiting)
	return l
}
