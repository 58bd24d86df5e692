package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Process stop grace: the facade drains in-flight calls on SIGTERM.
const stopGrace = 10 * time.Second

// bench is one run of the harness.
type bench struct {
	opts        options
	log         io.Writer
	clkTck      int64
	nofile      uint64
	tmp         string
	facadeBin   string
	emulatorBin string
	floorBin    string // the floor (floor.go) of modes M, Mo and W, built on first use

	mu    sync.Mutex
	procs []*proc // started, stopped in reverse order
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// track registers p for stopAll.
func (b *bench) track(p *proc) {
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
}

// stopAll stops every child still running, newest first (facades before
// their emulator).
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	for _, p := range slices.Backward(procs) {
		p.stop(stopGrace)
	}
}

// stop stops p now.
func (b *bench) stop(p *proc) {
	p.stop(stopGrace)
	b.mu.Lock()
	b.procs = slices.DeleteFunc(b.procs, func(q *proc) bool { return q == p })
	b.mu.Unlock()
}

// pair is an emulator and a facade pointed at it.
type pair struct {
	emu    *emulatorProc
	facade *facadeProc
	admin  *emuAdmin
}

// startPair starts an emulator (with emuFlags) and a facade (with the
// user's -facade-flags plus extra) pointed at it.
//
// env is more environment for this facade only (-tracing's), beyond
// -facade-env's.
func (b *bench) startPair(ctx context.Context, emuFlags, extra, env []string) (*pair, error) {
	emu, err := startEmulator(ctx, b.emulatorBin, emuFlags...)
	if err != nil {
		return nil, err
	}
	b.track(emu.proc)
	f, err := b.startFacade(ctx, emu, extra, env...)
	if err != nil {
		return nil, err
	}
	return &pair{emu: emu, facade: f, admin: newEmuAdmin(emu.baseURL)}, nil
}

// startFacade starts one more facade in front of emu.
func (b *bench) startFacade(ctx context.Context, emu *emulatorProc, extra []string, env ...string) (*facadeProc, error) {
	f, err := startFacade(ctx, b.facadeBin, b.tmp, emu, append(slices.Clone(b.opts.facadeFlags), extra...), append(slices.Clone(b.opts.facadeEnv), env...))
	if err != nil {
		return nil, err
	}
	b.track(f.proc)
	return f, nil
}

// measure runs everything and returns the report.
func (b *bench) measure(ctx context.Context) (*Report, error) {
	o := b.opts
	rep := &Report{
		Time:    time.Now(),
		Machine: describeMachine(ctx, b.clkTck, b.nofile),
		Settings: Settings{
			Duration: o.duration.String(), Warmup: o.warmup.String(), InFlight: o.inflight,
			Repeat: o.repeat, GRPCConns: o.grpcConns, FacadeFlags: o.facadeFlags, Callers: o.callers,
		},
	}
	b.logf("machine: %s, %d cores, %s, GOMAXPROCS %d", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.GoVersion, rep.Machine.GOMAXPROCS)
	rep.Settings.StatusCacheTTLSupported = facadeSupports(ctx, b.facadeBin, "status-cache-ttl")

	prod, err := b.productionSettings(ctx)
	if err != nil {
		return nil, err
	}
	defer prod.close()
	p, err := b.startPair(ctx, spreadEmulatorFlags(), prod.facadeFlags, prod.facadeEnv)
	if err != nil {
		return nil, err
	}
	rep.Settings.FacadeArgs = p.facade.args
	rep.Settings.Production, rep.Settings.Tracing = o.production, o.tracing
	rep.Settings.FacadeEnv = append(slices.Clone(o.facadeEnv), prod.facadeEnv...)
	bearer, err := fetchBearer(ctx, p.emu.baseURL, p.emu.clientID, p.emu.clientSecret)
	if err != nil {
		return nil, err
	}
	floor, err := b.startFloor(ctx, p.emu)
	if err != nil {
		return nil, err
	}
	maxInflight := slices.Max(o.inflight)
	cl, err := newClients(p.facade, p.emu.baseURL, bearer, prod.callerKey, o.grpcConns, max(maxInflight, o.callers))
	if err != nil {
		return nil, err
	}
	defer cl.close()
	modes := cl.modes()
	fmodes, closeFloor, err := floorModes(cl, floor)
	if err != nil {
		return nil, err
	}
	defer closeFloor()
	modes = append(modes, fmodes...)

	// The grid: every mode at every level in -repeat round-robin rounds
	// (so that drift hits every mode alike), and H (the floor of the added
	// latency) at 1 in flight next to A and B.
	levelModes := func(n int) []mode {
		if n == 1 {
			return selectModes(append(slices.Clip(modes), cl.floorMode()), o.modes)
		}
		return selectModes(modes, o.modes)
	}
	const ratioLevel = 64
	for _, n := range o.inflight {
		for r := 1; r <= o.repeat; r++ {
			for _, m := range levelModes(n) {
				c, err := b.cell(ctx, p, m, n, r)
				if err != nil {
					return nil, err
				}
				rep.Cells = append(rep.Cells, c)
			}
		}
	}
	// A, B and H at 1 in flight for the added latency, if the grid lacks
	// them.
	if !slices.Contains(o.inflight, 1) {
		for _, m := range selectModes([]mode{modes[0], modes[1], cl.floorMode()}, o.modes) {
			c, err := b.cell(ctx, p, m, 1, 1)
			if err != nil {
				return nil, err
			}
			rep.Cells = append(rep.Cells, c)
		}
	}
	rep.Floor = floorLevels(rep.Cells, o.inflight)
	if slices.Contains(o.inflight, 1) {
		if rep.Paired, err = b.paired(ctx, selectModes(modes, o.modes)); err != nil {
			return nil, err
		}
	}
	b.stop(floor.proc)
	rep.Ratios = ratiosAt(rep.Cells, ratioLevel)

	if o.noTargets {
		rep.Targets = append(b.gridTargets(rep), floorTargets(rep.Floor, rep.Paired, ratioLevel)...)
		return rep, nil
	}
	co, err := b.coalescing(ctx, p, cl, rep.Settings.StatusCacheTTLSupported)
	if err != nil {
		return nil, err
	}
	rep.Coalescing = co
	b.stop(p.facade.proc)
	b.stop(p.emu.proc)

	tok, rss, err := b.tokenAndRSS(ctx)
	if err != nil {
		return nil, err
	}
	rep.Token, rep.RSS = tok, rss
	rep.Targets = append(append(b.gridTargets(rep), floorTargets(rep.Floor, rep.Paired, ratioLevel)...), b.callerTargets(rep)...)
	return rep, nil
}

// selectModes returns the modes whose keys are in keys, in their order,
// or all of them when keys is empty (-modes).
func selectModes(modes []mode, keys []string) []mode {
	if len(keys) == 0 {
		return modes
	}
	var out []mode
	for _, m := range modes {
		if slices.Contains(keys, m.key) {
			out = append(out, m)
		}
	}
	return out
}

// cell measures mode m at n in flight on pair p: a warm-up, then the
// measured run with the facade's and the emulator's CPU and the facade's
// memory sampled around it.
func (b *bench) cell(ctx context.Context, p *pair, m mode, n, round int) (Cell, error) {
	if err := ctx.Err(); err != nil {
		return Cell{}, err
	}
	if b.opts.warmup > 0 {
		runLoad(ctx, n, b.opts.warmup, m.call)
	}
	before, err := p.admin.counters(ctx)
	if err != nil {
		return Cell{}, err
	}
	// The server whose CPU and memory count: the facade, or the floor.
	srv := p.facade.proc
	if m.server != nil {
		srv = m.server
	}
	fBefore, err1 := readProcStat(srv.pid(), b.clkTck)
	eBefore, err2 := readProcStat(p.emu.pid(), b.clkTck)
	if err1 != nil || err2 != nil {
		return Cell{}, fmt.Errorf("read /proc: %v %v", err1, err2)
	}
	peak := b.sampleRSS(srv.pid())
	res := runLoad(ctx, n, b.opts.duration, m.call)
	peakRSS := peak()
	fAfter, err1 := readProcStat(srv.pid(), b.clkTck)
	eAfter, err2 := readProcStat(p.emu.pid(), b.clkTck)
	if err1 != nil || err2 != nil {
		return Cell{}, fmt.Errorf("read /proc: %v %v (%s)", err1, err2, srv.diag())
	}
	after, err := p.admin.counters(ctx)
	if err != nil {
		return Cell{}, err
	}
	if err := ctx.Err(); err != nil {
		return Cell{}, err
	}
	c := newCell(m, n, round, res)
	calls := float64(len(res.samples)) + float64(res.errors)
	if calls > 0 {
		c.FacadeCPUPer1k = (fAfter.cpu - fBefore.cpu).Seconds() / calls * 1000
		c.EmulatorCPUPer1k = (eAfter.cpu - eBefore.cpu).Seconds() / calls * 1000
		c.UpstreamPerCall = float64(after[m.route]-before[m.route]) / calls
	}
	c.FacadeRSSPeakMiB = mib(max(peakRSS, fAfter.rss))
	c.FacadeHWMMiB = mib(fAfter.hwm)
	b.logf("%s %-36s in-flight %4d round %d: %8.0f calls/s p50 %-9s p99 %-9s errors %d%s",
		m.key, m.name, n, round, c.Throughput, fmtDur(c.P50), fmtDur(c.P99), c.Errors, firstErrNote(c.FirstError))
	return c, nil
}

func firstErrNote(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

// newCell computes a cell's figures from a run.
func newCell(m mode, n, round int, res loadResult) Cell {
	lat := latencies(res.samples)
	c := Cell{
		Mode: m.key, ModeName: m.name, InFlight: n, Round: round,
		Calls: int64(len(res.samples)), Errors: res.errors, FirstError: res.firstError,
		Seconds: res.elapsed.Seconds(),
		P50:     percentile(lat, 0.50), P90: percentile(lat, 0.90), P99: percentile(lat, 0.99),
	}
	if len(lat) > 0 {
		c.Max = lat[len(lat)-1]
	}
	if res.elapsed > 0 {
		c.Throughput = float64(c.Calls) / res.elapsed.Seconds()
	}
	return c
}

// sampleRSS samples pid's VmRSS every 25ms until the returned function is
// called, which returns the peak in bytes.
func (b *bench) sampleRSS(pid int) func() int64 {
	stop := make(chan struct{})
	done := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := readProcStat(pid, b.clkTck); err == nil {
				peak = max(peak, st.rss)
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// ratiosAt computes B/A and C/A throughput per round at level n and their
// medians.
func ratiosAt(cells []Cell, n int) Ratios {
	thr := map[string]map[int]float64{}
	for _, c := range cells {
		if c.InFlight != n {
			continue
		}
		if thr[c.Mode] == nil {
			thr[c.Mode] = map[int]float64{}
		}
		thr[c.Mode][c.Round] = c.Throughput
	}
	r := Ratios{InFlight: n}
	for round, a := range thr["A"] {
		if a <= 0 {
			continue
		}
		if bv, ok := thr["B"][round]; ok {
			r.BOverA = append(r.BOverA, bv/a)
		}
		if cv, ok := thr["C"][round]; ok {
			r.COverA = append(r.COverA, cv/a)
		}
	}
	r.BOverAMedian, r.COverAMedian = median(r.BOverA), median(r.COverA)
	for _, k := range []string{"A", "B", "C"} {
		var v []float64
		for _, t := range thr[k] {
			v = append(v, t)
		}
		r.MedianThroughput = append(r.MedianThroughput, ModeValue{Mode: k, Value: median(v)})
	}
	return r
}

// median of v (the mean of the middle two for an even count); 0 if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// findCell returns the round-1 cell of mode at n.
func findCell(cells []Cell, mode string, n int) (Cell, bool) {
	for _, c := range cells {
		if c.Mode == mode && c.InFlight == n && c.Round == 1 {
			return c, true
		}
	}
	return Cell{}, false
}
