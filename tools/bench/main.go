// Command radkit-access-bench measures the facade against the emulator, as
// separate processes on loopback, and checks the performance targets.
//
//	go -C tools/bench run . [-duration 5s] [-inflight 1,16,64,256] [-out bench.json] [-facade-flags "..."]
//	go -C tools/bench run . -degrade [-degrade-duration 5s] [-degrade-rates 0,0.05,...,1] [-degrade-outage 10s]
//	go -C tools/bench run . -upstream-tls [-duration 5s] [-callers 1000]
//	go -C tools/bench run . -watch 10000
//	go -C tools/bench run . -request-ids 1m [-request-id-callers 10] [-request-id-inflight 64] [-request-id-fail-rate 0.05]
//
// It builds the emulator and the facade the way the Dockerfile does, starts
// them on free 127.0.0.1 ports, and at each in-flight level (closed-loop
// workers) measures, side by side:
//
//	A  GET /public/admin/service/status/{id} straight to the emulator: the limit
//	B  GetServiceStatus over gRPC through the facade
//	C  GET /v1/services/{id}/status through the facade's HTTP gateway
//	D  GenerateOTP over gRPC through the facade
//	Bs GetServiceStatus over gRPC through the facade, spread over 64 seeded services
//	M  GetServiceStatus over gRPC through the floor (floor/), Mo GenerateOTP
//
// in -repeat round-robin rounds per level, and compares B, Bs, C and D with
// the floor (floor.go): the cost of the facade against a bare pass-through.
// Then it runs the targets (token fetches and latency across token expiry
// with 1,000 callers, RSS with 1,000 calls in flight, status coalescing),
// prints a table and the targets, and writes every figure as JSON. See
// docs/performance.md for the method and the latest results.
//
// With -degrade it runs the degradation run instead (degrade.go): success,
// upstream calls per call, latency and local refusals of GetServiceStatus
// and GenerateOTP at each upstream failure rate, then the recovery from a
// hard outage.
//
// With -request-ids it runs mode R instead (requestids.go): GenerateOTP
// with a fresh request_id per call at full speed from several
// authenticated callers, reading the facade's heap, RSS and request_id
// metrics between rounds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "radkit-access-bench:", err)
		}
		stop()
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	inflight    []int
	repeat      int
	out         string
	facadeFlags []string
	grpcConns   int
	facadeBin   string
	emulatorBin string
	callers     int
	noTargets   bool
	modes       []string // -modes: the grid's mode keys to run; empty runs them all
	floorPprof  string   // -floor-pprof: the floor's net/http/pprof address, or ""
	production  bool     // -production: the grid's facade authenticates callers and limits rates
	tracing     bool     // -tracing: the grid's facade exports spans (production.go)
	facadeEnv   []string // -facade-env: more environment for every facade

	degrade         bool
	degradeDuration time.Duration
	degradeInflight int
	degradeRates    []float64
	degradeOutage   time.Duration

	// Mode R (requestids.go): instead of the grid and the targets.
	requestIDs        time.Duration
	requestIDCallers  int
	requestIDInflight int
	requestIDFailRate float64

	// Mode U (tlsrun.go): plain HTTP/1.1 against TLS/h2 to the upstream.
	upstreamTLS bool

	// Mode W (watchrun.go): this many watch streams held open, or 0.
	watch int
}

