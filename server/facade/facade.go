// Package facade assembles the whole service: the upstream client (or the
// built-in emulator), the gRPC server with health and reflection, the REST
// gateway, readiness, and graceful shutdown. cmd/radkit-access-facade fills
// a Config from flags and the environment and calls Run; tests start a
// Facade on loopback the same way.
package facade

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/callerauth"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/identity"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/ratelimit"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Facade is a running facade: its listeners are open from New on, and Run
// serves them until its context is done.
type Facade struct {
	cfg    Config
	logger *slog.Logger

	emuServer *http.Server // nil unless Config.Emulator
	emu       *emulator.Emulator
	transport *upstream.SwapTransport // shared by every upstream request
	ids       *identity.Registry      // every upstream identity, each with its own client and guard
	readiness *server.Readiness
	metrics   *telemetry.Metrics
	panics    *panics.Reporter          // logs and counts every recovered panic
	cert      *certificate              // nil without TLS
	clientCA  *clientCA                 // nil without ClientCAFile
	reloadMu  sync.Mutex                // one Reload at a time: each applies whole
	auth      *callerauth.Authenticator // nil without caller authentication
	otps      *idempotency.Store        // GenerateOTP's request_ids
	service   *server.Server
	limiter   *ratelimit.Limiter // nil without rate limits; shared by calls and streams
	// streamInterceptor is the interceptor chain of streaming calls (see
	// newStreamInterceptor).
	streamInterceptor grpc.StreamServerInterceptor

	state          *redisstate.Client // nil without RedisURL
	stateFallbacks *prometheus.CounterVec
	// stateMisconfigured is the last configuration error Redis gave.
	stateMisconfigured atomic.Pointer[stateMisconfigured]
	sharedOTPs         *redisstate.Idempotency // GenerateOTP's request_ids in Redis; nil without RedisURL
	budget             *ratelimit.Limiter      // UpstreamRateLimit by identity; nil when off
	upstreamSlots      *upstream.Limiter       // UpstreamMaxInFlight, for every identity

	grpcServer    *grpc.Server
	handlers      *running // the gRPC server's handlers that have not returned
	grpcLis       net.Listener
	httpServer    *http.Server
	httpLis       net.Listener
	metricsServer *http.Server // nil without MetricsAddr
	metricsLis    net.Listener
	stopping      chan struct{} // closed when shutdown starts
}

