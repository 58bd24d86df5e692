package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// ProxyOptions configure StartConnectProxy.
type ProxyOptions struct {
	// User and Password, when User is set, are required from clients as
	// Proxy-Authorization (Basic); a CONNECT without them gets 407.
	User, Password string
	// Hosts maps target host names to the loopback address to dial
	// instead, as a DNS entry would: a test can then address an upstream
	// by a name that is not loopback (proxies are skipped for loopback
	// targets) while every connection stays on this machine. Targets are
	// dialled only when they are loopback after mapping.
	Hosts map[string]string
}

// ConnectProxy is an HTTP CONNECT proxy on loopback, as an egress proxy
// in front of the upstream would be. It records what it saw: the CONNECT
// targets, the Proxy-Authorization headers, any request that was not a
// CONNECT, and every byte it relayed from clients, so that a test can
// check that nothing but TLS went through it.
type ConnectProxy struct {
	// URL is the proxy's URL (http://127.0.0.1:port), with the user and
	// password of ProxyOptions when set: the value of HTTPS_PROXY.
	URL *url.URL

	opts ProxyOptions
	lis  net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	targets  []string
	auths    []string
	others   []string     // method and target of requests that were not CONNECT
	relayed  bytes.Buffer // bytes from clients after a CONNECT
	tunneled int          // tunnels established
}

// maxProxyHeaderBytes bounds a request head the proxy reads.
const maxProxyHeaderBytes = 16 << 10

// StartConnectProxy serves a CONNECT proxy on a loopback port until tb
// ends; then it closes every tunnel and waits for them.
func StartConnectProxy(tb testing.TB, opts ProxyOptions) *ConnectProxy {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &ConnectProxy{
		URL:   &url.URL{Scheme: "http", Host: lis.Addr().String()},
		opts:  opts,
		lis:   lis,
		conns: make(map[net.Conn]struct{}),
	}
	if opts.User != "" {
		p.URL.User = url.UserPassword(opts.User, opts.Password)
	}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Targets returns the host:port of every CONNECT received, in order.
func (p *ConnectProxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// ProxyAuthorizations returns the Proxy-Authorization header of every
// CONNECT received ("" when absent), in order.
func (p *ConnectProxy) ProxyAuthorizations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auths...)
}

// NonConnect returns "METHOD target" for every request that was not a
// CONNECT (plain-HTTP proxying, which this proxy refuses).
func (p *ConnectProxy) NonConnect() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.others...)
}

// Relayed returns a copy of every byte relayed from clients to targets.
func (p *ConnectProxy) Relayed() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.relayed.Bytes())
}

// Tunnels reports how many tunnels were established.
func (p *ConnectProxy) Tunnels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tunneled
}

func (p *ConnectProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.serve(c)
		}()
	}
}

// track registers c to be closed with the proxy; false once it is closed.
func (p *ConnectProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *ConnectProxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *ConnectProxy) close() {
	_ = p.lis.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// serve reads one request from c: a CONNECT is tunnelled, anything else
// refused.
func (p *ConnectProxy) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(io.LimitReader(c, maxProxyHeaderBytes))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	reply := func(code int, extra string) {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", code, http.StatusText(code), extra)
	}
	p.mu.Lock()
	if req.Method != http.MethodConnect {
		p.others = append(p.others, req.Method+" "+req.RequestURI)
		p.mu.Unlock()
		reply(http.StatusMethodNotAllowed, "")
		return
	}
	p.targets = append(p.targets, req.Host)
	auth := req.Header.Get("Proxy-Authorization")
	p.auths = append(p.auths, auth)
	p.mu.Unlock()

	if p.opts.User != "" {
		want := &http.Request{Header: http.Header{}}
		want.SetBasicAuth(p.opts.User, p.opts.Password)
		if auth != want.Header.Get("Authorization") {
			reply(http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"testkit\"\r\n")
			return
		}
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		reply(http.StatusBadRequest, "")
		return
	}
	if mapped, ok := p.opts.Hosts[host]; ok {
		host = mapped
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		reply(http.StatusForbidden, "") // tests stay on loopback
		return
	}
	up, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
	if err != nil {
		reply(http.StatusBadGateway, "")
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	p.mu.Lock()
	p.tunneled++
	p.mu.Unlock()

	// The client speaks only after the 200, so br holds nothing more; the
	// rest of c is read unbounded from here on.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up)
		_ = c.Close()
	}()
	_, _ = io.Copy(io.MultiWriter(up, recorder{p}), c)
	_ = up.Close()
	<-done
}

// recorder appends what it is given to the proxy's relayed bytes.
type recorder struct{ p *ConnectProxy }

func (r recorder) Write(b []byte) (int, error) {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.p.relayed.Write(b)
}
