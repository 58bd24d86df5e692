// Package identity holds the facade's upstream identities (RADKit Access
// "tagged client IDs", one per customer or unit) and decides which of them
// a caller may act as.
//
// A Registry maps each identity name to its own upstream.Client (its own
// token cache, fetched lazily on first use) guarded by its own
// resilience.Client (its own retries and circuit breaker), so that one
// identity's rejected credentials or open breaker never fail another's
// calls. Resolve decides, per call, which identity the caller acts as:
// without caller authentication any identity; with it, only the
// identities granted to the caller, the first being its default. Asking
// for an identity not granted and for one that does not exist get the
// same PERMISSION_DENIED answer (reason IDENTITY_NOT_GRANTED), so that
// names cannot be probed; nothing is sent upstream.
//
// A facade without an identities file is a Registry with one identity
// named Default that every caller may use (SingleSpec).
//
// The Registry knows no flags, files or environment of any program: it is
// given Specs (LoadFile reads one from an identities file).
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// DefaultDrain is how long a replaced or removed identity's client keeps
// serving the calls that resolved it before a reload, when Config.Drain is
// zero.
const DefaultDrain = time.Minute

// Config configures a Registry: everything every identity's clients share.
type Config struct {
	// Upstream is the template of every identity's upstream.Config: all
	// but the credentials, which come from the Spec. Its HTTPClient is
	// replaced by HTTPClient(name) when that is set.
	Upstream upstream.Config
	// HTTPClient, if set, returns the HTTP client of an identity's
	// upstream calls (so that they can be counted per identity).
	HTTPClient func(identity string) *http.Client
	// Resilience is the template of every identity's guard; its Upstream
	// and OnStateChange are set per identity.
	Resilience resilience.Config
	// Customize, if set, adjusts an identity's copy of Resilience before
	// its guard is built (a status cache of the identity's own, say).
	Customize func(identity string, rc *resilience.Config)
	// OnBreakerChange, if set, is told of every identity's breaker
	// transitions (see resilience.Config.OnStateChange).
	OnBreakerChange func(identity, from, to string)
	// Caller returns the authenticated caller identity of a call
	// ("key:<name>" or "cert:<subject>", as package callerauth writes it).
	// Nil, or a call without one, is an anonymous caller.
	Caller func(ctx context.Context) (string, bool)
	// CallerAuth says that callers authenticate: a caller may then act
	// only as its grants. Without it every identity may be used.
	CallerAuth bool
	// Drain is how long a replaced identity's old client lives on after a
	// reload, for the calls that resolved it before. Zero means
	// DefaultDrain.
	Drain time.Duration
	// Logger receives lifecycle logs; nil discards.
	Logger *slog.Logger
	// Now is the clock that credential expiry is judged by; nil is
	// time.Now.
	Now func() time.Time
}

// Upstream is what a call gets for its identity: the identity's guarded
// upstream client. It has the method set of server.Upstream.
type Upstream = resilience.Upstream

// member is one identity's clients.
type member struct {
	name   string
	creds  Credentials
	up     Upstream
	client *upstream.Client   // nil for a Fixed registry
	guard  *resilience.Client // nil for a Fixed registry
}

func (m *member) close() {
	if m.client != nil {
		_ = m.client.Close()
	}
}

// table is one configuration in force: immutable once stored.
type table struct {
	order    []string
	members  map[string]*member
	grants   map[string][]string
	fromFile bool
}

// Registry holds the identities in force and resolves calls to them. It is
// safe for concurrent use; Prepare and Apply replace the whole
// configuration at once.
type Registry struct {
	cfg  Config
	log  *slog.Logger
	cur  atomic.Pointer[table]
	disc *upstream.Discovery // one discovery for every identity's client

	mu      sync.Mutex // Prepare, Apply, Close
	closed  bool
	retired map[*member]*time.Timer // old clients draining

	warnMu sync.Mutex
	warned map[warnKey]time.Duration // the nearest warning logged per credential
}

