package upstream

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestPlainHTTPOnlyToLoopback checks that http:// is refused for any host
// but loopback unless AllowInsecureHTTP, for the base URL and for the
// endpoints that discovery names.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for _, tc := range []struct {
		base  string
		allow bool
		ok    bool
	}{
		{"http://127.0.0.1:8089", false, true},
		{"http://[::1]:8089", false, true},
		{"http://localhost:8089", false, true},
		{"http://LOCALHOST", false, true},
		{"https://radkit.example.com", false, true},
		{"http://radkit.example.com", false, false},
		{"http://10.0.0.1:8089", false, false},
		{"http://localhost.example.com", false, false},
		{"http://radkit.example.com", true, true},
	} {
		c, err := New(Config{BaseURL: tc.base, APIToken: testAPIToken, AllowInsecureHTTP: tc.allow})
		if tc.ok {
			if err != nil {
				t.Errorf("New(%s, allow=%t) = %v, want ok", tc.base, tc.allow, err)
				continue
			}
			c.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "credentials in clear") || !errors.Is(err, ErrInsecureHTTP) {
			t.Errorf("New(%s, allow=%t) = %v, want the clear-text refusal", tc.base, tc.allow, err)
		}
	}

	for _, allow := range []bool{false, true} {
		c, err := New(Config{BaseURL: "http://127.0.0.1:8089", APIToken: testAPIToken, AllowInsecureHTTP: allow})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.endpointURL("token_endpoint", "http://sso.example.com/oauth2/token", "/x")
		c.Close()
		if allow != (err == nil) {
			t.Errorf("remote http endpoint under a loopback base, allow=%t: %v", allow, err)
		}
	}
}

// TestLoadRoots checks that a CA file adds to the system roots and that an
// empty, unparsable or missing file is a clear error.
func TestLoadRoots(t *testing.T) {
	cert, err := emulator.SelfSignedCertificate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("ca.pem", cert.PEM)
	pool, err := LoadRoots(good)
	if err != nil {
		t.Fatalf("LoadRoots(good) = %v", err)
	}
	if _, err := cert.Certificate.Leaf.Verify(x509VerifyOptions(pool)); err != nil {
		t.Errorf("the CA file's certificate does not verify against the pool: %v", err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"empty", write("empty.pem", nil), "holds no PEM certificate"},
		{"garbage", write("garbage.pem", []byte("not a certificate\n")), "holds no PEM certificate"},
		{"missing", filepath.Join(dir, "none.pem"), "no such file"},
	} {
		if _, err := LoadRoots(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadRoots(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func x509VerifyOptions(pool *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}
}
