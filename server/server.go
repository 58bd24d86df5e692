// Package server implements radkit.access.v1.AccessService on top of the
// RADKit Access Cloud client in package upstream: it validates requests,
// calls the upstream within the caller's deadline, and turns every upstream
// failure into one documented gRPC status (see Status).
//
// It knows gRPC and the upstream client's Go API; it knows nothing of HTTP
// paths or JSON, which stay in package upstream.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/growstack"
	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/identity"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// DefaultMaxWatchesPerCaller is the WatchServiceStatus streams one caller
// may have open when Config.MaxWatchesPerCaller is zero.
const DefaultMaxWatchesPerCaller = watch.DefaultMaxPerCaller

// Upstream is what the AccessService needs from RADKit Access Cloud.
// *upstream.Client implements it; the server's own layers (retries,
// coalescing, idempotency) wrap it.
type Upstream interface {
	GenerateOTP(ctx context.Context, r upstream.OTPRequest) (string, error)
	ServiceStatus(ctx context.Context, serviceID string) (upstream.ServiceStatus, error)
	RevokeToken(ctx context.Context, token string) error
}

// DefaultCallTimeout bounds an upstream call when the caller set no
// deadline, so that no call waits on the upstream forever.
const DefaultCallTimeout = 30 * time.Second

// Config configures a Server.
type Config struct {
	// Identities are the upstream identities calls may act as, and the
	// grants that say which caller may act as which (package identity).
	// When nil, Upstream is the one identity, identity.Default, that every
	// caller may use.
	Identities *identity.Registry
	// Upstream is the RADKit Access Cloud client of a single-identity
	// server. Required unless Identities is set.
	Upstream Upstream
	// CallTimeout bounds each upstream call when the caller's own deadline
	// is later or absent. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// Logger receives the server's own diagnostics; per-call log lines come
	// from the logging interceptor. Nil discards.
	Logger *slog.Logger
	// AuditLog receives one record per GenerateOTP and RevokeToken (see
	// audit.go). Nil disables auditing.
	AuditLog *slog.Logger
	// Idempotency remembers GenerateOTP results by caller and request_id
	// (see idempotent.go): an *idempotency.Store, or a store shared by
	// replicas. Nil means a Store with package idempotency's defaults,
	// which the Server owns and Close closes; a store passed in stays the
	// caller's to close, after the Server has stopped serving.
	Idempotency idempotency.Doer

	// WatchInterval is how often a watched service is polled (at least
	// watch.MinInterval); WatchHeartbeat how long a WatchServiceStatus
	// stream may stay silent before it is sent the unchanged status.
	// Zero means the watch package's defaults.
	WatchInterval  time.Duration
	WatchHeartbeat time.Duration
	// MaxWatchesPerCaller and MaxWatches bound the open
	// WatchServiceStatus streams of one caller and of the replica; beyond
	// them a new one is refused (TOO_MANY_WATCHES). Zero means
	// DefaultMaxWatchesPerCaller and the watch package's default total.
	MaxWatchesPerCaller int
	MaxWatches          int
	// WatchCaller names whom a watch counts against for
	// MaxWatchesPerCaller. Nil means the authenticated caller (one
	// "anonymous" caller when callers do not authenticate).
	WatchCaller func(context.Context) string
	// Now is the clock of watch observations. Nil means time.Now.
	Now func() time.Time
	// Panics reports a panic in a watch poller, which ends that
	// service's watches with INTERNAL rather than the process. Nil
	// recovers without reporting.
	Panics *panics.Reporter
	// UpstreamSlots is the bound on upstream requests in flight that the
	// upstream clients' transport applies, if any. GenerateOTP and
	// RevokeToken then wait for their slot first thing, on a shallow
	// stack (see upstream.Limiter.Hold).
	UpstreamSlots *upstream.Limiter
}

