// Package watch shares one upstream status poll per watched service among
// every watcher of that service on a replica: the hub behind
// WatchServiceStatus.
//
// A Hub owns one poller per service while anyone watches it. The poller
// looks the status up every interval through the lookup it was given (the
// facade gives it the coalesced, retried status path that GetServiceStatus
// takes, so that a poll and concurrent GetServiceStatus calls share one
// upstream call), and stops when the last watcher leaves. Transient
// failures (429, 5xx, no answer, an open circuit breaker, a refusal by the
// adaptive throttle, a poll that ran out of time) do not end a watch, the
// first poll's no more than later ones: the poller backs off and watchers
// go on with the last known status, or wait for the first. Any other
// failure ends every watch of the service with it.
//
// The package knows the upstream client's error classifiers and nothing of
// gRPC: package server maps the errors Watch returns.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/resilience"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultInterval      = 5 * time.Second
	MinInterval          = time.Second
	DefaultHeartbeat     = 30 * time.Second
	DefaultMaxPerCaller  = 100
	DefaultMaxTotal      = 10000
	DefaultPollTimeout   = 10 * time.Second
	maxBackoffMultiplier = 12 // backoff is capped at 12 intervals (1 min at 5 s)
)

// ErrTooManyWatches is returned by Watch when the caller, or the replica,
// has as many open watches as it may.
var ErrTooManyWatches = errors.New("watch: too many open watches")

// ErrClosed is returned by Watch once the hub is closed (the replica is
// shutting down).
var ErrClosed = errors.New("watch: hub closed")

// Lookup returns a service's status: the status path the hub polls.
type Lookup func(ctx context.Context, serviceID string) (upstream.ServiceStatus, error)

// Config configures a Hub.
type Config struct {
	// Lookup is the status path to poll. Required.
	Lookup Lookup
	// Interval is how often a watched service is polled; at least
	// MinInterval. Zero means DefaultInterval.
	Interval time.Duration
	// Heartbeat is how long a watch may go without a message before it is
	// sent the unchanged status. Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// MaxPerCaller bounds the open watches of one caller; MaxTotal those of
	// the replica. Zero means the default.
	MaxPerCaller int
	MaxTotal     int
	// PollTimeout bounds each poll. Zero means DefaultPollTimeout.
	PollTimeout time.Duration
	// Now tells the time of each observation. Nil means time.Now.
	Now func() time.Time
	// Logger receives the hub's diagnostics. Nil discards.
	Logger *slog.Logger
	// Panics reports a panic in a poller (or in the lookup it calls),
	// which ends that service's watches with the panic's error instead
	// of the process. Nil recovers without reporting.
	Panics *panics.Reporter
}

// Kind says why an Update was sent.
type Kind int

// The kinds of Update.
const (
	// Initial is the first update of every watch.
	Initial Kind = iota + 1
	// Change is an update whose Active or Online differ from the previous
	// one the watcher got.
	Change
	// Heartbeat repeats the unchanged status after Config.Heartbeat of
	// silence.
	Heartbeat
)

// Update is one message to a watcher.
type Update struct {
	Status   upstream.ServiceStatus
	Observed time.Time // when the poll that got Status answered
	Kind     Kind
}

// Stats are the hub's counters, for metrics and tests.
type Stats struct {
	Watches int    // open watches
	Pollers int    // services being polled
	Polls   uint64 // upstream polls made, all services together
	Sent    uint64 // updates handed to watchers
}

// Hub shares pollers among watchers. Its methods are safe for concurrent
// use.
type Hub struct {
	lookup       Lookup
	interval     time.Duration
	heartbeat    time.Duration
	maxPerCaller int
	maxTotal     int
	pollTimeout  time.Duration
	now          func() time.Time
	logger       *slog.Logger
	panics       *panics.Reporter

	polls atomic.Uint64
	sent  atomic.Uint64

	mu       sync.Mutex
	pollers  map[string]*poller
	callers  map[string]int
	total    int
	closing  chan struct{} // closed by Close
	closed   bool
	drained  chan struct{}  // closed once closed and no watch is open
	routines sync.WaitGroup // pollers running
}

