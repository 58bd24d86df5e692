// Package callerauth authenticates the facade's callers: by bearer API key,
// by verified TLS client certificate, or either.
//
// # API keys
//
// Callers send their key as gRPC metadata (or, through the HTTP gateway, as
// the HTTP header) `authorization: Bearer <key>`; the scheme is matched
// case-insensitively. The facade holds only the SHA-256 of each key, in a
// keys file with one caller per line:
//
//	# name          sha256 of the key, hex
//	billing-batch   947317540ad3dede8c61b70cbf4d4242b77a084b074bb5e040bfe3c842fd8f42
//
// An operator makes a key and its line like this, gives $key to the caller
// over a secure channel, and keeps only the hash:
//
//	key=$(head -c 32 /dev/urandom | base64 | tr -d '=+/')
//	printf '%s' "$key" | sha256sum        # the hash for the keys file
//
// Keys should be long and random (32 random bytes as above): the file holds
// unsalted hashes, which protect a strong key but not a guessable one. The
// presented key is hashed as sent, byte for byte, and compared against every
// stored hash in constant time. A key caller's identity is "key:<name>".
//
// The file is read by New and again by Reload, which the facade calls on
// SIGHUP as one part of its all-or-nothing reload. A reload that fails keeps the keys in force; one that
// succeeds takes effect for the next call without disturbing calls in
// flight.
//
// # Client certificates
//
// With Config.TrustClientCertificates, a caller whose TLS client
// certificate the listener verified (tls.VerifyClientCertIfGiven or
// tls.RequireAndVerifyClientCert with ClientCAs) is identified by the leaf
// certificate's subject in RFC 2253 form: "cert:CN=billing,O=Example". The
// gRPC server sees the certificate in the call's peer; the HTTP gateway puts
// an equivalent peer in the context of each request.
//
// When a call carries both, the key decides: a presented key must be valid,
// and names the caller, so that a proxy holding one client certificate can
// pass on the keys of the many callers behind it.
//
// # What is guarded
//
// UnaryServerInterceptor guards the methods of radkit.access.v1.AccessService
// only. grpc.health.v1.Health stays open so that load balancers and
// orchestrators can probe without credentials, and server reflection, a
// streaming service that unary interceptors never see, describes only the
// public contract. The HTTP /healthz, /readyz and /metrics handlers do not
// go through gRPC interceptors at all.
package callerauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/server"
)

// OpenPrefix is the full-method prefix of the only unary calls that
// UnaryServerInterceptor lets through unauthenticated: the health service,
// so that probes need no secret. Every other unary call is authenticated,
// so that a service added later is guarded by default. (Reflection is a
// streaming service and never reaches a unary interceptor; it describes
// the public contract only.)
const OpenPrefix = "/grpc.health.v1.Health/"

// Identity prefixes: every identity says how the caller proved it.
const (
	// KeyIdentityPrefix precedes the name of a caller who sent an API key.
	KeyIdentityPrefix = "key:"
	// CertIdentityPrefix precedes the subject of a caller who presented a
	// verified client certificate.
	CertIdentityPrefix = "cert:"
)

// Config configures an Authenticator.
type Config struct {
	// KeysFile is the path of the keys file (see the package
	// documentation). Empty means no API keys are accepted.
	KeysFile string
	// TrustClientCertificates accepts a TLS client certificate that the
	// listener verified as proof of identity. Only set it when the
	// listeners verify client certificates against a CA that issues them
	// to callers only.
	TrustClientCertificates bool
	// Logger receives reload outcomes. Nil discards.
	Logger *slog.Logger
}

// Authenticator decides who is calling. It is safe for concurrent use;
// Reload may run while calls are authenticated.
type Authenticator struct {
	keysFile   string
	trustCerts bool
	logger     *slog.Logger

	keys     atomic.Pointer[Keys] // never nil after New
	reloadMu sync.Mutex           // one Reload at a time, so the newest read wins
}

