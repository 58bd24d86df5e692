package facade

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server"
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
	// DefaultMaxConcurrentStreams bounds the calls in flight on one gRPC
	// connection.
	DefaultMaxConcurrentStreams = 256
)

// Config is everything the facade needs to run. New checks it (see
// Validate); its errors name the fields, never a program's flags.
type Config struct {
	// UpstreamURL is the RADKit Access Cloud base URL. Required unless
	// Emulator is set; the two exclude each other.
	UpstreamURL string
	// Credentials for the upstream: ClientID and ClientSecret, or APIToken,
	// or both (then the API token gets access tokens and the client
	// credentials revoke tokens).
	ClientID     string
	ClientSecret string
	APIToken     string
	// ClientSecretFile and APITokenFile, when set, name the files that
	// hold ClientSecret and APIToken: read by New when the value is
	// empty, and read again by Reload, so that a rotated secret takes
	// effect without a restart.
	ClientSecretFile string
	APITokenFile     string
	// ClientSecretExpiresAt is when ClientSecret expires (the admin
	// client's expires_at), zero when not known: it is exported as a
	// metric and warned of before it comes, and once past, calls as the
	// identity are refused with CREDENTIALS_EXPIRED. The API token's
	// expiry is read from the token.
	ClientSecretExpiresAt time.Time
	// Now is the clock credential expiry is judged by; nil is time.Now.
	Now func() time.Time
	// ReloadPollInterval is how often the files Reload reads are checked
	// for changes (a Kubernetes Secret's symlink swap included); a change
	// reloads them as SIGHUP does. Zero turns the checks off
	// (cmd/radkit-access-facade's default is DefaultReloadPollInterval).
	ReloadPollInterval time.Duration

	// IdentitiesFile names a YAML file of further upstream identities
	// (tagged client IDs), with their secrets in files of their own, and
	// of the grants that say which caller may act as which (package
	// identity). The credentials above, when set, are the identity named
	// "default". Read again by Reload.
	IdentitiesFile string

	// Emulator starts the built-in RADKit Access Cloud emulator on loopback
	// and uses it as the upstream, with its default seed's client
	// credentials (configured credentials are ignored, with a warning).
	Emulator bool

	// GRPCAddr and HTTPAddr are the listen addresses; port 0 picks a free one.
	GRPCAddr string
	HTTPAddr string

	// Version is reported in the upstream User-Agent and the start-up log.
	Version string
	// Logger receives every log line. Nil discards.
	Logger *slog.Logger
	// CallLog says which calls get a per-call log line: all (the zero
	// value), failed ones only, or those and a sample of the successful
	// ones (see server.CallLog). Audit records are always written.
	CallLog server.CallLog
	// AuditLogger receives the audit records (one per GenerateOTP and
	// RevokeToken, with "log": "audit"), which are written before the
	// call answers: its output must have written a record when its Write
	// returns (cmd/radkit-access-facade writes them through without
	// batching), and it should be enabled at INFO whatever Logger's
	// level. Nil means Logger.
	AuditLogger *slog.Logger
	// ShutdownTimeout bounds how long in-flight calls may take to finish
	// once shutdown starts.
	ShutdownTimeout time.Duration
	// CallTimeout bounds each upstream call (see server.Config).
	CallTimeout time.Duration
	// MaxMessageBytes bounds gRPC messages received and sent.
	MaxMessageBytes int
	// MaxConcurrentStreams bounds the calls one gRPC connection may have in
	// flight.
	MaxConcurrentStreams uint32

	// CallerKeysFile names the callers' API keys file (package callerauth):
	// callers then authenticate with "authorization: Bearer <key>". Read
	// again by Reload.
	CallerKeysFile string
	// TLSCertFile and TLSKeyFile turn on TLS on both listeners; both or
	// neither. They are read again by Reload.
	TLSCertFile string
	TLSKeyFile  string
	// ClientCAFile turns on mutual TLS: client certificates are verified
	// against it and their subject becomes the caller identity. Requires
	// TLSCertFile.
	ClientCAFile string
	// InsecureNoCallerAuth allows listening on a non-loopback address with
	// no caller authentication, for deployments where something in front of
	// the facade authenticates callers. The facade warns at start.
	InsecureNoCallerAuth bool

	// RateLimit is the calls per second each caller may make, with bursts
	// of RateBurst (at least 1); zero or less turns rate limiting off. It
	// must be a finite number.
	RateLimit float64
	RateBurst int
	// StatusCacheTTL, when positive, caches each service's status for that
	// long: fewer upstream calls for pollers, at the price of answers up
	// to that old. Concurrent calls for one service share one upstream
	// call whatever the TTL.
	StatusCacheTTL time.Duration
	// IdempotencyKeysPerCaller bounds the GenerateOTP request_ids one
	// caller may have remembered at once, so that one caller cannot use up
	// the facade's for the others (over every replica with RedisURL); the
	// facade's total stays idempotency.DefaultMaxEntries. Zero means
	// idempotency.DefaultMaxEntriesPerOwner.
	IdempotencyKeysPerCaller int
	// WatchInterval is how often a service watched with
	// WatchServiceStatus is polled, once per replica however many watch
	// it (at least 1 s); WatchHeartbeat how long a watch stream stays
	// silent before it is sent the unchanged status; MaxWatchesPerCaller
	// bounds one caller's open watches. Zero means the defaults (5 s,
	// 30 s, 100; see package watch).
	WatchInterval       time.Duration
	WatchHeartbeat      time.Duration
	MaxWatchesPerCaller int

	// CORSAllowedOrigins lists the exact web origins
	// ("https://admin.example.com") whose browser pages may call the HTTP
	// API cross-origin; empty (the default) allows none. No wildcards.
	CORSAllowedOrigins []string
	// APIDocs serves the API reference page, Swagger UI showing
	// /openapi.v3.json, under /docs/ on the HTTP listener. The command
	// turns it on by default; the zero value serves no page.
	APIDocs bool
	// UpstreamRateLimit, when positive, is the budget of calls per second
	// to the upstream (retries included) of each upstream identity, shared
	// by every replica on the same Redis and per replica without one. Beyond it calls are refused
	// before they leave, with UPSTREAM_BUDGET_EXHAUSTED.
	UpstreamRateLimit float64

	// RedisURL, when set, keeps the state that replicas must share in
	// Redis: the idempotency of GenerateOTP, the rate limits, the upstream
	// budget and the status cache (see package redisstate for the URL
	// forms). It must carry no password: set RedisPassword.
	RedisURL string
	// RedisPassword is Redis's password, from a file or the environment.
	RedisPassword string
	// RedisPrefix starts every Redis key. Empty means
	// redisstate.DefaultPrefix.
	RedisPrefix string
	// ExpectReplicas is how many replicas of the facade the deployment
	// runs (the manifests set it from their replica count). Above 1
	// without RedisURL, the facade warns at start that request_ids, rate
	// limits and the upstream budget are per replica. Zero means unknown.
	ExpectReplicas int
	// StateKey seals secrets (OTPs) written to Redis: one key per line,
	// each 32 random bytes in base64 or hex; the first seals, every one
	// opens (list the old key after the new one to rotate). Required with
	// RedisURL.
	StateKey string

	// MaxConnectionAge, when positive, makes the gRPC server ask each
	// client connection to reconnect after about that long (grpc-go adds
	// ±10% jitter), so that long-lived clients spread over new replicas.
	// Calls in flight, WatchServiceStatus streams included, finish on
	// the old connection however long they take.
	MaxConnectionAge time.Duration

	// MetricsAddr, when set, serves /metrics, /healthz and /readyz on a
	// listener of their own (plain HTTP, no caller authentication); when
	// empty, /metrics is served on the HTTP listener.
	MetricsAddr string
	// Pprof serves net/http/pprof under /debug/pprof/ on the metrics
	// listener, for profiling a running facade. It requires MetricsAddr
	// (never the caller-facing HTTP listener), and that listener must not
	// be reachable from outside: a profile reveals the process's memory
	// layout and costs CPU while it runs.
	Pprof bool
	// TracerProvider and Propagator trace gRPC, gateway and upstream calls
	// (see package telemetry). Nil means no tracing.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator

	// UpstreamCAFile names a PEM bundle trusted for the upstream's TLS
	// certificate in addition to the system roots (a private CA, a
	// TLS-inspecting gateway). Read again by Reload.
	UpstreamCAFile string
	// InsecureUpstreamHTTP allows an http:// upstream on a host other than
	// loopback; the credentials then travel in clear.
	InsecureUpstreamHTTP bool
	// UpstreamProxy chooses the proxy of each upstream request from its
	// URL (nil for none), as httpproxy.Config.ProxyFunc does. Nil uses
	// http.ProxyFromEnvironment.
	UpstreamProxy func(*url.URL) (*url.URL, error)
	// UpstreamMaxInFlight bounds the upstream calls in flight (and, over
	// HTTP/1.1, the connections); calls beyond it wait within their
	// deadline. Zero means DefaultUpstreamMaxInFlight.
	UpstreamMaxInFlight int
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
	if c.AuditLogger == nil {
		c.AuditLogger = c.Logger
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
}

// Validate reports whether New accepts c, without opening or reading
// anything: every check of a Config lives here, once. Its errors are
// *ConfigError.
func (c Config) Validate() error {
	c.setDefaults()
	for _, check := range []func() error{
		c.checkUpstream,
		c.checkAddrs,
		c.checkTLS,
		c.checkCallerAuth,
		c.checkRateLimit,
		c.checkWatch,
		c.checkUpstreamConnection,
		c.checkCORS,
		c.checkPprof,
		c.checkState,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkCORS checks that each CORS origin is one exact origin.
func (c *Config) checkCORS() error {
	for _, o := range c.CORSAllowedOrigins {
		if err := gateway.CheckOrigin(o); err != nil {
			return configError("%s: "+verbatim("%q: %v", o, err), "CORSAllowedOrigins")
		}
	}
	return nil
}

// checkUpstream checks that c names exactly one upstream and, for a real
// one, credentials that select a way to get access tokens.
func (c *Config) checkUpstream() error {
	switch {
	case c.Emulator && c.UpstreamURL != "":
		return configError("%s and %s exclude each other: choose one", "Emulator", "UpstreamURL")
	case c.Emulator:
		return nil // the emulator's own credentials replace c's
	case c.UpstreamURL == "":
		return configError("no upstream configured: set %s to your RADKit Access Cloud, or %s to run against the built-in emulator",
			"UpstreamURL", "Emulator")
	}
	// A secret file counts as its secret: New reads it, and says so if it
	// cannot.
	secret, token := c.ClientSecret, c.APIToken
	if secret == "" && c.ClientSecretFile != "" {
		secret = c.ClientSecretFile
	}
	if token == "" && c.APITokenFile != "" {
		token = c.APITokenFile
	}
	if c.IdentitiesFile != "" && c.ClientID == "" && secret == "" && token == "" {
		return nil // every identity comes from the file, checked as it is read
	}
	creds := upstream.Config{ClientID: c.ClientID, ClientSecret: secret, APIToken: token}
	if err := creds.CheckCredentials(); err != nil {
		// upstream.Config spells these fields as Config does.
		var ce *upstream.CredentialsError
		if errors.As(err, &ce) {
			return configError(ce.Format, ce.Fields...)
		}
		return configError(verbatim("%v", err))
	}
	return nil
}

// checkPprof checks that profiling has a listener of its own.
func (c *Config) checkPprof() error {
	if c.Pprof && c.MetricsAddr == "" {
		return configError("%s needs %s: profiles are served on the metrics listener only, never beside the API", "Pprof", "MetricsAddr")
	}
	return nil
}

// checkAddrs checks that the listen addresses are host:port pairs.
func (c *Config) checkAddrs() error {
	for _, a := range []struct{ field, addr string }{
		{"GRPCAddr", c.GRPCAddr},
		{"HTTPAddr", c.HTTPAddr},
		{"MetricsAddr", c.MetricsAddr},
	} {
		if a.addr == "" { // only MetricsAddr may be empty after setDefaults
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			why := err.Error()
			if ae, ok := err.(*net.AddrError); ok {
				why = ae.Err // without the address, quoted already
			}
			return configError("%s "+verbatim("%q: invalid address: %s", a.addr, why), a.field)
		}
	}
	return nil
}

// checkTLS checks that the TLS files come as a usable set.
func (c *Config) checkTLS() error {
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return configError("%s and %s must be set together", "TLSCertFile", "TLSKeyFile")
	case c.ClientCAFile != "" && c.TLSCertFile == "":
		return configError("%s needs %s and %s", "ClientCAFile", "TLSCertFile", "TLSKeyFile")
	}
	return nil
}

// checkCallerAuth refuses a listener reachable from the network when no
// caller authentication is configured (SECURITY.md), unless
// InsecureNoCallerAuth says that something in front authenticates
// callers.
func (c *Config) checkCallerAuth() error {
	if c.callerAuth() || c.InsecureNoCallerAuth {
		return nil
	}
	for _, a := range []struct{ field, addr string }{{"GRPCAddr", c.GRPCAddr}, {"HTTPAddr", c.HTTPAddr}} {
		if !isLoopback(a.addr) {
			return configError("refusing to serve %s "+verbatim("%q", a.addr)+", a non-loopback address, without caller authentication: "+
				"set %s, or %s with %s and %s, or %s if something in front of the facade authenticates callers",
				a.field, "CallerKeysFile", "ClientCAFile", "TLSCertFile", "TLSKeyFile", "InsecureNoCallerAuth")
		}
	}
	return nil
}

// checkRateLimit checks that the rate limit can be enforced as asked.
func (c *Config) checkRateLimit() error {
	switch {
	case math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0):
		// NaN compares false with everything: it would turn limiting off
		// without a word.
		return configError("%s must be a finite number", "RateLimit")
	case c.RateLimit > 0 && c.RateBurst < 1:
		return configError("%s must be at least 1 when %s is set", "RateBurst", "RateLimit")
	}
	return nil
}

// checkState checks the shared state's settings: a Redis URL of a form
// package redisstate opens, without a password in any form
// (redisstate.CheckURL), and state keys.
func (c *Config) checkState() error {
	if math.IsNaN(c.UpstreamRateLimit) || math.IsInf(c.UpstreamRateLimit, 0) || c.UpstreamRateLimit < 0 {
		return configError("%s must be a finite number, not negative", "UpstreamRateLimit")
	}
	if c.MaxConnectionAge < 0 {
		return configError("%s must not be negative", "MaxConnectionAge")
	}
	if c.ExpectReplicas < 0 {
		return configError("%s must not be negative", "ExpectReplicas")
	}
	if c.RedisURL == "" {
		return nil
	}
	if _, err := redisstate.CheckURL(c.RedisURL); err != nil {
		if errors.Is(err, redisstate.ErrPasswordInURL) {
			return configError("%s: "+verbatim("%v", err)+": set %s", "RedisURL", "RedisPassword")
		}
		return configError("%s: "+verbatim("%v", err), "RedisURL")
	}
	if c.StateKey == "" {
		return configError("%s is required with %s, to seal the OTPs kept in Redis", "StateKey", "RedisURL")
	}
	if _, err := stateKeyring(c.StateKey); err != nil {
		return configError("%s: "+verbatim("%v", err), "StateKey")
	}
	return nil
}

// stateKeyring parses StateKey: one key per line, the first current.
func stateKeyring(s string) (*redisstate.Keyring, error) {
	var keys [][]byte
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, err := redisstate.ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", len(keys)+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return redisstate.NewKeyring(keys[0], keys[1:]...)
}

// callerAuth reports whether callers must authenticate.
func (c *Config) callerAuth() bool {
	return c.CallerKeysFile != "" || c.ClientCAFile != ""
}

// ConfigError is a Config that New refuses. Its message names Config
// fields and nothing of the program that filled the Config: it is a format
// with one %s per entry of Fields, the fields it names, the ones at fault
// first. Error renders them as the fields; Explain renders them as the
// program calls them (cmd/radkit-access-facade names the flag or
// environment variable its user set), through the same format.
type ConfigError struct {
	// Fields are the Config fields the message names, in the order of
	// its verbs.
	Fields []string
	format string
}

// configError returns the refusal whose message is format, a fmt format
// with one %s per field, in order; values go in through verbatim.
func configError(format string, fields ...string) *ConfigError {
	return &ConfigError{format: format, Fields: fields}
}

// verbatim formats values (an address, an origin, an error's text) for a
// ConfigError's format: as themselves, any % they hold doubled, so that
// only the fields' verbs remain.
func verbatim(format string, a ...any) string {
	return strings.ReplaceAll(fmt.Sprintf(format, a...), "%", "%%")
}

// Error implements error, naming the Config fields.
func (e *ConfigError) Error() string {
	return "facade: config: " + e.Explain(func(field string) string { return field })
}

// Explain returns the message with name(field) in place of each field of
// Fields.
func (e *ConfigError) Explain(name func(field string) string) string {
	names := make([]any, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = name(f)
	}
	return fmt.Sprintf(e.format, names...)
}

// checkWatch checks the watch settings.
func (c *Config) checkWatch() error {
	switch {
	case c.WatchInterval != 0 && c.WatchInterval < watch.MinInterval:
		return configError("%s "+verbatim("%v is below the minimum of %v", c.WatchInterval, watch.MinInterval), "WatchInterval")
	case c.WatchHeartbeat < 0:
		return configError("%s must not be negative", "WatchHeartbeat")
	case c.ReloadPollInterval < 0:
		return configError("%s must not be negative", "ReloadPollInterval")
	case c.MaxWatchesPerCaller < 0:
		return configError("%s must not be negative", "MaxWatchesPerCaller")
	}
	return nil
}
