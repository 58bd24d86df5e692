// Package emulator is a self-contained stand-in for the RADKit Access Cloud
// Public API, written from the public API guide alone.
//
// It serves OAuth2 discovery, the client-credentials and API-token token
// endpoints, JWKS, user info, token revocation, OTP generation and service
// status, with seedable data and knobs for latency and injected faults. It
// is used for offline development (cmd/radkit-access-emulator) and as the
// test double for the facade's upstream client, so it deliberately shares no
// code or types with that client: a client that drifts from the documented
// wire format fails against it.
package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Route names one upstream endpoint. Its value is the endpoint's path (for
// RouteStatus, the path prefix that the service ID follows).
type Route string

// The routes the emulator serves.
const (
	RouteDiscovery Route = "/.well-known/openid-configuration"
	RouteToken     Route = "/oauth2/token"
	RouteAPIToken  Route = "/auth/token"
	RouteKeys      Route = "/oauth2/keys"
	RouteUserInfo  Route = "/oauth2/user_info"
	RouteRevoke    Route = "/oauth2/revoke"
	RouteOTP       Route = "/public/otp/certificate"
	RouteStatus    Route = "/public/admin/service/status/"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTokenLifetime            = time.Hour
	DefaultRefreshRemainingLifetime = 10 * time.Minute
	DefaultAdminPrefix              = "/_emulator"
	// MaxRequestBodyBytes bounds every request body the emulator reads.
	MaxRequestBodyBytes = 64 << 10
)

// Routes returns every route the emulator serves, in a stable order.
func Routes() []Route {
	return []Route{RouteDiscovery, RouteToken, RouteAPIToken, RouteKeys, RouteUserInfo, RouteRevoke, RouteOTP, RouteStatus}
}

// Valid reports whether r is one of the routes the emulator serves.
func (r Route) Valid() bool {
	for _, known := range Routes() {
		if r == known {
			return true
		}
	}
	return false
}

// Config configures an Emulator. The zero value serves an empty seed with
// default lifetimes.
type Config struct {
	// Seed is the data the emulator starts with (see DefaultSeed).
	Seed Seed
	// TokenLifetime is the lifetime of issued access tokens, reported as
	// expires_in. It is rounded up to whole seconds (at least one) so that
	// expires_in and the enforced expiry agree. Default 1h.
	TokenLifetime time.Duration
	// RefreshRemainingLifetime is reported as refresh_remaining_lifetime
	// (default 10m, as in the guide's example).
	RefreshRemainingLifetime time.Duration
	// Issuer, if set, is the fixed issuer and base URL advertised by
	// discovery (a trailing slash is dropped). If empty it is derived per request from the scheme and
	// Host header, so the emulator works on any listener.
	Issuer string
	// Logger receives request and fault logs. Default: discard.
	Logger *slog.Logger
	// AdminPrefix is the path prefix of the admin API (default "/_emulator").
	AdminPrefix string
	// DisableAdmin turns the admin API off; its paths then answer 404.
	DisableAdmin bool
	// Now is the clock used for issuing and checking tokens. Default
	// time.Now. Tests may move it forward to expire tokens without sleeping.
	Now func() time.Time
	// MaxOTPs bounds the OTPs the emulator remembers (OTP, OTPs and the
	// admin API's /otps): past it, each new OTP makes it forget the oldest,
	// so that a long run keeps a bounded memory. Zero means DefaultMaxOTPs.
	MaxOTPs int
}

// DefaultMaxOTPs is the number of OTPs an emulator remembers by default:
// far more than any test checks, a few MB.
const DefaultMaxOTPs = 10_000

// Emulator is an http.Handler serving the RADKit Access Cloud Public API.
// It is safe for concurrent use.
type Emulator struct {
	log              *slog.Logger
	now              func() time.Time
	lifetime         time.Duration
	refreshRemaining time.Duration
	issuer           string
	adminPrefix      string
	signer           *signer
	stats            map[Route]*routeStats // fixed in New; values are atomic
	transport        transportStats

	mu            sync.Mutex
	services      map[string]Service
	clients       map[string]Client
	apiTokens     map[string]APIToken
	access        map[string]accessRecord // by jti
	otps          map[string]OTPRecord
	otpRing       []string // the OTPs in otps, oldest at otpNext once full
	otpNext       int
	otpSeq        uint64 // OTPs issued so far
	maxOTPs       int
	faults        map[Route]*routeFaults
	lastServiceID string
}

