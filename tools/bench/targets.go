package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Target thresholds.
const (
	targetBOverA       = 0.7
	targetCOverA       = 0.6
	targetAddedP50     = 150 * time.Microsecond
	targetExpiryP99    = 1.5
	targetRSSMiB       = 60
	targetCoalescing   = 1.0 / 20
	tokenLifetime      = 3 * time.Second
	rssLatency         = 200 * time.Millisecond
	targetRunPerCaller = 3 * time.Second // pollers and RSS runs
	cacheTTL           = "1s"
)

// coalescing measures upstream status calls per client call for b.callers
// pollers of one service: on the grid's facade (as configured), and, when
// the build has --status-cache-ttl, on a second facade with a 1s TTL.
func (b *bench) coalescing(ctx context.Context, p *pair, cl *clients, supported bool) (*Coalescing, error) {
	co := &Coalescing{Callers: b.opts.callers, Supported: supported}
	var err error
	b.logf("coalescing: %d pollers of %s on the grid's facade", b.opts.callers, serviceID)
	if co.AsConfigured, err = b.pollers(ctx, p.admin, cl); err != nil {
		return nil, err
	}
	if !supported {
		return co, nil
	}
	b.logf("coalescing: %d pollers on a facade with --status-cache-ttl %s", b.opts.callers, cacheTTL)
	f, err := b.startFacade(ctx, p.emu, []string{"--status-cache-ttl", cacheTTL})
	if err != nil {
		return nil, err
	}
	defer b.stop(f.proc)
	cached, err := newClients(f, p.emu.baseURL, "", "", b.opts.grpcConns, b.opts.callers)
	if err != nil {
		return nil, err
	}
	defer cached.close()
	if co.WithCache, err = b.pollers(ctx, p.admin, cached); err != nil {
		return nil, err
	}
	return co, nil
}

// pollers runs b.callers GetServiceStatus callers through cl and counts the
// emulator's status calls.
func (b *bench) pollers(ctx context.Context, admin *emuAdmin, cl *clients) (*PollResult, error) {
	call := cl.modes()[1].call
	runLoad(ctx, b.opts.callers, b.opts.warmup, call)
	before, err := admin.counters(ctx)
	if err != nil {
		return nil, err
	}
	res := runLoad(ctx, b.opts.callers, targetRunPerCaller, call)
	after, err := admin.counters(ctx)
	if err != nil {
		return nil, err
	}
	pr := &PollResult{
		ClientCalls: int64(len(res.samples)), Errors: res.errors, FirstError: res.firstError,
		UpstreamCalls: after[routeStatus] - before[routeStatus],
		Throughput:    float64(len(res.samples)) / res.elapsed.Seconds(),
		P99:           percentile(latencies(res.samples), 0.99),
	}
	if pr.ClientCalls > 0 {
		pr.Ratio = float64(pr.UpstreamCalls) / float64(pr.ClientCalls)
	}
	b.logf("  %d client calls, %d upstream status calls: ratio %.4f, %d errors%s", pr.ClientCalls, pr.UpstreamCalls, pr.Ratio, pr.Errors, firstErrNote(pr.FirstError))
	return pr, nil
}

// tokenEvent is a change of the emulator's token counter seen by polling.
type tokenEvent struct {
	at    time.Time
	count int64 // new fetches since the previous poll
}

// watchTokens polls the emulator's token counter every 20ms until the
// returned function is called, which returns every increase seen.
func watchTokens(ctx context.Context, admin *emuAdmin) func() []tokenEvent {
	stop := make(chan struct{})
	var (
		mu     sync.Mutex
		events []tokenEvent
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		var last int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if c, err := admin.counters(ctx); err == nil {
				if n := c[routeToken]; n > last {
					mu.Lock()
					events = append(events, tokenEvent{at: time.Now(), count: n - last})
					mu.Unlock()
					last = n
				}
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []tokenEvent {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return events
	}
}

// tokenAndRSS starts a fresh emulator with a 3s token lifetime and a facade
// in front of it, runs b.callers gRPC callers for about two lifetimes
// (token fetches, latency across expiry), then holds b.callers calls in
// flight with 200ms of upstream latency (RSS).
func (b *bench) tokenAndRSS(ctx context.Context) (*TokenResult, *RSSResult, error) {
	emu, err := startEmulator(ctx, b.emulatorBin, "--token-lifetime", tokenLifetime.String())
	if err != nil {
		return nil, nil, err
	}
	b.track(emu.proc)
	defer b.stop(emu.proc)
	admin := newEmuAdmin(emu.baseURL)
	stopWatch := watchTokens(ctx, admin)
	f, err := b.startFacade(ctx, emu, nil)
	if err != nil {
		stopWatch()
		return nil, nil, err
	}
	defer b.stop(f.proc)
	cl, err := newClients(f, emu.baseURL, "", "", b.opts.grpcConns, b.opts.callers)
	if err != nil {
		stopWatch()
		return nil, nil, err
	}
	defer cl.close()
	call := cl.modes()[1].call
	idle, err := readProcStat(f.pid(), b.clkTck)
	if err != nil {
		stopWatch()
		return nil, nil, err
	}

	n := b.opts.callers
	b.logf("token: %d gRPC callers for 2 token lifetimes (%s each)", n, tokenLifetime)
	runLoad(ctx, n, b.opts.warmup, call)
	before, err := admin.counters(ctx)
	if err != nil {
		stopWatch()
		return nil, nil, err
	}
	res := runLoad(ctx, n, 2*tokenLifetime+500*time.Millisecond, call)
	after, err := admin.counters(ctx)
	events := stopWatch()
	if err != nil {
		return nil, nil, err
	}
	tok := analyseToken(res, events, after[routeToken]-before[routeToken], n)
	b.logf("  %d token fetches in %.1fs (%.2f per lifetime); p99 after expiry %s vs steady %s",
		tok.Fetches, tok.Seconds, tok.FetchesPerLifetime, fmtDur(tok.P99AfterExpiry), fmtDur(tok.P99Steady))

	b.logf("rss: %d calls in flight, upstream latency %s", n, rssLatency)
	if err := admin.setLatency(ctx, routeStatus, rssLatency); err != nil {
		return nil, nil, err
	}
	peak := b.sampleRSS(f.pid())
	rres := runLoad(ctx, n, targetRunPerCaller, call)
	peakRSS := peak()
	st, err := readProcStat(f.pid(), b.clkTck)
	if err != nil {
		return nil, nil, err
	}
	rss := &RSSResult{
		Callers: n, UpstreamLatency: rssLatency.String(),
		Calls: int64(len(rres.samples)), Errors: rres.errors, FirstError: rres.firstError,
		IdleMiB: mib(idle.rss), PeakRSSMiB: mib(max(peakRSS, st.rss)), HWMMiB: mib(st.hwm),
	}
	if len(rres.samples) > 0 {
		var sum time.Duration
		for _, s := range rres.samples {
			sum += s.lat
		}
		mean := sum / time.Duration(len(rres.samples))
		rss.Throughput = float64(len(rres.samples)) / rres.elapsed.Seconds()
		rss.MeanInFlight = rss.Throughput * mean.Seconds() // Little's law
		rss.P50 = percentile(latencies(rres.samples), 0.5)
	}
	b.logf("  facade RSS idle %.1f MiB, peak %.1f MiB, VmHWM %.1f MiB; %.0f calls in flight on average, %d errors%s",
		rss.IdleMiB, rss.PeakRSSMiB, rss.HWMMiB, rss.MeanInFlight, rss.Errors, firstErrNote(rss.FirstError))
	return tok, rss, nil
}

// analyseToken splits the run's calls into those that started within a
// second after a token expired (each fetched token expires one lifetime
// after the emulator counted its fetch) and the rest, and compares p99.
func analyseToken(res loadResult, events []tokenEvent, fetches int64, callers int) *TokenResult {
	tr := &TokenResult{
		Callers: callers, Lifetime: tokenLifetime.String(), Seconds: res.elapsed.Seconds(),
		Fetches: fetches, Calls: int64(len(res.samples)), Errors: res.errors, FirstError: res.firstError,
	}
	lifetimes := res.elapsed.Seconds() / tokenLifetime.Seconds()
	tr.Allowed = lifetimes + 1
	if lifetimes > 0 {
		tr.FetchesPerLifetime = float64(fetches) / lifetimes
	}
	type window struct{ from, to time.Duration }
	var windows []window
	for _, e := range events {
		exp := e.at.Add(tokenLifetime).Sub(res.started)
		if exp+time.Second > 0 && exp < res.elapsed {
			windows = append(windows, window{exp, exp + time.Second})
			tr.ExpiriesInRun = append(tr.ExpiriesInRun, exp.Seconds())
		}
	}
	const rampUp = 500 * time.Millisecond
	var after, steady []time.Duration
	buckets := map[int][]time.Duration{}
	for _, s := range res.samples {
		buckets[int(s.start/time.Second)] = append(buckets[int(s.start/time.Second)], s.lat)
		in := slices.ContainsFunc(windows, func(w window) bool { return s.start >= w.from && s.start < w.to })
		switch {
		case in:
			after = append(after, s.lat)
		case s.start >= rampUp:
			steady = append(steady, s.lat)
		}
	}
	slices.Sort(after)
	slices.Sort(steady)
	tr.P99AfterExpiry, tr.P99Steady = percentile(after, 0.99), percentile(steady, 0.99)
	tr.CallsAfterExpiry = len(after)
	for sec := 0; sec <= int(res.elapsed/time.Second); sec++ {
		l := buckets[sec]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		tr.P99PerSecond = append(tr.P99PerSecond, SecondP99{Second: sec, Calls: len(l), P99: percentile(l, 0.99)})
	}
	return tr
}

// gridTargets are the targets the table answers.
func (b *bench) gridTargets(rep *Report) []Target {
	r := rep.Ratios
	rounds := fmtRatios
	ts := []Target{
		ratioTarget(fmt.Sprintf("B/A throughput at %d in flight (median of %d)", r.InFlight, len(r.BOverA)), r.BOverAMedian, targetBOverA, rounds(r.BOverA)),
		ratioTarget(fmt.Sprintf("C/A throughput at %d in flight (median of %d)", r.InFlight, len(r.COverA)), r.COverAMedian, targetCOverA, rounds(r.COverA)),
	}
	a, okA := findCell(rep.Cells, "A", 1)
	bc, okB := findCell(rep.Cells, "B", 1)
	t := Target{Name: "added p50 at 1 in flight (B p50 - A p50)", Target: "<= " + fmtDur(targetAddedP50), Limit: targetAddedP50.Seconds()}
	if okA && okB {
		added := bc.P50 - a.P50
		t.Value = added.Seconds()
		t.Measured = fmt.Sprintf("%s (B %s, A %s)", fmtDur(added), fmtDur(bc.P50), fmtDur(a.P50))
		t.Status = passMiss(added <= targetAddedP50)
	} else {
		t.Status, t.Measured = "N/A", "no cells at 1 in flight"
	}
	ts = append(ts, t)
	// What of the added latency is the facade's own: B - A less one
	// no-op gRPC round trip (H), which any facade in front of a REST API
	// adds whatever it does.
	if h, okH := findCell(rep.Cells, "H", 1); okA && okB && okH {
		own := bc.P50 - a.P50 - h.P50
		ts = append(ts, Target{
			Name:     "added p50 beyond one no-op gRPC round trip (B - A - H)",
			Target:   "(measured)",
			Value:    own.Seconds(),
			Measured: fmt.Sprintf("%s (H, a health Check, %s)", fmtDur(own), fmtDur(h.P50)),
			Status:   "INFO",
		})
	}
	var errs int64
	for _, c := range rep.Cells {
		errs += c.Errors
	}
	ts = append(ts, Target{Name: "errors in the table's cells", Target: "0", Value: float64(errs), Measured: strconv.FormatInt(errs, 10), Status: passMiss(errs == 0)})
	return ts
}

func ratioTarget(name string, v, limit float64, rounds string) Target {
	if rounds == "" {
		// The modes were not run (-modes).
		return Target{Name: name, Target: fmt.Sprintf(">= %.2f", limit), Status: "N/A", Measured: "not measured"}
	}
	return Target{
		Name: name, Target: fmt.Sprintf(">= %.2f", limit), Value: v, Limit: limit,
		Measured: fmt.Sprintf("%.2f (rounds: %s)", v, rounds), Status: passMiss(v >= limit),
	}
}

// callerTargets are the 1,000-caller targets.
func (b *bench) callerTargets(rep *Report) []Target {
	var ts []Target
	if tok := rep.Token; tok != nil {
		ts = append(ts, Target{
			Name:   fmt.Sprintf("token fetches, %d callers, %s lifetime", tok.Callers, tok.Lifetime),
			Target: fmt.Sprintf("<= elapsed/lifetime + 1 = %.2f", tok.Allowed),
			Value:  float64(tok.Fetches), Limit: tok.Allowed,
			Measured: fmt.Sprintf("%d in %.1fs (%.2f per lifetime, %d errors)", tok.Fetches, tok.Seconds, tok.FetchesPerLifetime, tok.Errors),
			Status:   passMiss(float64(tok.Fetches) <= tok.Allowed && tok.Fetches > 0),
		})
		t := Target{Name: "p99 in the second after a token expiry vs steady p99", Target: fmt.Sprintf("<= %.1fx", targetExpiryP99), Limit: targetExpiryP99}
		if tok.CallsAfterExpiry == 0 || tok.P99Steady == 0 {
			t.Status, t.Measured = "N/A", "no expiry fell inside the run"
		} else {
			t.Value = tok.P99AfterExpiry.Seconds() / tok.P99Steady.Seconds()
			t.Measured = fmt.Sprintf("%.2fx (%s vs %s)", t.Value, fmtDur(tok.P99AfterExpiry), fmtDur(tok.P99Steady))
			t.Status = passMiss(t.Value <= targetExpiryP99)
		}
		ts = append(ts, t)
	}
	if rss := rep.RSS; rss != nil {
		ts = append(ts, Target{
			Name:   fmt.Sprintf("facade RSS with %d calls in flight (VmHWM)", rss.Callers),
			Target: fmt.Sprintf("<= %d MiB", targetRSSMiB),
			Value:  rss.HWMMiB, Limit: targetRSSMiB,
			Measured: fmt.Sprintf("%.1f MiB (VmRSS peak %.1f, idle %.1f; %.0f in flight)", rss.HWMMiB, rss.PeakRSSMiB, rss.IdleMiB, rss.MeanInFlight),
			Status:   passMiss(rss.HWMMiB <= targetRSSMiB && rss.Errors == 0),
		})
	}
	if co := rep.Coalescing; co != nil {
		if ac := co.AsConfigured; ac != nil {
			ts = append(ts, Target{
				Name:     fmt.Sprintf("status coalescing, %d pollers, facade as configured", co.Callers),
				Target:   "(measured)",
				Value:    ac.Ratio,
				Measured: fmt.Sprintf("%.4f upstream calls per client call (%d / %d)", ac.Ratio, ac.UpstreamCalls, ac.ClientCalls),
				Status:   "INFO",
			})
		}
		t := Target{Name: fmt.Sprintf("status coalescing with --status-cache-ttl %s", cacheTTL), Target: "<= 1/20 = 0.05", Limit: targetCoalescing}
		switch wc := co.WithCache; {
		case !co.Supported:
			t.Status, t.Measured = "N/A", "not supported by this build"
		case wc != nil:
			t.Value = wc.Ratio
			t.Measured = fmt.Sprintf("%.4f (%d / %d)", wc.Ratio, wc.UpstreamCalls, wc.ClientCalls)
			t.Status = passMiss(wc.Ratio <= targetCoalescing && wc.ClientCalls > 0)
		}
		ts = append(ts, t)
	}
	return ts
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
