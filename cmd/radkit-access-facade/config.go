package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/watch"
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

// defaultMaxConnectionAge spreads long-lived gRPC clients over replicas
// within minutes of a scale-up, at the cost of one reconnect per client
// that often.
const defaultMaxConnectionAge = 5 * time.Minute

// maxSecretFileBytes bounds a secret file: a client secret or an API token
// is at most a few KiB.
const maxSecretFileBytes = 64 << 10

// config is the parsed command line and environment.
type config struct {
	facade      facade.Config
	logFormat   string
	logLevel    slog.Level
	showVersion bool

	// from maps each option's flag name to what set it: "--name" for the
	// flag, the variable's name for the environment; absent for a default.
	from map[string]string
	// secretFrom maps a credential's facade.Config field to the variable
	// it came from.
	secretFrom map[string]string
}

// option is one setting of the command: a flag, the environment variable
// it falls back on, and the facade.Config field it fills.
//
// The table is built on the standard flag package rather than a flags and
// environment library (ff, viper): it is also what names the source of a
// bad value in errors and what docs/configuration.md is checked against,
// and its overrides rule has no equivalent there.
type option struct {
	flag string // without dashes
	env  string
	// formerEnv is a name env had before; set, it is refused with a
	// message naming env (see refuseFormerEnv).
	formerEnv string
	field     string // the facade.Config field it fills; "" for the command's own settings
	usage     string
	value     flag.Value
	// overrides lists options (by flag name) that this one excludes: given
	// as a flag, it wins over their environment values instead of
	// conflicting with them.
	overrides []string
}

