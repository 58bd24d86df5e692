package facade

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// certificate holds the serving certificate and reloads it from its files
// on demand (SIGHUP), so that a renewed certificate is picked up without a
// restart or a dropped connection.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.use(cert)
	return c, nil
}

// load reads the files again, without putting them in use.
func (c *certificate) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s: %w", c.certFile, err)
	}
	return &cert, nil
}

// use puts cert in use for every handshake that starts afterwards.
func (c *certificate) use(cert *tls.Certificate) { c.current.Store(cert) }

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// serverTLS builds the TLS configuration shared by both listeners. With a
// client CA, client certificates are verified against it when given; a
// call without one is refused by caller authentication, not by the
// handshake, so that health checks, readiness probes and metrics stay
// reachable (SECURITY.md) and the refusal is a clear UNAUTHENTICATED
// instead of a handshake failure.
//
// The client CA is read again by Reload: each handshake takes the
// configuration that holds the CA pool in force when it starts (see
// clientCA).
func serverTLS(cert *certificate, ca *clientCA) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cert.get,
	}
	if ca == nil {
		return cfg, nil
	}
	pool, err := ca.load()
	if err != nil {
		return nil, err
	}
	ca.use(pool)
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.GetConfigForClient = ca.config
	return cfg, nil
}

// clientCA holds the pool of CAs that client certificates are verified
// against, read again on Reload.
type clientCA struct {
	file string
	// current is a whole server configuration holding the current pool:
	// tls.Config.ClientCAs cannot change under a running listener, but
	// GetConfigForClient can hand each handshake the newest.
	current atomic.Pointer[tls.Config]
	cert    *certificate
}

// load reads the CA file again, without putting it in use.
func (c *clientCA) load() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.file)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client CA %s: no PEM certificate found", c.file)
	}
	return pool, nil
}

// use puts pool in use for every handshake that starts afterwards.
func (c *clientCA) use(pool *x509.CertPool) {
	c.current.Store(&tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.cert.get,
		ClientCAs:      pool,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		// The configuration returned replaces the listener's, ALPN
		// included: both listeners speak HTTP/2 (gRPC) and the HTTP one
		// HTTP/1.1 too.
		NextProtos: []string{"h2", "http/1.1"},
	})
}

func (c *clientCA) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	return c.current.Load(), nil
}

// isLoopback reports whether a listen address can only be reached from
// this machine. An empty host (":9090"), 0.0.0.0, :: and any host name but
// "localhost" are reachable from the network.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