// New opens the listeners and builds every part, but serves nothing until
// Run. It does no network I/O towards the upstream: the facade starts even
// while the upstream is down, and becomes ready when it comes back.
func New(ctx context.Context, cfg Config) (_ *Facade, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Facade{cfg: cfg, logger: cfg.Logger, stopping: make(chan struct{}), handlers: newRunning()}
	defer func() {
		if err != nil {
			f.closeAll()
		}
	}()
	f.warnInsecure()
	tlsConfig, err := f.loadTLS()
	if err != nil {
		return nil, err
	}
	if cfg.Emulator {
		if err := f.startEmulator(); err != nil {
			return nil, err
		}
	}
	f.metrics = telemetry.NewMetrics()
	f.metrics.LinkTraces(cfg.TracerProvider)
	f.metrics.InitializePanics(panics.Places)
	f.panics = panics.NewReporter(cfg.Logger, f.metrics.CountPanic)
	if err := f.openState(); err != nil {
		return nil, err
	}
	if err := f.newUpstream(); err != nil {
		return nil, err
	}
	healthServer := health.NewServer()
	f.readiness = server.NewReadiness(healthServer, cfg.Logger, f.ids.Ready).WithUpstreamChecks(f.ids.UpstreamReady)
	if err := registerUpstreamMetrics(f.metrics.Registry(), f.readiness, f.ids); err != nil {
		return nil, err
	}
	interceptor, err := f.newInterceptor()
	if err != nil {
		return nil, err
	}
	streamInterceptor := f.newStreamInterceptor()
	otps, err := f.newIdempotency()
	if err != nil {
		return nil, err
	}
	service := server.New(server.Config{
		Identities:          f.ids,
		CallTimeout:         cfg.CallTimeout,
		Logger:              cfg.Logger,
		AuditLog:            cfg.AuditLogger.With("log", "audit"),
		Idempotency:         otps,
		WatchInterval:       cfg.WatchInterval,
		WatchHeartbeat:      cfg.WatchHeartbeat,
		MaxWatchesPerCaller: cfg.MaxWatchesPerCaller,
		WatchCaller:         callerKey,
		Panics:              f.panics,
		UpstreamSlots:       f.upstreamSlots,
	})
	f.service = service
	f.metrics.ObserveWatches(func() telemetry.WatchStats {
		st := service.WatchStats()
		return telemetry.WatchStats{Streams: st.Watches, Pollers: st.Pollers, Polls: st.Polls, Sent: st.Sent}
	})
	f.grpcServer = f.newGRPCServer(service, healthServer, interceptor, tlsConfig)
	gw, err := gateway.New(ctx, gateway.Config{
		Service:           service,
		Interceptor:       interceptor,
		StreamInterceptor: streamInterceptor,
		Ready:             f.readiness.Ready,
		Upstream:          f.readiness.Upstream,
		Identities:        f.publicIdentityStates(),
		State:             f.stateReport(),
		Logger:            cfg.Logger,
		Panics:            f.panics,

		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		WatchHeartbeat:     cfg.WatchHeartbeat,
		StreamsCut:         service.WatchesCut(),
		APIDocs:            cfg.APIDocs,
	})
	if err != nil {
		return nil, err
	}
	f.newHTTPServers(gw, tlsConfig)
	if err := f.listen(); err != nil {
		return nil, err
	}
	return f, nil
}

// warnInsecure warns when a listener is reachable from the network with
// no caller authentication, as InsecureNoCallerAuth allows.
func (f *Facade) warnInsecure() {
	c := &f.cfg
	if c.callerAuth() || (isLoopback(c.GRPCAddr) && isLoopback(c.HTTPAddr)) {
		return
	}
	f.logger.Warn("INSECURE: serving on a non-loopback address with no caller authentication (InsecureNoCallerAuth): anyone who can reach it can mint OTPs",
		"grpc_addr", c.GRPCAddr, "http_addr", c.HTTPAddr)
}

// loadTLS reads the serving certificate and returns the listeners' TLS
// configuration, or nil without TLS.
func (f *Facade) loadTLS() (*tls.Config, error) {
	if f.cfg.TLSCertFile == "" {
		return nil, nil
	}
	var err error
	if f.cert, err = loadCertificate(f.cfg.TLSCertFile, f.cfg.TLSKeyFile); err != nil {
		return nil, fmt.Errorf("facade: %w", err)
	}
	if f.cfg.ClientCAFile != "" {
		f.clientCA = &clientCA{file: f.cfg.ClientCAFile, cert: f.cert}
	}
	tlsConfig, err := serverTLS(f.cert, f.clientCA)
	if err != nil {
		return nil, fmt.Errorf("facade: %w", err)
	}
	return tlsConfig, nil
}