// New returns an Authenticator with the keys read from cfg.KeysFile. It
// fails when the file cannot be read or parsed, or when cfg accepts neither
// keys nor certificates, which would refuse every call.
func New(cfg Config) (*Authenticator, error) {
	if cfg.KeysFile == "" && !cfg.TrustClientCertificates {
		return nil, errors.New("callerauth: no keys file and client certificates not trusted: no caller could authenticate")
	}
	a := &Authenticator{
		keysFile:   cfg.KeysFile,
		trustCerts: cfg.TrustClientCertificates,
		logger:     cfg.Logger,
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.keys.Store(&Keys{})
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Keys returns the keys in force.
func (a *Authenticator) Keys() *Keys {
	return a.keys.Load()
}

// Reload reads the keys file again and, if it parses, puts its keys in
// force for every call that starts afterwards. If it does not, the keys in
// force stay and the error says why. Without a keys file it does nothing.
func (a *Authenticator) Reload() error {
	if a.keysFile == "" {
		return nil
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	keys, err := readKeysFile(a.keysFile, a.logger)
	if err != nil {
		return err
	}
	a.keys.Store(keys)
	return nil
}

func readKeysFile(path string, logger *slog.Logger) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("callerauth: open keys file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o002 != 0 {
		logger.Warn("caller keys file is writable by anyone: any local user can add a caller", "path", path)
	}
	keys, err := ParseKeys(f)
	if err != nil {
		return nil, fmt.Errorf("callerauth: keys file %s: %w", path, err)
	}
	return keys, nil
}

// Authenticate returns the identity of the caller of the call in ctx:
// "key:<name>" for a valid API key in the authorization metadata, else
// "cert:<subject>" for a verified client certificate when those are
// trusted. Otherwise it returns a status error with code Unauthenticated
// and ErrorInfo reason CALLER_UNAUTHENTICATED, whose message says what
// was wrong without repeating what the caller sent.
func (a *Authenticator) Authenticate(ctx context.Context) (string, error) {
	values := metadata.ValueFromIncomingContext(ctx, "authorization")
	switch {
	case len(values) > 1:
		return "", unauthenticated("more than one authorization value: send exactly one `authorization: Bearer <key>`")
	case len(values) == 1:
		return a.checkKey(values[0])
	}
	if a.trustCerts {
		if id, ok, err := certIdentity(ctx); ok || err != nil {
			return id, err
		}
		return "", unauthenticated("missing credentials: send `authorization: Bearer <key>` or a client certificate")
	}
	return "", unauthenticated("missing credentials: send `authorization: Bearer <key>`")
}

// checkKey authenticates an authorization value.
func (a *Authenticator) checkKey(value string) (string, error) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(value), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", unauthenticated("unsupported authorization scheme: send `authorization: Bearer <key>`")
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return "", unauthenticated("malformed authorization: send `authorization: Bearer <key>`")
	}
	name, ok := a.keys.Load().Lookup(key)
	if !ok {
		return "", unauthenticated("invalid caller key")
	}
	return KeyIdentityPrefix + name, nil
}

// certIdentity returns the identity of a verified client certificate in
// the call's peer; ok is false when there is none.
func certIdentity(ctx context.Context) (id string, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return "", false, nil
	}
	var chains [][]*x509.Certificate
	switch info := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		chains = info.State.VerifiedChains
	case *credentials.TLSInfo:
		if info != nil {
			chains = info.State.VerifiedChains
		}
	}
	// Only verified chains count: a certificate the listener merely
	// received (tls.RequestClientCert) proves nothing.
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", false, nil
	}
	subject := chains[0][0].Subject.String()
	if subject == "" {
		return "", false, unauthenticated("client certificate has an empty subject: it cannot name the caller")
	}
	return CertIdentityPrefix + subject, true, nil
}

// unauthenticated builds the status of an authentication failure.
func unauthenticated(msg string) error {
	return reason.Error(reason.CallerUnauthenticated, msg)
}

type identityKey struct{}

// IdentityFrom returns the caller identity that UnaryServerInterceptor
// established for the call in ctx.
func IdentityFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(identityKey{}).(string)
	return id, ok
}

// UnaryServerInterceptor authenticates every unary call but health checks
// (see OpenPrefix) and refuses those that fail with Unauthenticated, which
// the HTTP gateway answers with 401. On success it records the identity for
// the call's log line (server.SetCaller) and in the context for the
// handler and later interceptors (IdentityFrom).
//
// It must run inside server.UnaryLogger, so that the log line of a call
// names its caller, and before anything that limits or audits per caller.
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, OpenPrefix) {
			return handler(ctx, req)
		}
		id, err := a.Authenticate(ctx)
		if err != nil {
			return nil, err
		}
		server.SetCaller(ctx, id)
		return handler(context.WithValue(ctx, identityKey{}, id), req)
	}
}

// reflectionPrefix starts the full methods of server reflection (v1 and
// v1alpha), which stays open as it was before streams were intercepted: it
// describes the public contract only.
const reflectionPrefix = "/grpc.reflection."

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls: a
// stream is authenticated once, when it opens. Health watches and server
// reflection pass unauthenticated.
func (a *Authenticator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if strings.HasPrefix(info.FullMethod, OpenPrefix) || strings.HasPrefix(info.FullMethod, reflectionPrefix) {
			return handler(srv, ss)
		}
		ctx := ss.Context()
		id, err := a.Authenticate(ctx)
		if err != nil {
			return err
		}
		server.SetCaller(ctx, id)
		return handler(srv, &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: context.WithValue(ctx, identityKey{}, id)})
	}
}
