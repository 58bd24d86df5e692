package facade_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// callLines returns the per-call log lines of GetServiceStatus so far.
func (h *harness) callLines() []map[string]any {
	var out []map[string]any
	for _, m := range testkit.JSONLines(h.logs.String()) {
		if m["msg"] == "finished call" && m["grpc.method"] == "GetServiceStatus" {
			out = append(out, m)
		}
	}
	return out
}

// lastCallLine calls call and returns the per-call log line it added.
func (h *harness) lastCallLine(t *testing.T, call func()) map[string]any {
	t.Helper()
	before := len(h.callLines())
	call()
	// The line is written before the answer is sent; allow a moment all
	// the same on a loaded machine.
	var lines []map[string]any
	testkit.Eventually(t, 5*time.Second, "the call's log line", func() bool {
		lines = h.callLines()
		return len(lines) > before
	})
	if len(lines) != before+1 {
		t.Fatalf("%d log lines for one call, want 1", len(lines)-before)
	}
	return lines[before]
}

// TestCallLogLine checks the per-call log line of each door and of a cache
// hit: protocol says which door a call came in by (it said grpc for
// gateway calls), and upstream.status is the upstream's own answer, never
// one the facade made up (a cache hit was logged as 200).
func TestCallLogLine(t *testing.T) {
	h := startFacade(t, facade.Config{Emulator: true, StatusCacheTTL: time.Minute})
	h.waitServing(t)

	grpcLine := h.lastCallLine(t, func() { h.mustStatus(t) })
	httpLine := h.lastCallLine(t, func() {
		if res := h.do(t, http.MethodGet, httpStatusPath(liveService), nil); res.code != http.StatusOK {
			t.Fatalf("HTTP status call: %d %s", res.code, res.body)
		}
	})
	tests := []struct {
		name     string
		line     map[string]any
		protocol string
		upstream any // upstream.status; nil: absent
		cache    any // upstream.cache; nil: absent
	}{
		// The first lookup asks the upstream; the second is answered from
		// the facade's status cache.
		{"gRPC, upstream asked", grpcLine, "grpc", float64(200), nil},
		{"HTTP, cache hit", httpLine, "http", nil, "hit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.line["protocol"]; got != tt.protocol {
				t.Errorf("protocol = %v, want %s (line %v)", got, tt.protocol, tt.line)
			}
			if got := tt.line["upstream.status"]; got != tt.upstream {
				t.Errorf("upstream.status = %v, want %v (line %v)", got, tt.upstream, tt.line)
			}
			if got := tt.line["upstream.cache"]; got != tt.cache {
				t.Errorf("upstream.cache = %v, want %v (line %v)", got, tt.cache, tt.line)
			}
		})
	}
}