// New returns a Registry serving spec. It does no network I/O: each
// identity fetches its first token when first used.
func New(cfg Config, spec Spec) (*Registry, error) {
	r := &Registry{cfg: cfg, log: cfg.Logger, retired: map[*member]*time.Timer{}, disc: upstream.NewDiscovery(), warned: map[warnKey]time.Duration{}}
	if r.cfg.Now == nil {
		r.cfg.Now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.cfg.Drain <= 0 {
		r.cfg.Drain = DefaultDrain
	}
	r.cur.Store(&table{members: map[string]*member{}})
	p, err := r.Prepare(spec)
	if err != nil {
		return nil, err
	}
	r.Apply(p)
	return r, nil
}

// Fixed returns a Registry with the one identity Default, served by up,
// that every caller may use. It is for a server given a ready-made
// upstream (tests, embedders).
func Fixed(up Upstream) *Registry {
	r := &Registry{cfg: Config{Now: time.Now}, log: slog.New(slog.DiscardHandler), retired: map[*member]*time.Timer{}, warned: map[warnKey]time.Duration{}}
	r.cur.Store(&table{
		order:   []string{Default},
		members: map[string]*member{Default: {name: Default, up: up}},
		grants:  map[string][]string{AnyCaller: {Default}},
	})
	return r
}

// Pending is a prepared configuration: read and built, not yet in force.
// Apply puts it in force; Discard drops it.
type Pending struct {
	t     *table
	built []*member // clients made for it, closed by Discard
}

// Prepare validates spec and builds the clients of its new and changed
// identities (no network I/O), reusing the clients of identities whose
// credentials did not change, so that their tokens and breakers carry
// over. Nothing changes until Apply.
func (r *Registry) Prepare(spec Spec) (*Pending, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if len(spec.Identities) == 0 {
		return nil, errors.New("identity: no identities configured")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("identity: registry closed")
	}
	old := r.cur.Load()
	p := &Pending{t: &table{
		members:  make(map[string]*member, len(spec.Identities)),
		grants:   spec.Grants,
		fromFile: spec.FromFile,
	}}
	for _, id := range spec.Identities {
		p.t.order = append(p.t.order, id.Name)
		if m, ok := old.members[id.Name]; ok && m.creds == id.Credentials {
			p.t.members[id.Name] = m
			continue
		}
		m, err := r.build(id)
		if err != nil {
			p.Discard()
			return nil, err
		}
		p.built = append(p.built, m)
		p.t.members[id.Name] = m
	}
	return p, nil
}

// build makes one identity's clients.
func (r *Registry) build(id Identity) (*member, error) {
	ucfg := r.cfg.Upstream
	ucfg.Discovery = r.disc // all identities share the one base URL
	ucfg.ClientID, ucfg.ClientSecret, ucfg.APIToken = id.Credentials.ClientID, id.Credentials.ClientSecret, id.Credentials.APIToken
	if r.cfg.HTTPClient != nil {
		ucfg.HTTPClient = r.cfg.HTTPClient(id.Name)
	}
	if ucfg.Logger != nil {
		ucfg.Logger = ucfg.Logger.With("identity", id.Name)
	}
	client, err := upstream.New(ucfg)
	if err != nil {
		return nil, fmt.Errorf("identity %q: %w", id.Name, err)
	}
	rcfg := r.cfg.Resilience
	rcfg.Upstream = client
	if r.cfg.Customize != nil {
		r.cfg.Customize(id.Name, &rcfg)
	}
	if f := r.cfg.OnBreakerChange; f != nil {
		name := id.Name
		rcfg.OnStateChange = func(from, to string) { f(name, from, to) }
	}
	guard := resilience.New(rcfg)
	var up Upstream = guard
	if kind, at := id.Credentials.tokenCredentialExpiry(); !at.IsZero() {
		up = &expiring{Upstream: guard, kind: kind, at: at, now: r.cfg.Now}
	}
	return &member{name: id.Name, creds: id.Credentials, up: up, client: client, guard: guard}, nil
}

// Discard closes the clients Prepare built for p. It is for a reload that
// failed elsewhere after p was prepared.
func (p *Pending) Discard() {
	for _, m := range p.built {
		m.close()
	}
	p.built = nil
}

// Apply puts p in force. Calls resolved before keep their client; the
// clients of removed or changed identities are closed after Config.Drain.
// Prepare and Apply (or Discard) go in pairs, one pair at a time.
func (r *Registry) Apply(p *Pending) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		p.Discard()
		return
	}
	old := r.cur.Swap(p.t)
	p.built = nil
	var added, changed, removed []string
	for _, name := range p.t.order {
		if m, ok := old.members[name]; !ok {
			added = append(added, name)
		} else if m != p.t.members[name] {
			changed = append(changed, name)
		}
	}
	for name, m := range old.members {
		if p.t.members[name] == m {
			continue
		}
		if _, ok := p.t.members[name]; !ok {
			removed = append(removed, name)
		}
		r.retire(m)
	}
	if len(old.order) > 0 {
		r.log.Info("identities applied", "identities", len(p.t.order), "added", added, "changed", changed, "removed", removed)
	}
}

