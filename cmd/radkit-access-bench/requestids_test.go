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
go_memstats_heap_inuse_bytes 2.88e+07
odd_series{label="with } and spaces"} 3 1700000000000
not_a_number NaNx
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`radkit_idempotency_keys{state="remembered"}`: 95000,
		`radkit_idempotency_keys{state="in_flight"}`:  12,
		"go_memstats_heap_inuse_bytes":                2.88e7,
		`odd_series{label="with } and spaces"}`:       3,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if _, ok := m["not_a_number"]; ok {
		t.Error("a malformed value was kept")
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
