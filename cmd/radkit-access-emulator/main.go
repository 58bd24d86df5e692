// Command radkit-access-emulator serves a local, self-contained emulation of
// the RADKit Access Cloud Public API, for trying the facade offline and for
// tests. With no arguments it listens on 127.0.0.1:8089 with the built-in
// seed and prints the (fake) credentials to use.
//
// Faults can be injected at start with flags and at run time through the
// admin API (see package emulator).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// Server timeouts. WriteTimeout is generous so that injected latency does
// not turn into a cut connection.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// bannerEnd is the banner's last line; what follows is logs.
const bannerEnd = "ready (SIGINT or SIGTERM to stop)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "radkit-access-emulator:", err)
		stop()
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	addr          string
	seedPath      string
	issuer        string
	adminPrefix   string
	tokenLifetime time.Duration
	latency       time.Duration
	failRate      float64
	failStatus    int
	failRoutes    string
	services      []emulator.Service
	logLevel      slog.Level
	shutdownGrace time.Duration
	tls           bool   // serve HTTPS with a fresh self-signed certificate
	tlsCAOut      string // where --tls writes the certificate's PEM
	tlsCert       string // or serve HTTPS with this certificate
	tlsKey        string
	h2MaxStreams  int // HTTP/2 streams a connection may carry at once
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("radkit-access-emulator", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8089", "listen address")
	fs.StringVar(&o.seedPath, "seed", "", "JSON seed file (default: built-in seed)")
	fs.StringVar(&o.issuer, "issuer", "", "fixed issuer/base URL (default: derived from each request)")
	fs.StringVar(&o.adminPrefix, "admin-prefix", emulator.DefaultAdminPrefix, "path prefix of the admin API")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", emulator.DefaultTokenLifetime, "access token lifetime (expires_in)")
	fs.DurationVar(&o.latency, "latency", 0, "latency added to every route")
	fs.Float64Var(&o.failRate, "fail-rate", 0, "fraction (0-1) of calls that fail with --fail-status")
	fs.IntVar(&o.failStatus, "fail-status", http.StatusServiceUnavailable, "status of random failures (400-599)")
	fs.StringVar(&o.failRoutes, "fail-routes", "", "comma-separated routes that --fail-rate applies to (default: all)")
	fs.Func("service", "extra service `id[:active[:online]]` (booleans default true); repeatable", func(s string) error {
		sv, err := parseService(s)
		if err == nil {
			o.services = append(o.services, sv)
		}
		return err
	})
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "how long shutdown waits for in-flight requests before aborting them")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level (debug logs every request)")
	fs.BoolVar(&o.tls, "tls", false, "serve HTTPS (HTTP/2 and HTTP/1.1) with a fresh self-signed certificate for 127.0.0.1, ::1, localhost and the --addr host")
	fs.StringVar(&o.tlsCAOut, "tls-ca-out", "", "with --tls, write the self-signed certificate (the CA to trust) to this PEM file")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.IntVar(&o.h2MaxStreams, "http2-max-streams", 0, "with TLS, the HTTP/2 streams a client connection may carry at once (SETTINGS_MAX_CONCURRENT_STREAMS; 0: Go's default of 250), to test clients against upstreams and proxies that allow fewer")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.failRate < 0 || o.failRate > 1 {
		return o, fmt.Errorf("--fail-rate %v: want 0-1", o.failRate)
	}
	if o.failStatus < 400 || o.failStatus > 599 {
		return o, fmt.Errorf("--fail-status %d: want 400-599", o.failStatus)
	}
	switch {
	case o.h2MaxStreams < 0:
		return o, fmt.Errorf("--http2-max-streams %d: want 0 or more", o.h2MaxStreams)
	case o.h2MaxStreams > 0 && !o.tls && o.tlsCert == "":
		return o, errors.New("--http2-max-streams needs --tls or --tls-cert: plain HTTP is HTTP/1.1 only")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return o, errors.New("--tls-cert and --tls-key go together")
	case o.tls && o.tlsCert != "":
		return o, errors.New("--tls (self-signed) and --tls-cert exclude each other: choose one")
	case o.tlsCAOut != "" && !o.tls:
		return o, errors.New("--tls-ca-out needs --tls")
	}
	return o, nil
}

