// Package prometheus holds the facade's Prometheus alert and recording
// rules; its tests run them through promtool's unit tests and keep the
// PrometheusRule manifest equal to the rule file.
package prometheus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// promtool builds promtool at the version pinned in tools/go.mod.
func promtool(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		testkit.Skip(t, "builds promtool; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/prometheus/prometheus/cmd/promtool")
	cmd.Dir = filepath.Join("..", "..", "tools")
	if out, err := cmd.CombinedOutput(); err != nil {
		testkit.Skip(t, "cannot build promtool from tools/go.mod: "+err.Error()+"\n"+string(out))
	}
	return bin
}

// TestRules checks the rule file and runs its unit tests
// (alerts_test.yaml: for each alert, series that must fire and series
// that must not).
func TestRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestPrometheusRuleEqualsRuleFile: the Prometheus Operator manifest
// holds exactly the groups of alerts.yaml.
func TestPrometheusRuleEqualsRuleFile(t *testing.T) {
	var file struct {
		Groups []any `yaml:"groups"`
	}
	var manifest struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	for path, v := range map[string]any{"alerts.yaml": &file, "prometheusrule.yaml": &manifest} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if manifest.APIVersion != "monitoring.coreos.com/v1" || manifest.Kind != "PrometheusRule" {
		t.Errorf("prometheusrule.yaml is %s %s, want monitoring.coreos.com/v1 PrometheusRule", manifest.APIVersion, manifest.Kind)
	}
	if len(file.Groups) == 0 || !reflect.DeepEqual(file.Groups, manifest.Spec.Groups) {
		t.Error("prometheusrule.yaml's spec.groups differ from alerts.yaml's groups: regenerate it")
	}
}
