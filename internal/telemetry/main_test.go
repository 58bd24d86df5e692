package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/radkit/radkit-access-facade/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// scrape is one scrape of a Metrics handler over real HTTP: the raw text
// and its parsed families.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

// scrapeMetrics serves m.Handler() on loopback and scrapes it once, as
// Prometheus would.
func scrapeMetrics(t *testing.T, m *telemetry.Metrics) scrape {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: reading body: %v", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape: parsing: %v\n%s", err, body)
	}
	return scrape{text: string(body), families: families}
}

// series returns the metrics of family name whose labels include want.
func (s scrape) series(name string, want map[string]string) []*dto.Metric {
	f := s.families[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
outer:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue outer
			}
		}
		out = append(out, m)
	}
	return out
}

// value is the value of the one series of name with labels want: a
// counter's or gauge's value, a histogram's sample count. It fails the test
// unless exactly one series matches.
func (s scrape) value(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	ms := s.series(name, want)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1\n%s", name, want, len(ms), s.grep(name))
	}
	m := ms[0]
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s%v: unsupported metric type", name, want)
	return 0
}

// grep returns the scraped lines that mention name, for failure messages.
func (s scrape) grep(name string) string {
	var b strings.Builder
	for line := range strings.Lines(s.text) {
		if strings.Contains(line, name) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// labelValues returns every label value of every series, by label name.
func (s scrape) labelValues() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, f := range s.families {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if out[lp.GetName()] == nil {
					out[lp.GetName()] = map[string]bool{}
				}
				out[lp.GetName()][lp.GetValue()] = true
			}
		}
	}
	return out
}
