// Package kubernetes holds the Kubernetes manifests of the facade; its test
// parses every manifest and checks the invariants the deployment relies on.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server"
)

// object is the part of a Kubernetes object that every manifest has.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

// deployment is the subset of apps/v1 Deployment the test checks.
type deployment struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool           `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
	HostNetwork                   bool            `yaml:"hostNetwork"`
	SecurityContext               securityContext `yaml:"securityContext"`
	Containers                    []container     `yaml:"containers"`
	Volumes                       []volume        `yaml:"volumes"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool `yaml:"privileged"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
		Add  []string `yaml:"add"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name            string          `yaml:"name"`
	Image           string          `yaml:"image"`
	Args            []string        `yaml:"args"`
	Env             []envVar        `yaml:"env"`
	Ports           []port          `yaml:"ports"`
	ReadinessProbe  *probe          `yaml:"readinessProbe"`
	LivenessProbe   *probe          `yaml:"livenessProbe"`
	Lifecycle       map[string]any  `yaml:"lifecycle"`
	SecurityContext securityContext `yaml:"securityContext"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string         `yaml:"name"`
	Value     *string        `yaml:"value"`
	ValueFrom map[string]any `yaml:"valueFrom"`
}

type port struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
	Port          int    `yaml:"port"`
	TargetPort    any    `yaml:"targetPort"`
	AppProtocol   string `yaml:"appProtocol"`
}

type probe struct {
	GRPC *struct {
		Port    int     `yaml:"port"`
		Service *string `yaml:"service"`
	} `yaml:"grpc"`
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec map[string]any `yaml:"exec"`
}

type volume struct {
	Name   string `yaml:"name"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
}

type service struct {
	Spec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []port            `yaml:"ports"`
	} `yaml:"spec"`
}

type secret struct {
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	obj  object
	node *yaml.Node
}

func (d doc) decode(t *testing.T, v any) {
	t.Helper()
	if err := d.node.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", d.file, d.obj.Kind, d.obj.Metadata.Name, err)
	}
}

// readManifests parses every *.yaml file here, every document of each.
func readManifests(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var docs []doc
	for _, file := range files {
		if file == "kustomization.yaml" {
			continue // kustomize's own, not an object of the cluster
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: invalid YAML: %v", file, err)
			}
			d := doc{file: file, node: &n}
			if err := n.Decode(&d.obj); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if d.obj.APIVersion == "" || d.obj.Kind == "" || d.obj.Metadata.Name == "" {
				t.Errorf("%s: a document lacks apiVersion, kind or metadata.name", file)
			}
			docs = append(docs, d)
		}
	}
	return docs
}

// only returns the single document of kind (and name, if not empty).
func only(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	var found []doc
	for _, d := range docs {
		if d.obj.Kind == kind && (name == "" || d.obj.Metadata.Name == name) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %q, found %d", kind, name, len(found))
	}
	return found[0]
}

