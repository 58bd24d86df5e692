package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured; it is written as JSON (-out).
// Durations are in nanoseconds (fields named *_ns).
type Report struct {
	Time     time.Time `json:"time"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Cells    []Cell    `json:"cells"`
	Ratios   Ratios    `json:"ratios"`
	// Floor compares the facade with mode M, the floor (floor.go).
	Floor []FloorLevel `json:"floor,omitempty"`
	// Paired is the added latency at 1 in flight measured in turn with the
	// floor (paired.go).
	Paired     []Paired     `json:"paired,omitempty"`
	Coalescing *Coalescing  `json:"coalescing,omitempty"`
	Token      *TokenResult `json:"token,omitempty"`
	RSS        *RSSResult   `json:"rss,omitempty"`
	Targets    []Target     `json:"targets"`
	// RequestIDs is mode R, run instead of everything above.
	RequestIDs *RequestIDRun `json:"request_ids,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	LoadAvg    string `json:"load_avg_at_start"`
	ClkTck     int64  `json:"clk_tck"`
	NoFile     uint64 `json:"nofile_soft_limit"`
}

// Settings are the run's parameters.
type Settings struct {
	Duration                string   `json:"duration"`
	Warmup                  string   `json:"warmup"`
	InFlight                []int    `json:"inflight"`
	Repeat                  int      `json:"repeat"`
	GRPCConns               int      `json:"grpc_conns"`
	Callers                 int      `json:"callers"`
	FacadeFlags             []string `json:"facade_flags"`
	FacadeArgs              []string `json:"facade_args"`
	StatusCacheTTLSupported bool     `json:"status_cache_ttl_supported"`
	Production              bool     `json:"production"` // -production
	Tracing                 bool     `json:"tracing"`    // -tracing
	FacadeEnv               []string `json:"facade_env"` // -facade-env and -tracing's
}

// Cell is one mode at one in-flight level in one round.
type Cell struct {
	Mode             string        `json:"mode"`
	ModeName         string        `json:"mode_name"`
	InFlight         int           `json:"inflight"`
	Round            int           `json:"round"`
	Calls            int64         `json:"calls"`
	Errors           int64         `json:"errors"`
	FirstError       string        `json:"first_error,omitempty"`
	Seconds          float64       `json:"seconds"`
	Throughput       float64       `json:"calls_per_second"`
	P50              time.Duration `json:"p50_ns"`
	P90              time.Duration `json:"p90_ns"`
	P99              time.Duration `json:"p99_ns"`
	Max              time.Duration `json:"max_ns"`
	FacadeCPUPer1k   float64       `json:"facade_cpu_seconds_per_1k_calls"`
	EmulatorCPUPer1k float64       `json:"emulator_cpu_seconds_per_1k_calls"`
	FacadeRSSPeakMiB float64       `json:"facade_vmrss_peak_mib"`
	FacadeHWMMiB     float64       `json:"facade_vmhwm_mib"`
	UpstreamPerCall  float64       `json:"upstream_calls_per_call"`
}

// Ratios are the throughput ratios at one level, per round and median.
type Ratios struct {
	InFlight         int         `json:"inflight"`
	BOverA           []float64   `json:"b_over_a"`
	COverA           []float64   `json:"c_over_a"`
	BOverAMedian     float64     `json:"b_over_a_median"`
	COverAMedian     float64     `json:"c_over_a_median"`
	MedianThroughput []ModeValue `json:"median_calls_per_second"`
}

// ModeValue is a figure for one mode.
type ModeValue struct {
	Mode  string  `json:"mode"`
	Value float64 `json:"value"`
}

// Coalescing is the status coalescing target's data.
type Coalescing struct {
	Callers      int         `json:"callers"`
	Supported    bool        `json:"status_cache_ttl_supported"`
	AsConfigured *PollResult `json:"as_configured"`
	WithCache    *PollResult `json:"with_status_cache_ttl_1s,omitempty"`
}

// PollResult is one run of pollers of one service.
type PollResult struct {
	ClientCalls   int64         `json:"client_calls"`
	Errors        int64         `json:"errors"`
	FirstError    string        `json:"first_error,omitempty"`
	UpstreamCalls int64         `json:"upstream_status_calls"`
	Ratio         float64       `json:"upstream_per_client_call"`
	Throughput    float64       `json:"calls_per_second"`
	P99           time.Duration `json:"p99_ns"`
}

// TokenResult is the token target's data.
type TokenResult struct {
	Callers            int           `json:"callers"`
	Lifetime           string        `json:"token_lifetime"`
	Seconds            float64       `json:"seconds"`
	Fetches            int64         `json:"token_fetches"`
	Allowed            float64       `json:"allowed_fetches"`
	FetchesPerLifetime float64       `json:"fetches_per_lifetime"`
	Calls              int64         `json:"calls"`
	Errors             int64         `json:"errors"`
	FirstError         string        `json:"first_error,omitempty"`
	ExpiriesInRun      []float64     `json:"expiries_at_seconds"`
	CallsAfterExpiry   int           `json:"calls_after_expiry"`
	P99AfterExpiry     time.Duration `json:"p99_after_expiry_ns"`
	P99Steady          time.Duration `json:"p99_steady_ns"`
	P99PerSecond       []SecondP99   `json:"p99_per_second"`
}

// SecondP99 is the p99 of the calls started in one second of a run.
type SecondP99 struct {
	Second int           `json:"second"`
	Calls  int           `json:"calls"`
	P99    time.Duration `json:"p99_ns"`
}

// RSSResult is the memory target's data.
type RSSResult struct {
	Callers         int           `json:"callers"`
	UpstreamLatency string        `json:"upstream_latency"`
	Calls           int64         `json:"calls"`
	Errors          int64         `json:"errors"`
	FirstError      string        `json:"first_error,omitempty"`
	Throughput      float64       `json:"calls_per_second"`
	MeanInFlight    float64       `json:"mean_inflight"`
	P50             time.Duration `json:"p50_ns"`
	IdleMiB         float64       `json:"idle_vmrss_mib"`
	PeakRSSMiB      float64       `json:"peak_vmrss_mib"`
	HWMMiB          float64       `json:"vmhwm_mib"`
}

// Target is one target with its measured value.
type Target struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit,omitempty"`
	Status   string  `json:"status"` // PASS, MISS, INFO or N/A
}

// describeMachine reads the CPU model, kernel and load average.
func describeMachine(ctx context.Context, clkTck int64, nofile uint64) Machine {
	m := Machine{
		CPU: "unknown", Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, ClkTck: clkTck, NoFile: nofile,
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out)) // the toolchain that builds the binaries
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// fmtDur prints a latency in µs below 10ms, else in ms.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

// printReport prints the machine, the table, the repeats and the targets.
func printReport(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "\nradkit-access-bench  %s\n", rep.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d cores, GOMAXPROCS %d, %s %s, kernel %s, load avg at start %s\n",
		m.CPU, m.Cores, m.GOMAXPROCS, m.GoVersion, m.OS, m.Kernel, m.LoadAvg)
	fmt.Fprintf(w, "per cell: %s measured after %s warm-up; closed-loop workers = in-flight; gRPC client connections: %d\n",
		rep.Settings.Duration, rep.Settings.Warmup, rep.Settings.GRPCConns)
	fmt.Fprintf(w, "facade: %s\n\n", strings.Join(rep.Settings.FacadeArgs, " "))

	tw := newTable(w, "mode\tin-flight\tcalls/s\tp50\tp90\tp99\terrors\tfacade CPU s/1k\temulator CPU s/1k\tfacade RSS MiB\tVmHWM MiB\tupstream/call\t")
	for _, c := range rep.Cells {
		if c.Round != 1 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\t%.3f\t%.1f\t%.1f\t%.2f\t\n",
			c.Mode, c.InFlight, c.Throughput, fmtDur(c.P50), fmtDur(c.P90), fmtDur(c.P99), c.Errors,
			facadeCPU(c), c.EmulatorCPUPer1k, c.FacadeRSSPeakMiB, c.FacadeHWMMiB, c.UpstreamPerCall)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nA: GET /public/admin/service/status/{id} straight to the emulator (the limit); B: GetServiceStatus over gRPC via the facade;")
	fmt.Fprintln(w, "C: GET /v1/services/{id}/status via the facade's HTTP gateway; D: GenerateOTP over gRPC via the facade.")
	fmt.Fprintln(w, "The emulator, the facade and this client share the machine's cores: A is bounded by the emulator (and the client), B-D by all three.")

	r := rep.Ratios
	fmt.Fprintf(w, "\nthroughput at %d in flight, per round:", r.InFlight)
	for _, mode := range []string{"A", "B", "C"} {
		fmt.Fprintf(w, "  %s", mode)
		for _, c := range rep.Cells {
			if c.Mode == mode && c.InFlight == r.InFlight {
				fmt.Fprintf(w, " %.0f", c.Throughput)
			}
		}
	}
	fmt.Fprintln(w)

	printFloor(w, rep.Floor)
	printPaired(w, rep.Paired)

	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Status, t.Name, t.Target, t.Measured)
	}
	tw.Flush()
}

// facadeCPU is "-" for A, whose calls do not pass the facade.
func facadeCPU(c Cell) string {
	if c.Mode == "A" {
		return "-"
	}
	return fmt.Sprintf("%.3f", c.FacadeCPUPer1k)
}

// writeJSON writes rep to path.
func writeJSON(path string, rep any) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// newTable returns a writer for a table of right-aligned columns, the
// style of every table the bench prints, with its header row written.
// Cells end with a tab; Flush prints the table.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	return tw
}
