package facade_test

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// referencedMetrics returns the metric names that the alert rules and the
// Grafana dashboards of deploy/ name, with the file naming each.
// Recording rules (names with a colon) are not the facade's.
func referencedMetrics(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..", "deploy")
	files, err := filepath.Glob(filepath.Join(root, "grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "prometheus", "alerts.yaml"))
	nameRE := regexp.MustCompile(`\b(?:radkit|grpc_server)_[a-z0-9_]+\b`)
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range nameRE.FindAllString(string(b), -1) {
			out[m] = filepath.Base(f)
		}
	}
	if len(out) < 15 {
		t.Fatalf("found only %d metric names in %v: is the pattern still right?", len(out), files)
	}
	return out
}

// exportedFamilies returns the metric families a /metrics text exposes
// (the names of its # TYPE lines) and each family's sample names
// (histogram _bucket, _sum, _count; counters' _total).
func exportedFamilies(text string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			out[strings.Fields(f)[0]] = true
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		out[strings.Fields(name)[0]] = true
	}
	return out
}

// TestDashboardAndAlertMetricsExported: every metric the alert rules and
// the dashboard name is one the facade exports, read from the /metrics of
// a facade with every part that exports something configured (identities
// with credential expiries, Redis, an upstream budget) and exercised, and
// of one with the in-memory request_id store, so
// that a renamed metric cannot leave an alert that never fires or an
// empty panel.
func TestDashboardAndAlertMetricsExported(t *testing.T) {
	redis := testkit.StartRedis(t)
	dir := t.TempDir()
	file := identitiesFile(t, dir, strings.Replace(identitiesAB, "    client_secret_file: customer-b.client-secret\n",
		"    client_secret_file: customer-b.client-secret\n    client_secret_expires_at: 2027-06-30T00:00:00Z\n", 1))
	h := startFacade(t, facade.Config{Emulator: true, IdentitiesFile: file, RedisURL: redis.URL(), StateKey: stateKey(t), UpstreamRateLimit: 100})
	h.waitServing(t)
	if _, err := h.otp(); err != nil {
		t.Fatal(err)
	}
	h.mustStatus(t)
	// A Redis failure, so that the state store's fallback counter has a
	// series.
	redis.Stop()
	req := otpRequest()
	req.RequestId = "0b6f8a52-4e3c-4d7a-9b1e-3f2a1c0d9e8f"
	_, _ = h.client.GenerateOTP(callCtx(t), req)

	exported := exportedFamilies(string(h.do(t, http.MethodGet, "/metrics", nil).body))
	// The request_id store's metrics are the in-memory store's: with
	// Redis its capacity is Redis's own.
	mem := startFacade(t, facade.Config{Emulator: true})
	mem.waitServing(t)
	for name := range exportedFamilies(string(mem.do(t, http.MethodGet, "/metrics", nil).body)) {
		exported[name] = true
	}
	var missing []string
	for name, where := range referencedMetrics(t) {
		if !exported[name] {
			missing = append(missing, name+" (in "+where+")")
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("named by deploy/ but not exported by the facade:\n  %s", strings.Join(missing, "\n  "))
	}
}
