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
	// URL is the Redis address: redis://[user[:password]@]host[:port][/db],
	// rediss://... for TLS, or unix://[user[:password]@]/path[?db=N]. A
	// redis:// or rediss:// URL with a master_name parameter (and more
	// sentinels as addr parameters) connects through Redis Sentinel.
	// Required.
	URL string
	// Password, when set, replaces any password in URL. Pass secrets here
	// (read from a file or the environment), not in URL.
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
// Redis could not be reached or did not answer in time.
var ErrUnavailable = errors.New("redisstate: redis unavailable")

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
	if cfg.URL == "" {
		return nil, errors.New("redisstate: no URL")
	}
	c := &Client{
		prefix:  cfg.Prefix,
		timeout: cfg.CallTimeout,
		keys:    cfg.Keyring,
		url:     RedactURL(cfg.URL),
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
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstate: URL %s: %w", c.url, errWithoutURL(err))
	}
	if u.Query().Has("master_name") {
		opt, err := redis.ParseFailoverURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstate: URL %s: %w", c.url, errWithoutURL(err))
		}
		if cfg.Password != "" {
			opt.Password = cfg.Password
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = c.timeout, c.timeout, c.timeout, c.timeout
		opt.MaxRetries, opt.DialerRetries, opt.PoolSize = -1, 1, poolSize
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true
		c.rdb = redis.NewFailoverClient(opt)
		return c, nil
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("redisstate: URL %s: scheme must be redis, rediss or unix", c.url)
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstate: URL %s: %w", c.url, errWithoutURL(err))
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
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

// errWithoutURL drops the URL from a url.Error, so that a password in it
// never reaches an error message.
func errWithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), "://", ":// "))
}

// RedactURL returns rawURL with any password replaced by "xxxxx", for logs.
// An unparsable URL is replaced whole.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
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

// Ping checks that Redis answers within the call timeout.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.Context(ctx)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return Unavailable(err)
	}
	return nil
}

// Unavailable wraps err, a failed Redis call, so that it matches
// ErrUnavailable; redis.Nil and nil pass through unchanged.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Keyring is the keyring Seal and Open use; nil when Config had none.
func (c *Client) Keyring() *Keyring { return c.keys }

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }
