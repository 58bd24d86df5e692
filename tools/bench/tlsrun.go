package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Mode U (-upstream-tls): the same facade against the emulator over plain
// HTTP/1.1 and over TLS with HTTP/2 (the production path), side by side.
const (
	upstreamTLSInFlight = 64              // the throughput row
	heldOTPLatency      = 1 * time.Second // how long the emulator holds each OTP call
	heldOTPRun          = 4 * time.Second // how long the 1,000 callers keep calling
	upstreamTLSRoute    = routeOTP        // the route held for the RSS row
	// facadeMaxInFlight is the facade's default bound on upstream calls in
	// flight, which the OTP rows reach: over TLS/h2 they need
	// ceil(facadeMaxInFlight/streams) connections.
	facadeMaxInFlight   = 256
	upstreamTLSMaxRSS   = 60.0 // target: MiB at 1,000 OTP calls in flight over TLS/h2
	upstreamTLSMinRatio = 0.9  // target: TLS/h2 throughput at 64 in flight vs plain
)

// upstreamTLSStreamLimits are the HTTP/2 stream limits of the TLS rows'
// emulators: Go's default and a common proxy setting.
var upstreamTLSStreamLimits = []int{250, 100}

// UpstreamTLSRun is mode U's report.
type UpstreamTLSRun struct {
	Time    time.Time         `json:"time"`
	Machine Machine           `json:"machine"`
	Rows    []UpstreamTLSRow  `json:"rows"`
	Targets []Target          `json:"targets"`
	Notes   map[string]string `json:"notes"`
}

// UpstreamTLSRow is one upstream transport: plain HTTP/1.1 or TLS/h2.
type UpstreamTLSRow struct {
	Upstream string `json:"upstream"` // "http/1.1 plain" or "https h2"
	// Throughput and facade CPU of GetServiceStatus over gRPC at 64 in
	// flight.
	Throughput     float64 `json:"throughput"`
	P99            string  `json:"p99"`
	FacadeCPUPer1k float64 `json:"facade_cpu_s_per_1k_calls"`
	Errors         int64   `json:"errors"`
	// The facade holding 1,000 GenerateOTP calls, each held by the
	// emulator for heldOTPLatency.
	OTPCallers       int              `json:"otp_callers"`
	OTPCalls         int64            `json:"otp_calls"`
	OTPErrors        int64            `json:"otp_errors"`
	OTPFirstError    string           `json:"otp_first_error,omitempty"`
	OTPPeakRSSMiB    float64          `json:"otp_peak_rss_mib"`
	OTPMeanInFlight  float64          `json:"otp_mean_in_flight"`
	OTPP50           string           `json:"otp_p50"` // OK calls only
	OTPP99           string           `json:"otp_p99"`
	OTPReasons       map[string]int64 `json:"otp_non_ok"`           // by gRPC code / ErrorInfo reason
	UpstreamConns    int64            `json:"upstream_connections"` // accepted by the emulator during the whole row
	UpstreamProtocol map[string]int64 `json:"upstream_protocols"`
}

