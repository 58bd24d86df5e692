package main

// The degradation run (-degrade): how the facade answers while the
// upstream fails a share p of its calls (random 503 with "retry": true,
// through the emulator's failure-rate knob), and how fast it comes back
// after a hard outage. See docs/adr/0002-proportional-degradation.md.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// degradeLatency is the emulator's added latency on every route in the
// degradation run, that of the measurement in ADR 0002 (--latency 2ms).
const degradeLatency = 2 * time.Millisecond

// outcome is how one call ended, as the degradation run counts it.
type outcome int

const (
	outcomeOK          outcome = iota
	outcomeShed                // UNAVAILABLE with RetryInfo, refused by the facade itself
	outcomeUnavailable         // UNAVAILABLE with RetryInfo, after upstream calls
	outcomeDeadline            // DEADLINE_EXCEEDED
	outcomeOther               // anything else: a target miss
)

// classify sorts a call's error into an outcome.
func classify(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return outcomeDeadline
	case codes.Unavailable:
	default:
		return outcomeOther
	}
	var why string
	retry := false
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			why = d.GetReason()
		case *errdetails.RetryInfo:
			retry = true
		}
	}
	switch {
	case !retry:
		return outcomeOther
	case why == accessv1.ErrorReason_UPSTREAM_THROTTLED.String(), why == accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String():
		// Refused locally by the throttle or the circuit breaker.
		return outcomeShed
	default:
		return outcomeUnavailable
	}
}

// call is one classified call.
type call struct {
	start   time.Duration // since the run started
	lat     time.Duration
	outcome outcome
}

// runClassified runs n closed-loop workers calling fn until stop is
// closed or d passed, and returns every call.
func runClassified(ctx context.Context, n int, d time.Duration, fn callFunc) ([]call, time.Duration) {
	var wg sync.WaitGroup
	perW := make([][]call, n)
	start := time.Now()
	end := start.Add(d)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cs []call
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				lat, err := callOnce(ctx, fn, w, t0)
				cs = append(cs, call{start: t0.Sub(start), lat: lat, outcome: classify(err)})
			}
			perW[w] = cs
		}()
	}
	wg.Wait()
	var all []call
	for _, cs := range perW {
		all = append(all, cs...)
	}
	slices.SortFunc(all, func(a, b call) int { return int(a.start - b.start) })
	return all, time.Since(start)
}

// DegradeCell is one RPC at one upstream failure rate.
type DegradeCell struct {
	RPC             string  `json:"rpc"`
	FailureRate     float64 `json:"failure_rate"`
	Calls           int64   `json:"calls"`
	OK              int64   `json:"ok"`
	Shed            int64   `json:"refused_locally"`
	ShedFast        int64   `json:"refused_locally_within_100ms"`
	Unavailable     int64   `json:"unavailable_after_upstream"`
	Deadline        int64   `json:"deadline_exceeded"`
	Other           int64   `json:"other"`
	SuccessRatio    float64 `json:"success_ratio"`
	UpstreamCalls   int64   `json:"upstream_calls"`
	UpstreamPerCall float64 `json:"upstream_calls_per_call"`
	// P50 and P99 are the latencies of the calls that succeeded.
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Seconds float64       `json:"seconds"`
}

// RecoveryResult is the hard-outage run.
type RecoveryResult struct {
	Outage         string        `json:"outage"`
	OutageCalls    int64         `json:"outage_calls"`
	OutageShed     int64         `json:"outage_refused_locally"`
	Other          int64         `json:"other"`
	Recovered      bool          `json:"recovered"`
	RecoveryTime   time.Duration `json:"recovery_ns"`
	SuccessPerBin  []float64     `json:"success_per_bin_after_outage"`
	BinWidth       time.Duration `json:"bin_ns"`
	UpstreamDuring int64         `json:"upstream_calls_during_outage"`
}

// DegradeReport is the degradation run's result (-degrade -out).
type DegradeReport struct {
	Time     time.Time      `json:"time"`
	Machine  Machine        `json:"machine"`
	Settings DegradeSetting `json:"settings"`
	Cells    []DegradeCell  `json:"cells"`
	Recovery RecoveryResult `json:"recovery"`
	Targets  []Target       `json:"targets"`
}