func TestDeployment(t *testing.T) {
	docs := readManifests(t)
	var d deployment
	only(t, docs, "Deployment", "radkit-access-facade").decode(t, &d)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v: want at least 2", d.Spec.Replicas)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels", k, v)
		}
	}
	pod := d.Spec.Template.Spec
	if pod.HostNetwork {
		t.Error("hostNetwork: true")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken should be false: the facade needs no Kubernetes API")
	}
	if !isTrue(pod.SecurityContext.RunAsNonRoot) {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if u := pod.SecurityContext.RunAsUser; u != nil && *u == 0 {
		t.Error("pod securityContext.runAsUser is 0")
	}
	if pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod seccompProfile %q, want RuntimeDefault", pod.SecurityContext.SeccompProfile.Type)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	sc := c.SecurityContext
	switch {
	case !isTrue(sc.RunAsNonRoot) && !isTrue(pod.SecurityContext.RunAsNonRoot):
		t.Error("container may run as root")
	case !isTrue(sc.ReadOnlyRootFilesystem):
		t.Error("container securityContext.readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container securityContext.allowPrivilegeEscalation is not false")
	case isTrue(sc.Privileged):
		t.Error("container is privileged")
	case !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities drop %v add %v: want drop [ALL], add none", sc.Capabilities.Drop, sc.Capabilities.Add)
	case sc.SeccompProfile.Type != "" && sc.SeccompProfile.Type != "RuntimeDefault":
		t.Errorf("container seccompProfile %q", sc.SeccompProfile.Type)
	}

	if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.ContainsAny(c.Image, ":@") {
		t.Errorf("image %q: pin a tag or digest, not latest", c.Image)
	}
	if c.Lifecycle["preStop"] != nil {
		t.Error("a preStop hook cannot run in the distroless image (no shell, no sleep)")
	}
	rp := c.ReadinessProbe
	if rp == nil || rp.GRPC == nil || rp.GRPC.Port != 9090 {
		t.Error("readinessProbe is not a native gRPC probe on port 9090")
	} else if svc := rp.GRPC.Service; svc != nil && *svc != "" && *svc != accessv1.AccessService_ServiceDesc.ServiceName {
		t.Errorf("readinessProbe gRPC service %q: want \"\" or %q, the names that follow readiness", *svc, accessv1.AccessService_ServiceDesc.ServiceName)
	}
	// Liveness must not follow the upstream: only the health service name
	// server.LivenessService (or HTTP /healthz) stays SERVING through an
	// upstream outage.
	switch lp := c.LivenessProbe; {
	case lp == nil || (lp.GRPC == nil && lp.HTTPGet == nil):
		t.Error("livenessProbe missing, or neither gRPC nor HTTP")
	case lp.GRPC != nil && (lp.GRPC.Port != 9090 || lp.GRPC.Service == nil || *lp.GRPC.Service != server.LivenessService):
		t.Errorf("livenessProbe gRPC port %d service %v: want 9090 and %q, which does not follow the upstream", lp.GRPC.Port, lp.GRPC.Service, server.LivenessService)
	case lp.HTTPGet != nil && lp.HTTPGet.Path != "/healthz":
		t.Errorf("livenessProbe path %q: want /healthz, which does not follow the upstream", lp.HTTPGet.Path)
	}
	for _, kind := range []string{"cpu", "memory"} {
		if c.Resources.Requests[kind] == "" || c.Resources.Limits[kind] == "" {
			t.Errorf("resources: %s request and limit must both be set", kind)
		}
	}

	shutdown := 20 * time.Second // the facade's default --shutdown-timeout
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--shutdown-timeout="); ok {
			var err error
			if shutdown, err = time.ParseDuration(v); err != nil {
				t.Fatalf("args: %s: %v", a, err)
			}
		}
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds (%s) must exceed --shutdown-timeout %s", fmtSeconds(g), shutdown)
	}

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9090 || ports["http"] != 8080 {
		t.Errorf("container ports %v: want grpc 9090, http 8080", ports)
	}

	secretVolumes := map[string]string{} // volume name: secret name
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = v.Secret.SecretName
		}
	}
	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	// Secrets never appear as literal values.
	secretish := regexp.MustCompile(`SECRET|TOKEN|PASSWORD|KEY`)
	for _, e := range c.Env {
		if secretish.MatchString(e.Name) && !strings.HasSuffix(e.Name, "_FILE") && e.Value != nil {
			t.Errorf("env %s has a literal value: take it from a Secret", e.Name)
		}
	}
	if id := env["RADKIT_ACCESS_CLIENT_ID"]; id.ValueFrom == nil {
		t.Error("RADKIT_ACCESS_CLIENT_ID is not taken from a Secret")
	}
	if _, ok := env["RADKIT_ACCESS_CLIENT_SECRET"]; ok {
		t.Error("RADKIT_ACCESS_CLIENT_SECRET set: use RADKIT_ACCESS_CLIENT_SECRET_FILE with a mounted Secret")
	}
	// Each *_FILE lies in a read-only mount of a Secret volume.
	for name, wantSecret := range map[string]string{
		"RADKIT_ACCESS_CLIENT_SECRET_FILE":  "radkit-access-credentials",
		"RADKIT_FACADE_CALLER_KEYS_FILE":    "",
		"RADKIT_FACADE_REDIS_PASSWORD_FILE": "radkit-access-state",
		"RADKIT_FACADE_STATE_KEY_FILE":      "radkit-access-state",
	} {
		e, ok := env[name]
		if !ok || e.Value == nil {
			t.Errorf("env %s is not set to a path", name)
			continue
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(*e.Value, strings.TrimSuffix(m.MountPath, "/")+"/") {
				continue
			}
			mounted = true
			secretName, isSecret := secretVolumes[m.Name]
			switch {
			case !isSecret:
				t.Errorf("%s is on volume %s, which is not a Secret", name, m.Name)
			case wantSecret != "" && secretName != wantSecret:
				t.Errorf("%s is from Secret %s, want %s", name, secretName, wantSecret)
			case !m.ReadOnly:
				t.Errorf("volume mount %s of %s is not readOnly", m.MountPath, name)
			}
		}
		if !mounted {
			t.Errorf("%s=%s is not under any volume mount", name, *e.Value)
		}
	}
}