// gridModes returns the keys of the grid's modes (load.go, floor.go), for
// -modes.
func gridModes() []string { return []string{"A", "B", "C", "D", "H", "Bs", "M", "Mo"} }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("radkit-access-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	inflight := fs.String("inflight", "1,16,64,256", "comma-separated in-flight levels (closed-loop workers)")
	facadeFlags := fs.String("facade-flags", "", "extra flags for the facade, space-separated (e.g. \"--log-level warn\")")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per cell")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up per cell")
	fs.IntVar(&o.repeat, "repeat", 3, "round-robin rounds of every mode at every in-flight level; ratios are medians of the rounds")
	fs.StringVar(&o.out, "out", "bench.json", "JSON results file (\"\" for none)")
	fs.IntVar(&o.grpcConns, "grpc-conns", 1, "gRPC client connections to the facade, shared round-robin by the workers")
	fs.StringVar(&o.facadeBin, "facade-bin", "", "facade binary to use instead of building one")
	fs.StringVar(&o.emulatorBin, "emulator-bin", "", "emulator binary to use instead of building one")
	fs.IntVar(&o.callers, "callers", 1000, "concurrent callers in the token, RSS and coalescing targets")
	fs.BoolVar(&o.noTargets, "no-targets", false, "measure the table only, skip the 1,000-caller targets")
	fs.StringVar(&o.floorPprof, "floor-pprof", "", "serve the floor's net/http/pprof on this address (e.g. 127.0.0.1:6061), to profile it as the facade's --pprof does")
	fs.BoolVar(&o.production, "production", false, "run the grid's facade as a production deployment does: caller authentication with a key on every call, and the rate limiter on at a rate the run never reaches (metrics and JSON logs at info are always on)")
	fs.BoolVar(&o.tracing, "tracing", false, "install a tracer in the grid's facade: every span exported over OTLP/HTTP to a sink in the harness")
	facadeEnv := fs.String("facade-env", "", "extra environment for the facade, space-separated KEY=VALUE pairs (e.g. \"GOGC=200\")")
	modes := fs.String("modes", "", "comma-separated mode keys to run in the grid (e.g. \"D,Mo,Bs,M\"); empty runs every mode")
	fs.BoolVar(&o.degrade, "degrade", false, "run the degradation run instead: upstream failure rates, then a hard outage and recovery")
	fs.DurationVar(&o.degradeDuration, "degrade-duration", 5*time.Second, "-degrade: measured time per RPC and failure rate")
	fs.IntVar(&o.degradeInflight, "degrade-inflight", 32, "-degrade: calls in flight")
	degradeRates := fs.String("degrade-rates", "0,0.05,0.1,0.2,0.3,0.5,1", "-degrade: comma-separated upstream failure rates")
	fs.DurationVar(&o.degradeOutage, "degrade-outage", 10*time.Second, "-degrade: how long the upstream is hard down before the recovery is timed")
	fs.DurationVar(&o.requestIDs, "request-ids", 0, "run mode R for this long instead of the grid and the targets: GenerateOTP with a fresh request_id per call at full speed, then the facade's heap, RSS and request_id refusals (e.g. 1m)")
	fs.IntVar(&o.requestIDCallers, "request-id-callers", 10, "mode R: authenticated callers sharing the load, each with its own request_id quota")
	fs.IntVar(&o.requestIDInflight, "request-id-inflight", 64, "mode R: calls in flight (closed-loop workers)")
	fs.Float64Var(&o.requestIDFailRate, "request-id-fail-rate", 0.05, "mode R: fraction of OTP calls the emulator fails (503)")
	fs.BoolVar(&o.upstreamTLS, "upstream-tls", false, "run mode U instead of the grid and the targets: the facade against the emulator over plain HTTP/1.1 and over TLS with HTTP/2, side by side (throughput, CPU, RSS with -callers OTP calls held, upstream connections)")
	fs.IntVar(&o.watch, "watch", 0, "run mode W instead of the grid and the targets: open this many WatchServiceStatus streams (e.g. 10000) and report the facade's RSS, heap and stacks per stream and the upstream polls, then the floor's RSS with as many open")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*degradeRates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r < 0 || r > 1 {
			return o, fmt.Errorf("-degrade-rates %q: want rates in [0, 1]", *degradeRates)
		}
		o.degradeRates = append(o.degradeRates, r)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, s := range strings.Split(*inflight, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-inflight %q: want positive integers", *inflight)
		}
		o.inflight = append(o.inflight, n)
	}
	slices.Sort(o.inflight)
	o.inflight = slices.Compact(o.inflight)
	o.facadeFlags = strings.Fields(*facadeFlags)
	o.facadeEnv = strings.Fields(*facadeEnv)
	for _, kv := range o.facadeEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return o, fmt.Errorf("-facade-env %q: want KEY=VALUE pairs", *facadeEnv)
		}
	}
	for _, k := range strings.Split(*modes, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if !slices.Contains(gridModes(), k) {
				return o, fmt.Errorf("-modes %q: %q is not one of %s", *modes, k, strings.Join(gridModes(), ", "))
			}
			o.modes = append(o.modes, k)
		}
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("-duration must be positive and -warmup not negative")
	case o.repeat < 1:
		return o, errors.New("-repeat must be at least 1")
	case o.grpcConns < 1:
		return o, errors.New("-grpc-conns must be at least 1")
	case o.watch < 0:
		return o, errors.New("-watch must be 0 (off) or a number of streams")
	case o.callers < 1:
		return o, errors.New("-callers must be at least 1")
	case o.requestIDs < 0 || (o.requestIDs > 0 && o.requestIDs < requestIDRounds*time.Second):
		return o, fmt.Errorf("-request-ids must be 0 (off) or at least %ds", requestIDRounds)
	case o.requestIDs > 0 && o.degrade:
		return o, errors.New("-request-ids and -degrade are runs of their own: choose one")
	case o.requestIDCallers < 1 || o.requestIDInflight < 1:
		return o, errors.New("-request-id-callers and -request-id-inflight must be at least 1")
	case o.requestIDFailRate < 0 || o.requestIDFailRate >= 1:
		return o, errors.New("-request-id-fail-rate must be in [0, 1)")
	case (o.facadeBin == "") != (o.emulatorBin == ""):
		return o, errors.New("-facade-bin and -emulator-bin go together")
	case o.degradeDuration <= 0 || o.degradeOutage <= 0 || o.degradeInflight < 2:
		return o, errors.New("-degrade-duration and -degrade-outage must be positive, -degrade-inflight at least 2")
	case len(o.degradeRates) == 0:
		return o, errNoCells
	}
	return o, nil
}