// newUpstream builds the identity registry: per upstream identity, one
// upstream client on the one tuned transport (counted and traced) and
// around it the guard that the service calls (retries, circuit breaker,
// status coalescing), so that every way in shares them and one identity's
// failures stay its own. No identity fetches anything before its first
// use, but for the readiness check of the first.
func (f *Facade) newUpstream() error {
	cfg := &f.cfg
	upstreamTransport, err := newUpstreamTransport(*cfg)
	if err != nil {
		return err
	}
	f.transport = upstream.NewSwapTransport(upstreamTransport)
	spec, err := f.identitySpec()
	if err != nil {
		return err
	}
	limit := f.limitUpstream()
	f.upstreamSlots = limit
	f.budget = f.newUpstreamBudget()
	f.ids, err = identity.New(identity.Config{
		Upstream: upstream.Config{
			BaseURL:           cfg.UpstreamURL,
			UserAgent:         "radkit-access-facade/" + cfg.Version,
			Logger:            cfg.Logger.With("component", "upstream"),
			AllowInsecureHTTP: cfg.InsecureUpstreamHTTP,
		},
		// One transport and one bound on requests in flight for all,
		// counted per identity (configured names only, so the label is
		// bounded).
		HTTPClient: func(name string) *http.Client {
			return &http.Client{
				Transport: limit.Transport(telemetry.HTTPTransport(f.metrics.InstrumentIdentity(f.transport, name), cfg.TracerProvider, cfg.Propagator)),
			}
		},
		Resilience: resilience.Config{StatusCacheTTL: cfg.StatusCacheTTL},
		// Each identity's upstream budget and (with Redis) shared status
		// cache are its own.
		Customize: f.perIdentity,
		OnBreakerChange: func(id, from, to string) {
			cfg.Logger.Warn("upstream circuit breaker changed state", "identity", id, "from", from, "to", to)
		},
		Caller:     callerauth.IdentityFrom,
		CallerAuth: cfg.callerAuth(),
		// Calls that resolved an identity before a reload replaced it
		// finish on its old client.
		Drain:  max(cfg.CallTimeout, server.DefaultCallTimeout) + 5*time.Second,
		Logger: cfg.Logger.With("component", "identity"),
		Now:    cfg.Now,
	}, spec)
	if err != nil {
		return fmt.Errorf("facade: upstream identities: %w", err)
	}
	// Every identity in force, read at each scrape: a reload that removes
	// one removes its series.
	f.metrics.ObserveIdentities(func() []telemetry.IdentityState {
		states := f.ids.States()
		out := make([]telemetry.IdentityState, len(states))
		for i, st := range states {
			out[i] = telemetry.IdentityState{Name: st.Name, TokenExpiry: st.TokenExpiry, Breaker: st.Breaker}
		}
		return out
	})
	if err := f.metrics.ObserveCredentialExpiry(func() []telemetry.CredentialExpiry {
		var out []telemetry.CredentialExpiry
		for _, e := range f.ids.Expiries() {
			out = append(out, telemetry.CredentialExpiry{Identity: e.Identity, Kind: e.Kind, At: e.At})
		}
		return out
	}); err != nil {
		return fmt.Errorf("facade: %w", err)
	}
	f.ids.WarnExpiry()
	return nil
}

// identitySpec reads the upstream identities: the facade's own credentials
// are the identity named identity.Default, and IdentitiesFile adds more
// and says which caller may act as which.
func (f *Facade) identitySpec() (identity.Spec, error) {
	cfg := &f.cfg
	def, err := f.defaultCredentials()
	if err != nil {
		return identity.Spec{}, err
	}
	if cfg.IdentitiesFile == "" {
		return identity.SingleSpec(*def), nil // Validate saw to it
	}
	spec, err := identity.LoadFile(cfg.IdentitiesFile, def)
	if err != nil {
		return identity.Spec{}, fmt.Errorf("facade: %w", err)
	}
	return spec, nil
}

// defaultCredentials returns the facade's own credentials, the identity
// named identity.Default, reading ClientSecretFile and APITokenFile afresh;
// nil when none are configured.
func (f *Facade) defaultCredentials() (*identity.Credentials, error) {
	cfg := &f.cfg
	c := identity.Credentials{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, APIToken: cfg.APIToken,
		ClientSecretExpiresAt: cfg.ClientSecretExpiresAt}
	for _, s := range []struct {
		file, field string
		p           *string
	}{{cfg.ClientSecretFile, "ClientSecretFile", &c.ClientSecret}, {cfg.APITokenFile, "APITokenFile", &c.APIToken}} {
		if s.file == "" {
			continue
		}
		v, err := identity.ReadSecretFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("facade: %s: %w", s.field, err)
		}
		*s.p = v
	}
	if c.ClientID == "" && c.ClientSecret == "" && c.APIToken == "" {
		return nil, nil
	}
	return &c, nil
}

// newInterceptor returns the one interceptor chain for both ways in: the
// gRPC server and the in-process gateway
// (docs/adr/0001-gateway-in-process.md). The request ID first, so that
// everything after it sees it; metrics and the log line next,
// so that refused calls are counted and logged; then panic recovery, so
// that a call that panicked is counted and logged as the INTERNAL it
// answers; then who is calling; then, with Redis, the call's Redis
// budget; then how often they may.
func (f *Facade) newInterceptor() (grpc.UnaryServerInterceptor, error) {
	cfg := &f.cfg
	interceptors := []grpc.UnaryServerInterceptor{
		server.UnaryRequestID(),
		f.metrics.UnaryServerInterceptor(),
		server.UnaryCallLogger(cfg.Logger, cfg.CallLog),
		panics.UnaryServerInterceptor(f.panics),
	}
	if cfg.callerAuth() {
		var err error
		f.auth, err = callerauth.New(callerauth.Config{
			KeysFile:                cfg.CallerKeysFile,
			TrustClientCertificates: cfg.ClientCAFile != "",
			Logger:                  cfg.Logger.With("component", "callerauth"),
		})
		if err != nil {
			return nil, fmt.Errorf("facade: caller authentication: %w", err)
		}
		interceptors = append(interceptors, f.auth.UnaryServerInterceptor())
	}
	if f.state != nil {
		interceptors = append(interceptors, redisBudget)
	}
	if cfg.RateLimit > 0 {
		shared, failed := f.sharedLimit("caller", "rate_limit")
		f.limiter = ratelimit.New(ratelimit.Config{
			Rate:          rate.Limit(cfg.RateLimit),
			Burst:         cfg.RateBurst,
			Key:           callerKey,
			Shared:        shared,
			OnSharedError: failed,
		})
		interceptors = append(interceptors, f.limiter.UnaryServerInterceptor())
	}
	return gateway.Chain(interceptors...), nil
}

// redisBudget gives each call one Redis budget (redisstate.WithCallBudget)
// before the first use of Redis (the caller's rate limit): during a Redis
// stall a call waits for Redis once, and its other uses fall back at once.
func redisBudget(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(redisstate.WithCallBudget(ctx), req)
}

// redisBudgetStream is redisBudget for streaming calls.
func redisBudgetStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &budgetStream{ServerStream: ss, ctx: redisstate.WithCallBudget(ss.Context())})
}

// budgetStream is a ServerStream whose context carries a Redis budget.
type budgetStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context implements grpc.ServerStream.
func (s *budgetStream) Context() context.Context { return s.ctx }

// newStreamInterceptor is newInterceptor for streaming calls, with the
// same parts in the same order; a stream is authenticated and counted
// against its caller's rate limit once, when it opens. Call it after
// newInterceptor, which builds the authenticator.
func (f *Facade) newStreamInterceptor() grpc.StreamServerInterceptor {
	interceptors := []grpc.StreamServerInterceptor{
		server.StreamRequestID(),
		f.metrics.StreamServerInterceptor(),
		server.StreamCallLogger(f.cfg.Logger, f.cfg.CallLog),
		panics.StreamServerInterceptor(f.panics),
	}
	if f.auth != nil {
		interceptors = append(interceptors, f.auth.StreamServerInterceptor())
	}
	if f.state != nil {
		interceptors = append(interceptors, redisBudgetStream)
	}
	if f.limiter != nil {
		interceptors = append(interceptors, f.limiter.StreamServerInterceptor())
	}
	f.streamInterceptor = gateway.ChainStream(interceptors...)
	return f.streamInterceptor
}

// newGRPCServer returns the gRPC server with the access service, health
// (whose watches end at shutdown) and reflection, bounded against slow or
// greedy clients.
func (f *Facade) newGRPCServer(service accessv1.AccessServiceServer, hs *health.Server, interceptor grpc.UnaryServerInterceptor, tlsConfig *tls.Config) *grpc.Server {
	cfg := &f.cfg
	opts := []grpc.ServerOption{
		telemetry.GRPCServerOption(cfg.TracerProvider, cfg.Propagator),
		grpc.UnaryInterceptor(interceptor),
		grpc.StreamInterceptor(f.streamInterceptor),
		// Innermost: counts the handlers that have not returned.
		grpc.ChainUnaryInterceptor(f.handlers.unary),
		grpc.ChainStreamInterceptor(f.handlers.stream),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		// Bounds the HTTP/2 header block a client may send.
		grpc.MaxHeaderListSize(maxHeaderBytes),
		// A client must finish its handshake promptly.
		grpc.ConnectionTimeout(10 * time.Second),
		// Clients may ping at most every 10s; more often is abuse and the
		// connection is closed with ENHANCE_YOUR_CALM.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(f.keepaliveParams()),
	}
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	s := grpc.NewServer(opts...)
	accessv1.RegisterAccessServiceServer(s, service)
	healthpb.RegisterHealthServer(s, &healthService{Server: hs, stopping: f.stopping})
	reflection.Register(s) // v1 and v1alpha, for grpcurl
	f.metrics.InitializeMetrics(s)
	return s
}

// keepaliveParams are the gRPC server's connection lifetimes. With
// MaxConnectionAge, each connection is asked (GOAWAY) to reconnect after
// about that long, with grpc-go's ±10% jitter, so that long-lived clients
// spread over replicas as they scale; its calls in flight get
// all the time they need to finish (no MaxConnectionAgeGrace: a watch
// stream may last hours, and cutting it would be a call cut).
func (f *Facade) keepaliveParams() keepalive.ServerParameters {
	p := keepalive.ServerParameters{
		MaxConnectionIdle: 5 * time.Minute,
		Time:              1 * time.Minute,
		Timeout:           20 * time.Second,
	}
	if f.cfg.MaxConnectionAge > 0 {
		p.MaxConnectionAge = f.cfg.MaxConnectionAge
	}
	return p
}

// newHTTPServers builds the HTTP server of the gateway and, with
// MetricsAddr, the metrics server; without it /metrics is served beside
// the gateway.
func (f *Facade) newHTTPServers(gw http.Handler, tlsConfig *tls.Config) {
	handler := telemetry.HTTPHandler(gw, f.cfg.TracerProvider, f.cfg.Propagator)
	if f.cfg.MetricsAddr == "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", f.metrics.Handler())
		mux.Handle("/", handler)
		handler = mux
	}
	f.httpServer = f.newHTTPServer(handler)
	f.httpServer.TLSConfig = tlsConfig
	if f.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", f.metrics.Handler())
		mux.Handle("/healthz", gw)
		mux.Handle("/readyz", gateway.ReadyHandler(f.readiness.Ready, f.readiness.Upstream, f.identityStates(), f.stateReport()))
		if f.cfg.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		f.metricsServer = f.newHTTPServer(mux)
	}
}

// identityStates reports each upstream identity's state for /readyz, or
// is nil (nothing shown) without an identities file: a single-identity
// facade's /readyz stays as it was.
func (f *Facade) identityStates() func() any {
	if f.cfg.IdentitiesFile == "" {
		return nil
	}
	return func() any { return f.ids.States() }
}

// publicIdentityStates is identityStates for the /readyz of the HTTP
// listener, which anyone may probe: nil (not shown) when callers
// authenticate, so that the identity names that IDENTITY_NOT_GRANTED
// keeps from callers are not shown to whoever can reach the port. The
// metrics listener, an operator's port, always shows them.
func (f *Facade) publicIdentityStates() func() any {
	if f.cfg.callerAuth() {
		return nil
	}
	return f.identityStates()
}

// listen opens the listeners, last, so that a facade that fails to build
// never held a port.
func (f *Facade) listen() error {
	var err error
	if f.grpcLis, err = net.Listen("tcp", f.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("facade: gRPC listener: %w", err)
	}
	if f.httpLis, err = net.Listen("tcp", f.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("facade: HTTP listener: %w", err)
	}
	if f.metricsServer != nil {
		if f.metricsLis, err = net.Listen("tcp", f.cfg.MetricsAddr); err != nil {
			return fmt.Errorf("facade: metrics listener: %w", err)
		}
	}
	return nil
}

// maxHeaderBytes bounds request headers on every listener: enough for a
// bearer key, a traceparent and a client's usual headers, far from what a
// header flood needs.
const maxHeaderBytes = 32 << 10

// newHTTPServer returns an http.Server for h with the timeouts and limits
// that keep slow or greedy clients from holding connections.
func (f *Facade) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(f.logger.Handler(), slog.LevelWarn),
	}
}

// callerKey is the identity rate limits apply to: the authenticated caller,
// or the client's IP address when callers are anonymous (loopback
// deployments).
func callerKey(ctx context.Context) string {
	if id, ok := callerauth.IdentityFrom(ctx); ok {
		return id
	}
	return ratelimit.PeerKey(ctx)
}

// startEmulator serves the built-in emulator on a free loopback port and
// points the facade at it.
func (f *Facade) startEmulator() error {
	seed := emulator.DefaultSeed()
	emu, err := emulator.New(emulator.Config{Seed: seed, Logger: f.logger.With("component", "emulator")})
	if err != nil {
		return fmt.Errorf("facade: emulator: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("facade: emulator listener: %w", err)
	}
	f.emu = emu
	f.emuServer = &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.emuServer.Serve(lis) }()

	if f.cfg.ClientID != "" || f.cfg.ClientSecret != "" || f.cfg.APIToken != "" || f.cfg.ClientSecretFile != "" || f.cfg.APITokenFile != "" {
		f.logger.Warn("emulator mode: ignoring the configured upstream credentials (ClientID, ClientSecret, APIToken); using the emulator's own")
	}
	client := seed.Clients[0]
	f.cfg.UpstreamURL = "http://" + lis.Addr().String()
	f.cfg.ClientID, f.cfg.ClientSecret, f.cfg.APIToken = client.ID, client.Secret, ""
	f.cfg.ClientSecretFile, f.cfg.APITokenFile, f.cfg.ClientSecretExpiresAt = "", "", time.Time{}
	f.logger.Warn("EMULATOR MODE: the upstream is the built-in RADKit Access Cloud emulator, not the real cloud; OTPs it mints enroll nothing",
		"emulator_url", f.cfg.UpstreamURL)
	return nil
}