// options is the command's settings, in the order of the usage text.
func (c *config) options() []option {
	f := &c.facade
	return []option{
		{flag: "upstream-url", env: "RADKIT_FACADE_UPSTREAM_URL", formerEnv: "RADKIT_ACCESS_URL", field: "UpstreamURL", value: stringValue(&f.UpstreamURL, nil),
			usage: "RADKit Access Cloud base `URL`", overrides: []string{"emulator"}},
		{flag: "emulator", env: "RADKIT_FACADE_EMULATOR", field: "Emulator", value: boolValue(&f.Emulator),
			usage: "run the built-in RADKit Access Cloud emulator in-process and use it as the upstream", overrides: []string{"upstream-url"}},
		{flag: "grpc-addr", env: "RADKIT_FACADE_GRPC_ADDR", field: "GRPCAddr", value: stringValue(&f.GRPCAddr, nil),
			usage: "gRPC listen `address`"},
		{flag: "http-addr", env: "RADKIT_FACADE_HTTP_ADDR", field: "HTTPAddr", value: stringValue(&f.HTTPAddr, nil),
			usage: "HTTP/JSON listen `address`"},
		{flag: "log-format", env: "RADKIT_FACADE_LOG_FORMAT", value: stringValue(&c.logFormat, checkLogFormat),
			usage: "log `format`: text or json"},
		{flag: "log-level", env: "RADKIT_FACADE_LOG_LEVEL", value: levelValue{&c.logLevel},
			usage: "log `level`: debug, info, warn or error"},
		{flag: "log-calls", env: "RADKIT_FACADE_LOG_CALLS", field: "CallLog", value: callLogValue(&f.CallLog),
			usage: "which calls get a per-call log line (a `policy`): all, errors (failed calls only) or sample:N (failed calls and one successful call in N); audit records are always written"},
		{flag: "metrics-addr", env: "RADKIT_FACADE_METRICS_ADDR", field: "MetricsAddr", value: stringValue(&f.MetricsAddr, nil),
			usage: "serve /metrics, /healthz and /readyz on this `address` of their own; empty serves /metrics on --http-addr"},
		{flag: "pprof", env: "RADKIT_FACADE_PPROF", field: "Pprof", value: boolValue(&f.Pprof),
			usage: "serve net/http/pprof under /debug/pprof/ on --metrics-addr (required); never expose that listener publicly"},
		{flag: "caller-keys-file", env: "RADKIT_FACADE_CALLER_KEYS_FILE", field: "CallerKeysFile", value: stringValue(&f.CallerKeysFile, nil),
			usage: "`file` of caller API keys, one \"name sha256-hex\" per line; reloaded on SIGHUP and when it changes"},
		{flag: "identities-file", env: "RADKIT_FACADE_IDENTITIES_FILE", field: "IdentitiesFile", value: stringValue(&f.IdentitiesFile, nil),
			usage: "YAML `file` of further upstream identities (credentials in files of their own) and of which caller may act as which; reloaded on SIGHUP and when it changes"},
		{flag: "reload-poll-interval", env: "RADKIT_FACADE_RELOAD_POLL_INTERVAL", field: "ReloadPollInterval", value: durationValue(&f.ReloadPollInterval),
			usage: "how often (a `duration`) the files reloaded on SIGHUP are checked for changes, Kubernetes Secret updates included; a change reloads them; 0 turns the checks off"},
		{flag: "tls-cert", env: "RADKIT_FACADE_TLS_CERT", field: "TLSCertFile", value: stringValue(&f.TLSCertFile, nil),
			usage: "PEM certificate `file` for TLS on both listeners; reloaded on SIGHUP and when it changes"},
		{flag: "tls-key", env: "RADKIT_FACADE_TLS_KEY", field: "TLSKeyFile", value: stringValue(&f.TLSKeyFile, nil),
			usage: "PEM private key `file` for --tls-cert"},
		{flag: "client-ca", env: "RADKIT_FACADE_CLIENT_CA", field: "ClientCAFile", value: stringValue(&f.ClientCAFile, nil),
			usage: "PEM CA bundle `file`: verify client certificates (mutual TLS) and use their subject as the caller identity"},
		{flag: "insecure-no-caller-auth", env: "RADKIT_FACADE_INSECURE_NO_CALLER_AUTH", field: "InsecureNoCallerAuth", value: boolValue(&f.InsecureNoCallerAuth),
			usage: "allow a non-loopback listener without caller authentication"},
		{flag: "rate-limit", env: "RADKIT_FACADE_RATE_LIMIT", field: "RateLimit", value: numberValue(&f.RateLimit),
			usage: fmt.Sprintf("calls per second allowed to each caller (a `number`); default %d with --caller-keys-file or --client-ca, "+
				"off without (anonymous callers are told apart by address, which many may share); 0 turns the limit off", defaultRateLimit)},
		{flag: "rate-burst", env: "RADKIT_FACADE_RATE_BURST", field: "RateBurst", value: intValue(&f.RateBurst),
			usage: "`number` of calls each caller may make in a burst above --rate-limit"},
		{flag: "cors-allowed-origins", env: "RADKIT_FACADE_CORS_ALLOWED_ORIGINS", field: "CORSAllowedOrigins", value: listValue(&f.CORSAllowedOrigins),
			usage: "comma-separated exact `origins` (https://admin.example.com) whose browser pages may call the HTTP API; empty (default) allows none, \"*\" is refused"},
		{flag: "api-docs", env: "RADKIT_FACADE_API_DOCS", field: "APIDocs", value: boolValue(&f.APIDocs),
			usage: "serve the API reference page (Swagger UI, embedded) at /docs/ on --http-addr; --api-docs=false turns it off"},
		{flag: "status-cache-ttl", env: "RADKIT_FACADE_STATUS_CACHE_TTL", field: "StatusCacheTTL", value: durationValue(&f.StatusCacheTTL),
			usage: "cache each service's status for this `duration`; 0 (default) caches nothing"},
		{flag: "idempotency-keys-per-caller", env: "RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER", field: "IdempotencyKeysPerCaller", value: countValue(&f.IdempotencyKeysPerCaller),
			usage: fmt.Sprintf("GenerateOTP request_ids (a `number`, at least 1) one caller may have remembered at once, %s each; "+
				"beyond it that caller's new request_ids are refused", shortDuration(idempotency.DefaultTTL))},
		{flag: "watch-interval", env: "RADKIT_FACADE_WATCH_INTERVAL", field: "WatchInterval", value: positiveDurationValue(&f.WatchInterval),
			usage: fmt.Sprintf("how often (a `duration`, at least %s) a service watched with WatchServiceStatus is polled, once per replica however many watch it",
				shortDuration(watch.MinInterval))},
		{flag: "watch-heartbeat", env: "RADKIT_FACADE_WATCH_HEARTBEAT", field: "WatchHeartbeat", value: positiveDurationValue(&f.WatchHeartbeat),
			usage: "how long (a `duration`) a WatchServiceStatus stream stays silent before it is sent the unchanged status"},
		{flag: "max-watches-per-caller", env: "RADKIT_FACADE_MAX_WATCHES_PER_CALLER", field: "MaxWatchesPerCaller", value: countValue(&f.MaxWatchesPerCaller),
			usage: "`number` (at least 1) of WatchServiceStatus streams one caller may have open"},
		{flag: "upstream-rate-limit", env: "RADKIT_FACADE_UPSTREAM_RATE_LIMIT", field: "UpstreamRateLimit", value: numberValue(&f.UpstreamRateLimit),
			usage: "budget of calls per second (a `number`) to RADKit Access Cloud, summed over replicas with --redis-url, per replica without; 0 (default) is no budget"},
		{flag: "redis-url", env: "RADKIT_FACADE_REDIS_URL", field: "RedisURL", value: stringValue(&f.RedisURL, nil),
			usage: "Redis `URL` (redis://, rediss:// or unix://, no password) of the state replicas share: idempotency, rate limits, upstream budget, status cache; needs " +
				stateKeyEnv + "[_FILE]"},
		{flag: "redis-prefix", env: "RADKIT_FACADE_REDIS_PREFIX", field: "RedisPrefix", value: stringValue(&f.RedisPrefix, nil),
			usage: "`prefix` of every Redis key, so that deployments can share one Redis"},
		{flag: "expect-replicas", env: "RADKIT_FACADE_EXPECT_REPLICAS", field: "ExpectReplicas", value: intValue(&f.ExpectReplicas),
			usage: "`number` of facade replicas the deployment runs; above 1 without --redis-url the facade warns at start that request_ids and limits are per replica; 0 (default) is unknown"},
		{flag: "max-connection-age", env: "RADKIT_FACADE_MAX_CONNECTION_AGE", field: "MaxConnectionAge", value: durationValue(&f.MaxConnectionAge),
			usage: "ask gRPC clients to reconnect after about this `duration` (±10% jitter), so that they spread over replicas; 0 never"},
		{flag: "call-timeout", env: "RADKIT_FACADE_CALL_TIMEOUT", field: "CallTimeout", value: positiveDurationValue(&f.CallTimeout),
			usage: "upper bound (a `duration`) of one call to the upstream, retries included, when the caller's deadline is later or absent"},
		{flag: "shutdown-timeout", env: "RADKIT_FACADE_SHUTDOWN_TIMEOUT", field: "ShutdownTimeout", value: positiveDurationValue(&f.ShutdownTimeout),
			usage: "how long (a `duration`) in-flight calls may take to finish on SIGTERM"},
		{flag: "upstream-ca-file", env: "RADKIT_FACADE_UPSTREAM_CA_FILE", formerEnv: "RADKIT_ACCESS_CA_FILE", field: "UpstreamCAFile", value: stringValue(&f.UpstreamCAFile, nil),
			usage: "PEM CA bundle `file` trusted for the upstream's certificate on top of the system roots (a private CA, a TLS-inspecting gateway); reloaded on SIGHUP and when it changes"},
		{flag: "insecure-upstream-http", env: "RADKIT_FACADE_INSECURE_UPSTREAM_HTTP", field: "InsecureUpstreamHTTP", value: boolValue(&f.InsecureUpstreamHTTP),
			usage: "allow an http:// upstream on a host other than loopback: the credentials travel in clear"},
		{flag: "upstream-max-in-flight", env: "RADKIT_FACADE_UPSTREAM_MAX_IN_FLIGHT", field: "UpstreamMaxInFlight", value: countValue(&f.UpstreamMaxInFlight),
			usage: "upstream calls in flight at most (a `number`, at least 1); more wait within their deadline, then fail with RESOURCE_EXHAUSTED"},
	}
}

