package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is an http.RoundTripper that sends https:// requests over HTTP/2
// connections of its own, made by its Transport's NewClientConn (which
// honours Transport.Proxy, TLSClientConfig, the dialer and the timeouts),
// and every other request through the Transport itself.
//
// It exists because net/http's own HTTP/2 pool, with
// StrictMaxConcurrentRequests false (see NewTransport), dials a connection
// for every request that finds all connections at the upstream's
// SETTINGS_MAX_CONCURRENT_STREAMS: at a 100-stream limit a burst of 256
// requests opened up to 170 connections where 3 carry them. Here a
// request takes a stream on an open connection with room; when none has
// room, one connection is dialled at a time, up to the Transport's
// MaxConnsPerHost (0: no bound), and the other requests wait for it or
// for a stream to free up, within their context.
//
// The Pool counts the streams it has handed out itself rather than hold
// ClientConn.Reserve's reservations: a reservation counts against the
// connection's stream limit until its request gets the connection's
// header lock, and one request waiting there for a stream holds that lock.
// When the reservations outnumber the limit (a new connection allows 100
// streams until the server's SETTINGS arrive, and a server may advertise
// fewer, or lower its limit later), no stream ever frees up and every
// request waits for its deadline, as with golang/go#70809. A request the
// Pool sends beyond a limit it did not know yet waits in the connection
// for a stream, or is refused by the server and sent again.
//
// An upstream that does not speak HTTP/2 (or allows one stream per
// connection, which a ClientConn does not tell apart from HTTP/1.1) is
// left to the Transport's own pool after the first connection shows it:
// that pool already keeps one request per connection and dials in
// parallel.
//
// A connection leaves the pool when it fails or closes (GOAWAY, a broken
// connection, the Transport's IdleConnTimeout, which net/http's HTTP/2
// connection applies itself). It is safe for concurrent use.
type Pool struct {
	t *http.Transport
	// dialer is a copy of t, without MaxConnsPerHost, whose NewClientConn
	// dials the Pool's connections: closing an HTTP/1.1 ClientConn (one
	// that showed the upstream does not speak HTTP/2) decrements t's count
	// of connections per host, which NewClientConn never incremented
	// (go1.26 net/http: http1ClientConn.Close, persistConn.closeLocked,
	// Transport.decConnsPerHost), and net/http panics ("connCount
	// underflow") or, were the count not zero, would let t's own pool
	// exceed MaxConnsPerHost. The Pool keeps its own bound.
	dialer *http.Transport

	mu    sync.Mutex
	hosts map[string]*hostConns
	// retired is set by Retire: connections close once idle.
	retired atomic.Bool
}

// NewPool returns a Pool sending through t, whose settings it copies for
// its own connections: change them before.
func NewPool(t *http.Transport) *Pool {
	dialer := t.Clone()
	dialer.MaxConnsPerHost = 0
	return &Pool{t: t, dialer: dialer, hosts: make(map[string]*hostConns)}
}

// Transport returns the Transport the Pool sends through.
func (p *Pool) Transport() *http.Transport { return p.t }

// poolConn is one connection of the Pool; busy, the streams it has handed
// out whose request has not ended, is guarded by Pool.mu.
type poolConn struct {
	cc   *http.ClientConn
	busy int
	// capped bounds busy while the connection's stream limit, as net/http
	// knows it, is still limitAtRefusal: the server refused a stream
	// beyond a limit that net/http had not learnt yet (its SETTINGS were
	// still on the way). 0: no bound.
	capped, limitAtRefusal int
}

// limit is how many streams pc may have handed out, Pool.mu held.
func (pc *poolConn) limit(avail int) int {
	limit := avail + pc.cc.InFlight()
	if pc.capped > 0 && limit == pc.limitAtRefusal {
		return min(limit, pc.capped)
	}
	return limit
}