// DegradeSetting are the degradation run's parameters.
type DegradeSetting struct {
	Duration   string    `json:"duration_per_cell"`
	InFlight   int       `json:"inflight"`
	Rates      []float64 `json:"failure_rates"`
	Outage     string    `json:"outage"`
	Latency    string    `json:"emulator_latency"`
	FacadeArgs []string  `json:"facade_args"`
}

// degradeRPC is one of the two RPCs the run drives.
type degradeRPC struct {
	name  string
	route string
	call  callFunc
}

// degrade runs the degradation run on a fresh emulator and facade.
func (b *bench) degrade(ctx context.Context) (*DegradeReport, error) {
	o := b.opts
	rep := &DegradeReport{
		Time:    time.Now(),
		Machine: describeMachine(ctx, b.clkTck, b.nofile),
		Settings: DegradeSetting{
			Duration: o.degradeDuration.String(), InFlight: o.degradeInflight, Rates: o.degradeRates,
			Outage: o.degradeOutage.String(), Latency: degradeLatency.String(),
		},
	}
	p, err := b.startPair(ctx, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	rep.Settings.FacadeArgs = p.facade.args
	if err := p.admin.setLatency(ctx, "", degradeLatency); err != nil {
		return nil, err
	}
	cl, err := newClients(p.facade, p.emu.baseURL, "", "", o.grpcConns, o.degradeInflight)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	modes := cl.modes()
	rpcs := []degradeRPC{
		{"GetServiceStatus", modes[1].route, modes[1].call},
		{"GenerateOTP", modes[3].route, modes[3].call},
	}

	for _, rate := range o.degradeRates {
		for _, rpc := range rpcs {
			c, err := b.degradeCell(ctx, p, rpc, rate)
			if err != nil {
				return nil, err
			}
			rep.Cells = append(rep.Cells, c)
		}
	}
	if rep.Recovery, err = b.recovery(ctx, p, rpcs); err != nil {
		return nil, err
	}
	rep.Targets = degradeTargets(rep)
	return rep, nil
}

// degradeCell measures rpc with a share rate of its upstream calls
// failing.
func (b *bench) degradeCell(ctx context.Context, p *pair, rpc degradeRPC, rate float64) (DegradeCell, error) {
	if err := p.admin.setFailureRate(ctx, rpc.route, rate); err != nil {
		return DegradeCell{}, err
	}
	defer p.admin.setFailureRate(context.WithoutCancel(ctx), rpc.route, 0) //nolint:errcheck // best effort; the next cell sets its own
	before, err := p.admin.counters(ctx)
	if err != nil {
		return DegradeCell{}, err
	}
	calls, elapsed := runClassified(ctx, b.opts.degradeInflight, b.opts.degradeDuration, rpc.call)
	after, err := p.admin.counters(ctx)
	if err != nil {
		return DegradeCell{}, err
	}
	if err := ctx.Err(); err != nil {
		return DegradeCell{}, err
	}
	c := tally(calls)
	c.RPC, c.FailureRate, c.Seconds = rpc.name, rate, elapsed.Seconds()
	c.UpstreamCalls = after[rpc.route] - before[rpc.route]
	if c.Calls > 0 {
		c.UpstreamPerCall = float64(c.UpstreamCalls) / float64(c.Calls)
	}
	b.logf("degrade %-16s p=%-4v: %6d calls, %6.2f%% OK, %6d refused locally, %.2f upstream/call, OK p50 %s p99 %s, other %d",
		rpc.name, rate, c.Calls, 100*c.SuccessRatio, c.Shed, c.UpstreamPerCall, fmtDur(c.P50), fmtDur(c.P99), c.Other)
	return c, nil
}

// tally counts calls by outcome and takes the latency percentiles of the
// calls that succeeded: a fast refusal is not a fast answer, and counting
// refusals would make an outage look quick.
func tally(calls []call) DegradeCell {
	var c DegradeCell
	var okLat []time.Duration
	for _, k := range calls {
		c.Calls++
		switch k.outcome {
		case outcomeOK:
			c.OK++
			okLat = append(okLat, k.lat)
		case outcomeShed:
			c.Shed++
			if k.lat <= 100*time.Millisecond {
				c.ShedFast++
			}
		case outcomeUnavailable:
			c.Unavailable++
		case outcomeDeadline:
			c.Deadline++
		default:
			c.Other++
		}
	}
	slices.Sort(okLat)
	c.P50, c.P99 = percentile(okLat, 0.5), percentile(okLat, 0.99)
	if c.Calls > 0 {
		c.SuccessRatio = float64(c.OK) / float64(c.Calls)
	}
	return c
}

// recoveryBin is the width of the success-ratio bins after the outage.
const recoveryBin = 250 * time.Millisecond

// recovery runs both RPCs (half the workers each) through a healthy
// second, then the upstream hard down (every status and OTP call fails
// with 503) for the outage, then healthy again, and measures how long
// after the upstream came back a bin of calls first succeeds at 95%.
func (b *bench) recovery(ctx context.Context, p *pair, rpcs []degradeRPC) (RecoveryResult, error) {
	o := b.opts
	res := RecoveryResult{Outage: o.degradeOutage.String(), BinWidth: recoveryBin}
	const healthyBefore = time.Second
	afterLimit := max(2*time.Second, 2*o.degradeOutage)
	mixed := func(ctx context.Context, w int) error { return rpcs[w%len(rpcs)].call(ctx, w/len(rpcs)) }

	type mark struct {
		at       time.Duration
		counters map[string]int64
	}
	marks := make(chan mark, 2)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		defer close(errc)
		step := func(at time.Duration, rate float64) error {
			if err := sleep(ctx, time.Until(start.Add(at))); err != nil {
				return err
			}
			for _, rpc := range rpcs {
				if err := p.admin.setFailureRate(ctx, rpc.route, rate); err != nil {
					return err
				}
			}
			c, err := p.admin.counters(ctx)
			if err != nil {
				return err
			}
			marks <- mark{time.Since(start), c}
			return nil
		}
		if err := step(healthyBefore, 1); err != nil {
			errc <- err
			return
		}
		errc <- step(healthyBefore+o.degradeOutage, 0)
	}()
	calls, _ := runClassified(ctx, o.degradeInflight, healthyBefore+o.degradeOutage+afterLimit, mixed)
	if err := <-errc; err != nil {
		return res, err
	}
	down, up := <-marks, <-marks
	for _, rpc := range rpcs {
		res.UpstreamDuring += up.counters[rpc.route] - down.counters[rpc.route]
	}

	var bins []struct{ ok, all int }
	for _, k := range calls {
		if k.outcome == outcomeOther {
			res.Other++
		}
		switch {
		case k.start >= down.at && k.start < up.at:
			res.OutageCalls++
			if k.outcome == outcomeShed {
				res.OutageShed++
			}
		case k.start >= up.at:
			i := int((k.start - up.at) / recoveryBin)
			for len(bins) <= i {
				bins = append(bins, struct{ ok, all int }{})
			}
			bins[i].all++
			if k.outcome == outcomeOK {
				bins[i].ok++
			}
		}
	}
	for i, bin := range bins {
		ratio := 0.0
		if bin.all > 0 {
			ratio = float64(bin.ok) / float64(bin.all)
		}
		res.SuccessPerBin = append(res.SuccessPerBin, ratio)
		if !res.Recovered && bin.all > 0 && ratio >= 0.95 {
			res.Recovered, res.RecoveryTime = true, time.Duration(i+1)*recoveryBin
		}
	}
	b.logf("recovery: outage %s: %d calls, %d refused locally, %d upstream calls; recovered %v after %s",
		o.degradeOutage, res.OutageCalls, res.OutageShed, res.UpstreamDuring, res.Recovered, fmtDur(res.RecoveryTime))
	return res, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// degradeTargets checks the targets of ADR 0002.
func degradeTargets(rep *DegradeReport) []Target {
	var ts []Target
	status := func(pass bool) string {
		if pass {
			return "PASS"
		}
		return "MISS"
	}
	minOK := map[float64]float64{0.1: 0.99, 0.2: 0.97, 0.3: 0.90}
	maxRatio, other := 0.0, int64(0)
	for _, c := range rep.Cells {
		other += c.Other
		if c.FailureRate < 1 {
			maxRatio = max(maxRatio, c.UpstreamPerCall)
		}
		if want, ok := minOK[c.FailureRate]; ok {
			ts = append(ts, Target{
				Name: fmt.Sprintf("%s at p=%v", c.RPC, c.FailureRate), Target: fmt.Sprintf(">= %.0f%% OK", 100*want),
				Measured: fmt.Sprintf("%.2f%%", 100*c.SuccessRatio), Value: c.SuccessRatio, Limit: want, Status: status(c.SuccessRatio >= want),
			})
		}
		if c.FailureRate == 1 {
			shed := float64(c.ShedFast) / float64(max(c.Calls, 1))
			ts = append(ts, Target{
				Name: fmt.Sprintf("%s at p=1", c.RPC), Target: ">= 90% refused locally within 100ms",
				Measured: fmt.Sprintf("%.2f%%", 100*shed), Value: shed, Limit: 0.9, Status: status(shed >= 0.9),
			})
		}
	}
	ts = append(ts, Target{
		Name: "upstream calls per call, p < 1", Target: "<= 1.3", Measured: fmt.Sprintf("%.3f (max over cells)", maxRatio),
		Value: maxRatio, Limit: 1.3, Status: status(maxRatio <= 1.3),
	})
	r := rep.Recovery
	ts = append(ts, Target{
		Name: "recovery after " + r.Outage + " hard down", Target: ">= 95% OK within 15s",
		Measured: recoveryText(r), Value: r.RecoveryTime.Seconds(), Limit: 15,
		Status: status(r.Recovered && r.RecoveryTime <= 15*time.Second),
	})
	other += r.Other
	ts = append(ts, Target{
		Name: "answers", Target: "only OK, UNAVAILABLE with RetryInfo, DEADLINE_EXCEEDED",
		Measured: fmt.Sprintf("%d others", other), Value: float64(other), Status: status(other == 0),
	})
	return ts
}

func recoveryText(r RecoveryResult) string {
	if !r.Recovered {
		return "not recovered"
	}
	return fmt.Sprintf("%s (bins of %s)", fmtDur(r.RecoveryTime), fmtDur(r.BinWidth))
}

// printDegradeReport prints the degradation table and the targets.
func printDegradeReport(w io.Writer, rep *DegradeReport) {
	m := rep.Machine
	fmt.Fprintf(w, "\nradkit-access-bench -degrade  %s\n", rep.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d cores, GOMAXPROCS %d, %s, load avg at start %s\n", m.CPU, m.Cores, m.GOMAXPROCS, m.GoVersion, m.LoadAvg)
	fmt.Fprintf(w, "per cell: %s at %d in flight; emulator latency %s; failures: random 503 {\"retry\": true} on the RPC's route\n",
		rep.Settings.Duration, rep.Settings.InFlight, rep.Settings.Latency)
	fmt.Fprintf(w, "facade: %s\n\n", strings.Join(rep.Settings.FacadeArgs, " "))
	tw := newTable(w, "RPC\tp\tcalls\tOK %\tupstream/call\tOK p50\tOK p99\trefused locally\tUNAVAILABLE after upstream\tDEADLINE\tother\t")
	for _, c := range rep.Cells {
		p50, p99 := "-", "-" // no call succeeded: no latency to show
		if c.OK > 0 {
			p50, p99 = fmtDur(c.P50), fmtDur(c.P99)
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%.2f\t%.3f\t%s\t%s\t%d\t%d\t%d\t%d\t\n", c.RPC, c.FailureRate, c.Calls, 100*c.SuccessRatio,
			c.UpstreamPerCall, p50, p99, c.Shed, c.Unavailable, c.Deadline, c.Other)
	}
	tw.Flush()
	r := rep.Recovery
	fmt.Fprintf(w, "\nrecovery: upstream hard down (every status and OTP call 503) for %s, both RPCs at %d in flight: %d calls during the outage, %d refused locally, %d upstream calls; ",
		r.Outage, rep.Settings.InFlight, r.OutageCalls, r.OutageShed, r.UpstreamDuring)
	fmt.Fprintf(w, "after it: %s\n", recoveryText(r))
	fmt.Fprint(w, "OK % per bin after the outage:")
	for i, v := range r.SuccessPerBin {
		if i >= 40 {
			fmt.Fprint(w, " ...")
			break
		}
		fmt.Fprintf(w, " %.0f", 100*v)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Status, t.Name, t.Target, t.Measured)
	}
	tw.Flush()
}

// setFailureRate makes a share rate of route's calls fail with 503 and
// "retry": true (0 turns failures off).
func (a *emuAdmin) setFailureRate(ctx context.Context, route string, rate float64) error {
	body := fmt.Sprintf(`{"rate": %v, "fault": {"status": 503, "retry": true, "details": "injected by radkit-access-bench"}}`, rate)
	return a.put(ctx, "set failure rate", "/failure-rate", route, body)
}

// errNoCells is returned when -degrade-rates is empty.
var errNoCells = errors.New("-degrade-rates: want at least one rate")
