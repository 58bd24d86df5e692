package facade_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestPprof checks that profiles are served on the metrics listener only
// when Pprof is set, and never on the caller-facing HTTP listener.
func TestPprof(t *testing.T) {
	tests := []struct {
		name  string
		pprof bool
	}{
		{"off by default", false},
		{"on", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startFacade(t, facade.Config{Emulator: true, MetricsAddr: "127.0.0.1:0", Pprof: tt.pprof})
			get := func(base string) (int, string) {
				t.Helper()
				r, err := h.http.Get(base + "/debug/pprof/cmdline")
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
				return r.StatusCode, string(b)
			}
			code, body := get("http://" + h.f.MetricsAddr())
			if tt.pprof && (code != http.StatusOK || body == "") {
				t.Errorf("metrics listener with Pprof: HTTP %d %q, want 200 and the command line", code, body)
			}
			if !tt.pprof && code != http.StatusNotFound {
				t.Errorf("metrics listener without Pprof: HTTP %d, want 404", code)
			}
			if code, _ := get(h.base); code == http.StatusOK {
				t.Errorf("caller-facing HTTP listener served /debug/pprof/ (HTTP %d)", code)
			}
		})
	}
}
