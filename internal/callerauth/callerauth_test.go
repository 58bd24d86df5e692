package callerauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/callerauth"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeKeys(t, good, "alice "+hashOf(aliceKey))
	bad := filepath.Join(dir, "bad")
	writeKeys(t, bad, "# ok", "alice "+aliceKey)
	tests := []struct {
		name    string
		cfg     callerauth.Config
		wantErr string // empty: New succeeds
	}{
		{"keys", callerauth.Config{KeysFile: good}, ""},
		{"certificates only", callerauth.Config{TrustClientCertificates: true}, ""},
		{"keys and certificates", callerauth.Config{KeysFile: good, TrustClientCertificates: true}, ""},
		{"neither", callerauth.Config{}, "no caller could authenticate"},
		{"missing file", callerauth.Config{KeysFile: filepath.Join(dir, "nope")}, "open keys file"},
		{"invalid file", callerauth.Config{KeysFile: bad}, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := callerauth.New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one saying %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), aliceKey):
				t.Fatalf("New error repeats the key: %v", err)
			}
		})
	}
}

// TestInterceptor authenticates calls from a real gRPC client to a real
// server on loopback, with API keys only.
func TestInterceptor(t *testing.T) {
	auth, _, _ := newAuthenticator(t, false,
		"# test callers",
		"alice "+hashOf(aliceKey),
		"bob.batch@prod "+hashOf(bobKey),
	)
	addr, logs := startGRPC(t, auth, nil)
	conn := dial(t, addr, nil)

	tests := []struct {
		name          string
		authorization []string
		wantID        string // empty: refused, with wantMsg
		wantMsg       string
	}{
		{"no credentials", nil, "", "missing credentials: send `authorization: Bearer <key>`"},
		{"right key", []string{"Bearer " + aliceKey}, "key:alice", ""},
		{"second key", []string{"Bearer " + bobKey}, "key:bob.batch@prod", ""},
		{"scheme in lower case", []string{"bearer " + aliceKey}, "key:alice", ""},
		{"scheme in upper case, extra spaces", []string{"BEARER   " + aliceKey + "  "}, "key:alice", ""},
		{"wrong key", []string{"Bearer " + carolKey}, "", "invalid caller key"},
		{"hash instead of key", []string{"Bearer " + hashOf(aliceKey)}, "", "invalid caller key"},
		{"key too long", []string{"Bearer " + strings.Repeat("a", callerauth.MaxKeyLen+1)}, "", "invalid caller key"},
		{"no scheme", []string{aliceKey}, "", "unsupported authorization scheme"},
		{"basic scheme", []string{"Basic " + aliceKey}, "", "unsupported authorization scheme"},
		{"scheme without key", []string{"Bearer"}, "", "malformed authorization"},
		{"scheme with blank key", []string{"Bearer    "}, "", "malformed authorization"},
		{"two values", []string{"Bearer " + aliceKey, "Bearer " + bobKey}, "", "more than one authorization value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := whoami(t.Context(), conn, tt.authorization...)
			if tt.wantID == "" {
				checkUnauthenticated(t, err, tt.wantMsg, aliceKey, bobKey, carolKey)
				return
			}
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if id != tt.wantID {
				t.Errorf("identity %q, want %q", id, tt.wantID)
			}
		})
	}

	// The per-call log line names the caller and never carries a key.
	out := logs.String()
	if !strings.Contains(out, "caller=key:alice") || !strings.Contains(out, "caller=key:bob.batch@prod") {
		t.Errorf("log lines do not name the callers:\n%s", out)
	}
	for _, key := range []string{aliceKey, bobKey, carolKey} {
		if strings.Contains(out, key) {
			t.Errorf("a key appears in the log:\n%s", out)
		}
	}
}

// TestHealthNeedsNoCredentials checks that probes work without a key.
func TestHealthNeedsNoCredentials(t *testing.T) {
	auth, _, _ := newAuthenticator(t, false, "alice "+hashOf(aliceKey))
	addr, _ := startGRPC(t, auth, nil)
	conn := dial(t, addr, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check without credentials: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health status %v, want SERVING", resp.GetStatus())
	}
	// The same connection is refused on the guarded service.
	_, err = whoami(t.Context(), conn)
	checkUnauthenticated(t, err, "missing credentials")
}

