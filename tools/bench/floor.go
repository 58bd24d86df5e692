package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// Mode M: the floor of any Go facade for this API, a separate
// process (./floor) that serves AccessService on the same generated stubs
// and makes the one upstream call per RPC, nothing else. The facade's
// modes are compared with it, per in-flight level and round:
//
//	B/M   GetServiceStatus, one service (B coalesces concurrent calls)
//	Bs/M  GetServiceStatus spread over spreadServices seeded services
//	C/M   GetServiceStatus through the facade's HTTP gateway
//	D/Mo  GenerateOTP (Mo is GenerateOTP on the floor)

// spreadServices is how many seeded services mode Bs spreads its calls
// over, so that coalescing rarely joins two calls.
const spreadServices = 64

// Floor targets at the ratio level and at 1 in flight.
const (
	targetFloorRatio    = 0.95
	targetFloorAddedP50 = 40 * time.Microsecond
	targetFloorHTTPP50  = 100 * time.Microsecond
)

// spreadServiceID is the i-th service mode Bs asks for.
func spreadServiceID(i int) string { return fmt.Sprintf("bench-svc-%02d", i) }

// spreadEmulatorFlags seeds the emulator with mode Bs's services.
func spreadEmulatorFlags() []string {
	var f []string
	for i := range spreadServices {
		f = append(f, "--service", spreadServiceID(i))
	}
	return f
}

// buildFloor builds ./floor into dir with the Dockerfile's flags.
func buildFloor(ctx context.Context, dir string) (string, error) {
	root, err := moduleDir(ctx, benchModule)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "radkit-access-floor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, benchModule+"/floor")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build floor: %w\n%s", err, b)
	}
	return out, nil
}

