package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// Mode W (-watch N): N WatchServiceStatus streams held open on one facade.
const (
	watchServices      = 100 // services the streams spread over
	watchPerConn       = 250 // streams per gRPC connection, under the facade's 256
	watchInterval      = 5 * time.Second
	watchPollIntervals = 3                // intervals over which upstream polls are counted
	watchOpenTimeout   = 3 * time.Minute  // for every stream's initial status
	watchMaxRSSPer10k  = 100.0            // target: MiB of facade RSS at 10,000 streams
	watchSettle        = 2 * time.Second  // after the last initial status, before reading memory
	watchStreamTimeout = 10 * time.Minute // bounds each stream, should the bench hang
	watchMetricsBudget = 30 * time.Second // for the facade's /metrics while 10,000 streams are open
	watchSeedPrefix    = "watch-svc-"     // IDs of the seeded services
	watchRoute         = routeStatus      // the route the pollers call
)

// WatchRun is mode W's report.
type WatchRun struct {
	Time    time.Time `json:"time"`
	Machine Machine   `json:"machine"`
	Streams int       `json:"streams"`
	Conns   int       `json:"grpc_connections"`
	// The facade before the streams opened and with all of them open.
	RSSBeforeMiB   float64 `json:"rss_before_mib"`
	RSSMiB         float64 `json:"rss_mib"`
	HeapBeforeMiB  float64 `json:"heap_inuse_before_mib"`
	HeapMiB        float64 `json:"heap_inuse_mib"`
	StackBeforeMiB float64 `json:"stack_inuse_before_mib"`
	StackMiB       float64 `json:"stack_inuse_mib"`
	Goroutines     float64 `json:"goroutines"`
	// Growth per open stream.
	RSSPerStream        float64 `json:"rss_bytes_per_stream"`
	HeapPerStream       float64 `json:"heap_bytes_per_stream"`
	StackPerStream      float64 `json:"stack_bytes_per_stream"`
	GoroutinesPerStream float64 `json:"goroutines_per_stream"`
	OpenSeconds         float64 `json:"seconds_to_open_all"`
	PollsPerInterval    float64 `json:"upstream_polls_per_interval"`
	// The floor (tools/bench/floor) with as many streams open: a grpc-go
	// server stream with nothing above it, about the least a facade on
	// grpc-go can hold one for.
	FloorRSSBeforeMiB float64  `json:"floor_rss_before_mib"`
	FloorRSSMiB       float64  `json:"floor_rss_mib"`
	FloorRSSPerStream float64  `json:"floor_rss_bytes_per_stream"`
	Targets           []Target `json:"targets"`
}