// retire closes m after the drain time. r.mu is held.
func (r *Registry) retire(m *member) {
	r.retired[m] = time.AfterFunc(r.cfg.Drain, func() {
		r.mu.Lock()
		_, ok := r.retired[m]
		delete(r.retired, m)
		r.mu.Unlock()
		if ok {
			m.close()
		}
	})
}

// Close closes every identity's client, draining or not. Calls after
// Close fail as calls on a closed upstream.Client do.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	retired := r.retired
	r.retired = nil
	r.mu.Unlock()
	for m, t := range retired {
		t.Stop()
		m.close()
	}
	for _, m := range r.cur.Load().members {
		m.close()
	}
	return nil
}

// Upstream returns the named identity's upstream with no grant check: for
// work done on no single caller's behalf, or for a caller whose identity
// Resolve already decided (a poller shared by the watchers of one
// identity, say).
func (r *Registry) Upstream(name string) (Upstream, bool) {
	m, ok := r.cur.Load().members[name]
	if !ok {
		return nil, false
	}
	return m.up, true
}

// notGranted is the one answer to an identity the caller may not use,
// whether or not it exists.
func notGranted() error {
	return reason.Error(reason.IdentityNotGranted, "")
}

// Resolve returns the identity the call in ctx acts as when it asks for
// name ("" for the caller's default), and that identity's upstream. It
// fails with PERMISSION_DENIED, reason IDENTITY_NOT_GRANTED, when the
// caller may not act as it or it does not exist. name must have passed
// ValidName (or be empty).
func (r *Registry) Resolve(ctx context.Context, name string) (string, Upstream, error) {
	t := r.cur.Load()
	allowed := r.allowed(ctx, t)
	if name == "" {
		if len(allowed) == 0 {
			return "", nil, notGranted()
		}
		name = allowed[0]
	}
	m, ok := t.members[name]
	if !ok {
		return "", nil, notGranted()
	}
	for _, a := range allowed {
		if a == name {
			return name, m.up, nil
		}
	}
	return "", nil, notGranted()
}

// allowed returns the identities the caller may act as, its default first.
func (r *Registry) allowed(ctx context.Context, t *table) []string {
	if !r.cfg.CallerAuth || !t.fromFile {
		// Anonymous callers (no caller authentication) may use every
		// identity; without an identities file there is only the one.
		// LoadFile and SingleSpec put Default first.
		return t.order
	}
	var caller string
	if r.cfg.Caller != nil {
		caller, _ = r.cfg.Caller(ctx)
	}
	if caller == "" {
		return nil // deny by default
	}
	own, all := t.grants[caller], t.grants[AnyCaller]
	if len(all) == 0 {
		return own
	}
	if len(own) == 0 {
		return all
	}
	return append(append([]string(nil), own...), all...)
}