// upstreamTLS runs mode U.
func (b *bench) upstreamTLS(ctx context.Context) (*UpstreamTLSRun, error) {
	run := &UpstreamTLSRun{Time: time.Now(), Machine: describeMachine(ctx, b.clkTck, b.nofile), Notes: map[string]string{
		"throughput":  fmt.Sprintf("GetServiceStatus over gRPC through the facade, %d in flight, %s measured after %s warm-up", upstreamTLSInFlight, b.opts.duration, b.opts.warmup),
		"otp":         fmt.Sprintf("%d closed-loop GenerateOTP callers for %s, the emulator holding each OTP call %s; the facade's default --upstream-max-in-flight applies", b.opts.callers, heldOTPRun, heldOTPLatency),
		"connections": "connections the emulator accepted while the row ran (its ConnState hook), the bench's own admin connection excluded",
	}}
	run.Notes["grpc_connections"] = fmt.Sprintf("%d gRPC connections to the facade, shared round-robin by the callers (-grpc-conns)", b.opts.grpcConns)
	run.Notes["latency"] = "p50 and p99 of the OK OTP calls only; every other call is counted under its gRPC code and ErrorInfo reason"
	for _, streams := range append([]int{-1}, upstreamTLSStreamLimits...) {
		row, err := b.upstreamTLSRow(ctx, streams)
		if err != nil {
			return nil, err
		}
		run.Rows = append(run.Rows, *row)
	}
	plain, secure := run.Rows[0], run.Rows[1]
	for _, r := range run.Rows[2:] {
		if r.OTPPeakRSSMiB > secure.OTPPeakRSSMiB {
			secure.OTPPeakRSSMiB = r.OTPPeakRSSMiB // the target holds at every stream limit
		}
	}
	ratio := 0.0
	if plain.Throughput > 0 {
		ratio = secure.Throughput / plain.Throughput
	}
	notOK := int64(0)
	for _, r := range run.Rows[1:] {
		notOK += r.OTPErrors
	}
	run.Targets = []Target{
		{Name: "TLS/h2 OTP calls not OK, every stream limit", Target: "0",
			Measured: fmt.Sprint(notOK), Value: float64(notOK), Limit: 0, Status: passMiss(notOK == 0)},
		{Name: fmt.Sprintf("TLS/h2 throughput at %d in flight / plain", upstreamTLSInFlight), Target: fmt.Sprintf(">= %.1f", upstreamTLSMinRatio),
			Measured: fmt.Sprintf("%.2f", ratio), Value: ratio, Limit: upstreamTLSMinRatio, Status: passMiss(ratio >= upstreamTLSMinRatio)},
		{Name: fmt.Sprintf("TLS/h2 facade RSS at %d OTP calls in flight", b.opts.callers), Target: fmt.Sprintf("<= %.0f MiB", upstreamTLSMaxRSS),
			Measured: fmt.Sprintf("%.1f MiB", secure.OTPPeakRSSMiB), Value: secure.OTPPeakRSSMiB, Limit: upstreamTLSMaxRSS, Status: passMiss(secure.OTPPeakRSSMiB <= upstreamTLSMaxRSS)},
	}
	for i, streams := range upstreamTLSStreamLimits {
		// The connections the calls in flight need, one more tolerated for
		// a dial that races the last stream freeing up.
		limit := int64((facadeMaxInFlight+streams-1)/streams) + 1
		conns := run.Rows[i+1].UpstreamConns
		run.Targets = append(run.Targets, Target{
			Name:   fmt.Sprintf("TLS/h2 upstream connections, %d streams", streams),
			Target: fmt.Sprintf("<= %d", limit), Measured: fmt.Sprint(conns), Value: float64(conns), Limit: float64(limit),
			Status: passMiss(conns <= limit),
		})
	}
	return run, nil
}

