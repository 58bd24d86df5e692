package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// NewTransport returns an http.Transport tuned for many concurrent calls to
// one upstream: keep-alive with a deep idle pool, TLS 1.2 or later, HTTP/2
// attempted, and timeouts on every phase that precedes the response.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       dialer.DialContext,
		ForceAttemptHTTP2: true,
		// One host only. Over plain HTTP/1.1 each call in flight holds a
		// connection; an idle pool smaller than the calls in flight makes
		// every burst dial and close connections (measured in
		// docs/performance.md). Over TLS, HTTP/2 multiplexes instead.
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The upstream's headers are a few hundred bytes; the default
		// allows 1 MiB per response.
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		// StrictMaxConcurrentRequests stays false: a connection takes
		// requests up to the upstream's SETTINGS_MAX_CONCURRENT_STREAMS and
		// a request beyond it goes to another connection (bounded by
		// MaxConnsPerHost). With it true, every request reserves a stream
		// on the first connection even past the limit, and the reservations
		// queued behind the one request waiting for a stream count against
		// that limit: once they reach it, no stream ever frees up and every
		// request waits for its deadline (golang/go#70809, in net/http's
		// bundled copy and in golang.org/x/net/http2 alike). Tested by
		// TestTransportAboveStreamLimit. A request that finds every
		// connection full dials one of its own, though: over TLS, Pool
		// (which SwapTransport sends through) takes the requests
		// instead and dials one connection at a time.
		HTTP2: &http.HTTP2Config{StrictMaxConcurrentRequests: false},
	}
}

// sendTrace records how far a request got, to tell whether any byte of it
// can have reached the upstream, and whether it was still waiting in the
// transport for a connection or an HTTP/2 stream when it ended.
type sendTrace struct {
	gotConn      atomic.Bool
	wroteHeaders atomic.Bool
	// dialed is set once the request started a DNS lookup, a dial or a TLS
	// handshake, or waited for a Pool's dial: a wait there is the
	// upstream's (or the network's), not the transport's own queue.
	dialed atomic.Bool
}

// withSendTrace returns ctx with a trace recording into a new sendTrace. It
// composes with any trace already in ctx (otelhttp's, for example).
func withSendTrace(ctx context.Context) (context.Context, *sendTrace) {
	st := &sendTrace{}
	ctx = withPoolEvent(ctx, connHanded, func() { st.gotConn.Store(true) })
	ctx = withPoolEvent(ctx, dialWaited, func() { st.dialed.Store(true) })
	ctx = withPoolEvent(ctx, resent, func() {
		// Refused unprocessed (REFUSED_STREAM, GOAWAY): as if never sent.
		st.gotConn.Store(false)
		st.wroteHeaders.Store(false)
		st.dialed.Store(false)
	})
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { st.dialed.Store(true) },
		ConnectStart:      func(string, string) { st.dialed.Store(true) },
		TLSHandshakeStart: func() { st.dialed.Store(true) },
		GotConn:           func(httptrace.GotConnInfo) { st.gotConn.Store(true) },
		WroteHeaders:      func() { st.wroteHeaders.Store(true) },
	}), st
}

// beforeSend reports whether the request provably never left: no
// connection was ever handed to it, so DNS, dial or TLS failed, or the
// context ended first.
func (st *sendTrace) beforeSend() bool {
	return !st.gotConn.Load() && !st.wroteHeaders.Load()
}

// queued reports whether a request that failed because ctx (its own
// context) ended was then still in the transport's queue: it had written
// no headers and had not been dialling nor waiting for a dial, so it was
// waiting for a free connection (MaxConnsPerHost) or HTTP/2 stream.
func (st *sendTrace) queued(ctx context.Context) bool {
	return ctx.Err() != nil && !st.wroteHeaders.Load() && !st.dialed.Load()
}

// tokenTransport wraps the transport of the http.Client that x/oauth2 uses
// for client-credentials requests, so that they get what every other
// request of the Client gets: our headers, a body bound, and failures
// classified as *TransportError (OpToken) or ErrMalformedResponse; and,
// as a set-up request, it is outside the bound on calls in flight (see
// withoutSlot). It reads the body itself because x/oauth2 bounds it at 1 MiB, not at
// Config.MaxResponseBytes, and reports read failures as plain text. The
// body reaches x/oauth2 as it came: x/oauth2 parses the upstream's token
// response (application/json, as the guide shows it) as it is.
type tokenTransport struct {
	base      http.RoundTripper
	limit     int64
	userAgent string
}

// RoundTrip sends req with our headers and returns the response with its
// body read, bounded.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, st := withSendTrace(withoutSlot(req.Context()))
	req = req.Clone(ctx)
	req.Header.Set("User-Agent", t.userAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, &TransportError{Op: OpToken, BeforeSend: st.beforeSend(), Queued: st.queued(ctx), Err: sanitize(err)}
	}
	body, err := readBody(resp.Body, t.limit)
	resp.Body.Close()
	switch {
	case errors.Is(err, ErrMalformedResponse):
		return nil, fmt.Errorf("upstream: token: %w", err)
	case err != nil:
		return nil, &TransportError{Op: OpToken, Err: fmt.Errorf("reading response body: %w", sanitize(err))}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// tokenHTTPClient returns a copy of hc whose transport is wrapped by
// tokenTransport.
func tokenHTTPClient(hc *http.Client, limit int64, userAgent string) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = &tokenTransport{base: base, limit: limit, userAgent: userAgent}
	return &c
}