// GRPCAddr is the address the gRPC listener is bound to.
func (f *Facade) GRPCAddr() string { return f.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP listener is bound to.
func (f *Facade) HTTPAddr() string { return f.httpLis.Addr().String() }

// MetricsAddr is the address of the metrics listener, or "" when metrics
// are served on the HTTP listener.
func (f *Facade) MetricsAddr() string {
	if f.metricsLis == nil {
		return ""
	}
	return f.metricsLis.Addr().String()
}

// Emulator is the built-in emulator in emulator mode, for tests and demos
// that set its faults; nil otherwise.
func (f *Facade) Emulator() *emulator.Emulator { return f.emu }

// UpstreamURL is the upstream the facade talks to (the emulator's URL in
// emulator mode).
func (f *Facade) UpstreamURL() string { return f.cfg.UpstreamURL }

// Run serves until ctx is done, then shuts down gracefully: readiness turns
// NOT_SERVING, the listeners stop accepting, in-flight calls get up to
// ShutdownTimeout to finish, and everything is closed. It returns nil after
// a clean shutdown.
func (f *Facade) Run(ctx context.Context) error {
	defer f.closeAll()
	readyCtx, stopReadiness := context.WithCancel(context.WithoutCancel(ctx))
	readinessDone := make(chan struct{})
	go func() {
		defer close(readinessDone)
		f.readiness.Run(readyCtx)
	}()
	stateChecked := make(chan struct{})
	go func() {
		defer close(stateChecked)
		f.checkState(readyCtx)
	}()
	expiryDone := make(chan struct{})
	go func() {
		defer close(expiryDone)
		f.warnExpiry(readyCtx)
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		f.watchFiles(readyCtx)
	}()

	errc := make(chan error, 3)
	go func() { errc <- serveErr("gRPC", f.grpcServer.Serve(f.grpcLis)) }()
	go func() {
		if f.httpServer.TLSConfig != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			errc <- serveErr("HTTP", f.httpServer.ServeTLS(f.httpLis, "", ""))
			return
		}
		errc <- serveErr("HTTP", f.httpServer.Serve(f.httpLis))
	}()
	if f.metricsServer != nil {
		go func() { errc <- serveErr("metrics", f.metricsServer.Serve(f.metricsLis)) }()
	}
	f.logger.Info("serving", "version", f.cfg.Version, "grpc_addr", f.GRPCAddr(), "http_addr", f.HTTPAddr(),
		"metrics_addr", f.MetricsAddr(), "tls", f.cert != nil, "caller_auth", f.cfg.callerAuth(), "upstream", f.cfg.UpstreamURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	f.logger.Info("shutting down", "timeout", f.cfg.ShutdownTimeout)
	f.readiness.Shutdown()
	close(f.stopping)
	f.shutdown()
	stopReadiness()
	<-readinessDone
	<-stateChecked
	<-expiryDone
	<-watchDone
	return runErr
}

// expiryCheckInterval is how often credential expiry is checked for its
// warnings: far finer than the nearest warning (1 hour before).
const expiryCheckInterval = time.Minute

// warnExpiry logs the credential expiry warnings as they come due, until
// ctx is done.
func (f *Facade) warnExpiry(ctx context.Context) {
	t := time.NewTicker(expiryCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.ids.WarnExpiry()
		}
	}
}

// shutdown stops both servers gracefully, bounded by ShutdownTimeout, then
// forcibly.
//
// Watch streams never finish by themselves: they are ended first (clients
// get UNAVAILABLE, SHUTTING_DOWN, with RetryInfo, and reconnect
// elsewhere), within a share of the budget of their own, while the servers
// drain the other calls. A client that reads gets that status at once. One
// that does not read leaves the stream's send blocked on flow control; at
// the end of the watch share its send is abandoned and its handler ends
// (server.Server.StopWatches, and over HTTP the write waiting for it
// fails). The status it will never read waits behind the messages it did
// not read, and grpc-go cannot reset one stream: its connection is closed
// when the budget ends or, once streams were cut, as soon as every gRPC
// handler has returned (nothing but bytes no client reads is then left).
func (f *Facade) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.ShutdownTimeout)
	defer cancel()
	watchCtx, cancelWatches := context.WithTimeout(ctx, f.cfg.ShutdownTimeout/4)
	defer cancelWatches()
	watchesDone := make(chan struct{})
	onlyUnread := make(chan struct{}) // closed once streams were cut and no handler runs
	go func() {
		defer close(watchesDone)
		if err := f.service.StopWatches(watchCtx); err != nil {
			f.logger.Warn("watch streams did not end in their share of the shutdown budget", "error", err)
			select {
			case <-f.handlers.Idle():
				close(onlyUnread)
			case <-ctx.Done():
			}
		}
	}()
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if err := f.httpServer.Shutdown(ctx); err != nil {
			f.logger.Warn("HTTP shutdown cut short", "error", err)
			_ = f.httpServer.Close()
		}
	}()
	grpcDone := make(chan struct{})
	go func() {
		defer close(grpcDone)
		f.grpcServer.GracefulStop()
	}()
	select {
	case <-grpcDone:
	case <-onlyUnread:
		f.logger.Info("closing the gRPC connections held only by watch streams that were cut")
		f.grpcServer.Stop()
		<-grpcDone
	case <-ctx.Done():
		f.logger.Warn("gRPC graceful stop cut short: in-flight calls did not finish in time")
		f.grpcServer.Stop()
		<-grpcDone
	}
	<-httpDone
	<-watchesDone
}

