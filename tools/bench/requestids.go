package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// RequestIDRun is mode R: GenerateOTP with a fresh request_id per call, at
// full speed, from several authenticated callers, with the facade's memory
// and idempotency metrics read between rounds. Caller 0 is
// greedy: half the workers call as it, the other half are spread over the
// other callers, so that it reaches its request_id quota first and the
// table shows whether the others are still served.
type RequestIDRun struct {
	Duration    string          `json:"duration"`
	Callers     int             `json:"callers"`
	InFlight    int             `json:"inflight"`
	FailRate    float64         `json:"emulator_fail_rate"`
	FacadeArgs  []string        `json:"facade_args"`
	Rounds      []RequestIDSnap `json:"rounds"`
	HeapPerKey  float64         `json:"live_heap_bytes_per_remembered_key"`
	FirstErrors []string        `json:"first_errors,omitempty"`
}

// RequestIDSnap is what the facade's /metrics said after a round, and what
// the callers saw during it.
type RequestIDSnap struct {
	After          string  `json:"after"`
	Seconds        float64 `json:"seconds"`
	GreedyAccepted int64   `json:"greedy_accepted"`
	GreedyRefused  int64   `json:"greedy_refused_too_many_request_ids"`
	OthersAccepted int64   `json:"others_accepted"`
	OthersRefused  int64   `json:"others_refused_too_many_request_ids"`
	OtherErrors    int64   `json:"other_errors"`
	Remembered     float64 `json:"remembered_keys"`
	LargestCaller  float64 `json:"largest_caller_keys"`
	RefusedCaller  float64 `json:"refusals_caller_quota_total"`
	RefusedFull    float64 `json:"refusals_store_full_total"`
	HeapInuseMiB   float64 `json:"heap_inuse_mib"`
	LiveHeapMiB    float64 `json:"live_heap_at_last_gc_mib"`
	RSSMiB         float64 `json:"rss_mib"`
	CallsPerSecond float64 `json:"calls_per_second"`
}

// requestIDRounds is how many rounds the run is cut into.
const requestIDRounds = 4

// requestIDLoad runs mode R on a fresh emulator (failing a fraction of OTP
// calls, as a real upstream sometimes does) and a fresh facade with caller
// keys, so that each caller has its own quota of request_ids.
func (b *bench) requestIDLoad(ctx context.Context) (*RequestIDRun, error) {
	o := b.opts
	run := &RequestIDRun{Duration: o.requestIDs.String(), Callers: o.requestIDCallers, InFlight: o.requestIDInflight, FailRate: o.requestIDFailRate}
	keys, keysFile, err := writeCallerKeys(b.tmp, o.requestIDCallers)
	if err != nil {
		return nil, err
	}
	var emuFlags []string
	if o.requestIDFailRate > 0 {
		emuFlags = []string{"--fail-rate", strconv.FormatFloat(o.requestIDFailRate, 'f', -1, 64), "--fail-routes", routeOTP}
	}
	p, err := b.startPair(ctx, emuFlags, []string{"--caller-keys-file", keysFile, "--log-level", "warn"}, nil)
	if err != nil {
		return nil, err
	}
	defer b.stop(p.emu.proc)
	defer b.stop(p.facade.proc)
	run.FacadeArgs = p.facade.args

	conn, err := grpc.NewClient(p.facade.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial facade: %w", err)
	}
	defer conn.Close()
	client := accessv1.NewAccessServiceClient(conn)
	metricsURL := "http://" + p.facade.httpAddr + "/metrics"
	hc := &http.Client{Timeout: 10 * time.Second}

	snap := func(after string, elapsed time.Duration, greedy, others *requestIDCounts) (RequestIDSnap, error) {
		m, err := scrape(ctx, hc, metricsURL)
		if err != nil {
			return RequestIDSnap{}, err
		}
		st, err := readProcStat(p.facade.pid(), b.clkTck)
		if err != nil {
			return RequestIDSnap{}, err
		}
		gogc := m["go_gc_gogc_percent"]
		if gogc <= 0 {
			gogc = 100
		}
		s := RequestIDSnap{
			After: after, Seconds: elapsed.Seconds(),
			Remembered:    m[`radkit_idempotency_keys{state="remembered"}`],
			LargestCaller: m["radkit_idempotency_largest_caller_keys"],
			RefusedCaller: m[`radkit_idempotency_refusals_total{reason="caller_quota"}`],
			RefusedFull:   m[`radkit_idempotency_refusals_total{reason="store_full"}`],
			HeapInuseMiB:  m["go_memstats_heap_inuse_bytes"] / (1 << 20),
			// The heap goal is the live heap after the last GC times
			// (1 + GOGC/100): the live heap, read from outside.
			LiveHeapMiB: m["go_memstats_next_gc_bytes"] / (1 + gogc/100) / (1 << 20),
			RSSMiB:      mib(st.rss),
		}
		if greedy != nil {
			s.GreedyAccepted, s.GreedyRefused = greedy.ok.Load(), greedy.refused.Load()
			s.OthersAccepted, s.OthersRefused = others.ok.Load(), others.refused.Load()
			s.OtherErrors = greedy.other.Load() + others.other.Load()
			if elapsed > 0 {
				s.CallsPerSecond = float64(s.GreedyAccepted+s.GreedyRefused+s.OthersAccepted+s.OthersRefused+s.OtherErrors) / elapsed.Seconds()
			}
		}
		return s, nil
	}

	start, err := snap("start", 0, nil, nil)
	if err != nil {
		return nil, err
	}
	run.Rounds = append(run.Rounds, start)
	b.logf("R: %d callers, %d in flight, fresh request_id per call, %s in %d rounds", o.requestIDCallers, o.requestIDInflight, o.requestIDs, requestIDRounds)
	var firstErrs sync.Map
	var seq atomic.Uint64
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	round := o.requestIDs / requestIDRounds
	for r := 1; r <= requestIDRounds; r++ {
		var greedy, others requestIDCounts
		t0 := time.Now()
		runLoad(ctx, o.requestIDInflight, round, func(ctx context.Context, w int) error {
			n := seq.Add(1)
			req := &accessv1.GenerateOTPRequest{
				Owner: "bench@example.com", EndpointId: "bench-endpoint", Description: "radkit-access-bench R",
				RequestId: fmt.Sprintf("%x-%04x-4%03x-8%03x-%012x", runID, w, n>>36&0xfff, n>>24&0xfff, n&0xffffffffffff),
			}
			caller, c := 0, &greedy
			if w%2 == 1 && len(keys) > 1 {
				caller, c = 1+(w/2)%(len(keys)-1), &others
			}
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+keys[caller])
			_, err := client.GenerateOTP(ctx, req)
			c.count(err, &firstErrs)
			return err
		})
		s, err := snap(fmt.Sprintf("round %d", r), time.Since(t0), &greedy, &others)
		if err != nil {
			return nil, err
		}
		b.logf("R round %d: %6.0f calls/s; greedy caller %d accepted, %d TOO_MANY_REQUEST_IDS; others %d accepted, %d TOO_MANY_REQUEST_IDS; %d other errors; remembered %.0f (largest caller %.0f), heap in use %.1f MiB, live %.1f MiB, RSS %.1f MiB",
			r, s.CallsPerSecond, s.GreedyAccepted, s.GreedyRefused, s.OthersAccepted, s.OthersRefused, s.OtherErrors, s.Remembered, s.LargestCaller, s.HeapInuseMiB, s.LiveHeapMiB, s.RSSMiB)
		run.Rounds = append(run.Rounds, s)
	}
	last := run.Rounds[len(run.Rounds)-1]
	if last.Remembered > 0 {
		run.HeapPerKey = (last.LiveHeapMiB - start.LiveHeapMiB) * (1 << 20) / last.Remembered
	}
	firstErrs.Range(func(k, v any) bool {
		run.FirstErrors = append(run.FirstErrors, k.(string)+": "+v.(string))
		return true
	})
	sort.Strings(run.FirstErrors)
	return run, nil
}

