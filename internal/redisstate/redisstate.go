// Package redisstate opens the Redis (or Valkey) client that the facade's
// shared state lives in: idempotency, rate limits, the upstream budget and
// the status cache, when several replicas must share them.
//
// Every call through it is bounded by a short timeout (Config.CallTimeout),
// well under any caller's deadline, and the pool is tuned so that a Redis
// that cannot be reached fails calls in milliseconds instead of holding
// them: each user of the shared state then decides for itself what to do
// without it (fall back on local state, or refuse).
//
// Secret values are sealed with AES-256-GCM before they are written (see
// Keyring); keys all carry Config.Prefix so that several deployments can
// share one Redis.
package redisstate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for Config's zero values.
const (
	// DefaultPrefix starts every key the facade writes.
	DefaultPrefix = "radkit-facade:"
	// DefaultCallTimeout bounds each Redis call: far below any caller's
	// deadline, far above a healthy Redis's round trip.
	DefaultCallTimeout = 200 * time.Millisecond
	// DefaultPoolSize is the number of connections kept per replica.
	DefaultPoolSize = 32
)

// Config configures a Client.
type Config struct {
	// URL is the Redis address: redis://[user@]host[:port][/db],
	// rediss://... for TLS, or unix://[user@]/path[?db=N]. A redis:// or
	// rediss:// URL with a master_name parameter (and more sentinels as
	// addr parameters) connects through Redis Sentinel. It must carry no
	// password in any form (see CheckURL). Required.
	URL string
	// Password is the Redis password (of the URL's user, or of the
	// default user), read from a file or the environment.
	Password string
	// Prefix starts every key (see Key). Empty means DefaultPrefix.
	Prefix string
	// CallTimeout bounds each Redis call, its wait for a connection
	// included. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// PoolSize is the number of connections kept. Zero means
	// DefaultPoolSize.
	PoolSize int
	// Keyring seals and opens secret values. Required for Seal and Open.
	Keyring *Keyring
}

// ErrUnavailable matches, under errors.Is, the errors of a Client whose
// Redis could not be reached or did not answer in time: an outage, which
// passes.
var ErrUnavailable = errors.New("redisstate: redis unavailable")

// ErrMisconfigured matches, under errors.Is, the errors of a Client whose
// Redis answered but refused because of how it or the facade is set up:
// NOPERM (the ACL user may not run a command or touch a key: keys outside
// its pattern, a command missing from its list), WRONGPASS and NOAUTH
// (the password), WRONGTYPE (another program writes under the prefix), an
// unknown or disabled command. It does not pass by itself.
var ErrMisconfigured = errors.New("redisstate: redis refused (configuration)")

// Causes of a failed Redis call, as Cause names them for logs and metrics.
const (
	CauseUnavailable   = "unavailable"
	CauseMisconfigured = "misconfigured"
)

// Cause names the kind of a failed Redis call, CauseMisconfigured,
// CauseUnavailable or CauseSkipped, whether err came from a Client's method or straight
// from go-redis.
func Cause(err error) string {
	if errors.Is(err, errBudgetSpent) {
		return CauseSkipped
	}
	if errors.Is(err, ErrMisconfigured) || misconfigured(err) {
		return CauseMisconfigured
	}
	return CauseUnavailable
}

// misconfigured reports whether err is a reply of Redis that no retry
// mends.
func misconfigured(err error) bool {
	if redis.IsAuthError(err) || redis.IsPermissionError(err) {
		return true
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	// A command the ACL denies inside a script is not NOPERM but "ERR The
	// user executing the script can't run this command".
	for _, prefix := range []string{"NOPERM", "WRONGPASS", "NOAUTH", "WRONGTYPE", "ERR unknown command", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH", "ERR The user executing the script"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// Client is a Redis client with a key prefix, a bounded call timeout and a
// keyring. Its methods are safe for concurrent use.
type Client struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	keys    *Keyring
	url     string // redacted
}

// Open returns a Client for cfg. It does no network I/O: a Redis that is
// down at start makes calls fail, not Open.
func Open(cfg Config) (*Client, error) {
	redacted, err := CheckURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		prefix:  cfg.Prefix,
		timeout: cfg.CallTimeout,
		keys:    cfg.Keyring,
		url:     redacted,
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	poolSize := cfg.PoolSize
	if poolSize <= 0 {
		poolSize = DefaultPoolSize
	}
	u, _ := url.Parse(cfg.URL) // CheckURL parsed it
	if u.Query().Has("master_name") {
		opt, err := redis.ParseFailoverURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstate: URL %s: %w", c.url, errWithoutURL(err))
		}
		opt.Password = cfg.Password
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = c.timeout, c.timeout, c.timeout, c.timeout
		opt.MaxRetries, opt.DialerRetries, opt.PoolSize = -1, 1, poolSize
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true
		c.rdb = redis.NewFailoverClient(opt)
		return c, nil
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstate: URL %s: %w", c.url, errWithoutURL(err))
	}
	opt.Password = cfg.Password
	// Fail fast: one short dial, no retries inside go-redis (the callers
	// decide), and a call never waits longer than timeout for a connection.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = c.timeout, c.timeout, c.timeout, c.timeout
	opt.MaxRetries, opt.DialerRetries, opt.PoolSize = -1, 1, poolSize
	opt.ContextTimeoutEnabled = true
	opt.DisableIdentity = true // CLIENT SETINFO is noise on older servers
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c.rdb = redis.NewClient(opt)
	return c, nil
}

// ErrPasswordInURL matches, under errors.Is, CheckURL's error for a URL
// that carries a password.
var ErrPasswordInURL = errors.New("a Redis password never goes in the URL, where process listings and logs show it: pass it apart (Config.Password), from a file or the environment")

// secretParams are the query parameters of a Redis URL that carry a
// password (go-redis reads them in the Sentinel form).
var secretParams = []string{"password", "sentinel_password"}

// CheckURL checks that rawURL is a Redis URL of a form Open accepts and
// that it carries no password in any form (userinfo, a password or
// sentinel_password parameter, userinfo in an addr parameter), and
// returns it redacted, for logs. Its errors never repeat a secret: they
// show the URL redacted. Every Redis URL goes through it before it
// reaches a log line or an error.
func CheckURL(rawURL string) (redacted string, err error) {
	if rawURL == "" {
		return "", errors.New("redisstate: no URL")
	}
	redacted = RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return redacted, fmt.Errorf("redisstate: URL %s: %w", redacted, errWithoutURL(err))
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return redacted, fmt.Errorf("redisstate: URL %s: scheme must be redis, rediss or unix", redacted)
	}
	if _, has := u.User.Password(); has {
		return redacted, fmt.Errorf("redisstate: URL %s: userinfo: %w", redacted, ErrPasswordInURL)
	}
	q := u.Query()
	for _, p := range secretParams {
		if q.Has(p) {
			return redacted, fmt.Errorf("redisstate: URL %s: %s parameter: %w", redacted, p, ErrPasswordInURL)
		}
	}
	for _, a := range q["addr"] {
		if strings.Contains(a, "@") {
			return redacted, fmt.Errorf("redisstate: URL %s: userinfo in an addr parameter (give host:port only): %w", redacted, ErrPasswordInURL)
		}
	}
	return redacted, nil
}

