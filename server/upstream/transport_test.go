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