// hostConns is the Pool's state for one upstream address. Its fields but
// wake are guarded by Pool.mu.
type hostConns struct {
	conns []*poolConn
	// dial is the dial in progress, if any: one at a time.
	dial *poolDial
	// stock is set once the address showed it does not multiplex
	// requests: its requests go through the Transport.
	stock bool

	// wakeMu guards wake, closed (and replaced) whenever a connection may
	// have room for another request or has failed. It is a lock of its
	// own, never held while calling a ClientConn: the connections' state
	// hook takes it, and net/http runs the hook inside ClientConn calls,
	// some made with Pool.mu held.
	wakeMu sync.Mutex
	wake   chan struct{}
}

// poolDial is a dial in progress; done is closed when it ends, err then
// set.
type poolDial struct {
	done chan struct{}
	err  error
}

// changed returns the channel that the next change of h's connections
// closes.
func (h *hostConns) changed() <-chan struct{} {
	h.wakeMu.Lock()
	defer h.wakeMu.Unlock()
	if h.wake == nil {
		h.wake = make(chan struct{})
	}
	return h.wake
}

// signal wakes the requests waiting for h's connections.
func (h *hostConns) signal() {
	h.wakeMu.Lock()
	defer h.wakeMu.Unlock()
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
}

// poolDialTimeout bounds a dial made for the pool, which runs on after the
// request that started it has left (others wait for it): the dialer's and
// the TLS handshake's own timeouts come first.
const poolDialTimeout = 30 * time.Second

// maxPoolRetries bounds how often a request is sent again on another
// connection after one refused it unprocessed (see retryableOnNewConn).
const maxPoolRetries = 6

// RoundTrip sends req: an https:// request on a pooled HTTP/2 connection,
// any other through the Transport.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" {
		return p.t.RoundTrip(req)
	}
	addr := poolAddr(req.URL.Host)
	for attempt := 0; ; attempt++ {
		h, pc, err := p.take(req.Context(), addr)
		if errors.Is(err, errStockPath) {
			return p.t.RoundTrip(req)
		}
		if err != nil {
			if req.Body != nil {
				_ = req.Body.Close() // a RoundTripper must close it, even on error
			}
			return nil, err
		}
		firePoolEvent(req.Context(), connHanded)
		resp, err := pc.cc.RoundTrip(req)
		if err == nil {
			resp.Body = &closeHookBody{ReadCloser: resp.Body, closed: sync.OnceFunc(func() { p.done(h, pc) })}
			return resp, nil
		}
		retry := retryableOnNewConn(err)
		if retry && refusedStream(err) {
			p.refused(pc)
		}
		p.done(h, pc)
		if attempt >= maxPoolRetries || !retry || req.Context().Err() != nil {
			return nil, err
		}
		// The connection refused the request unprocessed (GOAWAY, a
		// stream over the server's limit, or it closed before the request
		// got a stream): send it again on another, as net/http's own
		// HTTP/2 pool does.
		if req, err = rewound(req); err != nil {
			return nil, err
		}
		firePoolEvent(req.Context(), resent)
	}
}

// refused notes that pc's server refused a stream over its limit: pc takes
// no more than it carries now until net/http learns that limit.
func (p *Pool) refused(pc *poolConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.limitAtRefusal = pc.cc.Available() + pc.cc.InFlight()
	pc.capped = max(pc.busy-1, 1)
}

// done ends a request that took a stream of pc: the stream is free for
// another (the waiting requests are woken), and a retired Pool closes pc
// once it carries no request.
func (p *Pool) done(h *hostConns, pc *poolConn) {
	p.mu.Lock()
	pc.busy--
	if pc.busy == 0 && p.retired.Load() {
		_ = pc.cc.Close()
	}
	p.mu.Unlock()
	h.signal()
}

