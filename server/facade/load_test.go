package facade_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestUpstreamStreamLimitsAtLoad drives the facade as several client pods
// would: 1,000 GenerateOTP calls at once over 8 gRPC connections, against
// the emulator over TLS and HTTP/2 advertising 100 and then 250 streams
// per connection, answering in 1 s. With no client deadline every call
// succeeds (no stall at the upstream's stream limit, no UPSTREAM_TIMEOUT);
// with 2 s deadlines the only refusals are UPSTREAM_CONCURRENCY_LIMIT with
// RetryInfo. The breaker stays closed throughout, and the facade opens no
// more upstream connections than the calls in flight need.
func TestUpstreamStreamLimitsAtLoad(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "1,000 calls in flight; -short")
	}
	const (
		calls   = 1000
		conns   = 8
		latency = time.Second
	)
	for _, streams := range []int{100, 250} {
		t.Run(fmt.Sprintf("%d_streams", streams), func(t *testing.T) {
			te := testkit.StartTLSEmulatorStreams(t, emulator.Config{}, streams)
			h := startFacade(t, tlsFacadeConfig(te))
			h.waitServing(t)
			h.mustStatus(t)
			te.Emulator.SetLatency(emulator.RouteOTP, latency)
			clients := make([]accessv1.AccessServiceClient, conns)
			for i := range clients {
				cc, err := grpc.NewClient(h.f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cc.Close() })
				clients[i] = accessv1.NewAccessServiceClient(cc)
			}
			burst := func(deadline time.Duration) map[string]int {
				var mu sync.Mutex
				outcomes := map[string]int{}
				var wg sync.WaitGroup
				for i := range calls {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.Background(), context.CancelFunc(func() {})
						if deadline > 0 {
							ctx, cancel = context.WithTimeout(ctx, deadline)
						}
						defer cancel()
						_, err := clients[i%conns].GenerateOTP(ctx, otpRequest())
						key := "OK"
						if err != nil {
							key = status.Code(err).String() + " " + reasonOf(err)
							if !hasRetryInfo(err) {
								key += " (no RetryInfo)"
							}
						}
						mu.Lock()
						outcomes[key]++
						mu.Unlock()
					}()
				}
				stop := make(chan struct{})
				breaker := make(chan float64, 1)
				go func() {
					worst := 0.0
					for {
						select {
						case <-stop:
							breaker <- worst
							return
						case <-time.After(250 * time.Millisecond):
							worst = max(worst, scrape(t, h)[telemetry.MetricUpstreamBreakerState])
						}
					}
				}()
				wg.Wait()
				close(stop)
				if worst := <-breaker; worst != 0 {
					t.Errorf("breaker state reached %v (0 closed, 1 half-open, 2 open)", worst)
				}
				return outcomes
			}

			got := burst(0)
			t.Logf("no deadline: %v", got)
			if got["OK"] != calls {
				t.Errorf("no deadline: %v, want all %d OK", got, calls)
			}

			got = burst(2 * time.Second)
			t.Logf("2 s deadlines: %v", got)
			refused := codes.ResourceExhausted.String() + " " + accessv1.ErrorReason_UPSTREAM_CONCURRENCY_LIMIT.String()
			for key, n := range got {
				if key != "OK" && key != refused {
					t.Errorf("2 s deadlines: %d calls ended %s, want only OK and %s with RetryInfo", n, key, refused)
				}
			}
			if got["OK"] == 0 {
				t.Errorf("2 s deadlines: no call succeeded: %v", got)
			}
			// The calls in flight take the streams they need: no
			// connection of its own for a call that finds the others at
			// the stream limit (one more tolerated while a dial races).
			want := int64((facade.DefaultUpstreamMaxInFlight+streams-1)/streams) + 1
			if n := te.Emulator.Connections(); n > want {
				t.Errorf("the emulator accepted %d connections for %d calls in flight at %d streams each, want at most %d",
					n, facade.DefaultUpstreamMaxInFlight, streams, want)
			}
		})
	}
}