// TestReloadDuringCalls reloads the keys file over and over while callers
// keep calling: a key present in every version of the file never fails,
// and once the reloads are done the last file's keys are in force.
func TestReloadDuringCalls(t *testing.T) {
	aliceLine, bobLine, carolLine := "alice "+hashOf(aliceKey), "bob "+hashOf(bobKey), "carol "+hashOf(carolKey)
	auth, path, _ := newAuthenticator(t, false, aliceLine, bobLine)
	addr, _ := startGRPC(t, auth, nil)
	conn := dial(t, addr, nil)

	const callers = 4
	const reloads = 40
	var calls atomic.Int64
	failures := make(chan error, callers)
	stop := testkit.Loop(callers, func(int) bool {
		id, err := whoami(t.Context(), conn, "Bearer "+aliceKey)
		if err == nil && id != "key:alice" {
			err = fmt.Errorf("identity %q", id)
		}
		if err != nil {
			failures <- err
			return false
		}
		calls.Add(1)
		return true
	})
	for i := range reloads {
		if i%2 == 0 {
			writeKeys(t, path, carolLine, aliceLine)
		} else {
			writeKeys(t, path, aliceLine, bobLine)
		}
		if err := auth.Reload(); err != nil {
			t.Errorf("reload %d: %v", i, err)
		}
		// Let at least one call complete between reloads, so that calls
		// and reloads interleave however slow the machine.
		for seen := calls.Load(); calls.Load() == seen && len(failures) == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	stop()
	close(failures)
	for err := range failures {
		t.Errorf("alice's call failed during reloads: %v", err)
	}
	if n := calls.Load(); n < reloads {
		t.Errorf("%d calls completed, want at least %d", n, reloads)
	}

	// Now a file without bob: his key stops working, carol's starts.
	writeKeys(t, path, aliceLine, carolLine)
	if err := auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if id, err := whoami(t.Context(), conn, "Bearer "+carolKey); err != nil || id != "key:carol" {
		t.Errorf("carol after reload: %q, %v", id, err)
	}
	_, err := whoami(t.Context(), conn, "Bearer "+bobKey)
	checkUnauthenticated(t, err, "invalid caller key", bobKey)
}

// TestInvalidReloadKeepsKeys checks that a file that does not parse, or is
// gone, leaves the keys in force and says why without repeating a key.
func TestInvalidReloadKeepsKeys(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(t *testing.T, path string)
		wantErr string
	}{
		{"raw key instead of hash", func(t *testing.T, path string) {
			writeKeys(t, path, "alice "+hashOf(aliceKey), "carol "+carolKey)
		}, "line 2"},
		{"duplicate name", func(t *testing.T, path string) {
			writeKeys(t, path, "alice "+hashOf(aliceKey), "alice "+hashOf(carolKey))
		}, "line 2: name already used on line 1"},
		{"file removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "open keys file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, path, _ := newAuthenticator(t, false, "alice "+hashOf(aliceKey), "bob "+hashOf(bobKey))
			addr, _ := startGRPC(t, auth, nil)
			conn := dial(t, addr, nil)

			tt.break_(t, path)
			err := auth.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload error = %v, want one saying %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), carolKey) {
				t.Errorf("Reload error repeats a key: %v", err)
			}
			if n := auth.Keys().Len(); n != 2 {
				t.Errorf("%d keys in force, want the old 2", n)
			}
			for key, want := range map[string]string{aliceKey: "key:alice", bobKey: "key:bob"} {
				if id, err := whoami(t.Context(), conn, "Bearer "+key); err != nil || id != want {
					t.Errorf("after failed reload: %q, %v; want %q", id, err, want)
				}
			}
			_, err = whoami(t.Context(), conn, "Bearer "+carolKey)
			checkUnauthenticated(t, err, "invalid caller key", carolKey)
		})
	}
}

