// Package facade assembles the whole service: the upstream client (or the
// built-in emulator), the gRPC server with health and reflection, the REST
// gateway, readiness, and graceful shutdown. cmd/radkit-access-facade fills
// a Config from flags and the environment and calls Run; tests start a
// Facade on loopback the same way.
package facade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/gateway"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Defaults for Config fields left zero.
const (
	DefaultGRPCAddr        = "127.0.0.1:9090"
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultShutdownTimeout = 20 * time.Second
	// DefaultMaxMessageBytes bounds a gRPC message in either direction; the
	// largest valid request is a few KiB.
	DefaultMaxMessageBytes = 64 << 10
)

// Config is everything the facade needs to run.
type Config struct {
	// UpstreamURL is the RADKit Access Cloud base URL. Required unless
	// Emulator is set.
	UpstreamURL string
	// Credentials for the upstream: ClientID and ClientSecret, or APIToken,
	// or both (then the API token gets access tokens and the client
	// credentials revoke tokens).
	ClientID     string
	ClientSecret string
	APIToken     string

	// Emulator starts the built-in RADKit Access Cloud emulator on loopback
	// and uses it as the upstream, with its default seed's client
	// credentials.
	Emulator bool

	// GRPCAddr and HTTPAddr are the listen addresses; port 0 picks a free one.
	GRPCAddr string
	HTTPAddr string

	// Version is reported in the upstream User-Agent and the start-up log.
	Version string
	// Logger receives every log line. Nil discards.
	Logger *slog.Logger
	// ShutdownTimeout bounds how long in-flight calls may take to finish
	// once shutdown starts.
	ShutdownTimeout time.Duration
	// CallTimeout bounds each upstream call (see server.Config).
	CallTimeout time.Duration
	// MaxMessageBytes bounds gRPC messages received and sent.
	MaxMessageBytes int
}

// Facade is a running facade: its listeners are open from New on, and Run
// serves them until its context is done.
type Facade struct {
	cfg    Config
	logger *slog.Logger

	emuServer *http.Server // nil unless Config.Emulator
	client    *upstream.Client
	readiness *server.Readiness

	grpcServer *grpc.Server
	grpcLis    net.Listener
	httpServer *http.Server
	httpLis    net.Listener
}

// New opens the listeners and builds every part, but serves nothing until
// Run. It does no network I/O towards the upstream: the facade starts even
// while the upstream is down, and becomes ready when it comes back.
func New(ctx context.Context, cfg Config) (f *Facade, err error) {
	cfg.setDefaults()
	f = &Facade{cfg: cfg, logger: cfg.Logger}
	defer func() {
		if err != nil {
			f.closeAll()
		}
	}()

	if cfg.Emulator {
		if err := f.startEmulator(); err != nil {
			return nil, err
		}
	} else if cfg.UpstreamURL == "" {
		return nil, errors.New("facade: no upstream: set --upstream-url (RADKIT_ACCESS_URL), or use --emulator to run against the built-in emulator")
	}

	f.client, err = upstream.New(upstream.Config{
		BaseURL:      f.cfg.UpstreamURL,
		ClientID:     f.cfg.ClientID,
		ClientSecret: f.cfg.ClientSecret,
		APIToken:     f.cfg.APIToken,
		UserAgent:    "radkit-access-facade/" + cfg.Version,
		Logger:       cfg.Logger.With("component", "upstream"),
	})
	if err != nil {
		return nil, fmt.Errorf("facade: upstream client: %w", err)
	}

	healthServer := health.NewServer()
	f.readiness = server.NewReadiness(healthServer, cfg.Logger, f.client.Ready)

	// One interceptor chain for both ways in: the gRPC server and the
	// in-process gateway (docs/adr/0001-gateway-in-process.md).
	interceptor := gateway.Chain(server.UnaryLogger(cfg.Logger))
	service := server.New(server.Config{
		Upstream:    f.client,
		CallTimeout: cfg.CallTimeout,
		Logger:      cfg.Logger,
	})

	f.grpcServer = grpc.NewServer(
		grpc.UnaryInterceptor(interceptor),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// Clients may ping at most every 10s; more often is abuse and the
		// connection is closed with ENHANCE_YOUR_CALM.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 5 * time.Minute,
			Time:              1 * time.Minute,
			Timeout:           20 * time.Second,
		}),
	)
	accessv1.RegisterAccessServiceServer(f.grpcServer, service)
	healthpb.RegisterHealthServer(f.grpcServer, healthServer)
	reflection.Register(f.grpcServer) // v1 and v1alpha, for grpcurl

	if f.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("facade: gRPC listener: %w", err)
	}
	handler, err := gateway.New(ctx, gateway.Config{
		Service:     service,
		Interceptor: interceptor,
		Ready:       f.readiness.Ready,
		Logger:      cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	f.httpServer = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if f.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("facade: HTTP listener: %w", err)
	}
	return f, nil
}

func (c *Config) setDefaults() {
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
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
	f.emuServer = &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.emuServer.Serve(lis) }()

	if f.cfg.ClientID != "" || f.cfg.ClientSecret != "" || f.cfg.APIToken != "" {
		f.logger.Warn("--emulator: ignoring the configured upstream credentials; using the emulator's own")
	}
	client := seed.Clients[0]
	f.cfg.UpstreamURL = "http://" + lis.Addr().String()
	f.cfg.ClientID, f.cfg.ClientSecret, f.cfg.APIToken = client.ID, client.Secret, ""
	f.logger.Warn("EMULATOR MODE: the upstream is the built-in RADKit Access Cloud emulator, not the real cloud; OTPs it mints enroll nothing",
		"emulator_url", f.cfg.UpstreamURL)
	return nil
}

// GRPCAddr is the address the gRPC listener is bound to.
func (f *Facade) GRPCAddr() string { return f.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP listener is bound to.
func (f *Facade) HTTPAddr() string { return f.httpLis.Addr().String() }

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

	errc := make(chan error, 2)
	go func() { errc <- serveErr("gRPC", f.grpcServer.Serve(f.grpcLis)) }()
	go func() { errc <- serveErr("HTTP", f.httpServer.Serve(f.httpLis)) }()
	f.logger.Info("serving", "version", f.cfg.Version, "grpc_addr", f.GRPCAddr(), "http_addr", f.HTTPAddr(), "upstream", f.cfg.UpstreamURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	f.logger.Info("shutting down", "timeout", f.cfg.ShutdownTimeout)
	f.readiness.Shutdown()
	f.shutdown()
	stopReadiness()
	<-readinessDone
	return runErr
}

// shutdown stops both servers gracefully, bounded by ShutdownTimeout, then
// forcibly.
func (f *Facade) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.ShutdownTimeout)
	defer cancel()
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
	case <-ctx.Done():
		f.logger.Warn("gRPC graceful stop cut short: in-flight calls did not finish in time")
		f.grpcServer.Stop()
		<-grpcDone
	}
	<-httpDone
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
	if f.client != nil {
		_ = f.client.Close()
	}
	if f.emuServer != nil {
		_ = f.emuServer.Close()
	}
}

func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("facade: %s server: %w", what, err)
}