type routeStats struct {
	calls     atomic.Int64
	cancelled atomic.Int64
}

// New returns an Emulator serving cfg.Seed with a freshly generated signing
// key.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Seed.Validate(); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if cfg.TokenLifetime < 0 || cfg.RefreshRemainingLifetime < 0 {
		return nil, errors.New("emulator: negative token lifetime")
	}
	issuer := strings.TrimRight(cfg.Issuer, "/")
	if issuer != "" {
		u, err := url.Parse(issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("emulator: issuer %q is not an absolute http(s) URL", cfg.Issuer)
		}
	}
	prefix := ""
	if !cfg.DisableAdmin {
		prefix = strings.TrimRight(cfg.AdminPrefix, "/")
		if prefix == "" {
			prefix = DefaultAdminPrefix
		}
		if !strings.HasPrefix(prefix, "/") {
			return nil, fmt.Errorf("emulator: admin prefix %q must start with /", cfg.AdminPrefix)
		}
		for _, r := range Routes() {
			if strings.HasPrefix(string(r), prefix+"/") || string(r) == prefix {
				return nil, fmt.Errorf("emulator: admin prefix %q shadows route %s", prefix, r)
			}
		}
	}
	s, err := newSigner()
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e := &Emulator{
		log:              cfg.Logger,
		now:              cfg.Now,
		lifetime:         roundUpToSecond(cfg.TokenLifetime, DefaultTokenLifetime),
		refreshRemaining: roundUpToSecond(cfg.RefreshRemainingLifetime, DefaultRefreshRemainingLifetime),
		issuer:           issuer,
		adminPrefix:      prefix,
		signer:           s,
		stats:            make(map[Route]*routeStats),
		services:         make(map[string]Service),
		clients:          make(map[string]Client),
		apiTokens:        make(map[string]APIToken),
		access:           make(map[string]accessRecord),
		otps:             make(map[string]OTPRecord),
		maxOTPs:          cfg.MaxOTPs,
		faults:           make(map[Route]*routeFaults),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxOTPs <= 0 {
		e.maxOTPs = DefaultMaxOTPs
	}
	for _, r := range Routes() {
		e.stats[r] = new(routeStats)
	}
	for _, sv := range cfg.Seed.Services {
		e.services[sv.ID] = sv
	}
	for _, c := range cfg.Seed.Clients {
		c.Claims = cloneStrings(c.Claims)
		e.clients[c.ID] = c
	}
	for _, t := range cfg.Seed.APITokens {
		t.Claims = cloneStrings(t.Claims)
		e.apiTokens[t.Token] = t
	}
	return e, nil
}