// stateKeyEnv holds the key sealing what is kept in Redis; --redis-url
// needs it.
const stateKeyEnv = "RADKIT_FACADE_STATE_KEY"

// credential is an upstream credential: environment only, never a flag,
// which would show in process listings and shell history.
type credential struct {
	env   string
	field string  // the facade.Config field it fills
	file  bool    // may come from the file named by env+"_FILE"
	p     *string // where it goes
	// path, if set, receives the file's name, so that the facade reads
	// it again on reload.
	path  *string
	usage string // for --help; a line break starts an indented line
}

// upstreamCredentialPrefix starts the upstream credentials' variables,
// the only ones outside RADKIT_FACADE_: they are RADKit Access Cloud's.
const upstreamCredentialPrefix = "RADKIT_ACCESS_"

func (c *config) credentials() []credential {
	return []credential{
		{"RADKIT_ACCESS_CLIENT_ID", "ClientID", false, &c.facade.ClientID, nil, "OAuth2 client ID"},
		{"RADKIT_ACCESS_CLIENT_SECRET", "ClientSecret", true, &c.facade.ClientSecret, &c.facade.ClientSecretFile,
			"OAuth2 client secret, or a file holding it"},
		{"RADKIT_ACCESS_API_TOKEN", "APIToken", true, &c.facade.APIToken, &c.facade.APITokenFile, "API token, or a file holding it"},
		{"RADKIT_FACADE_REDIS_PASSWORD", "RedisPassword", true, &c.facade.RedisPassword, nil, "Redis password, or a file holding it"},
		{stateKeyEnv, "StateKey", true, &c.facade.StateKey, nil,
			fmt.Sprintf("key(s) sealing OTPs in Redis: %d random bytes as\nbase64 or hex, one per line, the first current", redisstate.KeySize)},
	}
}