// upstreamTLSRow measures one pair: emulator and facade, over plain
// HTTP/1.1 when streams is negative, else over TLS/h2 with an emulator
// that allows streams HTTP/2 streams per connection.
func (b *bench) upstreamTLSRow(ctx context.Context, streams int) (*UpstreamTLSRow, error) {
	useTLS := streams >= 0
	row := &UpstreamTLSRow{Upstream: "http/1.1 plain", OTPCallers: b.opts.callers}
	var emuFlags, facadeFlags []string
	var pool *x509.CertPool
	if useTLS {
		row.Upstream = fmt.Sprintf("https h2, %d streams", streams)
		caFile := filepath.Join(b.tmp, "emulator-ca.pem")
		emuFlags = []string{"--tls", "--tls-ca-out", caFile, "--http2-max-streams", fmt.Sprint(streams)}
		facadeFlags = []string{"--upstream-ca-file", caFile}
		defer func() { _ = os.Remove(caFile) }()
		// The CA file exists once the emulator printed its banner;
		// startPair reads it after.
		pool = x509.NewCertPool()
	}
	emu, err := startEmulator(ctx, b.emulatorBin, emuFlags...)
	if err != nil {
		return nil, err
	}
	b.track(emu.proc)
	defer b.stop(emu.proc)
	admin := newEmuAdmin(emu.baseURL)
	if useTLS {
		pem, err := os.ReadFile(filepath.Join(b.tmp, "emulator-ca.pem"))
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("emulator CA file: %v", err)
		}
		admin.hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	before, err := admin.transport(ctx)
	if err != nil {
		return nil, err
	}
	f, err := b.startFacade(ctx, emu, facadeFlags)
	if err != nil {
		return nil, err
	}
	defer b.stop(f.proc)
	cl, err := newClients(f, emu.baseURL, "", "", b.opts.grpcConns, max(upstreamTLSInFlight, b.opts.callers))
	if err != nil {
		return nil, err
	}
	defer cl.close()
	modes := cl.modes()
	p := &pair{emu: emu, facade: f, admin: admin}

	c, err := b.cell(ctx, p, modes[1], upstreamTLSInFlight, 1)
	if err != nil {
		return nil, err
	}
	row.Throughput, row.P99, row.FacadeCPUPer1k, row.Errors = c.Throughput, fmtDur(c.P99), c.FacadeCPUPer1k, c.Errors

	b.logf("%s: %d GenerateOTP callers, the emulator holding each call %s", row.Upstream, b.opts.callers, heldOTPLatency)
	if err := admin.setLatency(ctx, upstreamTLSRoute, heldOTPLatency); err != nil {
		return nil, err
	}
	peak := b.sampleRSS(f.pid())
	res := runLoad(ctx, b.opts.callers, heldOTPRun, modes[3].call)
	peakRSS := peak()
	st, err := readProcStat(f.pid(), b.clkTck)
	if err != nil {
		return nil, err
	}
	row.OTPCalls, row.OTPErrors, row.OTPFirstError = int64(len(res.samples)), res.errors, res.firstError
	row.OTPPeakRSSMiB = mib(max(peakRSS, st.rss))
	lat := latencies(res.samples)
	row.OTPP50, row.OTPP99, row.OTPReasons = fmtDur(percentile(lat, 0.5)), fmtDur(percentile(lat, 0.99)), res.reasons
	if len(res.samples) > 0 {
		var sum time.Duration
		for _, s := range res.samples {
			sum += s.lat
		}
		throughput := float64(len(res.samples)) / res.elapsed.Seconds()
		row.OTPMeanInFlight = throughput * (sum / time.Duration(len(res.samples))).Seconds() // Little's law
	}
	after, err := admin.transport(ctx)
	if err != nil {
		return nil, err
	}
	row.UpstreamConns = after.Connections - before.Connections
	row.UpstreamProtocol = after.Protocols
	b.logf("  %s: %.0f status calls/s at %d in flight, %.3f s CPU per 1k; OTP: peak RSS %.1f MiB, %.0f in flight on average, %d errors%s; %d upstream connections, protocols %v",
		row.Upstream, row.Throughput, upstreamTLSInFlight, row.FacadeCPUPer1k, row.OTPPeakRSSMiB, row.OTPMeanInFlight, row.OTPErrors, firstErrNote(row.OTPFirstError), row.UpstreamConns, row.UpstreamProtocol)
	return row, nil
}

// emuTransport is the transport part of the emulator's counters.
type emuTransport struct {
	Connections int64            `json:"connections"`
	Protocols   map[string]int64 `json:"protocols"`
}

// transport reads the emulator's connection and protocol counters.
func (a *emuAdmin) transport(ctx context.Context) (emuTransport, error) {
	var t emuTransport
	err := a.readCounters(ctx, &t)
	return t, err
}

// printUpstreamTLSRun prints mode U's table and targets.
func printUpstreamTLSRun(w io.Writer, r *UpstreamTLSRun) {
	fmt.Fprintf(w, "\nUpstream transport (%s, %d cores, %s)\n\n", r.Machine.CPU, r.Machine.Cores, r.Machine.GoVersion)
	fmt.Fprintln(w, "| upstream | status calls/s at 64 | p99 | facade CPU s/1k calls | RSS at 1,000 OTP in flight | OTP in flight (mean) | OTP OK | OTP p50 / p99 (OK) | OTP not OK | upstream connections | protocols |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %s | %.0f | %s | %.3f | %.1f MiB | %.0f | %d | %s / %s | %s | %d | %v |\n",
			row.Upstream, row.Throughput, row.P99, row.FacadeCPUPer1k, row.OTPPeakRSSMiB, row.OTPMeanInFlight, row.OTPCalls, row.OTPP50, row.OTPP99, fmtReasons(row.OTPReasons), row.UpstreamConns, row.UpstreamProtocol)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-4s %s: %s (target %s)\n", t.Status, t.Name, t.Measured, t.Target)
	}
}

// fmtReasons writes non-OK counts as "CODE/REASON n, ...", sorted, or
// "none".
func fmtReasons(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