// Primary is the identity readiness depends on: Default when configured,
// else the first of the file.
func (r *Registry) Primary() string {
	t := r.cur.Load()
	if len(t.order) == 0 {
		return ""
	}
	return t.order[0]
}

// Ready is the readiness check of the primary identity: discovery works
// and it holds an access token, fetching one if needed. Other identities
// fetch their tokens when first used.
func (r *Registry) Ready(ctx context.Context) error {
	m := r.primary()
	if m == nil {
		return nil
	}
	if e, ok := m.up.(*expiring); ok {
		// Never send an expired credential, not even to check readiness.
		if err := e.check(); err != nil {
			return err
		}
	}
	if m.client != nil {
		return m.client.Ready(ctx)
	}
	return nil
}

// UpstreamReady tells the primary identity's guard's view of the upstream
// (see resilience.Client.Ready): it makes no upstream call.
func (r *Registry) UpstreamReady(ctx context.Context) error {
	if m := r.primary(); m != nil && m.guard != nil {
		return m.guard.Ready(ctx)
	}
	return nil
}

// primary returns the primary identity's member, or nil.
func (r *Registry) primary() *member {
	t := r.cur.Load()
	if len(t.order) == 0 {
		return nil
	}
	return t.members[t.order[0]]
}

// Stats sums the guards' counters over every identity; Breaker is the
// primary identity's, ThrottleProbability and RetryTokens the highest
// and lowest of any.
func (r *Registry) Stats() resilience.Stats {
	t := r.cur.Load()
	var sum resilience.Stats
	first := true
	for _, name := range t.order {
		g := t.members[name].guard
		if g == nil {
			continue
		}
		st := g.Stats()
		if first {
			sum.Breaker, sum.RetryTokens = st.Breaker, st.RetryTokens
			first = false
		}
		sum.ThrottleProbability = max(sum.ThrottleProbability, st.ThrottleProbability)
		sum.RetryTokens = min(sum.RetryTokens, st.RetryTokens)
		sum.RefusedCircuitOpen += st.RefusedCircuitOpen
		sum.RefusedThrottled += st.RefusedThrottled
		sum.Retries += st.Retries
		sum.RetriesDenied += st.RetriesDenied
	}
	return sum
}

// State is what can be told about one identity, for /readyz and metrics:
// nothing secret.
type State struct {
	// Name is the identity's name.
	Name string `json:"name"`
	// Token reports whether an access token is held: false before the
	// identity's first use.
	Token bool `json:"token"`
	// TokenExpiry is when the held token expires.
	TokenExpiry time.Time `json:"token_expiry,omitzero"`
	// Upstream is the identity the upstream knows the token as, for
	// example "automation+customer-a@example.com".
	Upstream string `json:"upstream_identity,omitempty"`
	// Breaker is the circuit breaker's state.
	Breaker string `json:"breaker,omitempty"`
	// Credentials are the known expiries of the identity's long-lived
	// credentials (API token, client secret).
	Credentials []Expiry `json:"credentials,omitempty"`
}

// States returns every identity's state, in order.
func (r *Registry) States() []State {
	t := r.cur.Load()
	out := make([]State, 0, len(t.order))
	for _, name := range t.order {
		m := t.members[name]
		st := State{Name: name, Credentials: m.creds.Expiries()}
		if m.client != nil {
			if info, ok := m.client.TokenInfo(); ok {
				st.Token, st.TokenExpiry, st.Upstream = true, info.Expiry, info.Identity
			}
		}
		if m.guard != nil {
			st.Breaker = m.guard.State()
		}
		out = append(out, st)
	}
	return out
}

// Names returns the configured identity names, in order.
func (r *Registry) Names() []string {
	return append([]string(nil), r.cur.Load().order...)
}