// parseConfig reads flags, falling back to the environment for each flag
// not given, and the credentials from the environment or the files it
// names. A flag wins over the environment so completely that the variable
// it overrides is not even read: a stale variable cannot stop a start that
// the command line fixes.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{from: map[string]string{}, secretFrom: map[string]string{}}
	c.setDefaults()
	opts := c.options()
	fs := newFlagSet(opts, c.credentials(), stderr)
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.showVersion {
		return c, nil
	}
	fs.Visit(func(f *flag.Flag) { c.from[f.Name] = "--" + f.Name })
	if err := c.applyEnv(opts, getenv); err != nil {
		return c, err
	}
	if err := c.readCredentials(getenv); err != nil {
		return c, err
	}
	if err := c.readSecretExpiry(getenv); err != nil {
		return c, err
	}
	proxy, err := proxyFromEnv(getenv)
	if err != nil {
		return c, err
	}
	c.facade.UpstreamProxy = proxy
	c.defaultRateLimit()
	if err := c.check(); err != nil {
		return c, err
	}
	return c, nil
}

// setDefaults sets what no flag or variable changes, each from the
// package that owns it, so that --help shows the defaults in force. The
// rate limit's depends on other settings (defaultRateLimit).
func (c *config) setDefaults() {
	c.facade.GRPCAddr = facade.DefaultGRPCAddr
	c.facade.HTTPAddr = facade.DefaultHTTPAddr
	c.facade.RateBurst = defaultRateBurst
	c.facade.CallTimeout = server.DefaultCallTimeout
	c.facade.IdempotencyKeysPerCaller = idempotency.DefaultMaxEntriesPerOwner
	c.facade.MaxWatchesPerCaller = server.DefaultMaxWatchesPerCaller
	c.facade.WatchInterval = watch.DefaultInterval
	c.facade.WatchHeartbeat = watch.DefaultHeartbeat
	c.facade.RedisPrefix = redisstate.DefaultPrefix
	c.facade.ShutdownTimeout = facade.DefaultShutdownTimeout
	c.facade.UpstreamMaxInFlight = facade.DefaultUpstreamMaxInFlight
	c.facade.MaxConnectionAge = defaultMaxConnectionAge
	c.facade.ReloadPollInterval = facade.DefaultReloadPollInterval
	// The page shows only what /openapi.v3.json already publishes, and
	// calls made from it are authenticated like any other.
	c.facade.APIDocs = true
	c.logFormat = "text"
	c.logLevel = slog.LevelInfo
}

// newFlagSet defines a flag for each option, with its current value as the
// default shown by --help, which also lists the credentials.
func newFlagSet(opts []option, creds []credential, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("radkit-access-facade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range opts {
		fs.Var(o.value, o.flag, fmt.Sprintf("%s (env %s)", o.usage, o.env))
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: radkit-access-facade [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nUpstream proxy (environment): HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as curl and Go read them.\n")
		fmt.Fprint(stderr, "\nUpstream credentials (environment only, never flags):\n")
		var state []credential
		for _, cred := range creds {
			if !strings.HasPrefix(cred.env, upstreamCredentialPrefix) {
				state = append(state, cred)
				continue
			}
			printVariable(stderr, cred.env, cred.file, cred.usage)
		}
		printVariable(stderr, secretExpiryEnv, false, "when the client secret expires (RFC 3339), to warn before")
		fmt.Fprint(stderr, "\nShared state secrets (with --redis-url; environment only):\n")
		for _, cred := range state {
			printVariable(stderr, cred.env, cred.file, cred.usage)
		}
	}
	return fs
}

// printVariable prints a variable's line of --help: its name, [_FILE] if
// a file may hold its value, and its usage in a column of its own.
func printVariable(w io.Writer, env string, file bool, usage string) {
	if file {
		env += "[_FILE]"
	}
	const indent = "  "
	const column = 45
	fmt.Fprintf(w, "%s%-*s%s\n", indent, column, env,
		strings.ReplaceAll(usage, "\n", "\n"+strings.Repeat(" ", len(indent)+column)))
}

// applyEnv sets each option that no flag set from its environment
// variable, if set. An option given as a flag also silences the variables
// of the options it overrides. Every malformed value is reported, naming
// its variable, so that a typo is never silently replaced by a default.
func (c *config) applyEnv(opts []option, getenv func(string) string) error {
	var errs []error
	for _, o := range opts {
		if c.from[o.flag] != "" || c.overridden(o) {
			continue
		}
		if err := refuseFormerEnv(o, getenv); err != nil {
			errs = append(errs, err)
			continue
		}
		v := getenv(o.env)
		if v == "" {
			continue
		}
		if err := o.value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", o.env, v, err))
			continue
		}
		c.from[o.flag] = o.env
	}
	return errors.Join(errs...)
}

// refuseFormerEnv refuses o's former variable when it is set, the new one
// set or not. Accepted, an old name would be silently ignored the day support
// for it ends, and a name ignored is a setting lost (a CA bundle no longer
// trusted, an upstream no longer configured); refused, the start stops with
// the fix, and a rolling update stops at its first new replica while the
// old ones serve.
func refuseFormerEnv(o option, getenv func(string) string) error {
	if o.formerEnv == "" || getenv(o.formerEnv) == "" {
		return nil
	}
	return fmt.Errorf("%s is no longer read: rename it %s", o.formerEnv, o.env)
}

// overridden reports whether a flag given on the command line excludes o.
func (c *config) overridden(o option) bool {
	for _, other := range c.options() {
		if strings.HasPrefix(c.from[other.flag], "--") && slices.Contains(other.overrides, o.flag) {
			return true
		}
	}
	return false
}