// run is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{opts: o, log: stderr, clkTck: clockTicks(ctx)}
	if b.nofile, err = raiseFileLimit(); err != nil {
		fmt.Fprintln(stderr, "warning:", err)
	}
	if need := uint64(3*o.callers + 512); b.nofile < need {
		fmt.Fprintf(stderr, "warning: open-file limit %d is below %d: the 1,000-caller targets may fail with EMFILE\n", b.nofile, need)
	}
	tmp, err := os.MkdirTemp("", "radkit-access-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	b.tmp = tmp
	defer b.stopAll()

	b.facadeBin, b.emulatorBin = o.facadeBin, o.emulatorBin
	if b.facadeBin == "" {
		b.logf("building the facade and the emulator (CGO_ENABLED=0 -trimpath -ldflags \"-s -w\")")
		if b.facadeBin, b.emulatorBin, err = buildBinaries(ctx, tmp); err != nil {
			return err
		}
	}
	if o.watch > 0 {
		r, err := b.watchRun(ctx)
		if err != nil {
			return err
		}
		b.stopAll()
		printWatchRun(stdout, r)
		return writeResults(stdout, o.out, r)
	}
	if o.upstreamTLS {
		r, err := b.upstreamTLS(ctx)
		if err != nil {
			return err
		}
		b.stopAll()
		printUpstreamTLSRun(stdout, r)
		return writeResults(stdout, o.out, r)
	}
	if o.requestIDs > 0 {
		r, err := b.requestIDLoad(ctx)
		if err != nil {
			return err
		}
		b.stopAll()
		printRequestIDRun(stdout, r)
		return writeResults(stdout, o.out, &Report{Time: time.Now(), Machine: describeMachine(ctx, b.clkTck, b.nofile), RequestIDs: r})
	}
	if o.degrade {
		rep, err := b.degrade(ctx)
		if err != nil {
			return err
		}
		b.stopAll()
		printDegradeReport(stdout, rep)
		return writeResults(stdout, o.out, rep)
	}
	rep, err := b.measure(ctx)
	if err != nil {
		return err
	}
	b.stopAll()
	printReport(stdout, rep)
	return writeResults(stdout, o.out, rep)
}

// writeResults writes rep as JSON to path, unless path is empty.
func writeResults(stdout io.Writer, path string, rep any) error {
	if path == "" {
		return nil
	}
	if err := writeJSON(path, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nJSON written to %s\n", path)
	return nil
}
