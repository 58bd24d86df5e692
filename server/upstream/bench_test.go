package upstream_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// newBenchClient returns a Client of an emulator on loopback that holds a
// token already, so that benchmarks measure the steady state. A nil hc is
// the Client's default.
func newBenchClient(b *testing.B, hc *http.Client) *upstream.Client {
	b.Helper()
	seed := emulator.DefaultSeed()
	_, srv := testkit.StartEmulator(b, emulator.Config{Seed: seed})
	c, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret, HTTPClient: hc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Ready(testkit.Context(b, 10*time.Second)); err != nil {
		b.Fatalf("Ready: %v", err)
	}
	return c
}

// BenchmarkReady measures the token fast path: discovery cached and a
// usable token held, as on every call (and every readiness check).
func BenchmarkReady(b *testing.B) {
	c := newBenchClient(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Ready(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkServiceStatus measures one status call end to end against the
// emulator over loopback: token fast path, request, response decoding. The
// emulator's own work is included, so compare runs, not absolute figures.
// "bounded" sends through a Limiter, as the facade does: over HTTP/1.1,
// its own goroutine per request (limit.go) is part of the figure.
func BenchmarkServiceStatus(b *testing.B) {
	bounded := upstream.NewTransport()
	b.Cleanup(bounded.CloseIdleConnections) // the Client closes only a transport of its own
	clients := []struct {
		name string
		hc   *http.Client
	}{
		{"direct", nil},
		{"bounded", &http.Client{Transport: upstream.NewLimiter(256).Transport(bounded)}},
	}
	for _, cl := range clients {
		b.Run(cl.name, func(b *testing.B) {
			c := newBenchClient(b, cl.hc)
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.ServiceStatus(ctx, "1ryq-e8n8-5g5n"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := c.ServiceStatus(ctx, "1ryq-e8n8-5g5n"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