// watchRun opens b.opts.watch streams of watchServices services over as
// many connections as need be and reads the facade's memory, then the
// floor's with as many streams open (watchFloor).
func (b *bench) watchRun(ctx context.Context) (*WatchRun, error) {
	n := b.opts.watch
	run := &WatchRun{Time: time.Now(), Machine: describeMachine(ctx, b.clkTck, b.nofile), Streams: n}
	emu, err := startEmulator(ctx, b.emulatorBin)
	if err != nil {
		return nil, err
	}
	b.track(emu.proc)
	defer b.stop(emu.proc)
	admin := newEmuAdmin(emu.baseURL)
	ids := make([]string, watchServices)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%04d", watchSeedPrefix, i)
		if err := admin.put(ctx, "seed service", "/services", "", fmt.Sprintf(`{"service_id": %q, "active": true, "online": true}`, ids[i])); err != nil {
			return nil, err
		}
	}
	f, err := b.startFacade(ctx, emu, []string{"--max-watches-per-caller", strconv.Itoa(max(n, 1)), "--watch-interval", watchInterval.String()})
	if err != nil {
		return nil, err
	}
	defer b.stop(f.proc)
	hc := &http.Client{Timeout: watchMetricsBudget}
	metricsURL := "http://" + f.httpAddr + "/metrics"
	if i := slices.Index(b.opts.facadeFlags, "--metrics-addr"); i >= 0 && i+1 < len(b.opts.facadeFlags) {
		metricsURL = "http://" + b.opts.facadeFlags[i+1] + "/metrics" // with --pprof, to profile the run
	}
	read := func() (rss, heap, stack, goroutines float64, err error) {
		m, err := scrape(ctx, hc, metricsURL)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		st, err := readProcStat(f.pid(), b.clkTck)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		return float64(st.rss), m["go_memstats_heap_inuse_bytes"], m["go_memstats_stack_inuse_bytes"], m["go_goroutines"], nil
	}
	rss0, heap0, stack0, g0, err := read()
	if err != nil {
		return nil, err
	}

	b.logf("mode W: opening %d WatchServiceStatus streams of %d services on the facade", n, watchServices)
	opened := time.Now()
	ws, err := openWatches(ctx, f.grpcAddr, n, ids)
	if err != nil {
		return nil, err
	}
	defer ws.close()
	run.Conns = ws.conns
	run.OpenSeconds = time.Since(opened).Seconds()
	time.Sleep(watchSettle)
	before, err := admin.counters(ctx)
	if err != nil {
		return nil, err
	}
	// RSS is sampled over the poll intervals: its peak with every stream
	// open, heartbeats and polls included.
	peak := b.sampleRSS(f.pid())
	time.Sleep(watchPollIntervals * watchInterval)
	peakRSS := peak()
	after, err := admin.counters(ctx)
	if err != nil {
		return nil, err
	}
	rss1, heap1, stack1, g1, err := read()
	if err != nil {
		return nil, err
	}
	rss1 = max(rss1, float64(peakRSS))
	if err := ws.allOpen(); err != nil {
		return nil, err
	}
	run.PollsPerInterval = float64(after[watchRoute]-before[watchRoute]) / watchPollIntervals
	run.RSSBeforeMiB, run.RSSMiB = rss0/(1<<20), rss1/(1<<20)
	run.HeapBeforeMiB, run.HeapMiB = heap0/(1<<20), heap1/(1<<20)
	run.StackBeforeMiB, run.StackMiB = stack0/(1<<20), stack1/(1<<20)
	run.Goroutines = g1
	run.RSSPerStream = (rss1 - rss0) / float64(n)
	run.HeapPerStream = (heap1 - heap0) / float64(n)
	run.StackPerStream = (stack1 - stack0) / float64(n)
	run.GoroutinesPerStream = (g1 - g0) / float64(n)
	ws.close()
	b.stop(f.proc)
	if err := b.watchFloor(ctx, emu, run, ids); err != nil {
		return nil, err
	}
	limit := watchMaxRSSPer10k * float64(n) / 10000
	run.Targets = []Target{
		{Name: fmt.Sprintf("facade RSS with %d watch streams open", n), Target: fmt.Sprintf("<= %.0f MiB", limit),
			Measured: fmt.Sprintf("%.1f MiB", run.RSSMiB), Value: run.RSSMiB, Limit: limit, Status: passMiss(run.RSSMiB <= limit)},
		{Name: "upstream status polls per interval", Target: fmt.Sprintf("<= %d (one per service)", watchServices),
			Measured: fmt.Sprintf("%.1f", run.PollsPerInterval), Value: run.PollsPerInterval, Limit: watchServices, Status: passMiss(run.PollsPerInterval <= watchServices+1)},
		{Name: fmt.Sprintf("the floor's RSS with %d streams open (a grpc-go server stream, nothing above it)", n), Target: "(measured)",
			Measured: fmt.Sprintf("%.1f MiB", run.FloorRSSMiB), Value: run.FloorRSSMiB, Status: "INFO"},
	}
	return run, nil
}

// watchFloor measures the floor's RSS before and with run.Streams streams
// of ids open, the facade stopped so that the two do not share the cores.
func (b *bench) watchFloor(ctx context.Context, emu *emulatorProc, run *WatchRun, ids []string) error {
	fl, err := b.startFloor(ctx, emu)
	if err != nil {
		return err
	}
	defer b.stop(fl.proc)
	before, err := readProcStat(fl.pid(), b.clkTck)
	if err != nil {
		return err
	}
	b.logf("mode W: opening %d WatchServiceStatus streams on the floor", run.Streams)
	ws, err := openWatches(ctx, fl.grpcAddr, run.Streams, ids)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer ws.close()
	peak := b.sampleRSS(fl.pid())
	time.Sleep(watchSettle)
	rss := peak()
	if err := ws.allOpen(); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	run.FloorRSSBeforeMiB, run.FloorRSSMiB = mib(before.rss), mib(rss)
	run.FloorRSSPerStream = float64(rss-before.rss) / float64(run.Streams)
	return nil
}