// expiring refuses every call once the credential that gets the identity's
// access tokens has expired, before anything is sent upstream: the
// upstream would refuse it, and an answer that names the cause tells
// operators what to do. The refusal is outside the guard, so it never
// feeds the breaker.
type expiring struct {
	Upstream
	kind string
	at   time.Time
	now  func() time.Time
}

func (e *expiring) check() error {
	if e.now().Before(e.at) {
		return nil
	}
	return reason.Error(reason.CredentialsExpired, fmt.Sprintf("the facade's upstream credential for this identity (its %s) expired at %s; operators must install a new one",
		e.kind, e.at.UTC().Format(time.RFC3339)))
}

func (e *expiring) GenerateOTP(ctx context.Context, req upstream.OTPRequest) (string, error) {
	if err := e.check(); err != nil {
		return "", err
	}
	return e.Upstream.GenerateOTP(ctx, req)
}

func (e *expiring) ServiceStatus(ctx context.Context, serviceID string) (upstream.ServiceStatus, error) {
	if err := e.check(); err != nil {
		return upstream.ServiceStatus{}, err
	}
	return e.Upstream.ServiceStatus(ctx, serviceID)
}

func (e *expiring) RevokeToken(ctx context.Context, token string) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.Upstream.RevokeToken(ctx, token)
}

// CredentialExpiry is when one identity's credential expires, for metrics.
type CredentialExpiry struct {
	Identity string
	Expiry
}

// Expiries returns the known credential expiries of every identity in
// force, in order.
func (r *Registry) Expiries() []CredentialExpiry {
	t := r.cur.Load()
	var out []CredentialExpiry
	for _, name := range t.order {
		for _, e := range t.members[name].creds.Expiries() {
			out = append(out, CredentialExpiry{Identity: name, Expiry: e})
		}
	}
	return out
}

// expiryWarning is how long before a credential's expiry WarnExpiry warns,
// and that time in words.
type expiryWarning struct {
	before time.Duration
	words  string
}

// expiryWarnings are WarnExpiry's warnings, nearest first.
func expiryWarnings() []expiryWarning {
	return []expiryWarning{{time.Hour, "1 hour"}, {24 * time.Hour, "1 day"}, {7 * 24 * time.Hour, "7 days"}}
}

// warnKey is one credential, as WarnExpiry remembers what it said of it:
// a new credential (another expiry) is warned of afresh.
type warnKey struct {
	identity, kind string
	at             time.Time
}

// WarnExpiry logs a warning for each credential in force that expires
// within 7 days, 1 day or 1 hour, once each per credential (only the
// nearest when several are crossed at once, as at start), and an error
// once when it has expired. Call it periodically and after each reload.
func (r *Registry) WarnExpiry() {
	now := r.cfg.Now()
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	live := make(map[warnKey]bool)
	for _, ce := range r.Expiries() {
		k := warnKey{ce.Identity, ce.Kind, ce.At}
		live[k] = true
		left := ce.At.Sub(now)
		said, ok := r.warned[k]
		if !ok {
			said = time.Duration(1<<63 - 1)
		}
		switch {
		case left <= 0 && said > 0:
			r.log.Error("upstream credential expired: calls as this identity fail with CREDENTIALS_EXPIRED until it is replaced",
				"identity", ce.Identity, "kind", ce.Kind, "expires_at", ce.At.UTC().Format(time.RFC3339))
			r.warned[k] = 0
		case left > 0:
			for _, w := range expiryWarnings() {
				if left <= w.before && said > w.before {
					r.log.Warn("upstream credential expires within "+w.words+": replace it",
						"identity", ce.Identity, "kind", ce.Kind, "expires_at", ce.At.UTC().Format(time.RFC3339), "expires_in", left.Round(time.Second).String())
					r.warned[k] = w.before
					break
				}
			}
		}
	}
	for k := range r.warned {
		if !live[k] {
			delete(r.warned, k)
		}
	}
}
