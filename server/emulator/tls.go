package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"
)

// certificateLifetime is how long a self-signed certificate is valid: long
// enough for any test or development session, short enough that a leaked
// one is soon worthless.
const certificateLifetime = 7 * 24 * time.Hour

// SelfSigned is a certificate made by SelfSignedCertificate: a self-signed
// ECDSA P-256 certificate that is its own CA.
type SelfSigned struct {
	// Certificate is the certificate with its private key, for a server's
	// tls.Config.
	Certificate tls.Certificate
	// PEM is the certificate (without its key) in PEM form: the CA bundle
	// that a client trusts to reach the emulator.
	PEM []byte
	// Pool holds the certificate, for a client's tls.Config.RootCAs.
	Pool *x509.CertPool
}

// SelfSignedCertificate makes a fresh self-signed ECDSA P-256 certificate
// for 127.0.0.1, ::1 and localhost, plus hosts (IP addresses or DNS
// names). It is its own CA, so that its PEM is the whole trust bundle.
func SelfSignedCertificate(hosts ...string) (*SelfSigned, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("emulator: TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("emulator: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "radkit-access-emulator", Organization: []string{"radkit-access-emulator (self-signed)"}},
		NotBefore:             now.Add(-time.Hour), // clock skew
		NotAfter:              now.Add(certificateLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("emulator: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("emulator: parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &SelfSigned{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		PEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Pool:        pool,
	}, nil
}

// ServerTLSConfig returns the TLS configuration the emulator serves with:
// cert, TLS 1.2 or later, and HTTP/2 preferred over HTTP/1.1 by ALPN.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// ServeOptions configure NewServer.
type ServeOptions struct {
	// TLS, when set, serves HTTPS with it (see ServerTLSConfig), speaking
	// HTTP/2 and HTTP/1.1; nil serves plain HTTP/1.1.
	TLS *tls.Config
	// MaxConcurrentStreams is the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
	// advertised to each client connection, for testing clients against
	// upstreams and proxies that allow fewer (commonly 100); 0 is Go's
	// default of 250.
	MaxConcurrentStreams int
}

// NewServer returns an http.Server for e whose ConnState hook counts the
// connections it accepts (see Connections) and, with opts.TLS, that
// serves HTTP/2 and HTTP/1.1 over TLS. The caller sets timeouts and calls
// Serve (not ServeTLS: the listener is wrapped by ServeListener).
func (e *Emulator) NewServer(opts ServeOptions) *http.Server {
	srv := &http.Server{Handler: e, ConnState: e.ConnState, TLSConfig: opts.TLS}
	if opts.TLS != nil {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		srv.Protocols = p
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: opts.MaxConcurrentStreams}
	}
	return srv
}

// ServeListener serves srv (from NewServer) on lis, over TLS when srv has
// a TLS configuration. It returns as http.Server.Serve does.
func ServeListener(srv *http.Server, lis net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(lis, "", "")
	}
	return srv.Serve(lis)
}

// transportStats counts connections and the protocol of each request.
type transportStats struct {
	mu          sync.Mutex
	connections int64
	protocols   map[string]int64 // by r.Proto, e.g. "HTTP/2.0"
}

func (s *transportStats) request(proto string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.protocols == nil {
		s.protocols = make(map[string]int64)
	}
	s.protocols[proto]++
}

// ConnState is an http.Server ConnState hook that counts the connections
// the emulator accepts (see Connections). NewServer installs it.
func (e *Emulator) ConnState(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		e.transport.mu.Lock()
		e.transport.connections++
		e.transport.mu.Unlock()
	}
}

// Connections reports how many connections the servers using ConnState
// have accepted.
func (e *Emulator) Connections() int64 {
	e.transport.mu.Lock()
	defer e.transport.mu.Unlock()
	return e.transport.connections
}

// Protocols reports how many API requests (admin calls excluded) arrived
// over each protocol, keyed by the request's protocol version as net/http
// reports it: "HTTP/1.1", "HTTP/2.0".
func (e *Emulator) Protocols() map[string]int64 {
	e.transport.mu.Lock()
	defer e.transport.mu.Unlock()
	out := make(map[string]int64, len(e.transport.protocols))
	for k, v := range e.transport.protocols {
		out[k] = v
	}
	return out
}
