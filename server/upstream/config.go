package upstream

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

const (
	defaultUserAgent        = "radkit-access-facade/dev"
	defaultMaxResponseBytes = 1 << 20
	defaultRefreshFraction  = 0.8
)

// Config configures a Client. Secrets come from the caller (environment or
// files) and are never logged nor put in errors. Leading and trailing white
// space around the secrets (a trailing newline of a secret file) is ignored.
type Config struct {
	// BaseURL is the upstream's base URL, http or https, without query,
	// fragment or user info. A trailing slash is ignored. Required.
	BaseURL string
	// ClientID and ClientSecret select client-credentials mode; both or
	// neither must be set.
	ClientID     string
	ClientSecret string
	// APIToken selects API-token mode. If client credentials are set too,
	// access tokens come from the API token and the client credentials are
	// used only for revocation.
	APIToken string
	// HTTPClient is used for every request. Default:
	// &http.Client{Transport: NewTransport()}. Callers may wrap the
	// transport (otelhttp, for example).
	HTTPClient *http.Client
	// UserAgent is sent on every request. Default "radkit-access-facade/dev".
	UserAgent string
	// MaxResponseBytes bounds every response body read. Default 1 MiB.
	MaxResponseBytes int64
	// RefreshFraction is the fraction of an access token's lifetime after
	// which it is refreshed in the background, in (0, 1). Default 0.8.
	RefreshFraction float64
	// Logger receives operational logs, never secrets. Default: discard.
	Logger *slog.Logger
	// AllowInsecureHTTP permits an http:// BaseURL (and http:// discovered
	// endpoints) on a host other than loopback. Without it such URLs are
	// refused: the credentials and tokens would travel in clear.
	AllowInsecureHTTP bool
	// Discovery, if set, is shared with other Clients of the same
	// BaseURL (one per upstream identity), so that they fetch the
	// discovery document once between them. Nil: this Client discovers on
	// its own.
	Discovery *Discovery
}

// String describes c without its secrets, so that printing a Config by
// mistake cannot leak them.
func (c Config) String() string {
	return fmt.Sprintf("upstream.Config{BaseURL:%q ClientID:%q ClientSecret:%s APIToken:%s UserAgent:%q MaxResponseBytes:%d RefreshFraction:%g}",
		c.BaseURL, c.ClientID, redacted(c.ClientSecret), redacted(c.APIToken), c.UserAgent, c.MaxResponseBytes, c.RefreshFraction)
}

// GoString is String, so that %#v does not leak secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue is the slog form of c, without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redacted(c.ClientSecret)),
		slog.String("api_token", redacted(c.APIToken)),
		slog.String("user_agent", c.UserAgent),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return "<unset>"
	}
	return "<redacted>"
}

// CheckCredentials reports whether c's credentials select a way to get
// access tokens: ClientID with ClientSecret, APIToken, or both. It is the
// one check of which credentials are needed, for New and for programs that
// check their configuration before building anything. Its errors are
// *CredentialsError, naming the Config fields, never their values.
func (c Config) CheckCredentials() error {
	id, secret, token := strings.TrimSpace(c.ClientID), strings.TrimSpace(c.ClientSecret), strings.TrimSpace(c.APIToken)
	if (id == "") != (secret == "") {
		return &CredentialsError{Format: "%s and %s must be set together", Fields: []string{"ClientID", "ClientSecret"}}
	}
	if id == "" && token == "" {
		return &CredentialsError{Format: "set either %s and %s, or %s", Fields: []string{"ClientID", "ClientSecret", "APIToken"}}
	}
	for _, f := range []struct{ name, value string }{
		{"ClientID", id},
		{"ClientSecret", secret},
		{"APIToken", token},
	} {
		if strings.ContainsFunc(f.value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return &CredentialsError{Format: "%s contains white space or control characters", Fields: []string{f.name}}
		}
	}
	return nil
}

