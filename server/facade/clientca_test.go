package facade_test

import (
	"crypto/tls"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestClientCAReload: a reload puts a new client CA bundle in force for
// new handshakes: a client certificate of a CA added to the bundle is
// accepted, and one of a CA removed from it is refused.
func TestClientCAReload(t *testing.T) {
	a, b := newPKI(t), newPKI(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := a.write(t, dir)
	s := startSecured(t, facade.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, ClientCAFile: caFile}, a.clientTLS(true))

	// call makes one call on a new connection presenting client's
	// certificate.
	call := func(client *pki) error {
		cfg := &tls.Config{RootCAs: a.Pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{client.client.Pair}}
		conn, err := grpc.NewClient(s.f.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = accessv1.NewAccessServiceClient(conn).GetServiceStatus(callCtx(t), &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
		return err
	}
	writeCA := func(pems ...[]byte) {
		var all []byte
		for _, p := range pems {
			all = append(all, p...)
		}
		if err := os.WriteFile(caFile, all, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.f.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if err := call(a); err != nil {
		t.Fatalf("CA a's client before any reload: %v", err)
	}
	if err := call(b); err == nil {
		t.Fatal("CA b's client accepted before CA b is trusted")
	}
	writeCA(a.CAPEM, b.CAPEM)
	if err := call(b); err != nil {
		t.Errorf("CA b's client after CA b was added: %v", err)
	}
	writeCA(b.CAPEM)
	if err := call(a); err == nil {
		t.Error("CA a's client accepted after CA a was removed")
	}
	if err := call(b); err != nil {
		t.Errorf("CA b's client after CA a was removed: %v", err)
	}
}
