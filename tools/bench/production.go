package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// production is what -production and -tracing add to the grid's facade.
type production struct {
	facadeFlags []string // for the grid's facade
	facadeEnv   []string // for the grid's facade
	callerKey   string   // sent by every grid client to the facade, or ""
	sink        *http.Server
	exports     atomic.Int64 // OTLP exports the sink received
	logf        func(format string, args ...any)
}

// productionSettings prepares -production (a caller key the facade
// requires, and the rate limiter on at a rate the run never reaches, as
// the production row of the floor table needs) and -tracing (an OTLP/HTTP sink that
// accepts every span export, and the grid facade's environment pointing at it,
// so that spans are made, batched and sent as with a real collector).
func (b *bench) productionSettings(ctx context.Context) (*production, error) {
	p := &production{logf: b.logf}
	if b.opts.production {
		keys, file, err := writeCallerKeys(b.tmp, 1)
		if err != nil {
			return nil, err
		}
		p.callerKey = keys[0]
		p.facadeFlags = []string{"--caller-keys-file", file, "--rate-limit", "1000000", "--rate-burst", "1000000"}
	}
	if b.opts.tracing {
		lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("OTLP sink: %w", err)
		}
		p.sink = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.exports.Add(1)
			otlpSink(w, r)
		})}
		go func() { _ = p.sink.Serve(lis) }()
		p.facadeEnv = append(p.facadeEnv,
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://"+lis.Addr().String()+"/v1/traces",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf",
			"OTEL_TRACES_SAMPLER=always_on")
		b.logf("tracing: every span exported to the OTLP sink on %s", lis.Addr())
	}
	return p, nil
}

// close stops the OTLP sink, if any, and says how many exports it took:
// none would mean the facade ran without its tracer.
func (p *production) close() {
	if p.sink != nil {
		_ = p.sink.Close()
		p.logf("tracing: the OTLP sink received %d span exports", p.exports.Load())
	}
}

// otlpSink accepts an OTLP/HTTP export and drops it (bounded at 16 MiB,
// far above a batch of spans).
func otlpSink(w http.ResponseWriter, r *http.Request) {
	_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 16<<20))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}