// New returns a Hub for cfg. It panics if cfg.Lookup is nil, a programming
// error.
func New(cfg Config) *Hub {
	if cfg.Lookup == nil {
		panic("watch: Config.Lookup is nil")
	}
	h := &Hub{
		lookup:       cfg.Lookup,
		interval:     orDefault(cfg.Interval, DefaultInterval),
		heartbeat:    orDefault(cfg.Heartbeat, DefaultHeartbeat),
		maxPerCaller: orDefault(cfg.MaxPerCaller, DefaultMaxPerCaller),
		maxTotal:     orDefault(cfg.MaxTotal, DefaultMaxTotal),
		pollTimeout:  orDefault(cfg.PollTimeout, DefaultPollTimeout),
		now:          cfg.Now,
		logger:       cfg.Logger,
		panics:       cfg.Panics,
		pollers:      map[string]*poller{},
		callers:      map[string]int{},
		closing:      make(chan struct{}),
		drained:      make(chan struct{}),
	}
	h.interval = max(h.interval, MinInterval)
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	return h
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Interval is the poll interval in use.
func (h *Hub) Interval() time.Duration { return h.interval }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Watches: h.total, Pollers: len(h.pollers), Polls: h.polls.Load(), Sent: h.sent.Load()}
}

// Close ends every watch with ErrClosed, refuses new ones, stops every
// poller, and waits for them to stop or ctx to end. A watcher blocked in
// send (a client that does not read) ends when its send does; it does not
// hold the pollers up. Drained tells when every watch has ended.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.closing)
		if h.total == 0 {
			close(h.drained)
		}
	}
	for _, p := range h.pollers {
		p.cancel()
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.routines.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("watch: close: %w", ctx.Err())
	}
}

// Drained is closed once the hub is closed and every watch has ended:
// watchers blocked in send end only when their send does.
func (h *Hub) Drained() <-chan struct{} { return h.drained }

// Watch watches serviceID on behalf of caller until ctx ends, send fails,
// a failure that is not transient ends the poll, or the hub closes. send
// gets the current status first (Initial), then every change and a
// heartbeat after each Heartbeat of silence; it is called from Watch's
// goroutine, one update at a time. A send error ends the watch and Watch
// returns it as it is, so that a caller may stop a watch with a sentinel.
//
// Watch returns ErrTooManyWatches at once when caller or the replica is at
// its limit, ErrClosed when the hub closes, ctx's error when ctx ends, and
// the lookup's error (unwrapped classifiers intact) when the poll fails for
// good. A transient failure never ends a watch, not even before the first
// status is known: the watch then waits, silent, while the poller backs
// off, and its first update is Initial whenever a poll succeeds.
func (h *Hub) Watch(ctx context.Context, caller, serviceID string, send func(Update) error) error {
	p, err := h.join(caller, serviceID)
	if err != nil {
		return err
	}
	defer h.leave(caller, p)

	var (
		last      upstream.ServiceStatus
		lastSeq   uint64
		sentFirst bool
	)
	beat := time.NewTimer(h.heartbeat)
	defer beat.Stop()
	for {
		p.mu.Lock()
		notify, seq, st, observed, have, pollErr := p.notify, p.seq, p.status, p.observed, p.have, p.err
		p.mu.Unlock()

		switch {
		case pollErr != nil:
			return pollErr
		case have && !sentFirst:
			if err := h.send(send, Update{Status: st, Observed: observed, Kind: Initial}); err != nil {
				return err
			}
			sentFirst, last = true, st
			beat.Reset(h.heartbeat)
		case have && seq != lastSeq && changed(st, last):
			if err := h.send(send, Update{Status: st, Observed: observed, Kind: Change}); err != nil {
				return err
			}
			last = st
			beat.Reset(h.heartbeat)
		}
		lastSeq = seq

		select {
		case <-notify:
		case <-beat.C:
			if sentFirst {
				p.mu.Lock()
				st, observed = p.status, p.observed
				p.mu.Unlock()
				if err := h.send(send, Update{Status: st, Observed: observed, Kind: beatKind(st, last)}); err != nil {
					return err
				}
				last = st
			}
			beat.Reset(h.heartbeat)
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closing:
			return ErrClosed
		}
	}
}

// changed reports whether st differs from last, the status the watcher
// got last, in what a Change tells.
func changed(st, last upstream.ServiceStatus) bool {
	return st.Active != last.Active || st.Online != last.Online || st.ServiceID != last.ServiceID
}

// beatKind is the kind of the update a heartbeat sends: the status it
// re-reads may be a change that arrived with the beat, and is then sent as
// one, never as a heartbeat.
func beatKind(st, last upstream.ServiceStatus) Kind {
	if changed(st, last) {
		return Change
	}
	return Heartbeat
}