// retryableOnNewConn reports whether err, from a ClientConn's RoundTrip,
// says the server did not process the request, so that it can be sent on
// another connection: the errors net/http's HTTP/2 transport retries
// itself (http2canRetryError in h2_bundle.go), which are not exported and
// are matched by their text. A change of that text makes such requests
// fail instead of being retried; TestPoolGoAwayMidLoad would catch it.
func retryableOnNewConn(err error) bool {
	msg := err.Error()
	for _, s := range []string{
		"http2: client conn not usable",
		"http2: Transport received Server's graceful shutdown GOAWAY",
		"REFUSED_STREAM",
		// A stream over the limit once the server's SETTINGS were acknowledged.
		"PROTOCOL_ERROR; received from peer",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// refusedStream reports whether err, one of retryableOnNewConn's, is a
// stream the server refused over its stream limit.
func refusedStream(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "REFUSED_STREAM") || strings.Contains(msg, "PROTOCOL_ERROR; received from peer")
}

// rewound returns req ready to be sent again: its body reset by GetBody.
func rewound(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("upstream: the connection refused the request, and its body cannot be sent again")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("upstream: resetting the request body to send it again: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// errStockPath tells RoundTrip to send through the Transport.
var errStockPath = errors.New("upstream: address does not multiplex requests")

// take returns a connection to addr with a stream taken for one request
// (given back by done), dialling one when none has room, no dial is under
// way and the pool is below MaxConnsPerHost, or waiting for either until
// ctx ends.
// A request that waited for another request's dial gets that dial's error
// if it fails: the upstream is unreachable for it as well. A request whose
// context ends while it waits for a stream with no dial under way (the
// pool at MaxConnsPerHost) was in the facade's queue (sendTrace.queued).
func (p *Pool) take(ctx context.Context, addr string) (*hostConns, *poolConn, error) {
	p.mu.Lock()
	h := p.hosts[addr]
	if h == nil {
		h = &hostConns{}
		p.hosts[addr] = h
	}
	p.mu.Unlock()

	var waited *poolDial // the dial this request waited for
	for {
		changed := h.changed() // before looking, so that no change is missed
		p.mu.Lock()
		if h.stock {
			p.mu.Unlock()
			return nil, nil, errStockPath
		}
		if pc := h.takeLocked(); pc != nil {
			p.mu.Unlock()
			return h, pc, nil
		}
		if waited != nil && waited.err != nil { // set once it ended
			p.mu.Unlock()
			return nil, nil, waited.err
		}
		dial := h.dial
		if dial == nil && (p.t.MaxConnsPerHost <= 0 || len(h.conns) < p.t.MaxConnsPerHost) {
			dial = &poolDial{done: make(chan struct{})}
			h.dial = dial
			go p.dialFor(ctx, addr, h, dial)
		}
		p.mu.Unlock()
		if dial != nil {
			// Waiting for a dial is waiting for the network, as a request
			// that dials itself does: not the facade's queue. Were it
			// taken for the queue, an upstream that does not accept
			// connections would count one failure per dial timeout, and
			// the breaker might never open.
			waited = dial
			firePoolEvent(ctx, dialWaited)
		}

		var dialDone <-chan struct{}
		if dial != nil {
			dialDone = dial.done
		}
		select {
		case <-changed:
		case <-dialDone:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("upstream: waiting for a connection: %w", ctx.Err())
		}
	}
}

// takeLocked takes a stream on the first connection with room: fewer
// streams handed out than its limit (Available plus InFlight, as net/http
// knows it now, or less after a refusal, see poolConn.capped), and
// Available, so not after a GOAWAY. It drops the
// connections that have failed, and those that can take no request and
// carry none (after a GOAWAY, or closed when idle). Pool.mu is held.
func (h *hostConns) takeLocked() *poolConn {
	kept := h.conns[:0]
	var got *poolConn
	for _, pc := range h.conns {
		if pc.cc.Err() != nil {
			continue // its requests, if any, end on their own (see done)
		}
		avail := pc.cc.Available()
		switch {
		case got == nil && avail > 0 && pc.busy < pc.limit(avail):
			pc.busy++
			got = pc
		case avail == 0 && pc.busy == 0 && pc.cc.InFlight() == 0:
			_ = pc.cc.Close() // unusable and idle: GOAWAY, or the idle timeout
			continue
		}
		kept = append(kept, pc)
	}
	clear(h.conns[len(kept):])
	h.conns = kept
	return got
}

// dialFor dials a connection to addr for the pool, detached from the
// cancellation of ctx (the context of the request that started it: its
// trace sees the dial) since other requests wait for it.
func (p *Pool) dialFor(ctx context.Context, addr string, h *hostConns, d *poolDial) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), poolDialTimeout)
	defer cancel()
	cc, err := p.dialer.NewClientConn(ctx, "https", addr)
	p.mu.Lock()
	switch {
	case err != nil:
		d.err = fmt.Errorf("upstream: connecting to %s: %w", addr, err)
	case cc.Available() <= 1:
		// HTTP/1.1, or HTTP/2 with one stream: the Transport's pool
		// serves such an upstream as well as this one would, and dials in
		// parallel.
		_ = cc.Close()
		h.stock = true
	default:
		// A stream ended, the server raised its limit, the connection
		// failed: the waiting requests look again. The hook runs inside
		// ClientConn calls, some made with Pool.mu held: it takes no lock
		// but h's wake lock.
		cc.SetStateHook(func(*http.ClientConn) { h.signal() })
		h.conns = append(h.conns, &poolConn{cc: cc})
	}
	h.dial = nil
	close(d.done)
	p.mu.Unlock()
	h.signal()
}