// CredentialsError is a refusal of CheckCredentials. Its message is
// Format with one %s per entry of Fields, the Config fields it names, so
// that a program that fills Config from settings of its own can name those
// instead (Explain) without parsing the message.
type CredentialsError struct {
	// Format is the message, a fmt format whose verbs are one %s per
	// field, in the order of Fields.
	Format string
	// Fields are the Config fields the message names.
	Fields []string
}

// Error implements error, naming the Config fields.
func (e *CredentialsError) Error() string {
	return e.Explain(func(field string) string { return field })
}

// Explain returns the message with name(field) in place of each field.
func (e *CredentialsError) Explain(name func(field string) string) string {
	names := make([]any, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = name(f)
	}
	return fmt.Sprintf(e.Format, names...)
}

// settings is a validated, normalised Config.
type settings struct {
	base             *url.URL // no trailing slash in Path
	clientID         string
	clientSecret     string
	apiToken         string
	httpClient       *http.Client
	ownTransport     *http.Transport // non-nil when we built the transport
	userAgent        string
	maxResponseBytes int64
	refreshFraction  float64
	logger           *slog.Logger
	allowInsecure    bool // AllowInsecureHTTP
}

func (c Config) settings() (*settings, error) {
	s := &settings{
		clientID:         strings.TrimSpace(c.ClientID),
		clientSecret:     strings.TrimSpace(c.ClientSecret),
		apiToken:         strings.TrimSpace(c.APIToken),
		httpClient:       c.HTTPClient,
		userAgent:        c.UserAgent,
		maxResponseBytes: c.MaxResponseBytes,
		refreshFraction:  c.RefreshFraction,
		logger:           c.Logger,
		allowInsecure:    c.AllowInsecureHTTP,
	}
	base, err := parseBaseURL(c.BaseURL)
	if err != nil {
		return nil, err
	}
	if plainToRemote(base) && !s.allowInsecure {
		return nil, fmt.Errorf("upstream: config: BaseURL %q: %w", base.Redacted(), ErrInsecureHTTP)
	}
	s.base = base

	if err := c.CheckCredentials(); err != nil {
		return nil, fmt.Errorf("upstream: config: %w", err)
	}

	if s.userAgent == "" {
		s.userAgent = defaultUserAgent
	}
	if strings.ContainsFunc(s.userAgent, unicode.IsControl) {
		return nil, errors.New("upstream: config: UserAgent contains control characters")
	}
	switch {
	case s.maxResponseBytes < 0:
		return nil, errors.New("upstream: config: MaxResponseBytes must not be negative")
	case s.maxResponseBytes == 0:
		s.maxResponseBytes = defaultMaxResponseBytes
	case s.maxResponseBytes == math.MaxInt64:
		s.maxResponseBytes-- // keep limit+1 representable
	}
	switch f := s.refreshFraction; {
	case f == 0:
		s.refreshFraction = defaultRefreshFraction
	case !(f > 0 && f < 1): // also rejects NaN
		return nil, errors.New("upstream: config: RefreshFraction must be in (0, 1)")
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.httpClient == nil {
		s.ownTransport = NewTransport()
		s.httpClient = &http.Client{Transport: s.ownTransport}
	}
	return s, nil
}

// parseBaseURL validates a base URL and normalises it: lower-case scheme and
// host, no trailing slash. Its errors never quote the input, which might
// carry a password in its user info.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("upstream: config: BaseURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("upstream: config: BaseURL is not a valid URL")
	}
	if u.User != nil {
		return nil, errors.New("upstream: config: BaseURL must not contain user info")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream: config: BaseURL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("upstream: config: BaseURL %q: host is required", u.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("upstream: config: BaseURL %q: must not have a query or fragment", u.Redacted())
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	if u.RawPath != "" && u.EscapedPath() != u.RawPath {
		u.RawPath = ""
	}
	return u, nil
}

// sameBase reports whether an issuer names the configured base URL, trailing
// slash and case of scheme and host aside.
func sameBase(base *url.URL, issuer string) bool {
	u, err := parseBaseURL(issuer)
	if err != nil {
		return false
	}
	return u.String() == base.String()
}
