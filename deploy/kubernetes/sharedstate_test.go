package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// defaultPrefix is the facade's default --redis-prefix.
const defaultPrefix = "radkit-facade:"

// manifestSet is what kubectl apply -k applies (kustomization.yaml: its
// resources and generated ConfigMaps), plus the optional additions (every
// other manifest here, such as hpa.yaml).
type manifestSet struct {
	objects    []map[string]any
	configMaps map[string]map[string]string // name: file name: content
	additions  []map[string]any
}

// loadSet reads the set through read, which returns a file's content.
func loadSet(read func(name string) ([]byte, error), files []string) (*manifestSet, error) {
	b, err := read("kustomization.yaml")
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `yaml:"name"`
			Files   []string `yaml:"files"`
			Options struct {
				DisableNameSuffixHash bool `yaml:"disableNameSuffixHash"`
			} `yaml:"options"`
		} `yaml:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	s := &manifestSet{configMaps: map[string]map[string]string{}}
	for _, g := range k.ConfigMapGenerator {
		if !g.Options.DisableNameSuffixHash {
			return nil, fmt.Errorf("configMapGenerator %s: set disableNameSuffixHash, so that the name the manifests use is the name", g.Name)
		}
		s.configMaps[g.Name] = map[string]string{}
		for _, f := range g.Files {
			b, err := read(f)
			if err != nil {
				return nil, err
			}
			s.configMaps[g.Name][filepath.Base(f)] = string(b)
		}
	}
	for _, f := range files {
		if f == "kustomization.yaml" || f == "secret.example.yaml" {
			continue
		}
		b, err := read(f)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if slices.Contains(k.Resources, f) {
				s.objects = append(s.objects, o)
			} else {
				s.additions = append(s.additions, o)
			}
		}
	}
	return s, nil
}

// get walks o along path (map keys, or list indexes as ints).
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[k]
		case int:
			l, _ := o.([]any)
			if k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func str(o any, path ...any) string { s, _ := get(o, path...).(string); return s }

func num(o any, path ...any) int {
	switch v := get(o, path...).(type) {
	case int:
		return v
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// matches reports whether labels has every key and value of selector.
func matches(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

// sharedStateProblems lists what stops the set keeping the README's
// promise that a request_id never yields two OTPs: a facade Deployment
// that can run more than one replica (replicas, or an HPA among the
// additions) must use a Redis of the set that persists every write (AOF
// appendfsync always, no eviction), that only the facade's pods reach
// (NetworkPolicy) and that the facade reaches as an ACL user restricted
// to its key prefix (no default user); and it must tell its replicas how
// many they are (RADKIT_FACADE_EXPECT_REPLICAS), so that one started
// without Redis warns.
func sharedStateProblems(s *manifestSet) []string {
	var problems []string
	kind := func(objs []map[string]any, k string) []map[string]any {
		var out []map[string]any
		for _, o := range objs {
			if str(o, "kind") == k {
				out = append(out, o)
			}
		}
		return out
	}
	for _, o := range kind(s.additions, "Deployment") {
		problems = append(problems, fmt.Sprintf("Deployment %s is outside the default set (kustomization.yaml)", str(o, "metadata", "name")))
	}
	for _, d := range kind(s.objects, "Deployment") {
		name := str(d, "metadata", "name")
		replicas := num(d, "spec", "replicas")
		if get(d, "spec", "replicas") == nil {
			replicas = 1
		}
		most := replicas
		for _, h := range append(kind(s.objects, "HorizontalPodAutoscaler"), kind(s.additions, "HorizontalPodAutoscaler")...) {
			if str(h, "spec", "scaleTargetRef", "kind") == "Deployment" && str(h, "spec", "scaleTargetRef", "name") == name {
				most = max(most, num(h, "spec", "maxReplicas"))
			}
		}
		env := map[string]string{}
		containers, _ := get(d, "spec", "template", "spec", "containers").([]any)
		for _, c := range containers {
			list, _ := get(c, "env").([]any)
			for _, e := range list {
				env[str(e, "name")] = str(e, "value")
			}
		}
		if n, _ := strconv.Atoi(env["RADKIT_FACADE_EXPECT_REPLICAS"]); n != replicas {
			problems = append(problems, fmt.Sprintf("Deployment %s: RADKIT_FACADE_EXPECT_REPLICAS %q, want its replicas, %d", name, env["RADKIT_FACADE_EXPECT_REPLICAS"], replicas))
		}
		if most <= 1 {
			continue
		}
		problems = append(problems, redisProblems(s, name, most, env, get(d, "spec", "template", "metadata", "labels"))...)
	}
	return problems
}

// redisProblems is sharedStateProblems for the Redis of one Deployment.
func redisProblems(s *manifestSet, deployment string, most int, env map[string]string, facadeLabels any) []string {
	fail := func(format string, args ...any) []string {
		return []string{fmt.Sprintf("Deployment %s runs up to %d replicas: ", deployment, most) + fmt.Sprintf(format, args...)}
	}
	raw := env["RADKIT_FACADE_REDIS_URL"]
	if raw == "" {
		return fail("no RADKIT_FACADE_REDIS_URL: each replica would keep its own request_ids")
	}
	if env["RADKIT_FACADE_REDIS_PASSWORD_FILE"] == "" || env["RADKIT_FACADE_STATE_KEY_FILE"] == "" {
		return fail("RADKIT_FACADE_REDIS_PASSWORD_FILE and RADKIT_FACADE_STATE_KEY_FILE must be set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("RADKIT_FACADE_REDIS_URL: %v", err)
	}
	var svc map[string]any
	for _, o := range s.objects {
		if str(o, "kind") == "Service" && str(o, "metadata", "name") == u.Hostname() {
			svc = o
		}
	}
	if svc == nil {
		return fail("RADKIT_FACADE_REDIS_URL names %s, no Service of the set", u.Hostname())
	}
	var redis map[string]any
	for _, o := range s.objects {
		if str(o, "kind") == "StatefulSet" && matches(get(svc, "spec", "selector"), get(o, "spec", "template", "metadata", "labels")) {
			redis = o
		}
	}
	if redis == nil {
		return fail("Service %s selects no StatefulSet of the set", u.Hostname())
	}
	var problems []string
	files := map[string]string{}
	volumes, _ := get(redis, "spec", "template", "spec", "volumes").([]any)
	for _, v := range volumes {
		for f, content := range s.configMaps[str(v, "configMap", "name")] {
			files[f] = content
		}
	}
	conf := directives(files["redis.conf"])
	for k, want := range map[string]string{"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"} {
		if conf[k] != want {
			problems = append(problems, fail("Redis %s: %s %q in its redis.conf, want %q", str(redis, "metadata", "name"), k, conf[k], want)...)
		}
	}
	prefix := cmp(env["RADKIT_FACADE_REDIS_PREFIX"], defaultPrefix)
	user := u.User.Username()
	acl := directives(files["users.acl"])
	rules := strings.Fields(acl["user "+user])
	switch {
	case user == "":
		problems = append(problems, fail("RADKIT_FACADE_REDIS_URL names no ACL user")...)
	case !slices.Contains(rules, "on") || !slices.Contains(rules, "~"+prefix+"*") || slices.Contains(rules, "~*") || slices.Contains(rules, "allkeys") || slices.Contains(rules, "+@all"):
		problems = append(problems, fail("users.acl: user %s %v, want it on, its keys ~%s* only and commands listed one by one", user, rules, prefix)...)
	}
	if acl["user default"] != "off" {
		problems = append(problems, fail("users.acl: the default user is %q, want off", acl["user default"])...)
	}
	policed := false
	for _, np := range s.objects {
		if str(np, "kind") != "NetworkPolicy" || !matches(get(np, "spec", "podSelector", "matchLabels"), get(redis, "spec", "template", "metadata", "labels")) {
			continue
		}
		from, _ := get(np, "spec", "ingress").([]any)
		only := len(from) > 0
		for _, rule := range from {
			peers, _ := get(rule, "from").([]any)
			only = only && len(peers) > 0
			for _, p := range peers {
				only = only && get(p, "namespaceSelector") == nil && get(p, "ipBlock") == nil && matches(get(p, "podSelector", "matchLabels"), facadeLabels)
			}
		}
		policed = policed || only
	}
	if !policed {
		problems = append(problems, fail("no NetworkPolicy admits only the facade's pods to Redis %s", str(redis, "metadata", "name"))...)
	}
	return problems
}

// directives reads a redis.conf or ACL file: the first word of each line
// (the first two for "user NAME") and the rest.
func directives(content string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		n := 1
		if f[0] == "user" && len(f) > 1 {
			n = 2
		}
		out[strings.Join(f[:n], " ")] = strings.Join(f[n:], " ")
	}
	return out
}

func cmp(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// TestReplicasShareState: no set of these manifests runs more than one
// facade replica without a shared, persistent, fenced Redis; and the
// check finds each way of breaking that promise.
func TestReplicasShareState(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edits := func(changes ...string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			b, err := os.ReadFile(name)
			s := string(b)
			for i := 0; i+3 <= len(changes); i += 3 {
				if changes[i] == name {
					if !strings.Contains(s, changes[i+1]) {
						t.Fatalf("%s: %q not found to change", name, changes[i+1])
					}
					s = strings.Replace(s, changes[i+1], changes[i+2], 1)
				}
			}
			return []byte(s), err
		}
	}
	for _, tc := range []struct {
		name    string
		changes []string // file, old, new
		want    string   // in a problem; "" for none
	}{
		{"as shipped", nil, ""},
		{"no Redis URL", []string{"deployment.yaml", "- name: RADKIT_FACADE_REDIS_URL", "- name: UNUSED_REDIS_URL"}, "no RADKIT_FACADE_REDIS_URL"},
		{"Redis not in the set", []string{"kustomization.yaml", "  - redis.yaml\n", ""}, "no Service of the set"},
		{"AOF everysec", []string{"redis/redis.conf", "appendfsync always", "appendfsync everysec"}, "appendfsync"},
		{"no AOF", []string{"redis/redis.conf", "appendonly yes", "appendonly no"}, "appendonly"},
		{"eviction", []string{"redis/redis.conf", "maxmemory-policy noeviction", "maxmemory-policy allkeys-lru"}, "maxmemory-policy"},
		{"ACL user with every key", []string{"redis/users.acl", "~radkit-facade:*", "~*"}, "users.acl"},
		{"default user on", []string{"redis/users.acl", "user default off", "user default on nopass ~* +@all"}, "default user"},
		{"NetworkPolicy admits everyone", []string{"redis.yaml", "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: radkit-access-facade\n", "        - namespaceSelector: {}\n"}, "NetworkPolicy"},
		{"replicas not told", []string{"deployment.yaml", `value: "2"`, `value: "1"`}, "RADKIT_FACADE_EXPECT_REPLICAS"},
		{"one replica, an HPA, no Redis", []string{"deployment.yaml", "- name: RADKIT_FACADE_REDIS_URL", "- name: UNUSED_REDIS_URL", "deployment.yaml", "replicas: 2", "replicas: 1", "deployment.yaml", `value: "2"`, `value: "1"`}, "runs up to 10 replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSet(edits(tc.changes...), files)
			if err != nil {
				t.Fatal(err)
			}
			problems := sharedStateProblems(s)
			if tc.want == "" {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q, want one about %q", problems, tc.want)
			}
		})
	}
}