func parseService(s string) (emulator.Service, error) {
	parts := strings.Split(s, ":")
	if parts[0] == "" || len(parts) > 3 {
		return emulator.Service{}, fmt.Errorf("service %q: want id[:active[:online]]", s)
	}
	sv := emulator.Service{ID: parts[0], Active: true, Online: true}
	for i, dst := range []*bool{&sv.Active, &sv.Online} {
		if len(parts) > i+1 {
			b, err := strconv.ParseBool(parts[i+1])
			if err != nil {
				return emulator.Service{}, fmt.Errorf("service %q: %w", s, err)
			}
			*dst = b
		}
	}
	return sv, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: o.logLevel}))

	seed := emulator.DefaultSeed()
	if o.seedPath != "" {
		if seed, err = emulator.LoadSeed(o.seedPath); err != nil {
			return err
		}
	}
	seed.Services = append(seed.Services, o.services...)
	emu, err := emulator.New(emulator.Config{
		Seed:          seed,
		TokenLifetime: o.tokenLifetime,
		Issuer:        o.issuer,
		Logger:        logger,
		AdminPrefix:   o.adminPrefix,
	})
	if err != nil {
		return err
	}
	if err := applyStartFaults(emu, o); err != nil {
		return err
	}

	tlsConfig, err := serverTLS(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := emu.NewServer(emulator.ServeOptions{TLS: tlsConfig, MaxConcurrentStreams: o.h2MaxStreams})
	srv.ReadHeaderTimeout = readHeaderTimeout
	srv.ReadTimeout = readTimeout
	srv.WriteTimeout = writeTimeout
	srv.IdleTimeout = idleTimeout
	srv.MaxHeaderBytes = maxHeaderBytes
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	printBanner(stdout, ln.Addr().String(), o, seed)

	serveErr := make(chan error, 1)
	go func() { serveErr <- emulator.ServeListener(srv, ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		// Requests still held (e.g. in long injected latency): abort them.
		cancelBase()
		_ = srv.Close()
		logger.Warn("forced shutdown", "err", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// serverTLS is the TLS configuration that --tls or --tls-cert ask for, or
// nil for plain HTTP. With --tls it makes a self-signed certificate for the
// loopback names and the --addr host, and writes it to --tls-ca-out.
func serverTLS(o options) (*tls.Config, error) {
	switch {
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		return emulator.ServerTLSConfig(cert), nil
	case !o.tls:
		return nil, nil
	}
	var hosts []string
	if host, _, err := net.SplitHostPort(o.addr); err == nil && host != "" {
		hosts = append(hosts, host)
	}
	if o.issuer != "" {
		if u, err := url.Parse(o.issuer); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	cert, err := emulator.SelfSignedCertificate(hosts...)
	if err != nil {
		return nil, err
	}
	if o.tlsCAOut != "" {
		if err := os.WriteFile(o.tlsCAOut, cert.PEM, 0o644); err != nil {
			return nil, fmt.Errorf("--tls-ca-out: %w", err)
		}
	}
	return emulator.ServerTLSConfig(cert.Certificate), nil
}

func applyStartFaults(emu *emulator.Emulator, o options) error {
	for _, r := range emulator.Routes() {
		emu.SetLatency(r, o.latency)
	}
	if o.failRate == 0 {
		return nil
	}
	routes := emulator.Routes()
	if o.failRoutes != "" {
		routes = nil
		for _, s := range strings.Split(o.failRoutes, ",") {
			r := emulator.Route(strings.TrimSpace(s))
			if !r.Valid() {
				return fmt.Errorf("--fail-routes: unknown route %q (want one of %v)", r, emulator.Routes())
			}
			routes = append(routes, r)
		}
	}
	f := emulator.Fault{Status: o.failStatus, Retry: o.failStatus >= 500 || o.failStatus == http.StatusTooManyRequests}
	for _, r := range routes {
		emu.SetFailureRate(r, o.failRate, f)
	}
	return nil
}

// printBanner prints where the emulator listens and the fake credentials it
// accepts, so that a user can point the facade at it.
func printBanner(w io.Writer, addr string, o options, seed emulator.Seed) {
	scheme := "http"
	if o.tls || o.tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + addr
	if o.issuer != "" {
		base = strings.TrimRight(o.issuer, "/")
	}
	fmt.Fprintf(w, "radkit-access-emulator listening on %s\n", addr)
	fmt.Fprintf(w, "base URL: %s\n", base)
	fmt.Fprintf(w, "discovery: %s/.well-known/openid-configuration\n", base)
	fmt.Fprintf(w, "admin API: %s%s\n", base, strings.TrimRight(o.adminPrefix, "/"))
	if o.tlsCAOut != "" {
		fmt.Fprintf(w, "TLS CA (self-signed certificate): %s\n", o.tlsCAOut)
	}
	fmt.Fprintf(w, "token lifetime: %s\n", o.tokenLifetime)
	for _, c := range seed.Clients {
		fmt.Fprintf(w, "client: id=%s secret=%s identity=%s admin_level=%d claims=%s\n",
			c.ID, c.Secret, c.Identity, c.AdminLevel, claimList(c.Claims))
	}
	for _, t := range seed.APITokens {
		state := "valid"
		switch {
		case t.Revoked:
			state = "revoked"
		case !t.ExpiresAt.IsZero():
			state = "expires " + t.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "api token: %s identity=%s admin_level=%d claims=%s (%s)\n",
			t.Token, t.Identity, t.AdminLevel, claimList(t.Claims), state)
	}
	for _, s := range seed.Services {
		fmt.Fprintf(w, "service: %s active=%t online=%t\n", s.ID, s.Active, s.Online)
	}
	fmt.Fprintln(w, bannerEnd)
}

func claimList(c []string) string {
	if len(c) == 0 {
		return "none"
	}
	return strings.Join(c, ",")
}
