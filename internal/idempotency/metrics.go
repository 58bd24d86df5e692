package idempotency

import "github.com/prometheus/client_golang/prometheus"

// Metric names a Store exports as a prometheus.Collector. None has a
// per-caller label: callers are unbounded in number, so the largest
// holder's count stands for them all.
const (
	// MetricKeys is the number of keys held, by state: "remembered" or
	// "in_flight".
	MetricKeys = "radkit_idempotency_keys"
	// MetricLargestCallerKeys is the number of keys held by the caller
	// holding the most, to compare with the per-caller limit.
	MetricLargestCallerKeys = "radkit_idempotency_largest_caller_keys"
	// MetricKeyLimit is the bound in force, by scope: "caller" or
	// "total".
	MetricKeyLimit = "radkit_idempotency_key_limit"
	// MetricRefusals counts the keys refused, by reason: "caller_quota"
	// (the caller held its limit), "store_full" (the Store held its
	// total) or "request_id_reused" (the key was taken with other fields).
	MetricRefusals = "radkit_idempotency_refusals_total"
)

var (
	keysDesc = prometheus.NewDesc(MetricKeys,
		"Idempotency keys (GenerateOTP request_ids) held, by state: remembered or in_flight.", []string{"state"}, nil)
	largestDesc = prometheus.NewDesc(MetricLargestCallerKeys,
		"Idempotency keys held by the caller holding the most (remembered or in flight).", nil, nil)
	limitDesc = prometheus.NewDesc(MetricKeyLimit,
		"Bound on the idempotency keys held at once, by scope: caller (each caller) or total.", []string{"scope"}, nil)
	refusalsDesc = prometheus.NewDesc(MetricRefusals,
		"New idempotency keys refused, by reason: caller_quota, store_full, request_id_reused.", []string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	ch <- keysDesc
	ch <- largestDesc
	ch <- limitDesc
	ch <- refusalsDesc
}

// Collect implements prometheus.Collector, from one Stats snapshot.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(st.Remembered), "remembered")
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(st.InFlight), "in_flight")
	ch <- prometheus.MustNewConstMetric(largestDesc, prometheus.GaugeValue, float64(st.LargestOwner))
	ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(st.MaxEntriesPerOwner), "caller")
	ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(st.MaxEntries), "total")
	ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(st.RefusedPerOwner), "caller_quota")
	ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(st.RefusedFull), "store_full")
	ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(st.RefusedReused), "request_id_reused")
}