// startFloor starts the floor in front of emu with its client credentials
// and waits until it serves.
func (b *bench) startFloor(ctx context.Context, emu *emulatorProc) (*facadeProc, error) {
	if b.floorBin == "" {
		b.logf("building the floor")
		var err error
		if b.floorBin, err = buildFloor(ctx, b.tmp); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	secretFile := filepath.Join(b.tmp, "floor-client-secret")
	if err := os.WriteFile(secretFile, []byte(emu.clientSecret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	f := &facadeProc{grpcAddr: ports[0], args: []string{"--addr", ports[0], "--upstream-url", emu.baseURL}}
	if b.opts.floorPprof != "" {
		f.args = append(f.args, "--pprof", b.opts.floorPprof)
	}
	env := append(childEnv(), "RADKIT_ACCESS_CLIENT_ID="+emu.clientID, "RADKIT_ACCESS_CLIENT_SECRET_FILE="+secretFile)
	if f.proc, err = startProc("floor", b.floorBin, f.args, env, nil); err != nil {
		return nil, err
	}
	b.track(f.proc)
	if err := waitServing(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

// floorModes returns Bs (through the facade's clients cl) and M and Mo
// (through a connection to the floor fl). The returned func closes the
// floor connection.
func floorModes(cl *clients, fl *facadeProc) ([]mode, func(), error) {
	conn, err := grpc.NewClient(fl.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial floor: %w", err)
	}
	floor := accessv1.NewAccessServiceClient(conn)
	spread := make([]*accessv1.GetServiceStatusRequest, spreadServices)
	for i := range spread {
		spread[i] = &accessv1.GetServiceStatusRequest{ServiceId: spreadServiceID(i)}
	}
	var next atomic.Uint64
	statusReq := &accessv1.GetServiceStatusRequest{ServiceId: serviceID}
	otpReq := &accessv1.GenerateOTPRequest{Owner: "bench@example.com", EndpointId: "bench-endpoint", Description: "radkit-access-bench"}
	modes := []mode{
		{key: "Bs", name: "GetServiceStatus gRPC via facade, 64 services", route: routeStatus, call: func(ctx context.Context, w int) error {
			_, err := cl.access[w%len(cl.access)].GetServiceStatus(ctx, spread[next.Add(1)%spreadServices])
			return err
		}},
		{key: "M", name: "GetServiceStatus gRPC via the floor", route: routeStatus, server: fl.proc, call: func(ctx context.Context, _ int) error {
			_, err := floor.GetServiceStatus(ctx, statusReq)
			return err
		}},
		{key: "Mo", name: "GenerateOTP gRPC via the floor", route: routeOTP, server: fl.proc, call: func(ctx context.Context, _ int) error {
			_, err := floor.GenerateOTP(ctx, otpReq)
			return err
		}},
	}
	return modes, func() { _ = conn.Close() }, nil
}

// FloorLevel compares the facade's modes with the floor's at one in-flight
// level: each figure is the median over rounds of the per-round figure.
type FloorLevel struct {
	InFlight int          `json:"inflight"`
	Rounds   int          `json:"rounds"`
	Pairs    []FloorRatio `json:"pairs"`
}

// FloorRatio is one facade mode against its floor mode.
type FloorRatio struct {
	Mode  string `json:"mode"`
	Floor string `json:"floor"`
	// Throughput is mode/floor calls per second; PerRound its rounds.
	Throughput float64   `json:"throughput_ratio"`
	PerRound   []float64 `json:"throughput_ratio_per_round"`
	// AddedP50 and AddedP99 are mode minus floor.
	AddedP50 time.Duration `json:"added_p50_ns"`
	AddedP99 time.Duration `json:"added_p99_ns"`
	// CPURatio is the facade's CPU per call over the floor's; CPUPerCall
	// and FloorCPUPerCall are the medians of each.
	CPURatio        float64       `json:"cpu_per_call_ratio"`
	CPUPerCall      time.Duration `json:"cpu_per_call_ns"`
	FloorCPUPerCall time.Duration `json:"floor_cpu_per_call_ns"`
}

// floorPairs are the comparisons the floor table makes.
var floorPairs = [][2]string{{"B", "M"}, {"Bs", "M"}, {"C", "M"}, {"D", "Mo"}}

// floorLevels computes the floor table from every round of every level.
func floorLevels(cells []Cell, levels []int) []FloorLevel {
	var out []FloorLevel
	for _, n := range levels {
		byRound := map[int]map[string]Cell{}
		for _, c := range cells {
			if c.InFlight != n {
				continue
			}
			if byRound[c.Round] == nil {
				byRound[c.Round] = map[string]Cell{}
			}
			byRound[c.Round][c.Mode] = c
		}
		lvl := FloorLevel{InFlight: n, Rounds: len(byRound)}
		for _, pr := range floorPairs {
			var thr, p50, p99, cpu, cpuM, cpuF []float64
			for _, r := range slices.Sorted(mapKeys(byRound)) {
				m, okM := byRound[r][pr[0]]
				f, okF := byRound[r][pr[1]]
				if !okM || !okF || f.Throughput <= 0 {
					continue
				}
				thr = append(thr, m.Throughput/f.Throughput)
				p50 = append(p50, float64(m.P50-f.P50))
				p99 = append(p99, float64(m.P99-f.P99))
				if f.FacadeCPUPer1k > 0 {
					cpu = append(cpu, m.FacadeCPUPer1k/f.FacadeCPUPer1k)
				}
				cpuM = append(cpuM, m.FacadeCPUPer1k)
				cpuF = append(cpuF, f.FacadeCPUPer1k)
			}
			if len(thr) == 0 {
				continue
			}
			lvl.Pairs = append(lvl.Pairs, FloorRatio{
				Mode: pr[0], Floor: pr[1], Throughput: median(thr), PerRound: thr,
				AddedP50: time.Duration(median(p50)), AddedP99: time.Duration(median(p99)),
				CPURatio:        median(cpu),
				CPUPerCall:      time.Duration(median(cpuM) * 1e6), // s per 1k calls = ms per call
				FloorCPUPerCall: time.Duration(median(cpuF) * 1e6),
			})
		}
		if len(lvl.Pairs) > 0 {
			out = append(out, lvl)
		}
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// floorPair returns the pair mode/floor at level n.
func floorPair(levels []FloorLevel, n int, mode string) (FloorRatio, bool) {
	for _, l := range levels {
		if l.InFlight != n {
			continue
		}
		for _, p := range l.Pairs {
			if p.Mode == mode {
				return p, true
			}
		}
	}
	return FloorRatio{}, false
}

// floorTargets are the targets against the floor (docs/performance.md).
//
// The added p50 targets are the floor table's, from cells at 1 in flight in
// alternating rounds; the paired measurement
// (paired.go), calls in turn, follows each as INFO.
func floorTargets(levels []FloorLevel, paired []Paired, ratioLevel int) []Target {
	var ts []Target
	for _, mode := range []string{"D", "Bs"} {
		t := Target{Name: fmt.Sprintf("%s/floor throughput at %d in flight (median of rounds)", mode, ratioLevel), Target: fmt.Sprintf(">= %.2f", targetFloorRatio), Limit: targetFloorRatio}
		if p, ok := floorPair(levels, ratioLevel, mode); ok {
			t.Value = p.Throughput
			t.Measured = fmt.Sprintf("%.2f (rounds: %s)", p.Throughput, fmtRatios(p.PerRound))
			t.Status = passMiss(p.Throughput >= targetFloorRatio)
		} else {
			t.Status, t.Measured = "N/A", "not measured"
		}
		ts = append(ts, t)
	}
	for _, c := range []struct {
		mode  string
		limit time.Duration
	}{{"B", targetFloorAddedP50}, {"D", targetFloorAddedP50}, {"C", targetFloorHTTPP50}} {
		t := Target{Name: fmt.Sprintf("added p50 over the floor at 1 in flight (%s)", c.mode), Target: "<= " + fmtDur(c.limit), Limit: c.limit.Seconds()}
		if p, ok := floorPair(levels, 1, c.mode); ok {
			t.Value = p.AddedP50.Seconds()
			t.Measured = fmtDur(p.AddedP50)
			t.Status = passMiss(p.AddedP50 <= c.limit)
		} else {
			t.Status, t.Measured = "N/A", "not measured"
		}
		ts = append(ts, t)
		if i := slices.IndexFunc(paired, func(p Paired) bool { return p.Mode == c.mode }); i >= 0 {
			p := paired[i]
			ts = append(ts, Target{
				Name:   fmt.Sprintf("  the same, calls in turn with the floor (%s)", c.mode),
				Target: "(measured)", Status: "INFO", Value: p.AddedP50.Seconds(),
				Measured: fmt.Sprintf("%s (rounds: %s)", fmtDur(p.AddedP50), fmtDurs(p.PerRound)),
			})
		}
	}
	return ts
}

func fmtRatios(v []float64) string {
	return joinEach(v, func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) })
}

// joinEach formats each of v and joins them with spaces.
func joinEach[T any](v []T, format func(T) string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = format(x)
	}
	return strings.Join(parts, " ")
}

// printFloor prints the floor table.
func printFloor(w io.Writer, levels []FloorLevel) {
	if len(levels) == 0 {
		return
	}
	fmt.Fprintln(w, "\nagainst the floor (mode M: same stubs, one upstream call, nothing else); medians of the rounds:")
	tw := newTable(w, "in-flight\tmode/floor\tthroughput\tadded p50\tadded p99\tCPU/call\tfloor CPU/call\tCPU ratio\trounds\t")
	for _, l := range levels {
		for _, p := range l.Pairs {
			fmt.Fprintf(tw, "%d\t%s/%s\t%.2f\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n", l.InFlight, p.Mode, p.Floor, p.Throughput,
				fmtDur(p.AddedP50), fmtDur(p.AddedP99), fmtDur(p.CPUPerCall), fmtDur(p.FloorCPUPerCall), p.CPURatio, fmtRatios(p.PerRound))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "Bs: GetServiceStatus over %d seeded services (little coalescing); M: GetServiceStatus on the floor; Mo: GenerateOTP on the floor.\n", spreadServices)
}
