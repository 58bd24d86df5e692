package idempotency_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
)

func TestMetrics(t *testing.T) {
	s := newStore(t, idempotency.Config{MaxEntries: 5, MaxEntriesPerOwner: 3})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	var m minter
	do := func(owner, key, f string) error {
		_, _, err := s.Do(testCtx(t), owner, key, fp(f), m.mint)
		return err
	}
	for i := range 3 {
		if err := do("a", fmt.Sprint("k", i), "f"); err != nil {
			t.Fatal(err)
		}
	}
	if err := do("b", "k0", "f"); err != nil {
		t.Fatal(err)
	}
	// One refusal of each kind.
	if err := do("a", "k3", "f"); !errors.Is(err, idempotency.ErrFull) {
		t.Fatalf("a over quota: %v", err)
	}
	if err := do("b", "k0", "g"); !errors.Is(err, idempotency.ErrRequestIDReused) {
		t.Fatalf("b reusing k0: %v", err)
	}
	if err := do("c", "k0", "f"); err != nil {
		t.Fatal(err)
	}
	if err := do("d", "k0", "f"); !errors.Is(err, idempotency.ErrFull) {
		t.Fatalf("d with the store full: %v", err)
	}
	// Gather sorts families by name.
	want := `
# HELP radkit_idempotency_key_limit Bound on the idempotency keys held at once, by scope: caller (each caller) or total.
# TYPE radkit_idempotency_key_limit gauge
radkit_idempotency_key_limit{scope="caller"} 3
radkit_idempotency_key_limit{scope="total"} 5
# HELP radkit_idempotency_keys Idempotency keys (GenerateOTP request_ids) held, by state: remembered or in_flight.
# TYPE radkit_idempotency_keys gauge
radkit_idempotency_keys{state="in_flight"} 0
radkit_idempotency_keys{state="remembered"} 5
# HELP radkit_idempotency_largest_caller_keys Idempotency keys held by the caller holding the most (remembered or in flight).
# TYPE radkit_idempotency_largest_caller_keys gauge
radkit_idempotency_largest_caller_keys 3
# HELP radkit_idempotency_refusals_total New idempotency keys refused, by reason: caller_quota, store_full, request_id_reused.
# TYPE radkit_idempotency_refusals_total counter
radkit_idempotency_refusals_total{reason="caller_quota"} 1
radkit_idempotency_refusals_total{reason="request_id_reused"} 1
radkit_idempotency_refusals_total{reason="store_full"} 1
`
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var got strings.Builder
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(&got, mf); err != nil {
			t.Fatal(err)
		}
	}
	if strings.TrimSpace(got.String()) != strings.TrimSpace(want) {
		t.Errorf("metrics:\n%s\nwant:\n%s", got.String(), want)
	}
}
