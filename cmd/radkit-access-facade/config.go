package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Per-caller rate limit of the binary: generous for a service calling in a
// loop, tight enough that a runaway client cannot exhaust the upstream's
// own limits for everyone.
const (
	defaultRateLimit = 50
	defaultRateBurst = 100
)

// maxSecretFileBytes bounds a secret file: a client secret or an API token
// is at most a few KiB.
const maxSecretFileBytes = 64 << 10

// config is the parsed command line and environment.
type config struct {
	facade      facade.Config
	logFormat   string
	logLevel    string
	showVersion bool
}

// parseConfig reads flags, falling back to the environment for each, and
// the secrets from the environment or the files it names. Secrets have no
// flags: flags show in process listings and shell history.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	// Malformed numbers in the environment are reported after parsing, so
	// that a typo is never silently replaced by a default.
	var envErrs []error
	envBool := func(name string) bool {
		v := getenv(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: want true or false", name, v))
		}
		return b
	}
	envFloat := func(name string, def float64) float64 {
		v := getenv(name)
		if v == "" {
			return def
		}
		f, err := parseNumber(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
		return f
	}
	envInt := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: want an integer", name, v))
		}
		return i
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q: want a duration such as 1s or 500ms", name, v))
		}
		return d
	}

	fs := flag.NewFlagSet("radkit-access-facade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.facade.UpstreamURL, "upstream-url", env("RADKIT_ACCESS_URL", ""), "RADKIT Access Cloud base URL (env RADKIT_ACCESS_URL)")
	fs.StringVar(&c.facade.GRPCAddr, "grpc-addr", env("RADKIT_FACADE_GRPC_ADDR", facade.DefaultGRPCAddr), "gRPC listen address (env RADKIT_FACADE_GRPC_ADDR)")
	fs.StringVar(&c.facade.HTTPAddr, "http-addr", env("RADKIT_FACADE_HTTP_ADDR", facade.DefaultHTTPAddr), "HTTP/JSON listen address (env RADKIT_FACADE_HTTP_ADDR)")
	fs.BoolVar(&c.facade.Emulator, "emulator", envBool("RADKIT_FACADE_EMULATOR"), "run the built-in RADKit Access Cloud emulator in-process and use it as the upstream (env RADKIT_FACADE_EMULATOR)")
	fs.StringVar(&c.logFormat, "log-format", env("RADKIT_FACADE_LOG_FORMAT", "text"), "log format: text or json (env RADKIT_FACADE_LOG_FORMAT)")
	fs.StringVar(&c.logLevel, "log-level", env("RADKIT_FACADE_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env RADKIT_FACADE_LOG_LEVEL)")
	fs.StringVar(&c.facade.MetricsAddr, "metrics-addr", env("RADKIT_FACADE_METRICS_ADDR", ""), "serve /metrics, /healthz and /readyz on this address of their own; empty serves /metrics on --http-addr (env RADKIT_FACADE_METRICS_ADDR)")
	fs.StringVar(&c.facade.CallerKeysFile, "caller-keys-file", env("RADKIT_FACADE_CALLER_KEYS_FILE", ""), "file of caller API keys, one \"name sha256-hex\" per line; reloaded on SIGHUP (env RADKIT_FACADE_CALLER_KEYS_FILE)")
	fs.StringVar(&c.facade.TLSCertFile, "tls-cert", env("RADKIT_FACADE_TLS_CERT", ""), "PEM certificate for TLS on both listeners; reloaded on SIGHUP (env RADKIT_FACADE_TLS_CERT)")
	fs.StringVar(&c.facade.TLSKeyFile, "tls-key", env("RADKIT_FACADE_TLS_KEY", ""), "PEM private key for --tls-cert (env RADKIT_FACADE_TLS_KEY)")
	fs.StringVar(&c.facade.ClientCAFile, "client-ca", env("RADKIT_FACADE_CLIENT_CA", ""), "PEM CA bundle: verify client certificates (mutual TLS) and use their subject as the caller identity (env RADKIT_FACADE_CLIENT_CA)")
	fs.BoolVar(&c.facade.InsecureNoCallerAuth, "insecure-no-caller-auth", envBool("RADKIT_FACADE_INSECURE_NO_CALLER_AUTH"), "allow a non-loopback listener without caller authentication (env RADKIT_FACADE_INSECURE_NO_CALLER_AUTH)")
	c.facade.RateLimit = envFloat("RADKIT_FACADE_RATE_LIMIT", defaultRateLimit)
	fs.Var((*numberValue)(&c.facade.RateLimit), "rate-limit", "calls per second allowed to each caller (a `number`); 0 turns the limit off (env RADKIT_FACADE_RATE_LIMIT)")
	fs.IntVar(&c.facade.RateBurst, "rate-burst", envInt("RADKIT_FACADE_RATE_BURST", defaultRateBurst), "calls each caller may make in a burst above --rate-limit (env RADKIT_FACADE_RATE_BURST)")
	fs.DurationVar(&c.facade.StatusCacheTTL, "status-cache-ttl", envDuration("RADKIT_FACADE_STATUS_CACHE_TTL", 0), "cache each service's status this long; 0 (default) caches nothing (env RADKIT_FACADE_STATUS_CACHE_TTL)")
	fs.DurationVar(&c.facade.CallTimeout, "call-timeout", envDuration("RADKIT_FACADE_CALL_TIMEOUT", server.DefaultCallTimeout), "upper bound of one call to the upstream, retries included, when the caller's deadline is later or absent (env RADKIT_FACADE_CALL_TIMEOUT)")
	fs.DurationVar(&c.facade.ShutdownTimeout, "shutdown-timeout", envDuration("RADKIT_FACADE_SHUTDOWN_TIMEOUT", facade.DefaultShutdownTimeout), "how long in-flight calls may take to finish on SIGTERM (env RADKIT_FACADE_SHUTDOWN_TIMEOUT)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: radkit-access-facade [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, `
Upstream credentials (environment only, never flags):
  RADKIT_ACCESS_CLIENT_ID                      OAuth2 client ID
  RADKIT_ACCESS_CLIENT_SECRET[_FILE]           OAuth2 client secret, or a file holding it
  RADKIT_ACCESS_API_TOKEN[_FILE]               API token, or a file holding it
`)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.showVersion {
		return c, nil
	}
	if err := errors.Join(envErrs...); err != nil {
		return c, err
	}
	// The default limit is per authenticated caller. Anonymous callers
	// (loopback without caller authentication) would be keyed by IP
	// address, and on one host or behind a proxy they all share one: they
	// are limited only when the operator asks for it.
	rateSet := getenv("RADKIT_FACADE_RATE_LIMIT") != ""
	fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate-limit" })
	if !rateSet && c.facade.CallerKeysFile == "" && c.facade.ClientCAFile == "" {
		c.facade.RateLimit = 0
	}
	switch {
	case c.facade.RateLimit < 0:
		return c, errors.New("--rate-limit must not be negative")
	case c.facade.RateLimit > 0 && c.facade.RateBurst < 1:
		return c, errors.New("--rate-burst must be at least 1 when --rate-limit is set")
	case c.facade.StatusCacheTTL < 0 || c.facade.CallTimeout < 0 || c.facade.ShutdownTimeout < 0:
		return c, errors.New("durations must not be negative")
	}
	if c.facade.Emulator && c.facade.UpstreamURL != "" {
		return c, errors.New("--emulator and --upstream-url (RADKIT_ACCESS_URL) exclude each other: choose one")
	}

	var err error
	c.facade.ClientID = getenv("RADKIT_ACCESS_CLIENT_ID")
	if c.facade.ClientSecret, err = secret(getenv, "RADKIT_ACCESS_CLIENT_SECRET"); err != nil {
		return c, err
	}
	if c.facade.APIToken, err = secret(getenv, "RADKIT_ACCESS_API_TOKEN"); err != nil {
		return c, err
	}
	if c.facade.Emulator {
		return c, nil
	}
	if c.facade.UpstreamURL == "" {
		return c, errors.New("no upstream configured: set --upstream-url (or RADKIT_ACCESS_URL) to your RADKit Access Cloud, or pass --emulator to run against the built-in emulator")
	}
	hasClient := c.facade.ClientID != "" || c.facade.ClientSecret != ""
	switch {
	case hasClient && (c.facade.ClientID == "" || c.facade.ClientSecret == ""):
		return c, errors.New("client credentials need both RADKIT_ACCESS_CLIENT_ID and RADKIT_ACCESS_CLIENT_SECRET (or RADKIT_ACCESS_CLIENT_SECRET_FILE)")
	case !hasClient && c.facade.APIToken == "":
		return c, errors.New("no upstream credentials: set RADKIT_ACCESS_CLIENT_ID with RADKIT_ACCESS_CLIENT_SECRET[_FILE], or RADKIT_ACCESS_API_TOKEN[_FILE]")
	}
	return c, nil
}

// parseNumber parses a decimal number. It refuses NaN and the infinities,
// which strconv accepts: as a rate limit NaN would turn limiting off
// without a word. Every number of the configuration is parsed here.
func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("want a finite number")
	}
	return f, nil
}

// numberValue is a flag.Value of a float64 parsed by parseNumber.
type numberValue float64

func (v *numberValue) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*v), 'g', -1, 64)
}

func (v *numberValue) Set(s string) error {
	f, err := parseNumber(s)
	if err != nil {
		return err
	}
	*v = numberValue(f)
	return nil
}

// secret reads the secret named name from the environment variable name or
// from the file named by name_FILE; setting both is an error. Surrounding
// white space (a file's trailing newline) is trimmed. Errors never include
// the secret.
func secret(getenv func(string) string, name string) (string, error) {
	value, file := getenv(name), getenv(name+"_FILE")
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	case file == "":
		return strings.TrimSpace(value), nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s_FILE: read %s: %w", name, file, err)
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s_FILE: %s is larger than %d bytes", name, file, maxSecretFileBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s_FILE: %s is empty", name, file)
	}
	return s, nil
}

// newLogger returns the process logger.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}
