package upstream

import (
	"context"
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
)

// TestTransportAboveStreamLimit sends more requests at once than an HTTP/2
// server's SETTINGS_MAX_CONCURRENT_STREAMS (and more than twice as many,
// the load at which reservations on one connection deadlock it, see
// NewTransport) through NewTransport bounded by a Limiter of the facade's
// default size: every one must succeed, none wait for a stream that never
// frees up.
func TestTransportAboveStreamLimit(t *testing.T) {
	for _, tc := range []struct {
		streams, requests int
	}{
		{streams: 100, requests: 110},
		{streams: 100, requests: 250},
		{streams: 250, requests: 256},
	} {
		t.Run(fmt.Sprintf("%d_streams_%d_requests", tc.streams, tc.requests), func(t *testing.T) {
			const latency = time.Second
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-time.After(latency):
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, `{"otp":"x"}`)
			}))
			srv.EnableHTTP2 = true
			srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: tc.streams}
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()

			tr := NewTransport()
			tr.MaxConnsPerHost = 256
			tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: NewLimiter(256).Transport(tr)}
			post := func(ctx context.Context) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/public/otp/certificate",
					strings.NewReader(`{"owner":"o","endpoint_id":"e"}`))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.ProtoMajor != 2 {
					t.Errorf("response over %s, want HTTP/2", resp.Proto)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				return err
			}
			// One call first, so that the burst finds a connection open:
			// requests that find none each dial their own.
			if err := post(context.Background()); err != nil {
				t.Fatalf("first request: %v", err)
			}

			// Generous: the burst needs about two latencies when nothing stalls.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			var failed atomic.Int64
			var firstErr atomic.Value
			for range tc.requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := post(ctx); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}()
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of %d requests failed against a %d-stream server (first: %v)", n, tc.requests, tc.streams, firstErr.Load())
			}
			t.Logf("%d streams, %d requests: %d connections", tc.streams, tc.requests, conns.Load())
		})
	}
}

// TestTransportErrorQueued checks which failed requests are marked Queued
// (see IsQueued): those whose context ended while they waited in the
// transport for a connection or an HTTP/2 stream, and not those that had
// sent their request and waited for the answer.
func TestTransportErrorQueued(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h2         bool
		holdFirst  bool // a first request holds the only connection or stream
		wantQueued bool
	}{
		{name: "HTTP/1.1 waiting for a connection", holdFirst: true, wantQueued: true},
		{name: "HTTP/2 waiting for a stream", h2: true, holdFirst: true, wantQueued: true},
		{name: "HTTP/1.1 waiting for the answer", wantQueued: false},
		{name: "HTTP/2 waiting for the answer", h2: true, wantQueued: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1}
			var tr *http.Transport
			if tc.h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				tr = NewTransport()
				tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
				// Only strict stream accounting makes a request wait for a
				// stream; NewTransport opens another connection instead.
				tr.HTTP2.StrictMaxConcurrentRequests = true
			} else {
				srv.Start()
				tr = NewTransport()
				tr.MaxConnsPerHost = 1
			}
			defer srv.Close()
			defer close(release)
			defer tr.CloseIdleConnections()
			c := &Client{http: &http.Client{Transport: tr}, maxResponseBytes: 1 << 10}
			send := func(timeout time.Duration) error {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				ctx, st := withSendTrace(ctx)
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.roundTrip(req, st, OpStatus)
				return err
			}
			if tc.holdFirst {
				go func() { _ = send(time.Minute) }()
				time.Sleep(500 * time.Millisecond) // let it take the connection or stream
			}
			err := send(time.Second)
			if err == nil {
				t.Fatal("request succeeded, want a timeout")
			}
			if got := IsQueued(err); got != tc.wantQueued {
				t.Errorf("IsQueued(%v) = %v, want %v", err, got, tc.wantQueued)
			}
		})
	}
}
