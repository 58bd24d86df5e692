package upstream

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// slowH2Server is a TLS server answering every request after latency (or
// when its context ends), over HTTP/2 with streams streams per connection
// unless h1, counting the connections it accepted and has open.
type slowH2Server struct {
	*httptest.Server
	accepted, open atomic.Int64
	mu             sync.Mutex
	conns          []net.Conn
}

func startSlowServer(t *testing.T, streams int, latency time.Duration, h1 bool) *slowH2Server {
	t.Helper()
	s := &slowH2Server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `{"otp":"x"}`)
	}))
	s.EnableHTTP2 = !h1
	s.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.accepted.Add(1)
			s.open.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			s.open.Add(-1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// roots are the roots that trust the server's certificate.
func (s *slowH2Server) roots() *x509.CertPool {
	return s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

// closeConns closes, from the server's side, every connection it has
// accepted so far.
func (s *slowH2Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// newTestPool returns a Pool over NewTransport trusting roots, at most
// maxConns connections.
func newTestPool(t *testing.T, roots *x509.CertPool, maxConns int) *Pool {
	t.Helper()
	tr := NewTransport()
	tr.MaxConnsPerHost = maxConns
	tr.TLSClientConfig.RootCAs = roots
	p := NewPool(tr)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// postOTP sends an OTP-shaped POST to url through hc and reads the answer.
func postOTP(ctx context.Context, hc *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/public/otp/certificate",
		strings.NewReader(`{"owner":"o","endpoint_id":"e"}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp, nil
}

// burst sends n requests at once through hc and returns how many failed
// and the first error.
func burst(ctx context.Context, hc *http.Client, url string, n int) (failed int64, first error) {
	var wg sync.WaitGroup
	var nFailed atomic.Int64
	var firstErr atomic.Value
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := postOTP(ctx, hc, url); err != nil {
				nFailed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	first, _ = firstErr.Load().(error)
	return nFailed.Load(), first
}

// TestPoolConnectionsAtStreamLimit sends more slow requests at once than
// an HTTP/2 server's SETTINGS_MAX_CONCURRENT_STREAMS, starting with no
// connection open: every one must succeed, over no more connections than
// the streams need (one more tolerated), where net/http's own pool dials
// one per request that finds the connections full. Through a Limiter of
// the facade's default bound, 1,000 requests keep 256 in flight.
func TestPoolConnectionsAtStreamLimit(t *testing.T) {
	const latency = time.Second
	for _, tc := range []struct {
		streams, requests, limiter int
		maxConns                   int // MaxConnsPerHost; 256 if 0
	}{
		{streams: 100, requests: 256},
		{streams: 250, requests: 256},
		{streams: 100, requests: 1000, limiter: 256},
		{streams: 250, requests: 1000, limiter: 256},
		// At MaxConnsPerHost, requests wait for streams to free up.
		{streams: 10, requests: 50, maxConns: 1},
	} {
		t.Run(fmt.Sprintf("%d_streams_%d_requests_%d_conns", tc.streams, tc.requests, tc.maxConns), func(t *testing.T) {
			srv := startSlowServer(t, tc.streams, latency, false)
			maxConns := cmp.Or(tc.maxConns, 256)
			p := newTestPool(t, srv.roots(), maxConns)
			var rt http.RoundTripper = p
			inFlight := tc.requests
			if tc.limiter > 0 {
				rt = NewLimiter(tc.limiter).Transport(p)
				inFlight = tc.limiter
			}
			hc := &http.Client{Transport: rt}
			ctx := testkit.Context(t, 60*time.Second)
			if failed, first := burst(ctx, hc, srv.URL, tc.requests); failed > 0 {
				t.Errorf("%d of %d requests failed against a %d-stream server (first: %v)", failed, tc.requests, tc.streams, first)
			}
			want := min(int64((inFlight+tc.streams-1)/tc.streams)+1, int64(maxConns))
			if got := srv.accepted.Load(); got > want {
				t.Errorf("the server accepted %d connections for %d requests in flight at %d streams each, want at most %d", got, inFlight, tc.streams, want)
			} else {
				t.Logf("%d connections", got)
			}
		})
	}
}

// goAwayServer serves one listener with a sequence of http.Servers:
// Next shuts the current one down gracefully (a GOAWAY on each of its
// connections, the requests in flight finishing) and hands new
// connections to a fresh one, as an upstream behind a load balancer that
// drains a backend.
type goAwayServer struct {
	URL      string
	ln       net.Listener
	handler  http.Handler
	streams  int
	mu       sync.Mutex
	current  *chanListener
	servers  []*httptest.Server
	accepted atomic.Int64
	t        *testing.T
	roots    *x509.CertPool
}

// chanListener is a net.Listener whose connections come from a channel.
type chanListener struct {
	conns  chan net.Conn
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

func startGoAwayServer(t *testing.T, streams int, handler http.Handler) *goAwayServer {
	g := &goAwayServer{ln: testkit.Listen(t), handler: handler, streams: streams, t: t}
	g.URL = "https://" + g.ln.Addr().String()
	g.Next()
	go func() {
		for {
			c, err := g.ln.Accept()
			if err != nil {
				return
			}
			g.accepted.Add(1)
			g.mu.Lock()
			l := g.current
			g.mu.Unlock()
			select {
			case l.conns <- c:
			case <-l.closed:
				_ = c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		_ = g.ln.Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, s := range g.servers {
			s.Close()
		}
	})
	return g
}

// Next drains the current server with a GOAWAY and starts the next.
func (g *goAwayServer) Next() {
	l := &chanListener{conns: make(chan net.Conn), addr: g.ln.Addr(), closed: make(chan struct{})}
	s := httptest.NewUnstartedServer(g.handler)
	s.Listener = l
	s.EnableHTTP2 = true
	s.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: g.streams}
	s.StartTLS() // the same built-in certificate for every server
	g.mu.Lock()
	old := g.current
	g.current = l
	g.servers = append(g.servers, s)
	if g.roots == nil {
		g.roots = s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	}
	var draining *httptest.Server
	if old != nil {
		draining = g.servers[len(g.servers)-2]
	}
	g.mu.Unlock()
	if draining != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = draining.Config.Shutdown(ctx)
		}()
	}
}

// TestPoolGoAwayMidLoad keeps requests in flight above one connection's
// stream limit while the upstream drains its connections with GOAWAY,
// twice, and then closes them outright: after a GOAWAY every request
// must still succeed (those the server did not take are sent again on a
// new connection); after the connections break, those in flight on them
// may fail, and every request sent after must succeed.
func TestPoolGoAwayMidLoad(t *testing.T) {
	const (
		streams = 50
		workers = 120
		latency = 200 * time.Millisecond
	)
	g := startGoAwayServer(t, streams, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(latency)
		_, _ = io.WriteString(w, `{"otp":"x"}`)
	}))
	p := newTestPool(t, g.roots, 256)
	hc := &http.Client{Transport: p}
	ctx := testkit.Context(t, 60*time.Second)

	var phase atomic.Int64 // 0: GOAWAYs; 1: connections broken; 2: after
	var failed [3]atomic.Int64
	var firstErr [3]atomic.Value
	var ok atomic.Int64
	stop := testkit.Loop(workers, func(int) bool {
		ph := phase.Load()
		_, err := postOTP(ctx, hc, g.URL)
		if end := phase.Load(); end != ph {
			ph = 1 // in flight when the connections broke
		}
		if err != nil {
			failed[ph].Add(1)
			firstErr[ph].CompareAndSwap(nil, err)
		} else {
			ok.Add(1)
		}
		return true
	})
	time.Sleep(3 * latency)
	g.Next()
	time.Sleep(3 * latency)
	g.Next()
	time.Sleep(3 * latency)

	phase.Store(1)
	g.mu.Lock()
	s := g.servers[len(g.servers)-1]
	g.mu.Unlock()
	s.CloseClientConnections()
	time.Sleep(2 * latency) // the requests of the broken connections end
	phase.Store(2)
	time.Sleep(4 * latency)
	stop()

	if n := failed[0].Load(); n > 0 {
		t.Errorf("%d requests failed while the server drained its connections with GOAWAY (first: %v)", n, firstErr[0].Load())
	}
	if n := failed[2].Load(); n > 0 {
		t.Errorf("%d requests failed after the server broke its connections (first: %v)", n, firstErr[2].Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	t.Logf("%d OK, %d failed as the connections broke, %d connections accepted", ok.Load(), failed[1].Load(), g.accepted.Load())
	if got := p.Conns(); got > (workers+streams-1)/streams+1 {
		t.Errorf("the pool holds %d open connections for %d requests at %d streams", got, workers, streams)
	}
}

// TestPoolIdleConnectionsClose checks that a connection that carried no
// request for the Transport's IdleConnTimeout closes, that
// CloseIdleConnections closes one at once, and that a request after
// either gets a new connection.
func TestPoolIdleConnectionsClose(t *testing.T) {
	srv := startSlowServer(t, 100, 0, false)
	tr := NewTransport()
	tr.TLSClientConfig.RootCAs = srv.roots()
	tr.IdleConnTimeout = 300 * time.Millisecond
	p := NewPool(tr)
	t.Cleanup(func() { _ = p.Close() })
	hc := &http.Client{Transport: p}
	ctx := testkit.Context(t, 30*time.Second)

	if _, err := postOTP(ctx, hc, srv.URL); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the idle connection closed", func() bool {
		return srv.open.Load() == 0 && p.Conns() == 0
	})
	if _, err := postOTP(ctx, hc, srv.URL); err != nil {
		t.Fatalf("after the idle close: %v", err)
	}
	if got := srv.accepted.Load(); got != 2 {
		t.Errorf("server accepted %d connections, want 2", got)
	}
	_ = p.Close()

	p = newTestPool(t, srv.roots(), 256) // IdleConnTimeout far off
	hc = &http.Client{Transport: p}
	if _, err := postOTP(ctx, hc, srv.URL); err != nil {
		t.Fatal(err)
	}
	p.CloseIdleConnections()
	testkit.Eventually(t, 10*time.Second, "CloseIdleConnections closed the connection", func() bool {
		return srv.open.Load() == 0 && p.Conns() == 0
	})
	if _, err := postOTP(ctx, hc, srv.URL); err != nil {
		t.Fatalf("after CloseIdleConnections: %v", err)
	}
}

// TestPoolRetire checks that a retired Pool (SwapTransport.Swap) closes
// its idle connections at once and its busy ones as soon as their
// requests end, which still succeed.
func TestPoolRetire(t *testing.T) {
	const latency = 500 * time.Millisecond
	srv := startSlowServer(t, 100, latency, false)
	tr := NewTransport()
	tr.TLSClientConfig.RootCAs = srv.roots()
	swap := NewSwapTransport(tr)
	hc := &http.Client{Transport: swap}
	ctx := testkit.Context(t, 30*time.Second)
	old := swap.Pool()
	if failed, first := burst(ctx, hc, srv.URL, 10); failed > 0 {
		t.Fatalf("%d requests failed (first: %v)", failed, first)
	}
	busy := make(chan error)
	go func() {
		_, err := postOTP(ctx, hc, srv.URL)
		busy <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the request in flight", func() bool { return old.Conns() == 1 })
	time.Sleep(latency / 5) // let it be sent

	next := NewTransport()
	next.TLSClientConfig.RootCAs = srv.roots()
	swap.Swap(next)
	if err := testkit.Receive(t, busy, 10*time.Second, "the request in flight at the swap"); err != nil {
		t.Fatalf("request in flight at the swap: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "the old pool's connection closed", func() bool {
		return old.Conns() == 0 && srv.open.Load() == 0
	})
	if _, err := postOTP(ctx, hc, srv.URL); err != nil {
		t.Fatalf("after the swap: %v", err)
	}
	if swap.Pool() == old || swap.Pool().Conns() != 1 {
		t.Errorf("the request after the swap did not go through the new pool")
	}
}

// TestPoolHTTP1Upstream checks that an upstream without HTTP/2 is served
// by the Transport's own pool: every request of a burst succeeds over
// HTTP/1.1, each holding a connection, and the Limiter sees them as
// HTTP/1.1 (a request whose caller leaves runs on, see limitedTransport).
// The Transport has MaxConnsPerHost set, as the facade's has: closing the
// HTTP/1.1 ClientConn that showed the upstream's protocol then panics in
// net/http unless the Pool dials without it (see Pool.dialer).
func TestPoolHTTP1Upstream(t *testing.T) {
	srv := startSlowServer(t, 0, 200*time.Millisecond, true)
	p := newTestPool(t, srv.roots(), 256)
	lt := NewLimiter(256).Transport(p).(*limitedTransport)
	hc := &http.Client{Transport: lt}
	ctx := testkit.Context(t, 30*time.Second)
	resp, err := postOTP(ctx, hc, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 1 {
		t.Errorf("response over %s, want HTTP/1.1", resp.Proto)
	}
	if failed, first := burst(ctx, hc, srv.URL, 20); failed > 0 {
		t.Fatalf("%d requests failed (first: %v)", failed, first)
	}
	if lt.h2.Load() {
		t.Error("the Limiter takes the HTTP/1.1 upstream for HTTP/2")
	}
	if p.Conns() != 0 {
		t.Errorf("the pool holds %d connections to an HTTP/1.1 upstream, want none", p.Conns())
	}
}

// TestPoolLimiterSeesHTTP2 checks that requests through a Pool tell the
// Limiter that the upstream speaks HTTP/2 (net/http fires no GotConn for a
// ClientConn), so that they run on their callers' goroutines, and that a
// send trace sees the connection handed over.
func TestPoolLimiterSeesHTTP2(t *testing.T) {
	srv := startSlowServer(t, 100, 0, false)
	p := newTestPool(t, srv.roots(), 256)
	lt := NewLimiter(256).Transport(p).(*limitedTransport)
	hc := &http.Client{Transport: lt}
	ctx, st := withSendTrace(testkit.Context(t, 30*time.Second))
	resp, err := postOTP(ctx, hc, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("response over %s, want HTTP/2", resp.Proto)
	}
	if !lt.h2.Load() {
		t.Error("the Limiter does not know the upstream speaks HTTP/2")
	}
	if !st.gotConn.Load() || st.beforeSend() {
		t.Error("the send trace did not see the connection handed over")
	}
}

// TestPoolWaitIsQueued checks how a request that waited in the Pool is
// classified when its context ends, which it must do at once: queued
// (IsQueued, not the upstream's failure) when it waited for a stream on a
// pool at MaxConnsPerHost; not queued when it waited for a dial, its own or
// another request's (the upstream, or the network, did not answer).
func TestPoolWaitIsQueued(t *testing.T) {
	t.Run("waiting for a stream at MaxConnsPerHost", func(t *testing.T) {
		srv := startSlowServer(t, 2, time.Minute, false)
		p := newTestPool(t, srv.roots(), 1)
		c := &Client{http: &http.Client{Transport: p}, maxResponseBytes: 1 << 10}
		for range 2 { // hold both streams of the one connection
			go func() { _ = sendStatus(c, srv.URL, time.Minute) }()
		}
		// and the connection knows the server's limit (its SETTINGS
		// arrived): a request sent before may be refused, and be sent
		// again only after its deadline on a loaded machine.
		testkit.Eventually(t, 10*time.Second, "two requests in flight", func() bool {
			return p.Conns() == 1 && p.inFlight() == 2 && p.streamLimit() == 2
		})
		checkQueued(t, c, srv.URL, true)
	})
	// A listener that accepts and never answers: the TLS handshake of a
	// dial hangs until its timeout.
	ln := testkit.Listen(t)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	url := "https://" + ln.Addr().String()
	t.Run("waiting for its own dial", func(t *testing.T) {
		p := newTestPool(t, nil, 256)
		c := &Client{http: &http.Client{Transport: p}, maxResponseBytes: 1 << 10}
		checkQueued(t, c, url, false)
	})
	t.Run("waiting for another request's dial", func(t *testing.T) {
		p := newTestPool(t, nil, 256)
		c := &Client{http: &http.Client{Transport: p}, maxResponseBytes: 1 << 10}
		go func() { _ = sendStatus(c, url, time.Minute) }()
		testkit.Eventually(t, 10*time.Second, "a dial under way", p.dialing)
		checkQueued(t, c, url, false)
	})
}

// sendStatus sends a GET through c's roundTrip (which classifies its
// failure) with a timeout.
func sendStatus(c *Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, st := withSendTrace(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	_, _, err = c.roundTrip(req, st, OpStatus)
	return err
}

// checkQueued sends a request with a short timeout that it spends waiting
// and checks its classification, and that it ended soon after its
// deadline.
func checkQueued(t *testing.T, c *Client, url string, want bool) {
	t.Helper()
	const timeout = 300 * time.Millisecond
	start := time.Now()
	err := sendStatus(c, url, timeout)
	took := time.Since(start)
	if err == nil {
		t.Fatal("request succeeded, want a timeout")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's deadline", err)
	}
	if got := IsQueued(err); got != want {
		t.Errorf("IsQueued(%v) = %v, want %v", err, got, want)
	}
	if took > timeout+5*time.Second { // generous: only a wait on something else fails this
		t.Errorf("the wait ended %v after the request began, past its %v deadline", took, timeout)
	}
}

// inFlight reports the requests in flight on p's connections.
func (p *Pool) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.hosts {
		for _, pc := range h.conns {
			n += pc.busy
		}
	}
	return n
}

// dialing reports whether p is dialling a connection.
func (p *Pool) dialing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		if h.dial != nil {
			return true
		}
	}
	return false
}

// TestPoolThroughProxy checks that the Pool's connections go through the
// Transport's proxy (NewClientConn asks Transport.Proxy), with the proxy
// URL's credentials, and still multiplex: a burst above one connection's
// stream limit takes as many tunnels as connections it needs.
func TestPoolThroughProxy(t *testing.T) {
	const streams = 20
	srv := startSlowServer(t, streams, 200*time.Millisecond, false)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The test certificate's name; loopback targets are never proxied.
	const host = "example.com"
	proxy := testkit.StartConnectProxy(t, testkit.ProxyOptions{
		User: "egress", Password: "pw", Hosts: map[string]string{host: "127.0.0.1"},
	})
	tr := NewTransport()
	tr.TLSClientConfig.RootCAs = srv.roots()
	tr.Proxy = http.ProxyURL(proxy.URL)
	p := NewPool(tr)
	t.Cleanup(func() { _ = p.Close() })
	hc := &http.Client{Transport: p}
	url := "https://" + net.JoinHostPort(host, port)
	ctx := testkit.Context(t, 30*time.Second)
	if failed, first := burst(ctx, hc, url, 3*streams); failed > 0 {
		t.Fatalf("%d requests failed through the proxy (first: %v)", failed, first)
	}
	if got := proxy.Tunnels(); got < 1 || got > 4 {
		t.Errorf("the proxy established %d tunnels for %d requests at %d streams, want 3 (4 tolerated)", got, 3*streams, streams)
	}
	if got := int64(proxy.Tunnels()); got != srv.accepted.Load() {
		t.Errorf("the proxy established %d tunnels, the server accepted %d connections", got, srv.accepted.Load())
	}
	if p.Conns() == 0 {
		t.Error("the pool holds no connection: the requests went around it")
	}
	for _, target := range proxy.Targets() {
		if target != net.JoinHostPort(host, port) {
			t.Errorf("CONNECT %s, want %s:%s", target, host, port)
		}
	}
}

// startDelayingRelay relays TCP connections to addr, delaying each chunk
// from the server by delay: a distant server, whose SETTINGS reach a new
// connection well after the first requests could be sent on it.
func startDelayingRelay(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln := testkit.Listen(t)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(s, c)
				_ = s.Close()
			}()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// TestPoolStreamLimitBelowInitial sends a burst to a cold pool whose
// server allows fewer streams (10) than a new connection assumes until the
// server's SETTINGS arrive (100), and they arrive late: the requests sent
// beyond the limit are refused or wait for a stream, and every one must
// succeed. Holding ClientConn reservations instead, the reservations
// beyond the limit block the one request waiting for a stream for good
// (as golang/go#70809), and the burst waits for its deadline.
func TestPoolStreamLimitBelowInitial(t *testing.T) {
	const streams = 10
	srv := startSlowServer(t, streams, 200*time.Millisecond, false)
	relay := startDelayingRelay(t, srv.Listener.Addr().String(), 50*time.Millisecond)
	p := newTestPool(t, srv.roots(), 256)
	hc := &http.Client{Transport: p}
	ctx := testkit.Context(t, 30*time.Second)
	if failed, first := burst(ctx, hc, "https://"+relay, 6*streams); failed > 0 {
		t.Fatalf("%d of %d requests failed against a %d-stream server (first: %v)", failed, 6*streams, streams, first)
	}
	t.Logf("%d connections", srv.accepted.Load())
}

// streamLimit reports the stream limit of p's first connection as net/http
// knows it, 0 if none.
func (p *Pool) streamLimit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		for _, pc := range h.conns {
			return pc.cc.Available() + pc.cc.InFlight()
		}
	}
	return 0
}
