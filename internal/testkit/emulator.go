package testkit

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// StartEmulator serves an emulator made from cfg on a loopback httptest
// server until tb ends, and returns both. A cfg without any seed data gets
// emulator.DefaultSeed, whose first client (DefaultSeed().Clients[0]) is
// the usual upstream credential. The emulator counts the connections the
// server accepts (Emulator.Connections).
func StartEmulator(tb testing.TB, cfg emulator.Config) (*emulator.Emulator, *httptest.Server) {
	tb.Helper()
	emu := newEmulator(tb, cfg)
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.ConnState = emu.ConnState
	srv.Start()
	tb.Cleanup(srv.Close)
	return emu, srv
}

// TLSEmulator is an emulator served over TLS on loopback, speaking HTTP/2
// and HTTP/1.1 (ALPN), with a fresh self-signed certificate.
type TLSEmulator struct {
	// Emulator is the emulator itself, for its faults and counters.
	Emulator *emulator.Emulator
	// Server serves it; Server.URL is its https:// base URL.
	Server *httptest.Server
	// Cert is the self-signed certificate it serves (127.0.0.1, ::1 and
	// localhost, plus any extra host names given).
	Cert *emulator.SelfSigned
	// CAFile is a file holding Cert's PEM: the CA bundle a client must
	// trust.
	CAFile string
}

// URL is the emulator's https:// base URL.
func (t *TLSEmulator) URL() string { return t.Server.URL }

// StartTLSEmulator is StartEmulator over TLS with HTTP/2: the certificate
// also names hosts, and its PEM is written to a file in tb's temporary
// directory.
func StartTLSEmulator(tb testing.TB, cfg emulator.Config, hosts ...string) *TLSEmulator {
	tb.Helper()
	return StartTLSEmulatorStreams(tb, cfg, 0, hosts...)
}

// StartTLSEmulatorStreams is StartTLSEmulator advertising maxStreams as
// its HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (0: Go's default of 250).
func StartTLSEmulatorStreams(tb testing.TB, cfg emulator.Config, maxStreams int, hosts ...string) *TLSEmulator {
	tb.Helper()
	emu := newEmulator(tb, cfg)
	cert, err := emulator.SelfSignedCertificate(hosts...)
	if err != nil {
		tb.Fatalf("self-signed certificate: %v", err)
	}
	caFile := filepath.Join(tb.TempDir(), "emulator-ca.pem")
	if err := os.WriteFile(caFile, cert.PEM, 0o600); err != nil {
		tb.Fatalf("write CA file: %v", err)
	}
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.ConnState = emu.ConnState
	srv.TLS = emulator.ServerTLSConfig(cert.Certificate)
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxStreams}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return &TLSEmulator{Emulator: emu, Server: srv, Cert: cert, CAFile: caFile}
}

func newEmulator(tb testing.TB, cfg emulator.Config) *emulator.Emulator {
	tb.Helper()
	if cfg.Seed.Services == nil && cfg.Seed.Clients == nil && cfg.Seed.APITokens == nil {
		cfg.Seed = emulator.DefaultSeed()
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		tb.Fatalf("emulator.New: %v", err)
	}
	return emu
}