// watches are the streams openWatches opened.
type watches struct {
	conns int          // gRPC connections they share
	ended atomic.Int64 // streams that ended before close
	close func()       // ends the streams and closes the connections; safe to call more than once
}

// allOpen reports an error if a stream ended before close: memory read
// with fewer streams open than asked for would flatter the server.
func (w *watches) allOpen() error {
	if n := w.ended.Load(); n > 0 {
		return fmt.Errorf("mode W: %d streams ended while memory was read", n)
	}
	return nil
}

// openWatches opens n WatchServiceStatus streams to addr, of ids in turn,
// watchPerConn to a gRPC connection, and waits until each has its initial
// status; their clients then read on, as a client reads heartbeats.
func openWatches(ctx context.Context, addr string, n int, ids []string) (*watches, error) {
	conns := make([]*grpc.ClientConn, (n+watchPerConn-1)/watchPerConn)
	ws := &watches{conns: len(conns)}
	wctx, stopWatching := context.WithTimeout(ctx, watchStreamTimeout)
	var wg sync.WaitGroup
	ws.close = sync.OnceFunc(func() {
		stopWatching()
		wg.Wait()
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	for i := range conns {
		var err error
		if conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			ws.close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	var (
		received atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Value
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := accessv1.NewAccessServiceClient(conns[i/watchPerConn]).WatchServiceStatus(wctx, &accessv1.WatchServiceStatusRequest{ServiceId: ids[i%len(ids)]})
			if err == nil {
				_, err = s.Recv()
			}
			if err != nil {
				if wctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				return
			}
			received.Add(1)
			for { // heartbeats, as a client reads them
				if _, err := s.Recv(); err != nil {
					if wctx.Err() == nil {
						ws.ended.Add(1)
					}
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(watchOpenTimeout)
	for received.Load()+failed.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			ws.close()
			return nil, fmt.Errorf("mode W: %d of %d streams got their initial status, %d failed", received.Load(), n, failed.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if failed.Load() > 0 {
		ws.close()
		return nil, fmt.Errorf("mode W: %d of %d streams failed, first: %v", failed.Load(), n, firstErr.Load())
	}
	return ws, nil
}

// printWatchRun prints mode W's table and targets.
func printWatchRun(w io.Writer, r *WatchRun) {
	fmt.Fprintf(w, "\nWatch streams (%s, %d cores, %s)\n\n", r.Machine.CPU, r.Machine.Cores, r.Machine.GoVersion)
	fmt.Fprintln(w, "| streams | gRPC conns | RSS before → open | heap in use | stacks in use | per stream: RSS / heap / stack | goroutines per stream | polls per interval | opened in |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(w, "| %d | %d | %.1f → %.1f MiB | %.1f → %.1f MiB | %.1f → %.1f MiB | %.0f / %.0f / %.0f B | %.2f | %.1f | %.1f s |\n",
		r.Streams, r.Conns, r.RSSBeforeMiB, r.RSSMiB, r.HeapBeforeMiB, r.HeapMiB, r.StackBeforeMiB, r.StackMiB,
		r.RSSPerStream, r.HeapPerStream, r.StackPerStream, r.GoroutinesPerStream, r.PollsPerInterval, r.OpenSeconds)
	fmt.Fprintf(w, "\nThe floor (tools/bench/floor: a grpc-go server stream with nothing above it, one message, no polls or heartbeats), as many streams: RSS %.1f → %.1f MiB, %.0f B a stream\n\n",
		r.FloorRSSBeforeMiB, r.FloorRSSMiB, r.FloorRSSPerStream)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-4s %s: %s (target %s)\n", t.Status, t.Name, t.Measured, t.Target)
	}
}
