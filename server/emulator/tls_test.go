package emulator_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestTLS checks the emulator over TLS: its certificate verifies for the
// loopback names, ALPN picks HTTP/2 or HTTP/1.1 as the client asks,
// discovery names https:// endpoints, and the counters record each
// request's protocol and each connection.
func TestTLS(t *testing.T) {
	te := testkit.StartTLSEmulator(t, emulator.Config{})
	tests := []struct {
		name      string
		http2     bool
		wantProto string
	}{
		{"h2", true, "HTTP/2.0"},
		{"http/1.1", false, "HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: te.Cert.Pool}, ForceAttemptHTTP2: tc.http2}
			if !tc.http2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no h2
			}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			before := te.Emulator.Protocols()[tc.wantProto]
			for _, host := range []string{te.URL(), strings.Replace(te.URL(), "127.0.0.1", "localhost", 1)} {
				resp, err := c.Get(host + "/.well-known/openid-configuration")
				if err != nil {
					t.Fatalf("GET discovery at %s: %v", host, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.Proto != tc.wantProto {
					t.Errorf("%s: proto %s, want %s", host, resp.Proto, tc.wantProto)
				}
				var doc map[string]string
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatalf("decode discovery %q: %v", body, err)
				}
				for _, k := range []string{"issuer", "token_endpoint", "revocation_endpoint"} {
					if !strings.HasPrefix(doc[k], "https://") {
						t.Errorf("%s = %q, want an https:// URL", k, doc[k])
					}
				}
			}
			if got := te.Emulator.Protocols()[tc.wantProto] - before; got != 2 {
				t.Errorf("Protocols()[%s] grew by %d, want 2", tc.wantProto, got)
			}
		})
	}

	// The admin API shows the same counters.
	resp, err := te.Server.Client().Get(te.URL() + "/_emulator/counters")
	if err != nil {
		t.Fatalf("GET counters: %v", err)
	}
	defer resp.Body.Close()
	var c emulator.Counters
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("decode counters: %v", err)
	}
	if c.Protocols["HTTP/2.0"] != 2 || c.Protocols["HTTP/1.1"] != 2 {
		t.Errorf("counters protocols = %v, want 2 of each", c.Protocols)
	}
	// Each client above opened its own connection, and so did this one.
	if c.Connections < 3 {
		t.Errorf("counters connections = %d, want at least 3", c.Connections)
	}
}

// TestSelfSignedCertificateHosts checks that extra hosts are named and that
// the certificate does not verify for a name it does not carry.
func TestSelfSignedCertificateHosts(t *testing.T) {
	cert, err := emulator.SelfSignedCertificate("upstream.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"localhost", true},
		{"upstream.test", true}, {"10.1.2.3", true},
		{"other.test", false},
	} {
		err := cert.Certificate.Leaf.VerifyHostname(tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("VerifyHostname(%s) = %v, want ok=%t", tc.host, err, tc.ok)
		}
	}
	if !strings.HasPrefix(string(cert.PEM), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("PEM = %.40q", cert.PEM)
	}
}
