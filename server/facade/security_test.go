package facade_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// secured is a facade started by these tests, with the clients to call it.
type secured struct {
	f      *facade.Facade
	scheme string // "http" or "https"
	http   *http.Client
	conn   *grpc.ClientConn
	access accessv1.AccessServiceClient
	health healthpb.HealthClient
}

// startSecured starts a facade in emulator mode with cfg's security
// settings on loopback and waits until it is ready. clientTLS, when set, is
// what the test's clients use (TLS listeners).
func startSecured(t *testing.T, cfg facade.Config, clientTLS *tls.Config) *secured {
	t.Helper()
	cfg.Emulator = true
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	f, err := facade.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("facade.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	s := &secured{f: f, scheme: "http", http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}}
	creds := insecure.NewCredentials()
	if clientTLS != nil {
		s.scheme = "https"
		s.http.Transport = &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
		creds = credentials.NewTLS(clientTLS)
	}
	s.conn, err = grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	s.access = accessv1.NewAccessServiceClient(s.conn)
	s.health = healthpb.NewHealthClient(s.conn)
	t.Cleanup(func() {
		_ = s.conn.Close()
		s.http.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("facade not SERVING after 20s: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get sends an HTTP GET to the facade's HTTP listener with an optional
// bearer key.
func (s *secured) get(t *testing.T, path, key string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.scheme+"://"+s.f.HTTPAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body)
}

// status calls GetServiceStatus over gRPC with an optional bearer key.
func (s *secured) status(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	_, err := s.access.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "123-123-123"})
	return err
}

// writeKeys writes a caller keys file holding name and the hash of key.
func writeKeys(t *testing.T, path string, entries map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# caller keys: name sha256-hex\n")
	for name, key := range entries {
		sum := sha256.Sum256([]byte(key))
		fmt.Fprintf(&b, "%s %s\n", name, hex.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func TestRefusesNonLoopbackWithoutCallerAuth(t *testing.T) {
	// Each case fails before any listener opens, so nothing here is
	// reachable from the network, even for a moment.
	tests := []struct {
		name     string
		cfg      facade.Config
		wantText string
	}{
		{"grpc on all interfaces", facade.Config{GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0"}, "0.0.0.0:0"},
		{"http on all interfaces", facade.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: ":0"}, "InsecureNoCallerAuth"},
		{"ipv6 any", facade.Config{GRPCAddr: "[::]:0", HTTPAddr: "127.0.0.1:0"}, "CallerKeysFile"},
		{"host name", facade.Config{GRPCAddr: "example.com:9090", HTTPAddr: "127.0.0.1:0"}, "ClientCAFile"},
		{"client CA without a certificate", facade.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ClientCAFile: "ca.pem"}, "TLSCertFile"},
		{"keys file missing", facade.Config{GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0", CallerKeysFile: filepath.Join(t.TempDir(), "nope")}, "caller authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Emulator = true
			f, err := facade.New(context.Background(), tt.cfg)
			if err == nil {
				t.Fatalf("facade.New succeeded on %s / %s, want a refusal", f.GRPCAddr(), f.HTTPAddr())
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not mention %q", err, tt.wantText)
			}
		})
	}
}

func TestCallerKeys(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "callers.keys")
	const billingKey, opsKey = "k-billing-2b7Q9cXw0aVt3LmZ", "k-ops-Jd81nR4eYq5sWu"
	writeKeys(t, keysFile, map[string]string{"billing": billingKey})
	s := startSecured(t, facade.Config{CallerKeysFile: keysFile}, nil)

	t.Run("grpc", func(t *testing.T) {
		tests := []struct {
			name     string
			key      string
			wantCode codes.Code
		}{
			{"no credentials", "", codes.Unauthenticated},
			{"wrong key", "not-a-key", codes.Unauthenticated},
			{"valid key", billingKey, codes.OK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.status(tt.key)
				if got := status.Code(err); got != tt.wantCode {
					t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
				}
				if tt.wantCode == codes.Unauthenticated && reason(err) != "CALLER_UNAUTHENTICATED" {
					t.Errorf("reason = %q, want CALLER_UNAUTHENTICATED", reason(err))
				}
			})
		}
	})

	t.Run("http", func(t *testing.T) {
		tests := []struct {
			name, path, key string
			want            int
			challenge       string // WWW-Authenticate of a 401, exactly
		}{
			{"no credentials", "/v1/services/123-123-123/status", "", http.StatusUnauthorized, `Bearer realm="radkit-access-facade"`},
			{"wrong key", "/v1/services/123-123-123/status", "nope", http.StatusUnauthorized, `Bearer realm="radkit-access-facade", error="invalid_token"`},
			{"valid key", "/v1/services/123-123-123/status", billingKey, http.StatusOK, ""},
			{"liveness stays open", "/healthz", "", http.StatusOK, ""},
			{"readiness stays open", "/readyz", "", http.StatusOK, ""},
			{"metrics stay open", "/metrics", "", http.StatusOK, ""},
			{"openapi stays open", "/openapi.json", "", http.StatusOK, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := s.get(t, tt.path, tt.key)
				if resp.StatusCode != tt.want {
					t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, body, tt.want)
				}
				if tt.want == http.StatusUnauthorized {
					if !strings.Contains(body, "CALLER_UNAUTHENTICATED") {
						t.Errorf("401 body lacks the reason: %s", body)
					}
					if got := resp.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != tt.challenge {
						t.Errorf("WWW-Authenticate = %q, want exactly %q", got, tt.challenge)
					}
				}
			})
		}
	})

	t.Run("health stays open", func(t *testing.T) {
		resp, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "radkit.access.v1.AccessService"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health without credentials: %v %v", resp, err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		writeKeys(t, keysFile, map[string]string{"ops": opsKey})
		if err := s.f.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if err := s.status(opsKey); err != nil {
			t.Errorf("new key after reload: %v", err)
		}
		if err := s.status(billingKey); status.Code(err) != codes.Unauthenticated {
			t.Errorf("removed key after reload: %v, want Unauthenticated", err)
		}
		// A broken file keeps the keys in use.
		if err := os.WriteFile(keysFile, []byte("ops not-hex\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.f.Reload(); err == nil {
			t.Error("Reload of a broken file succeeded")
		}
		if err := s.status(opsKey); err != nil {
			t.Errorf("key after a failed reload: %v", err)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	pki := newPKI(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := pki.write(t, dir)
	s := startSecured(t, facade.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, ClientCAFile: caFile}, pki.clientTLS(true))

	if err := s.status(""); err != nil {
		t.Fatalf("gRPC with a client certificate: %v", err)
	}
	resp, body := s.get(t, "/v1/services/123-123-123/status", "")
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("HTTPS with a client certificate: %s HTTP %d %s", resp.Proto, resp.StatusCode, body)
	}

	// Without a client certificate the handshake succeeds, the call does not.
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.clientTLS(false)}}
	defer anon.CloseIdleConnections()
	for path, want := range map[string]int{
		"/v1/services/123-123-123/status": http.StatusUnauthorized,
		"/healthz":                        http.StatusOK,
		"/readyz":                         http.StatusOK,
	} {
		r, err := anon.Get("https://" + s.f.HTTPAddr() + path)
		if err != nil {
			t.Fatalf("GET %s without a client certificate: %v", path, err)
		}
		_ = r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("GET %s without a client certificate: HTTP %d, want %d", path, r.StatusCode, want)
		}
	}
	conn, err := grpc.NewClient(s.f.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(pki.clientTLS(false))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = accessv1.NewAccessServiceClient(conn).GetServiceStatus(context.Background(), &accessv1.GetServiceStatusRequest{ServiceId: "123-123-123"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without a client certificate: %v, want Unauthenticated", err)
	}

	// Plain text is refused on both listeners.
	if r, err := http.Get("http://" + s.f.HTTPAddr() + "/healthz"); err == nil {
		_ = r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Error("plain HTTP served on a TLS listener")
		}
	}

	// SIGHUP (Reload) picks up a renewed certificate for new connections.
	renewed := pki.issue(t, "renewed", false)
	if err := os.WriteFile(certFile, renewed.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, renewed.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.f.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c, err := tls.Dial("tcp", s.f.HTTPAddr(), pki.clientTLS(true))
	if err != nil {
		t.Fatalf("TLS dial after reload: %v", err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "renewed" {
		t.Errorf("server certificate after reload: CN=%s, want renewed", cn)
	}
}

func TestRateLimit(t *testing.T) {
	s := startSecured(t, facade.Config{RateLimit: 0.01, RateBurst: 2}, nil)
	for i := range 2 {
		if err := s.status(""); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := s.status("")
	if status.Code(err) != codes.ResourceExhausted || reason(err) != "CALLER_RATE_LIMITED" {
		t.Fatalf("call over the burst: %v, want ResourceExhausted CALLER_RATE_LIMITED", err)
	}
	resp, body := s.get(t, "/v1/services/123-123-123/status", "")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("HTTP over the limit: %d %s, want 429", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 Retry-After = %q, want a positive number of seconds", ra)
	}
	// Probes are never limited.
	for range 5 {
		if r, _ := s.get(t, "/readyz", ""); r.StatusCode != http.StatusOK {
			t.Fatalf("/readyz under the rate limit: %d", r.StatusCode)
		}
		if _, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health under the rate limit: %v", err)
		}
	}
}

func TestMetricsScrape(t *testing.T) {
	tests := []struct {
		name        string
		metricsAddr string
	}{
		{"on the HTTP listener", ""},
		{"on a listener of their own", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSecured(t, facade.Config{MetricsAddr: tt.metricsAddr}, nil)
			if err := s.status(""); err != nil {
				t.Fatal(err)
			}
			if r, body := s.get(t, "/v1/services/nope-nope/status", ""); r.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown service: HTTP %d %s", r.StatusCode, body)
			}
			base := "http://" + s.f.HTTPAddr()
			if tt.metricsAddr != "" {
				base = "http://" + s.f.MetricsAddr()
				for _, p := range []string{"/healthz", "/readyz"} {
					r, err := http.Get(base + p)
					if err != nil || r.StatusCode != http.StatusOK {
						t.Fatalf("GET %s on the metrics listener: %v %v", p, r, err)
					}
					_ = r.Body.Close()
				}
			}
			r, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			b, _ := io.ReadAll(r.Body)
			text := string(b)
			for _, want := range []string{
				`grpc_server_handled_total{grpc_code="OK",grpc_method="GetServiceStatus",grpc_service="radkit.access.v1.AccessService",grpc_type="unary"} 1`,
				`grpc_server_handled_total{grpc_code="NotFound",grpc_method="GetServiceStatus"`,
				`grpc_server_handling_seconds_bucket{grpc_method="GenerateOTP"`,
				`radkit_upstream_requests_total{code="200",identity="default",route="status"}`,
				`radkit_upstream_requests_total{code="404",identity="default",route="status"} 1`,
				`radkit_upstream_request_duration_seconds_bucket{identity="default",route="token"`,
				`radkit_upstream_token_fetches_total{identity="default",result="success"} 1`,
				`radkit_upstream_token_expiry_seconds{identity="default"} `,
				`radkit_upstream_breaker_state{identity="default"} 0`,
				`go_goroutines `,
				`process_resident_memory_bytes `,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		})
	}
}

// pki is a throw-away certificate authority with a server certificate for
// 127.0.0.1 and a client certificate.
type pki struct {
	*testkit.PKI
	server, client testkit.Cert
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{PKI: testkit.NewPKI(t, "test CA")}
	p.server = p.issue(t, "facade", false)
	p.client = p.issue(t, "billing", true)
	return p
}

// issue returns a certificate for cn of organisation Example: for
// 127.0.0.1 as a server, or as a client.
func (p *pki) issue(t *testing.T, cn string, client bool) testkit.Cert {
	t.Helper()
	subject := pkix.Name{CommonName: cn, Organization: []string{"Example"}}
	if client {
		return p.IssueClient(t, subject)
	}
	return p.IssueServer(t, subject)
}

// write puts the server's certificate and key and the CA in dir.
func (p *pki) write(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	certFile, keyFile, caFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	for name, b := range map[string][]byte{certFile: p.server.CertPEM, keyFile: p.server.KeyPEM, caFile: p.CAPEM} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, caFile
}

// clientTLS trusts the CA and, when withCert, presents the client
// certificate.
func (p *pki) clientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.client.Pair}
	}
	return c
}