// Server implements accessv1.AccessServiceServer.
type Server struct {
	accessv1.UnimplementedAccessServiceServer

	identities  *identity.Registry
	callTimeout time.Duration
	logger      *slog.Logger
	auditLog    *slog.Logger
	// otps remembers GenerateOTP results by caller and request_id.
	otps idempotency.Doer
	// upstreamSlots is Config.UpstreamSlots.
	upstreamSlots *upstream.Limiter
	// owned is the Store New made for otps, which Close closes; nil when
	// the store was passed in.
	owned *idempotency.Store
	// watches shares status polls among WatchServiceStatus streams.
	watches     *watch.Hub
	watchCaller func(context.Context) string
	// watchesCut is closed when StopWatches runs out of time: the sends
	// of WatchServiceStatus streams still open are abandoned.
	watchesCut chan struct{}
	cutOnce    sync.Once
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		identities:    cfg.Identities,
		callTimeout:   cfg.CallTimeout,
		logger:        cfg.Logger,
		auditLog:      cfg.AuditLog,
		otps:          cfg.Idempotency,
		upstreamSlots: cfg.UpstreamSlots,
		watchesCut:    make(chan struct{}),
	}
	if s.otps == nil {
		s.owned = idempotency.New(idempotency.Config{})
		s.otps = s.owned
	}
	s.watchCaller = cfg.WatchCaller
	if s.identities == nil {
		s.identities = identity.Fixed(cfg.Upstream)
	}
	if s.callTimeout <= 0 {
		s.callTimeout = DefaultCallTimeout
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.watches = watch.New(watch.Config{
		// The status path of GetServiceStatus, so that a poll and
		// concurrent GetServiceStatus calls share one upstream call.
		// Pollers are keyed by identity and service (see watchKey).
		Lookup:       s.watchLookup,
		Interval:     cfg.WatchInterval,
		Heartbeat:    cfg.WatchHeartbeat,
		MaxPerCaller: cfg.MaxWatchesPerCaller,
		MaxTotal:     cfg.MaxWatches,
		PollTimeout:  s.callTimeout,
		Now:          cfg.Now,
		Logger:       s.logger.With("component", "watch"),
		Panics:       cfg.Panics,
	})
	return s
}

// Close releases what New started: the request_id store's sweep, when the
// Server made the store, and the watch hub (see StopWatches), waiting at
// most the call timeout for its pollers. Call it once the Server no longer
// serves.
func (s *Server) Close() {
	if s.owned != nil {
		s.owned.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout)
	defer cancel()
	if err := s.watches.Close(ctx); err != nil {
		s.logger.Warn("watch pollers did not stop in time", "error", err)
	}
}

