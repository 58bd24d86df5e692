package callerauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/callerauth"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// whoAmI is an AccessService whose GetServiceStatus answers with the
// caller identity the interceptor established, in service_id.
type whoAmI struct {
	accessv1.UnimplementedAccessServiceServer
}

func (whoAmI) GetServiceStatus(ctx context.Context, _ *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	id, ok := callerauth.IdentityFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "handler ran without a caller identity")
	}
	return &accessv1.GetServiceStatusResponse{ServiceId: id}, nil
}

func newLogger() (*slog.Logger, *testkit.Buffer) {
	buf := &testkit.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// writeKeys writes a keys file the way an operator should: to a temporary
// file renamed into place, so that a reload never reads half a file.
func writeKeys(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newAuthenticator writes a keys file with lines and returns an
// Authenticator reading it, its path, and its log output.
func newAuthenticator(t *testing.T, trustCerts bool, lines ...string) (*callerauth.Authenticator, string, *testkit.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "caller-keys")
	writeKeys(t, path, lines...)
	logger, logs := newLogger()
	auth, err := callerauth.New(callerauth.Config{KeysFile: path, TrustClientCertificates: trustCerts, Logger: logger})
	if err != nil {
		t.Fatalf("callerauth.New: %v", err)
	}
	return auth, path, logs
}

// startGRPC serves whoAmI and the health service on 127.0.0.1 behind the
// facade's interceptor order (logger, then authentication) and returns the
// address and the server's log output.
func startGRPC(t *testing.T, auth *callerauth.Authenticator, creds credentials.TransportCredentials) (string, *testkit.Buffer) {
	t.Helper()
	logger, logs := newLogger()
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(server.UnaryLogger(logger), auth.UnaryServerInterceptor())}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	accessv1.RegisterAccessServiceServer(srv, whoAmI{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String(), logs
}

// dial connects to addr; nil creds means plaintext.
func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// whoami calls GetServiceStatus with the given authorization values and
// returns the identity the server established.
func whoami(ctx context.Context, conn *grpc.ClientConn, authorization ...string) (string, error) {
	for _, v := range authorization {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := accessv1.NewAccessServiceClient(conn).GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
	if err != nil {
		return "", err
	}
	return resp.GetServiceId(), nil
}

// checkUnauthenticated fails the test unless err is the status of a
// refused caller whose message says want and repeats none of forbidden.
func checkUnauthenticated(t *testing.T, err error, want string, forbidden ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded, want Unauthenticated")
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unauthenticated {
		t.Fatalf("error %v, want code Unauthenticated", err)
	}
	if !strings.Contains(st.Message(), want) {
		t.Errorf("message %q does not say %q", st.Message(), want)
	}
	for _, bad := range forbidden {
		if bad != "" && strings.Contains(st.Message(), bad) {
			t.Errorf("message %q repeats %q", st.Message(), bad)
		}
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.GetReason() != accessv1.ErrorReason_CALLER_UNAUTHENTICATED.String() || info.GetDomain() != server.ErrorDomain {
		t.Errorf("ErrorInfo %v, want reason %s in domain %s", info, accessv1.ErrorReason_CALLER_UNAUTHENTICATED.String(), server.ErrorDomain)
	}
}

// testPKI is a throw-away CA that issues server and client certificates.
type testPKI struct{ *testkit.PKI }

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	return &testPKI{testkit.NewPKI(t, name)}
}

// issue returns a certificate for subject signed by the CA: for 127.0.0.1
// as a server, or as a client.
func (p *testPKI) issue(t *testing.T, subject pkix.Name, serverCert bool) tls.Certificate {
	t.Helper()
	if serverCert {
		return p.IssueServer(t, subject).Pair
	}
	return p.IssueClient(t, subject).Pair
}

// serverTLS is what the facade serves with when both keys and client
// certificates are accepted.
func (p *testPKI) serverTLS(t *testing.T) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.issue(t, pkix.Name{CommonName: "facade"}, true)},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    p.Pool,
	}
}

// clientTLS trusts the CA and presents certs, if any.
func (p *testPKI) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool, Certificates: certs}
}

// isUnavailable reports whether err is a failed connection, as when the
// TLS handshake is refused.
func isUnavailable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable || errors.Is(err, context.DeadlineExceeded)
}