func (h *Hub) send(send func(Update) error, u Update) error {
	if err := send(u); err != nil {
		return err
	}
	h.sent.Add(1)
	return nil
}

// join counts a new watch of serviceID by caller, starting the service's
// poller if it has none.
func (h *Hub) join(caller, serviceID string) (*poller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.total >= h.maxTotal || h.callers[caller] >= h.maxPerCaller {
		return nil, ErrTooManyWatches
	}
	h.total++
	h.callers[caller]++
	p, ok := h.pollers[serviceID]
	if !ok {
		// The poller's context carries the Reporter, for the coalesced
		// lookups it starts (package flight) to report a panic with.
		ctx, cancel := context.WithCancel(panics.NewContext(context.Background(), h.panics))
		p = &poller{id: serviceID, cancel: cancel, notify: make(chan struct{})}
		h.pollers[serviceID] = p
		h.routines.Add(1)
		go func() {
			defer h.routines.Done()
			h.poll(ctx, p)
		}()
	}
	p.watchers++
	return p, nil
}

// leave uncounts a watch, and stops its service's poller when it was the
// last.
func (h *Hub) leave(caller string, p *poller) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total--
	if h.callers[caller]--; h.callers[caller] == 0 {
		delete(h.callers, caller)
	}
	if h.closed && h.total == 0 {
		close(h.drained)
	}
	if p.watchers--; p.watchers == 0 {
		if h.pollers[p.id] == p {
			delete(h.pollers, p.id)
		}
		p.cancel()
	}
}

// poller is one service's poll and its latest outcome. The fields below
// mu are guarded by it; notify is closed and replaced on every outcome.
type poller struct {
	id       string
	cancel   context.CancelFunc
	watchers int // guarded by Hub.mu

	mu       sync.Mutex
	notify   chan struct{}
	seq      uint64 // outcomes so far
	have     bool
	status   upstream.ServiceStatus
	observed time.Time
	err      error // a failure that ends every watch
}

// poll looks the status up every interval until ctx ends or a failure that
// is not transient; after transient failures it waits an exponential
// backoff with jitter instead, capped at maxBackoffMultiplier intervals.
// A panic ends the poll as a failure that is not transient: every watch
// of the service ends with it (INTERNAL), and the process goes on.
func (h *Hub) poll(ctx context.Context, p *poller) {
	defer func() {
		if v := recover(); v != nil {
			stack := panics.Stack()
			h.panics.Report(ctx, panics.WatchPoller, v, stack)
			err := &panics.Error{Where: panics.WatchPoller, Value: v, Stack: stack}
			p.publish(func() { p.err = err })
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, h.pollTimeout)
		st, err := h.lookup(pctx, p.id)
		cancel()
		if ctx.Err() != nil {
			return // the last watcher left during the poll
		}
		h.polls.Add(1)
		next := h.interval
		switch {
		case err == nil:
			failures = 0
			p.publish(func() {
				p.have, p.status, p.observed = true, st, h.now()
			})
		case Transient(err):
			failures++
			next = h.backoff(failures)
			// Watchers go on with the last status, or keep waiting for
			// the first: nothing to tell them.
			h.logger.Debug("status poll failed; backing off", "service_id", p.id, "failures", failures, "next", next, "error", err)
		default:
			p.publish(func() { p.err = err })
			return
		}
		timer.Reset(next)
	}
}

// backoff is the wait after the nth transient failure in a row: between
// half and all of interval*2^n, capped, and never less than the interval.
func (h *Hub) backoff(n int) time.Duration {
	limit := h.interval * maxBackoffMultiplier
	d := h.interval
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	d = d/2 + rand.N(d/2+1)
	return max(d, h.interval)
}

// publish applies an outcome and wakes every watcher.
func (p *poller) publish(apply func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	apply()
	p.seq++
	close(p.notify)
	p.notify = make(chan struct{})
}

// Transient reports whether a failed poll may succeed later: the upstream
// answered 429 or 5xx, did not answer, the circuit breaker is open or the
// throttle refused the call, one of the facade's own bounds refused it
// (calls in flight, the upstream budget), or the poll ran out of time. A
// watch survives such failures.
func Transient(err error) bool {
	return upstream.IsTransient(err) || upstream.IsUnanswered(err) || upstream.IsQueued(err) ||
		errors.Is(err, resilience.ErrCircuitOpen) || errors.Is(err, resilience.ErrThrottled) ||
		errors.Is(err, resilience.ErrBudgetExhausted) || errors.Is(err, context.DeadlineExceeded)
}