// TestClientCertificates authenticates over mutual TLS, with keys accepted
// too, as the facade runs with both --client-ca and --caller-keys-file.
func TestClientCertificates(t *testing.T) {
	pki := newPKI(t, "test CA")
	billing := pki.issue(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, false)
	anonymous := pki.issue(t, pkix.Name{}, false)
	foreign := newPKI(t, "other CA").issue(t, pkix.Name{CommonName: "intruder"}, false)

	type client struct {
		certs         []tls.Certificate
		authorization []string
	}
	tests := []struct {
		name       string
		trustCerts bool
		client     client
		wantID     string // empty: refused with wantMsg
		wantMsg    string
	}{
		{"certificate", true, client{certs: []tls.Certificate{billing}}, "cert:CN=billing,O=Example", ""},
		{"certificate and key: the key names the caller", true,
			client{[]tls.Certificate{billing}, []string{"Bearer " + aliceKey}}, "key:alice", ""},
		{"certificate and wrong key", true,
			client{[]tls.Certificate{billing}, []string{"Bearer " + carolKey}}, "", "invalid caller key"},
		{"key over TLS, no certificate", true, client{authorization: []string{"Bearer " + aliceKey}}, "key:alice", ""},
		{"neither", true, client{}, "", "missing credentials: send `authorization: Bearer <key>` or a client certificate"},
		{"certificate with empty subject", true, client{certs: []tls.Certificate{anonymous}}, "", "empty subject"},
		{"certificates not trusted", false, client{certs: []tls.Certificate{billing}}, "", "missing credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, _, _ := newAuthenticator(t, tt.trustCerts, "alice "+hashOf(aliceKey))
			addr, _ := startGRPC(t, auth, credentials.NewTLS(pki.serverTLS(t)))
			conn := dial(t, addr, credentials.NewTLS(pki.clientTLS(tt.client.certs...)))
			id, err := whoami(t.Context(), conn, tt.client.authorization...)
			if tt.wantID == "" {
				checkUnauthenticated(t, err, tt.wantMsg, aliceKey, carolKey)
				return
			}
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if id != tt.wantID {
				t.Errorf("identity %q, want %q", id, tt.wantID)
			}
		})
	}

	t.Run("certificate from another CA", func(t *testing.T) {
		auth, _, _ := newAuthenticator(t, true, "alice "+hashOf(aliceKey))
		addr, _ := startGRPC(t, auth, credentials.NewTLS(pki.serverTLS(t)))
		// Offer the certificate whatever CAs the server asks for: Go's
		// client would otherwise quietly send none.
		cfg := pki.clientTLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
		conn := dial(t, addr, credentials.NewTLS(cfg))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := whoami(ctx, conn)
		if !isUnavailable(err) {
			t.Fatalf("call with a foreign certificate: %v, want the handshake refused", err)
		}
	})
}

// TestGatewayHTTP authenticates HTTP callers through the in-process
// gateway: the Authorization header and the TLS client certificate reach
// the interceptor as they do for gRPC callers, refusals are 401, and the
// probes stay open.
func TestGatewayHTTP(t *testing.T) {
	auth, _, logs := newAuthenticator(t, true, "alice "+hashOf(aliceKey))
	logger, _ := newLogger()
	h, err := gateway.New(t.Context(), gateway.Config{
		Service:     whoAmI{},
		Interceptor: gateway.Chain(server.UnaryLogger(logger), auth.UnaryServerInterceptor()),
		Ready:       func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	pki := newPKI(t, "test CA")
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = pki.serverTLS(t)
	srv.StartTLS()
	defer srv.Close()
	billing := pki.issue(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, false)

	tests := []struct {
		name          string
		path          string
		certs         []tls.Certificate
		authorization string
		wantCode      int
		wantBody      string
	}{
		{"key", "/v1/services/x/status", nil, "Bearer " + aliceKey, http.StatusOK, `"service_id":"key:alice"`},
		{"certificate", "/v1/services/x/status", []tls.Certificate{billing}, "", http.StatusOK, `"service_id":"cert:CN=billing,O=Example"`},
		{"nothing", "/v1/services/x/status", nil, "", http.StatusUnauthorized, accessv1.ErrorReason_CALLER_UNAUTHENTICATED.String()},
		{"wrong key", "/v1/services/x/status", nil, "Bearer " + carolKey, http.StatusUnauthorized, "invalid caller key"},
		{"healthz", "/healthz", nil, "", http.StatusOK, "ok"},
		{"readyz", "/readyz", nil, "", http.StatusOK, "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: pki.clientTLS(tt.certs...)}
			defer tr.CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%d %s, want %d with %s", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if strings.Contains(string(body), carolKey) || strings.Contains(string(body), aliceKey) {
				t.Errorf("the body repeats a key: %s", body)
			}
			if tt.wantCode == http.StatusUnauthorized {
				var st struct {
					Code int `json:"code"`
				}
				if err := json.Unmarshal(body, &st); err != nil || codes.Code(st.Code) != codes.Unauthenticated {
					t.Errorf("body %s: want a google.rpc.Status with code %d (%v)", body, codes.Unauthenticated, err)
				}
			}
		})
	}
	if strings.Contains(logs.String(), aliceKey) {
		t.Error("a key appears in the authenticator's log")
	}
}

// TestAuthenticateWithoutInterceptor checks Authenticate on a context
// with no call in it at all: the caller is missing, not an error of ours.
func TestAuthenticateWithoutInterceptor(t *testing.T) {
	auth, _, _ := newAuthenticator(t, true, "alice "+hashOf(aliceKey))
	_, err := auth.Authenticate(context.Background())
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Authenticate(empty context) = %v, want Unauthenticated", err)
	}
	if _, ok := callerauth.IdentityFrom(context.Background()); ok {
		t.Error("IdentityFrom found an identity in an empty context")
	}
}
