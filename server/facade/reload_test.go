package facade_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestReloadAllOrNothing checks that a reload that fails in any part
// applies no part: a good caller keys file next to a mismatched TLS pair
// leaves the old keys and the old certificate in force, and the next good
// reload applies both.
func TestReloadAllOrNothing(t *testing.T) {
	pki := newPKI(t)
	dir := t.TempDir()
	certFile, keyFile, _ := pki.write(t, dir)
	keysFile := filepath.Join(dir, "callers.keys")
	const oldKey, newKey = "k-old-5Vb2Qw9eRt1yUi", "k-new-Hs7Kd3Lf0Pq8Zx"
	writeKeys(t, keysFile, map[string]string{"old": oldKey})
	s := startSecured(t, facade.Config{CallerKeysFile: keysFile, TLSCertFile: certFile, TLSKeyFile: keyFile}, pki.clientTLS(false))

	serverCN := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", s.f.HTTPAddr(), pki.clientTLS(false))
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	oldCN := serverCN()

	// A good keys file, and a certificate whose key is another's.
	writeKeys(t, keysFile, map[string]string{"new": newKey})
	renewed, other := pki.issue(t, "renewed", false), pki.issue(t, "other", false)
	if err := os.WriteFile(certFile, renewed.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.f.Reload(); err == nil {
		t.Fatal("Reload with a mismatched TLS pair succeeded")
	}
	if err := s.status(oldKey); err != nil {
		t.Errorf("old key after a failed reload: %v, want it still in force", err)
	}
	if err := s.status(newKey); status.Code(err) != codes.Unauthenticated {
		t.Errorf("new key after a failed reload: %v, want Unauthenticated (nothing applied)", err)
	}
	if cn := serverCN(); cn != oldCN {
		t.Errorf("server certificate after a failed reload: CN=%s, want the old %s", cn, oldCN)
	}

	// A broken keys file next to a good pair: the pair is not applied
	// either.
	if err := os.WriteFile(keyFile, renewed.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keysFile, []byte("new not-hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.f.Reload(); err == nil {
		t.Fatal("Reload with a broken keys file succeeded")
	}
	if cn := serverCN(); cn != oldCN {
		t.Errorf("server certificate after a failed reload: CN=%s, want the old %s", cn, oldCN)
	}
	if err := s.status(oldKey); err != nil {
		t.Errorf("old key after a failed reload: %v, want it still in force", err)
	}

	// Both good: both applied.
	writeKeys(t, keysFile, map[string]string{"new": newKey})
	if err := s.f.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := s.status(newKey); err != nil {
		t.Errorf("new key after a good reload: %v", err)
	}
	if err := s.status(oldKey); status.Code(err) != codes.Unauthenticated {
		t.Errorf("old key after a good reload: %v, want Unauthenticated", err)
	}
	if cn := serverCN(); cn != "renewed" {
		t.Errorf("server certificate after a good reload: CN=%s, want renewed", cn)
	}
}
