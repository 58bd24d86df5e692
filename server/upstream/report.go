package upstream

import (
	"context"
	"sync"
)

// Report is what became of the upstream request of one call, for the
// call's log line: the HTTP status the upstream answered it with, or that
// a layer in front of the client (a cache) answered in its place. Attach
// one with WithReport; the Client fills it in. It is safe for concurrent
// use: a shared request may finish after its first caller has gone.
type Report struct {
	mu     sync.Mutex
	status int
	cached bool
}

type reportKey struct{}

// WithReport returns ctx carrying a new Report, which the Client fills in
// for calls made with ctx (or a context derived from it).
func WithReport(ctx context.Context) (context.Context, *Report) {
	r := &Report{}
	return context.WithValue(ctx, reportKey{}, r), r
}

func reportFrom(ctx context.Context) *Report {
	r, _ := ctx.Value(reportKey{}).(*Report)
	return r
}

// StatusCode is the HTTP status of the upstream's last answer to the
// call's own request (not discovery or a token fetch), and 0 when none
// came.
func (r *Report) StatusCode() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Cached reports whether a cache answered the call in place of the
// upstream (see ReportCached).
func (r *Report) Cached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cached
}

// ReportCached notes, in the Report of ctx if it has one, that a cache in
// front of the Client answered the call: no request was made.
func ReportCached(ctx context.Context) {
	if r := reportFrom(ctx); r != nil {
		r.mu.Lock()
		r.cached = true
		r.mu.Unlock()
	}
}

// reportAnswer notes, in the Report of ctx if it has one, the status the
// upstream answered the call's own request with.
func reportAnswer(ctx context.Context, status int) {
	if r := reportFrom(ctx); r != nil {
		r.mu.Lock()
		r.status = status
		r.mu.Unlock()
	}
}
