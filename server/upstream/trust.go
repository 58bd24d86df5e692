package upstream

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
)

// maxCAFileBytes bounds a CA bundle file: the system bundles are a few
// hundred KiB.
const maxCAFileBytes = 4 << 20

// LoadRoots returns the system's trusted roots (x509.SystemCertPool, whose
// source the standard library lets the environment replace on Linux) with
// the certificates of the PEM bundle caFile added: a private CA or the CA of a
// TLS-inspecting gateway. A file that cannot be read, or that holds no PEM
// certificate, is an error: trusting nothing new by mistake would fail
// every call later, with a less clear message.
func LoadRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		// Not fatal: on a system without a bundle the file alone is trusted.
		pool = x509.NewCertPool()
	}
	f, err := os.Open(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream: CA file: %w", err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("upstream: CA file %s: %w", caFile, err)
	}
	if len(pem) > maxCAFileBytes {
		return nil, fmt.Errorf("upstream: CA file %s is larger than %d bytes", caFile, maxCAFileBytes)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream: CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// SwapTransport is an http.RoundTripper that sends each request through
// its current *http.Transport, by way of a Pool of its own (see Pool),
// which Swap replaces while calls are in flight: new trusted roots after a
// reload take effect for new connections, and calls already sent finish on
// the connection they had.
type SwapTransport struct {
	current atomic.Pointer[Pool]
}

// NewSwapTransport returns a SwapTransport sending through t.
func NewSwapTransport(t *http.Transport) *SwapTransport {
	s := &SwapTransport{}
	s.current.Store(NewPool(t))
	return s
}

// RoundTrip sends req through the current transport.
func (s *SwapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.current.Load().RoundTrip(req)
}

// Current returns the transport requests go through now.
func (s *SwapTransport) Current() *http.Transport { return s.current.Load().Transport() }

// Pool returns the Pool requests go through now.
func (s *SwapTransport) Pool() *Pool { return s.current.Load() }

// Swap makes t the transport of every new request and retires the
// previous one's connections: the idle ones close now, the others of its
// Pool once they carry no request.
func (s *SwapTransport) Swap(t *http.Transport) {
	if old := s.current.Load(); old != nil && old.Transport() == t {
		return
	}
	if old := s.current.Swap(NewPool(t)); old != nil {
		// The old Transport's own connections (plain http://, or an
		// upstream without HTTP/2) close once idle, after its
		// IdleConnTimeout at the latest.
		old.Retire()
	}
}

// CloseIdleConnections closes the idle connections of the current
// transport.
func (s *SwapTransport) CloseIdleConnections() { s.current.Load().CloseIdleConnections() }

// ErrInsecureHTTP is matched by the error refusing a plain http:// URL to
// a host other than loopback (see Config.AllowInsecureHTTP).
var ErrInsecureHTTP = errors.New("plain http:// to a host other than loopback would send the credentials in clear: use https://, or allow insecure upstream HTTP explicitly")

// CheckBaseURL reports whether New accepts c.BaseURL, given
// c.AllowInsecureHTTP; a clear-text URL to a host other than loopback
// matches ErrInsecureHTTP. It never quotes user info.
func (c Config) CheckBaseURL() error {
	base, err := parseBaseURL(c.BaseURL)
	if err != nil {
		return err
	}
	if plainToRemote(base) && !c.AllowInsecureHTTP {
		return fmt.Errorf("upstream: config: BaseURL %q: %w", base.Redacted(), ErrInsecureHTTP)
	}
	return nil
}

// isLoopbackHost reports whether host (no port) can only be this machine:
// "localhost" or a loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainToRemote reports whether u is http:// to a host other than
// loopback.
func plainToRemote(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "http") && !isLoopbackHost(u.Hostname())
}