// requestIDCounts counts the outcomes of one round's calls.
type requestIDCounts struct{ ok, refused, other atomic.Int64 }

// count records err's outcome, and the first error of each code.
func (c *requestIDCounts) count(err error, first *sync.Map) {
	if err == nil {
		c.ok.Add(1)
		return
	}
	st := status.Convert(err)
	if st.Code() == codes.ResourceExhausted {
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String() {
				c.refused.Add(1)
				first.LoadOrStore(st.Code().String()+" "+info.GetReason(), st.Message())
				return
			}
		}
	}
	c.other.Add(1)
	first.LoadOrStore(st.Code().String(), st.Message())
}

// writeCallerKeys makes n caller API keys and the keys file the facade
// reads (one "name sha256-hex" per line).
func writeCallerKeys(dir string, n int) (keys []string, file string, err error) {
	var sb strings.Builder
	for i := range n {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return nil, "", fmt.Errorf("caller key: %w", err)
		}
		key := hex.EncodeToString(raw)
		sum := sha256.Sum256([]byte(key))
		fmt.Fprintf(&sb, "bench-caller-%d %s\n", i, hex.EncodeToString(sum[:]))
		keys = append(keys, key)
	}
	file = filepath.Join(dir, "callers.keys")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		return nil, "", fmt.Errorf("caller keys file: %w", err)
	}
	return keys, file, nil
}

// scrape reads a Prometheus text exposition into series name (with its
// labels, as printed) to value.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseMetrics parses a Prometheus text exposition (with
// prometheus/common's parser) into a map from each gauge's or counter's
// series, written as name{label="value",...} with the labels sorted, to
// its value.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m := make(map[string]float64)
	for name, mf := range families {
		for _, metric := range mf.GetMetric() {
			var v float64
			switch {
			case metric.GetGauge() != nil:
				v = metric.GetGauge().GetValue()
			case metric.GetCounter() != nil:
				v = metric.GetCounter().GetValue()
			case metric.GetUntyped() != nil:
				v = metric.GetUntyped().GetValue()
			default:
				continue // summaries and histograms are not read here
			}
			m[seriesName(name, metric.GetLabel())] = v
		}
	}
	if len(m) == 0 {
		return nil, errors.New("metrics: no samples")
	}
	return m, nil
}

// seriesName writes a series as name{label="value",...}, labels sorted by
// name, as the exposition format prints them.
func seriesName(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	pairs := make([]string, 0, len(labels))
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// printRequestIDRun prints mode R's table.
func printRequestIDRun(w io.Writer, r *RequestIDRun) {
	fmt.Fprintf(w, "R: GenerateOTP with a fresh request_id per call, %d callers, %d in flight, %s, emulator failing %.0f%% of OTP calls\n\n",
		r.Callers, r.InFlight, r.Duration, 100*r.FailRate)
	tw := newTable(w, "after\tcalls/s\tgreedy ok\tgreedy refused\tothers ok\tothers refused\tother errors\tremembered\tlargest caller\trefusals: caller quota\tstore full\theap in use MiB\tlive heap MiB\tRSS MiB\t")
	for _, s := range r.Rounds {
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t\n",
			s.After, s.CallsPerSecond, s.GreedyAccepted, s.GreedyRefused, s.OthersAccepted, s.OthersRefused, s.OtherErrors, s.Remembered, s.LargestCaller,
			s.RefusedCaller, s.RefusedFull, s.HeapInuseMiB, s.LiveHeapMiB, s.RSSMiB)
	}
	tw.Flush()
	if !math.IsNaN(r.HeapPerKey) && r.HeapPerKey > 0 {
		fmt.Fprintf(w, "\nlive heap per remembered request_id: %.0f bytes (growth of the live heap since start / keys remembered)\n", r.HeapPerKey)
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "first error: %s\n", e)
	}
}