// errWithoutURL drops the URL from a url.Error, so that a password in it
// never reaches an error message.
func errWithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), "://", ":// "))
}

// redactedValue replaces a secret in a redacted URL.
const redactedValue = "xxxxx"

// RedactURL returns rawURL with every secret in it replaced by "xxxxx":
// the userinfo's password, the password and sentinel_password parameters,
// and the userinfo of addr parameters. An unparsable URL is replaced
// whole. Use CheckURL, which calls it, on URLs from configuration.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "(unparsable query)"
		} else {
			for _, p := range secretParams {
				if q.Has(p) {
					q.Set(p, redactedValue)
				}
			}
			for i, a := range q["addr"] {
				if at := strings.LastIndex(a, "@"); at >= 0 {
					q["addr"][i] = redactedValue + a[at:]
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// URL is the client's Redis URL with any password redacted, for logs.
func (c *Client) URL() string { return c.url }

// Redis is the go-redis client, for libraries that take one (such as
// redis_rate). Calls made through it directly must bound themselves with
// Context.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// Key returns the prefixed key of the given parts, joined by ":".
func (c *Client) Key(parts ...string) string {
	return c.prefix + strings.Join(parts, ":")
}

// Prefix is the prefix every key starts with.
func (c *Client) Prefix() string { return c.prefix }

// CallTimeout is the bound of each call.
func (c *Client) CallTimeout() time.Duration { return c.timeout }

// Context returns ctx bounded by the call timeout, for one Redis call.
func (c *Client) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// budgetKey is the context key of a call's Redis budget.
type budgetKey struct{}

// callBudget records that a Redis call made for one incoming call failed.
type callBudget struct{ spent atomic.Bool }

// errBudgetSpent is the error of a Redis call not made because an earlier
// one for the same incoming call failed.
var errBudgetSpent = fmt.Errorf("%w: not asked, an earlier Redis call of this call failed", ErrUnavailable)

// CauseSkipped is what Cause names a Redis call not made because an
// earlier one of the same incoming call failed (see WithCallBudget).
const CauseSkipped = "skipped"

// WithCallBudget returns ctx carrying one Redis budget for the incoming
// call it belongs to: once a Redis call within ctx found Redis
// unavailable (a timeout, a refused connection), the Limiter's and the
// StatusCache's later calls within ctx fail at once with an error
// matching ErrUnavailable, and their users fall back without paying the
// timeout again. A call during a Redis stall then waits for Redis once,
// not once per use. Configuration errors (ErrMisconfigured) do not spend
// the budget: they are quick.
func WithCallBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, budgetKey{}, &callBudget{})
}

// begin starts one Redis call within ctx: ctx bounded by the call
// timeout, or errBudgetSpent when ctx's budget is spent.
func (c *Client) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if b, ok := ctx.Value(budgetKey{}).(*callBudget); ok && b.spent.Load() {
		return nil, nil, errBudgetSpent
	}
	ctx, cancel := c.Context(ctx)
	return ctx, cancel, nil
}

// end classifies the error of a Redis call begun with begin (see Unavailable)
// and spends ctx's budget when Redis was unavailable.
func (c *Client) end(ctx context.Context, err error) error {
	err = Unavailable(err)
	if errors.Is(err, ErrUnavailable) {
		if b, ok := ctx.Value(budgetKey{}).(*callBudget); ok {
			b.spent.Store(true)
		}
	}
	return err
}

// Ping checks that Redis answers within the call timeout, and that it
// lets the client read a key under its prefix (an ACL user whose key
// pattern misses the prefix answers PING but nothing else).
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.Context(ctx)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return Unavailable(err)
	}
	if err := c.rdb.Get(ctx, c.Key("ping")).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return Unavailable(err)
	}
	return nil
}

// Unavailable wraps err, a failed Redis call, so that it matches
// ErrMisconfigured when Redis refused it for its configuration (see
// Cause), else ErrUnavailable; redis.Nil and nil pass through unchanged.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	if misconfigured(err) {
		return fmt.Errorf("%w: %w", ErrMisconfigured, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Keyring is the keyring Seal and Open use; nil when Config had none.
func (c *Client) Keyring() *Keyring { return c.keys }

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }
