package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Paired is a facade mode and its floor mode measured together at 1 in
// flight: one client calls them in turn (the order alternating), so that
// both see the same machine. The added p50 of the floor table compares
// cells measured seconds apart, and on shared cores it swings by 100 µs
// from run to run; the paired figure's rounds agree within 30 µs. It is
// not the same figure, though: each process idles through the other's
// call, so each call starts with colder caches, which costs the process
// that touches more memory (the facade) more. The targets keep the
// table's; this one is reported beside them.
type Paired struct {
	Mode     string          `json:"mode"`
	Floor    string          `json:"floor"`
	Calls    int             `json:"calls"` // per mode, all rounds
	P50      time.Duration   `json:"p50_ns"`
	FloorP50 time.Duration   `json:"floor_p50_ns"`
	AddedP50 time.Duration   `json:"added_p50_ns"` // median of the rounds' differences
	PerRound []time.Duration `json:"added_p50_per_round_ns"`
	Errors   int64           `json:"errors"`
}

// paired measures the floor table's pairs (floorPairs) among modes, but
// Bs: a warm-up, then -repeat rounds of -duration each.
func (b *bench) paired(ctx context.Context, modes []mode) ([]Paired, error) {
	byKey := map[string]mode{}
	for _, m := range modes {
		byKey[m.key] = m
	}
	var out []Paired
	for _, pr := range floorPairs {
		if pr[0] == "Bs" {
			continue // at 1 in flight Bs is B: one call at a time shares nothing
		}
		m, okM := byKey[pr[0]]
		f, okF := byKey[pr[1]]
		if !okM || !okF {
			continue
		}
		if b.opts.warmup > 0 {
			alternate(ctx, b.opts.warmup, m.call, f.call)
		}
		p := Paired{Mode: pr[0], Floor: pr[1]}
		var p50s, floorP50s []time.Duration
		for range b.opts.repeat {
			lm, lf, errs := alternate(ctx, b.opts.duration, m.call, f.call)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			p.Calls += len(lm)
			p.Errors += errs
			slices.Sort(lm)
			slices.Sort(lf)
			a, fl := percentile(lm, 0.5), percentile(lf, 0.5)
			p50s, floorP50s = append(p50s, a), append(floorP50s, fl)
			p.PerRound = append(p.PerRound, a-fl)
		}
		p.P50, p.FloorP50, p.AddedP50 = medianDur(p50s), medianDur(floorP50s), medianDur(p.PerRound)
		b.logf("paired %s/%s at 1 in flight: p50 %s against %s, added %s (rounds %s), %d calls each, %d errors",
			p.Mode, p.Floor, fmtDur(p.P50), fmtDur(p.FloorP50), fmtDur(p.AddedP50), fmtDurs(p.PerRound), p.Calls, p.Errors)
		out = append(out, p)
	}
	return out, nil
}

// alternate calls a and b in turn for d, one call at a time, a first in
// even turns and b first in odd ones, and returns each one's latencies
// and the number of failed calls.
func alternate(ctx context.Context, d time.Duration, a, b callFunc) (la, lb []time.Duration, errs int64) {
	one := func(fn callFunc) (time.Duration, bool) {
		lat, err := callOnce(ctx, fn, 0, time.Now())
		return lat, err == nil
	}
	end := time.Now().Add(d)
	for turn := 0; ctx.Err() == nil && time.Now().Before(end); turn++ {
		first, second := a, b
		if turn%2 == 1 {
			first, second = b, a
		}
		l1, ok1 := one(first)
		l2, ok2 := one(second)
		if turn%2 == 1 {
			l1, l2, ok1, ok2 = l2, l1, ok2, ok1
		}
		if ok1 {
			la = append(la, l1)
		} else {
			errs++
		}
		if ok2 {
			lb = append(lb, l2)
		} else {
			errs++
		}
	}
	return la, lb, errs
}

// medianDur is median for durations.
func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

func fmtDurs(v []time.Duration) string { return joinEach(v, fmtDur) }

// printPaired prints the paired table.
func printPaired(w io.Writer, ps []Paired) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintln(w, "\nat 1 in flight, each facade mode and its floor called in turn by one client (same machine state); medians of the rounds:")
	tw := newTable(w, "mode/floor\tp50\tfloor p50\tadded p50\trounds\tcalls each\terrors\t")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", p.Mode, p.Floor, fmtDur(p.P50), fmtDur(p.FloorP50), fmtDur(p.AddedP50), fmtDurs(p.PerRound), p.Calls, p.Errors)
	}
	tw.Flush()
}