// roundUpToSecond returns d (or def when d is zero) rounded up to a whole,
// positive number of seconds.
func roundUpToSecond(d, def time.Duration) time.Duration {
	if d == 0 {
		d = def
	}
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// ServeHTTP serves the public API and, under the admin prefix, the admin API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBodyBytes)
	path := r.URL.EscapedPath()
	if e.adminPrefix != "" && (path == e.adminPrefix || strings.HasPrefix(path, e.adminPrefix+"/")) {
		e.serveAdmin(w, r, strings.TrimPrefix(path, e.adminPrefix))
		return
	}
	e.transport.request(r.Proto)
	route, ok := matchRoute(path)
	if !ok {
		e.log.Debug("emulator: no route", "method", r.Method, "path", path)
		e.write(w, errorReply(http.StatusNotFound, "Not Found"), BodyNone)
		return
	}
	e.stats[route].calls.Add(1)
	if route == RouteStatus {
		e.mu.Lock()
		e.lastServiceID = strings.TrimPrefix(path, string(RouteStatus))
		e.mu.Unlock()
	}
	if allowed := allowedMethod(route); r.Method != allowed && !(r.Method == http.MethodHead && allowed == http.MethodGet) {
		rep := errorReply(http.StatusMethodNotAllowed, "Method Not Allowed")
		rep.header = http.Header{"Allow": {allowed}}
		e.write(w, rep, BodyNone)
		return
	}
	fault, delay := e.nextFault(route)
	if delay > 0 {
		bufferBody(r)
	}
	if delay > 0 && !sleepCtx(r, delay) {
		e.stats[route].cancelled.Add(1)
		e.log.Debug("emulator: request cancelled during latency", "route", route, "delay", delay)
		// Returning would let net/http send an implicit empty 200, which a
		// client still connected (a held request at shutdown) would take
		// for an answer. Abort instead: the connection or stream is dropped
		// and nothing is sent.
		panic(http.ErrAbortHandler)
	}
	var rep reply
	if fault.Status != 0 {
		rep = faultReply(fault)
	} else {
		rep = e.handle(route, r)
	}
	e.log.Debug("emulator: request", "method", r.Method, "route", route, "status", rep.status, "fault_status", fault.Status, "fault_body", fault.Body)
	e.write(w, rep, fault.Body)
}

// bufferBody reads r's (size-limited) body into memory and puts it back.
// net/http notices that a client went away only once the request body has
// been read, so a request held by injected latency is read first: then its
// context is cancelled when the caller gives up, as on a real server. A
// read error is kept for the handler to see.
func bufferBody(r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var rest io.Reader = bytes.NewReader(body)
	if err != nil {
		rest = io.MultiReader(rest, errReader{err})
	}
	r.Body = io.NopCloser(rest)
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// sleepCtx waits for d or until the request's context is done, reporting
// whether the full delay elapsed.
func sleepCtx(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// matchRoute maps an escaped request path onto a route.
func matchRoute(path string) (Route, bool) {
	if strings.HasPrefix(path, string(RouteStatus)) && len(path) > len(RouteStatus) {
		return RouteStatus, true
	}
	r := Route(path)
	if r != RouteStatus && r.Valid() {
		return r, true
	}
	return "", false
}

// allowedMethod is the one method each route accepts (GET also admits HEAD).
func allowedMethod(r Route) string {
	switch r {
	case RouteDiscovery, RouteKeys, RouteUserInfo, RouteStatus:
		return http.MethodGet
	default:
		return http.MethodPost
	}
}

// Calls reports how many requests have reached route (token fetches
// included, admin calls excluded), whatever their outcome.
func (e *Emulator) Calls(route Route) int64 {
	if s, ok := e.stats[route]; ok {
		return s.calls.Load()
	}
	return 0
}

// Cancelled reports how many requests to route were abandoned by the client
// (context done) while the emulator held them in an injected latency.
func (e *Emulator) Cancelled(route Route) int64 {
	if s, ok := e.stats[route]; ok {
		return s.cancelled.Load()
	}
	return 0
}

// LastServiceID returns the service ID exactly as received (still
// percent-escaped, e.g. "a%2Fb") on the most recent status call, or "".
func (e *Emulator) LastServiceID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastServiceID
}

// SetService adds or replaces a service at run time.
func (e *Emulator) SetService(s Service) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.services[s.ID] = s
}

// Service returns the service with the given (unescaped) ID.
func (e *Emulator) Service(id string) (Service, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.services[id]
	return s, ok
}

// OTP returns what the emulator recorded when it issued otp, if otp is
// among the last MaxOTPs issued.
func (e *Emulator) OTP(otp string) (OTPRecord, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.otps[otp]
	return rec, ok
}

// OTPs returns every OTP remembered (the last MaxOTPs issued), oldest
// first.
func (e *Emulator) OTPs() []OTPRecord {
	e.mu.Lock()
	out := make([]OTPRecord, 0, len(e.otps))
	for _, rec := range e.otps {
		out = append(out, rec)
	}
	e.mu.Unlock()
	sortOTPs(out)
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