// GenerateOTP implements accessv1.AccessServiceServer. With request_id
// set, it is idempotent as access.proto promises (see idempotent.go); an
// idempotency-key in the metadata stands for a missing request_id (see
// withIdempotencyKey).
func (s *Server) GenerateOTP(ctx context.Context, req *accessv1.GenerateOTPRequest) (resp *accessv1.GenerateOTPResponse, err error) {
	var replayed bool
	var ident string
	defer func() {
		s.audit(ctx, "GenerateOTP", err,
			slog.String("identity", ident),
			slog.String("owner", req.GetOwner()),
			slog.String("endpoint_id", req.GetEndpointId()),
			slog.String("request_id", req.GetRequestId()),
			slog.Bool("replayed", replayed))
	}()
	keyed, err := withIdempotencyKey(ctx, req)
	if err != nil {
		return nil, err
	}
	req = keyed // the audit record shows the request_id in use
	if err := validateGenerateOTP(req); err != nil {
		return nil, err
	}
	ident, up, err := s.resolve(ctx, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	r := upstream.OTPRequest{
		Owner:       req.GetOwner(),
		EndpointID:  req.GetEndpointId(),
		Description: req.GetDescription(),
	}
	var otp string
	if req.GetRequestId() == "" {
		otp, err = s.generateOTP(ctx, up, r)
	} else {
		otp, replayed, err = s.generateOTPOnce(ctx, req.GetRequestId(), ident, up, r)
	}
	if err != nil {
		return nil, err
	}
	return &accessv1.GenerateOTPResponse{Otp: otp}, nil
}

// generateOTP mints an OTP upstream, recording the upstream's answer for
// the call's log line.
//
// The upstream call goes deep into net/http on this goroutine (see
// prepareDescent). A status lookup needs no such step here: it runs on a
// goroutine of its own, which flight.Group grows.
func (s *Server) generateOTP(ctx context.Context, up Upstream, r upstream.OTPRequest) (string, error) {
	ctx, done, err := s.prepareDescent(ctx)
	defer done()
	if err != nil {
		return "", err
	}
	otp, err := up.GenerateOTP(ctx, r)
	recordUpstream(ctx, err)
	if err != nil {
		return "", Status(err)
	}
	return otp, nil
}

// prepareDescent readies the calling goroutine for an upstream call made
// on it, which goes deep into net/http, in this order: it waits for the
// slot of the call's first upstream request while the stack is still
// shallow, when the upstream transport bounds requests in flight
// (Config.UpstreamSlots; see upstream.Limiter.Hold), and then grows the
// stack once for the whole descent (package growstack). Call done when
// the call returns. A refusal comes back as the call's status, recorded
// for its log line.
func (s *Server) prepareDescent(ctx context.Context) (_ context.Context, done func(), _ error) {
	done = func() {}
	if s.upstreamSlots != nil {
		var err error
		if ctx, done, err = s.upstreamSlots.Hold(ctx); err != nil {
			recordUpstream(ctx, err)
			return ctx, done, Status(err)
		}
	}
	growstack.Grow()
	return ctx, done, nil
}

// resolve is identities.Resolve for the call in ctx, and names the
// identity on the call's log line: the one resolved, or, when refused, the
// one asked for, which it also returns with the error so that an audit
// record of a refused call names it too.
func (s *Server) resolve(ctx context.Context, asked string) (string, Upstream, error) {
	ident, up, err := s.identities.Resolve(ctx, asked)
	if err != nil {
		ident = asked
	}
	setIdentity(ctx, ident)
	return ident, up, err
}

// GetServiceStatus implements accessv1.AccessServiceServer.
func (s *Server) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	if err := validateGetServiceStatus(req); err != nil {
		return nil, err
	}
	_, up, err := s.resolve(ctx, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	st, err := up.ServiceStatus(ctx, req.GetServiceId())
	recordUpstream(ctx, err)
	if err != nil {
		return nil, Status(err)
	}
	return &accessv1.GetServiceStatusResponse{ServiceId: st.ServiceID, Active: st.Active, Online: st.Online}, nil
}

// RevokeToken implements accessv1.AccessServiceServer.
func (s *Server) RevokeToken(ctx context.Context, req *accessv1.RevokeTokenRequest) (resp *accessv1.RevokeTokenResponse, err error) {
	var ident string
	defer func() {
		s.audit(ctx, "RevokeToken", err, slog.String("identity", ident), slog.String("token_sha256_prefix", tokenFingerprint(req.GetToken())))
	}()
	if err := validateRevokeToken(req); err != nil {
		return nil, err
	}
	ident, up, err := s.resolve(ctx, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	ctx, done, err := s.prepareDescent(ctx)
	defer done()
	if err != nil {
		return nil, err
	}
	err = up.RevokeToken(ctx, req.GetToken())
	recordUpstream(ctx, err)
	if errors.Is(err, upstream.ErrRevokeNeedsClientCredentials) {
		// About the identity used: others may well hold client
		// credentials (and the caller, granted this one, knows its name).
		return nil, reason.Error(reason.RevocationNotConfigured, fmt.Sprintf(
			"token revocation needs upstream client credentials, and the identity %q has none (it has an API token): revoke as an identity that has them", ident))
	}
	if err != nil {
		return nil, Status(err)
	}
	return &accessv1.RevokeTokenResponse{}, nil
}
