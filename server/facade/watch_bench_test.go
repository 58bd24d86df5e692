package facade_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// BenchmarkWatchStreams opens 10,000 WatchServiceStatus streams of 100
// services on one in-process facade over loopback (the clients in the same
// process), waits for every initial status, and reports the heap and RSS
// growth per open stream (client and server side together) and the
// upstream status calls per interval. Run it once, on its own:
//
//	go test -run '^$' -bench BenchmarkWatchStreams -benchtime 1x ./server/facade/
func BenchmarkWatchStreams(b *testing.B) {
	const (
		streams   = 10000
		services  = 100
		perConn   = 250 // under the facade's 256 streams per connection
		intervals = 3
	)
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		f, err := facade.New(ctx, facade.Config{
			Emulator: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			WatchInterval: watchInterval, MaxWatchesPerCaller: streams,
		})
		if err != nil {
			b.Fatalf("facade.New: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		emu := f.Emulator()
		ids := make([]string, services)
		for i := range ids {
			ids[i] = fmt.Sprintf("perf-svc0-%04d", i)
			emu.SetService(emulator.Service{ID: ids[i], Active: true, Online: true})
		}
		var conns []*grpc.ClientConn
		for range (streams + perConn - 1) / perConn {
			conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatalf("grpc.NewClient: %v", err)
			}
			conns = append(conns, conn)
		}

		heap0, rss0 := memNow()
		watchCtx, stopWatching := context.WithTimeout(context.Background(), 5*time.Minute)
		var (
			wg       sync.WaitGroup
			received atomic.Int64 // streams that got their initial status
		)
		errs := make(chan error, streams)
		opened := time.Now()
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := accessv1.NewAccessServiceClient(conns[i/perConn]).WatchServiceStatus(watchCtx, &accessv1.WatchServiceStatusRequest{ServiceId: ids[i%services]})
				if err == nil {
					_, err = s.Recv()
				}
				if err != nil {
					errs <- err
					return
				}
				received.Add(1)
				// Keep receiving (heartbeats) until the end, as a client would.
				for {
					if _, err := s.Recv(); err != nil {
						return
					}
				}
			}()
		}
		deadline := time.Now().Add(3 * time.Minute)
		for received.Load() < streams {
			select {
			case err := <-errs:
				b.Fatalf("a stream failed: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d streams got their initial status", received.Load(), streams)
			}
			time.Sleep(50 * time.Millisecond)
		}
		openTime := time.Since(opened)
		heap1, rss1 := memNow()
		before := emu.Calls(emulator.RouteStatus)
		time.Sleep(intervals * watchInterval)
		polls := emu.Calls(emulator.RouteStatus) - before

		b.ReportMetric(float64(heap1-heap0)/streams, "heap-B/stream")
		b.ReportMetric(float64(rss1-rss0)/streams, "rss-B/stream")
		b.ReportMetric(float64(polls)/intervals, "upstream-calls/interval")
		b.ReportMetric(openTime.Seconds(), "s-to-open-all")
		b.Logf("%d streams of %d services: heap %+.1f MiB, RSS %+.1f MiB (%.0f B, %.0f B per stream), opened in %v; %d upstream status calls in %d intervals of %v",
			streams, services, float64(heap1-heap0)/(1<<20), float64(rss1-rss0)/(1<<20),
			float64(heap1-heap0)/streams, float64(rss1-rss0)/streams, openTime.Round(time.Millisecond), polls, intervals, watchInterval)

		stopWatching()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}
}

// memNow returns the live heap after GC (testkit.HeapAfterGC) and the
// process's resident set.
func memNow() (heap, rss uint64) {
	ms := testkit.HeapAfterGC()
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				rss = kb << 10
			}
		}
	}
	return ms.HeapInuse, rss
}
