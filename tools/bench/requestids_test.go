package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP radkit_idempotency_keys Keys held.
# TYPE radkit_idempotency_keys gauge
radkit_idempotency_keys{state="remembered"} 95000
radkit_idempotency_keys{state="in_flight"} 12
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 2.88e+07
# TYPE odd_series counter
odd_series{zlabel="b",alabel="with } and spaces"} 3 1700000000000
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 7
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`radkit_idempotency_keys{state="remembered"}`:       95000,
		`radkit_idempotency_keys{state="in_flight"}`:        12,
		"go_memstats_heap_inuse_bytes":                      2.88e7,
		`odd_series{alabel="with } and spaces",zlabel="b"}`: 3,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if len(m) != 4 {
		t.Errorf("parsed %d series, want 4 (summaries skipped): %v", len(m), m)
	}
	if _, err := parseMetrics(strings.NewReader("not_a_number NaNx\n")); err == nil {
		t.Error("a malformed exposition parsed without an error")
	}
	if _, err := parseMetrics(strings.NewReader("# only comments\n")); err == nil {
		t.Error("no samples parsed without an error")
	}
}

func TestParseFlagsRequestIDs(t *testing.T) {
	o, err := parseFlags([]string{"-request-ids", "30s", "-request-id-callers", "3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.requestIDs != 30*time.Second || o.requestIDCallers != 3 || o.requestIDInflight != 64 || o.requestIDFailRate != 0.05 {
		t.Errorf("options %+v", o)
	}
	for _, bad := range [][]string{
		{"-request-ids", "1s"}, {"-request-ids", "-1s"}, {"-request-id-callers", "0"},
		{"-request-id-inflight", "0"}, {"-request-id-fail-rate", "1"},
	} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
