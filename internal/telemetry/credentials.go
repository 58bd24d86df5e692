package telemetry

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricCredentialExpiry is when each upstream identity's long-lived
// credential (API token or client secret) expires, as a Unix time.
const MetricCredentialExpiry = "radkit_facade_credential_expiry_timestamp_seconds"

// CredentialExpiry is one credential's expiry, as ObserveCredentialExpiry's
// function reports it.
type CredentialExpiry struct {
	Identity string
	Kind     string // "api_token" or "client_secret"
	At       time.Time
}

// ObserveCredentialExpiry registers MetricCredentialExpiry, reporting at
// each scrape the credentials f returns: the identities in force, so that
// the series of an identity removed by a reload disappear with it, and a
// rotated credential's series moves to its new expiry. f must be cheap and
// safe for concurrent use. Call it once.
func (m *Metrics) ObserveCredentialExpiry(f func() []CredentialExpiry) error {
	c := &credentialCollector{
		desc: prometheus.NewDesc(MetricCredentialExpiry,
			"When the upstream identity's long-lived credential expires, as a Unix time: the API token's exp claim, or the client secret's configured expiry; absent when not known.",
			[]string{"identity", "kind"}, nil),
		list: f,
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("telemetry: register %s: %w", MetricCredentialExpiry, err)
	}
	return nil
}

// credentialCollector reads the credentials in force at each scrape.
type credentialCollector struct {
	desc *prometheus.Desc
	list func() []CredentialExpiry
}

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.list() {
		if e.At.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(e.At.UnixNano())/1e9, e.Identity, e.Kind)
	}
}