// poolAddr is the host:port of a URL host of scheme https.
func poolAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return net.JoinHostPort(host, "443")
}

// CloseIdleConnections closes the connections that carry no request, the
// Pool's and the Transport's.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	for _, h := range p.hosts {
		kept := h.conns[:0]
		for _, pc := range h.conns {
			if pc.busy == 0 {
				_ = pc.cc.Close()
				continue
			}
			kept = append(kept, pc)
		}
		clear(h.conns[len(kept):])
		h.conns = kept
	}
	p.mu.Unlock()
	p.t.CloseIdleConnections()
}

// Retire closes the idle connections and makes every other close once it
// carries no request: for a Pool that new requests no longer use (see
// SwapTransport.Swap).
func (p *Pool) Retire() {
	p.retired.Store(true)
	p.CloseIdleConnections()
}

// Close closes every connection of the Pool, interrupting the requests
// they carry, and the Transport's idle ones.
func (p *Pool) Close() error {
	p.retired.Store(true)
	p.mu.Lock()
	for _, h := range p.hosts {
		for _, pc := range h.conns {
			_ = pc.cc.Close()
		}
		h.conns = nil
	}
	p.mu.Unlock()
	p.t.CloseIdleConnections()
	return nil
}

// Conns reports the Pool's open connections, for tests and metrics.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.hosts {
		for _, pc := range h.conns {
			if pc.cc.Err() == nil {
				n++
			}
		}
	}
	return n
}

// poolEvent is a moment of a request in the Pool that the request's other
// layers may ask to be told of (withPoolEvent): what httptrace would tell
// them had the request gone through net/http's own pool.
type poolEvent int

const (
	// connHanded: the Pool hands the request one of its connections, which
	// all speak HTTP/2. A ClientConn's RoundTrip fires no httptrace
	// GotConn (net/http fires it in its pool), and has no net.Conn to
	// give it: this tells the layers that watch for it (sendTrace,
	// limitedTransport) what GotConn would.
	connHanded poolEvent = iota
	// dialWaited: the request waits for a connection that the Pool is
	// dialling, its own or another request's.
	dialWaited
	// resent: the Pool is about to send the request again on another
	// connection, the server having refused it unprocessed: what a trace
	// recorded of the refused attempt no longer holds.
	resent
)

// poolEventKey is the context key of the function called at an event.
type poolEventKey struct{ event poolEvent }

// withPoolEvent returns ctx whose request calls f at event, after any
// function already in ctx for it (as httptrace composes traces).
func withPoolEvent(ctx context.Context, event poolEvent, f func()) context.Context {
	if prev, ok := ctx.Value(poolEventKey{event}).(func()); ok {
		next := f
		f = func() { prev(); next() }
	}
	return context.WithValue(ctx, poolEventKey{event}, f)
}

// firePoolEvent calls ctx's function for event, if any.
func firePoolEvent(ctx context.Context, event poolEvent) {
	if f, ok := ctx.Value(poolEventKey{event}).(func()); ok {
		f()
	}
}