// closeAll releases whatever New opened; safe on a partly built Facade.
func (f *Facade) closeAll() {
	if f.grpcServer != nil {
		f.grpcServer.Stop()
	}
	if f.grpcLis != nil {
		_ = f.grpcLis.Close()
	}
	if f.httpLis != nil {
		_ = f.httpLis.Close()
	}
	if f.metricsServer != nil {
		_ = f.metricsServer.Close()
	}
	if f.metricsLis != nil {
		_ = f.metricsLis.Close()
	}
	if f.otps != nil {
		// After the gRPC server: its calls in flight have ended.
		f.otps.Close()
	}
	if f.ids != nil {
		_ = f.ids.Close()
	}
	if f.transport != nil {
		f.transport.CloseIdleConnections()
	}
	if f.emuServer != nil {
		_ = f.emuServer.Close()
	}
	if f.state != nil {
		_ = f.state.Close()
	}
	if f.sharedOTPs != nil {
		// After the client: results still being written stop trying.
		f.sharedOTPs.Close()
	}
}

func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("facade: %s server: %w", what, err)
}

// Reload reads the files that may change under a running facade again (the
// caller keys, the TLS certificate and key, the client CA, the upstream CA
// file, the identities file and the secret files it names, the secret
// files of the facade's own credentials), as on SIGHUP and when
// watchFiles sees one change. Calls in flight
// and connections are not disturbed. A reload is all or nothing: when any
// part fails, no part is applied and the previous files stay in use.
func (f *Facade) Reload() error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	if err := f.reload(); err != nil {
		f.logger.Error("reload failed; keeping the previous configuration", "error", err)
		return fmt.Errorf("facade: reload: %w", err)
	}
	f.logger.Info("reloaded")
	return nil
}

// reload reads every part first and applies it only when all have been
// read. The caller keys cannot be read apart from being applied
// (callerauth.Authenticator.Reload does both, or neither), so they are
// the last part read: when they fail nothing has been applied, and once
// they succeed what is left to apply cannot fail.
func (f *Facade) reload() error {
	var cert *tls.Certificate
	if f.cert != nil {
		var err error
		if cert, err = f.cert.load(); err != nil {
			return err
		}
	}
	var caPool *x509.CertPool
	if f.clientCA != nil {
		var err error
		if caPool, err = f.clientCA.load(); err != nil {
			return err
		}
	}
	trust, err := f.loadUpstreamTrust()
	if err != nil {
		return err
	}
	var ids *identity.Pending
	if f.cfg.IdentitiesFile != "" || f.cfg.ClientSecretFile != "" || f.cfg.APITokenFile != "" {
		spec, err := f.identitySpec()
		if err != nil {
			return err
		}
		if ids, err = f.ids.Prepare(spec); err != nil {
			return fmt.Errorf("facade: upstream identities: %w", err)
		}
	}
	if f.auth != nil {
		if err := f.auth.Reload(); err != nil {
			if ids != nil {
				ids.Discard()
			}
			return err
		}
	}
	if cert != nil {
		f.cert.use(cert)
	}
	if caPool != nil {
		f.clientCA.use(caPool)
	}
	if trust != nil {
		f.transport.Swap(trust)
	}
	if ids != nil {
		f.ids.Apply(ids)
		f.ids.WarnExpiry()
	}
	return nil
}