// readCredentials reads the upstream credentials from the environment or
// the files it names.
func (c *config) readCredentials(getenv func(string) string) error {
	for _, cred := range c.credentials() {
		v, from := getenv(cred.env), cred.env
		if cred.file {
			var err error
			if v, from, err = secret(getenv, cred.env); err != nil {
				return err
			}
		}
		if v != "" {
			*cred.p, c.secretFrom[cred.field] = v, from
		}
		if cred.path != nil && from == cred.env+"_FILE" {
			*cred.path = getenv(from)
		}
	}
	return nil
}

// secretExpiryEnv is when the client secret expires. It sits with the
// credentials, in the environment only, next to the secret it describes.
const secretExpiryEnv = "RADKIT_ACCESS_CLIENT_SECRET_EXPIRES_AT"

// readSecretExpiry reads secretExpiryEnv, an RFC 3339 time.
func (c *config) readSecretExpiry(getenv func(string) string) error {
	v := strings.TrimSpace(getenv(secretExpiryEnv))
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("%s=%q: want an RFC 3339 time such as 2026-12-31T23:59:59Z", secretExpiryEnv, v)
	}
	c.facade.ClientSecretExpiresAt = t
	return nil
}

// defaultRateLimit sets the default rate limit when callers
// authenticate. The default limit is per authenticated caller. Anonymous
// callers (loopback without caller authentication) would be keyed by IP
// address, and on one host or behind a proxy they all share one: they are
// limited only when the operator asks for it.
func (c *config) defaultRateLimit() {
	if c.from["rate-limit"] == "" && (c.facade.CallerKeysFile != "" || c.facade.ClientCAFile != "") {
		c.facade.RateLimit = defaultRateLimit
	}
}

// name is how messages call the option with flag name: what the user set
// it with, or both ways to set it when it has its default.
func (c *config) name(flagName string) string {
	if from := c.from[flagName]; from != "" {
		return from
	}
	for _, o := range c.options() {
		if o.flag == flagName {
			return fmt.Sprintf("--%s (or %s)", o.flag, o.env)
		}
	}
	return "--" + flagName
}

// credentialName is how messages call a credential's field.
func (c *config) credentialName(field string) string {
	if from := c.secretFrom[field]; from != "" {
		return from
	}
	for _, cred := range c.credentials() {
		switch {
		case cred.field == field && cred.file:
			return cred.env + "[_FILE]"
		case cred.field == field:
			return cred.env
		}
	}
	return field
}

// check refuses settings that cannot run. The checks are package
// facade's (Config.Validate); its refusals name Config fields, and
// explain names what the user set instead.
func (c *config) check() error {
	return c.explain(c.facade.Validate())
}

// explain renders a *facade.ConfigError in err with the flags and
// variables the user set (fieldName) in place of the facade.Config fields
// it names. Other errors pass unchanged.
func (c *config) explain(err error) error {
	var ce *facade.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	return errors.New(ce.Explain(c.fieldName))
}

// fieldName is how messages call the setting that fills a facade.Config
// field.
func (c *config) fieldName(field string) string {
	for _, o := range c.options() {
		if o.field == field {
			return c.name(o.flag)
		}
	}
	return c.credentialName(field)
}