func TestService(t *testing.T) {
	docs := readManifests(t)
	var s service
	only(t, docs, "Service", "radkit-access-facade").decode(t, &s)
	var d deployment
	only(t, docs, "Deployment", "radkit-access-facade").decode(t, &d)

	if s.Spec.Type != "" && s.Spec.Type != "ClusterIP" {
		t.Errorf("service type %s, want ClusterIP", s.Spec.Type)
	}
	if len(s.Spec.Selector) == 0 {
		t.Error("service has no selector")
	}
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("service selector %s=%s matches no pod of the Deployment", k, v)
		}
	}
	want := map[string]struct {
		port        int
		appProtocol string
	}{"grpc": {9090, "grpc"}, "http": {8080, "http"}}
	for _, p := range s.Spec.Ports {
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected service port %s", p.Name)
			continue
		}
		if p.Port != w.port || p.AppProtocol != w.appProtocol {
			t.Errorf("service port %s: %d appProtocol %q, want %d %q", p.Name, p.Port, p.AppProtocol, w.port, w.appProtocol)
		}
		delete(want, p.Name)
	}
	if len(want) > 0 {
		t.Errorf("service lacks ports %v", want)
	}
}

// TestSecretsArePlaceholders keeps real secrets out of the repository: every
// Secret value is a placeholder, and only the example file has Secrets.
func TestSecretsArePlaceholders(t *testing.T) {
	docs := readManifests(t)
	n := 0
	for _, d := range docs {
		if d.obj.Kind != "Secret" {
			continue
		}
		n++
		if d.file != "secret.example.yaml" {
			t.Errorf("%s: Secret %s outside secret.example.yaml", d.file, d.obj.Metadata.Name)
		}
		var s secret
		d.decode(t, &s)
		if len(s.Data) > 0 {
			t.Errorf("Secret %s has base64 data: use placeholder stringData", d.obj.Metadata.Name)
		}
		for k, v := range s.StringData {
			if !strings.Contains(v, "REPLACE_ME") {
				t.Errorf("Secret %s key %s is not a REPLACE_ME placeholder", d.obj.Metadata.Name, k)
			}
		}
	}
	// The Deployment and the Redis StatefulSet refer to these.
	for _, name := range []string{"radkit-access-credentials", "radkit-access-caller-keys", "radkit-access-state"} {
		only(t, docs, "Secret", name)
	}
	if n == 0 {
		t.Error("no example Secret")
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func fmtSeconds(s *int) string {
	if s == nil {
		return "unset, 30s by default"
	}
	return (time.Duration(*s) * time.Second).String()
}