// secret reads the secret named name from the environment variable name or
// from the file named by name_FILE; setting both is an error. from is the
// variable it came from, "" when neither is set. Surrounding white space (a
// file's trailing newline) is trimmed. Errors never include the secret.
func secret(getenv func(string) string, name string) (value, from string, err error) {
	value, file := getenv(name), getenv(name+"_FILE")
	switch {
	case value != "" && file != "":
		return "", "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	case value != "":
		return strings.TrimSpace(value), name, nil
	case file == "":
		return "", "", nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return "", "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFileBytes+1))
	if err != nil {
		return "", "", fmt.Errorf("%s_FILE: read %s: %w", name, file, err)
	}
	if len(b) > maxSecretFileBytes {
		return "", "", fmt.Errorf("%s_FILE: %s is larger than %d bytes", name, file, maxSecretFileBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", "", fmt.Errorf("%s_FILE: %s is empty", name, file)
	}
	return s, name + "_FILE", nil
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

// value is a flag.Value that parses with set and shows get's result.
type value struct {
	set    func(string) error
	get    func() string
	isBool bool
}

func (v *value) String() string {
	if v == nil || v.get == nil { // the zero value flag.PrintDefaults makes
		return ""
	}
	return v.get()
}

func (v *value) Set(s string) error { return v.set(s) }

// The get functions of the values show a zero as "", as the flag
// package's own values do: --help then prints no default for it, where
// the usage says what zero means.

// IsBoolFlag lets a boolean flag stand alone: --emulator.
func (v *value) IsBoolFlag() bool { return v != nil && v.isBool }

// stringValue sets *p, after check if not nil.
func stringValue(p *string, check func(string) error) *value {
	return &value{
		get: func() string { return *p },
		set: func(s string) error {
			if check != nil {
				if err := check(s); err != nil {
					return err
				}
			}
			*p = s
			return nil
		},
	}
}

func boolValue(p *bool) *value {
	return &value{
		isBool: true,
		get: func() string { // "" for false: --help shows no default
			if *p {
				return "true"
			}
			return ""
		},
		set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return errors.New("want true or false")
			}
			*p = b
			return nil
		},
	}
}

// numberValue sets *p to a finite, non-negative number.
func numberValue(p *float64) *value {
	return &value{
		get: func() string {
			if *p == 0 {
				return ""
			}
			return strconv.FormatFloat(*p, 'g', -1, 64)
		},
		set: func(s string) error {
			f, err := parseNumber(s)
			switch {
			case err != nil:
				return err
			case f < 0:
				return errors.New("must not be negative")
			}
			*p = f
			return nil
		},
	}
}

// listValue is a comma-separated list; blanks around items are trimmed
// and empty items dropped.
func listValue(p *[]string) *value {
	return &value{
		get: func() string { return strings.Join(*p, ",") },
		set: func(s string) error {
			var items []string
			for _, item := range strings.Split(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			*p = items
			return nil
		},
	}
}

func intValue(p *int) *value {
	return &value{
		get: func() string {
			if *p == 0 {
				return ""
			}
			return strconv.Itoa(*p)
		},
		set: func(s string) error {
			i, err := strconv.Atoi(s)
			if err != nil {
				return errors.New("want an integer")
			}
			*p = i
			return nil
		},
	}
}

// countValue sets *p to an integer of at least 1.
func countValue(p *int) *value {
	v := intValue(p)
	set := v.set
	v.set = func(s string) error {
		if i, err := strconv.Atoi(s); err == nil && i < 1 {
			return errors.New("want an integer of at least 1")
		}
		return set(s)
	}
	return v
}

// durationValue sets *p to a non-negative duration.
func durationValue(p *time.Duration) *value {
	return &value{
		get: func() string {
			if *p == 0 {
				return ""
			}
			return shortDuration(*p)
		},
		set: func(s string) error {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				return errors.New("want a duration such as 1s or 500ms")
			case d < 0:
				return errors.New("must not be negative")
			}
			*p = d
			return nil
		},
	}
}

// positiveDurationValue sets *p to a duration above zero, for settings
// whose zero the facade would replace with its default: refused, a 0 can
// not silently mean the default that --help shows.
func positiveDurationValue(p *time.Duration) *value {
	v := durationValue(p)
	set := v.set
	v.set = func(s string) error {
		if d, err := time.ParseDuration(s); err == nil && d == 0 {
			return errors.New("must be above 0: leave it unset for the default")
		}
		return set(s)
	}
	return v
}

// shortDuration is d as a flag takes it, without trailing zero units:
// 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// callLogValue sets *p from all, errors or sample:N.
func callLogValue(p *server.CallLog) *value {
	return &value{
		get: func() string { return p.String() },
		set: func(s string) error {
			c, err := server.ParseCallLog(s)
			if err != nil {
				return err
			}
			*p = c
			return nil
		},
	}
}

// levelValue is a flag.Value of a slog.Level.
type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.ToLower(v.p.String())
}

func (v levelValue) Set(s string) error {
	if err := v.p.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	return nil
}

func checkLogFormat(s string) error {
	if s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	return nil
}
