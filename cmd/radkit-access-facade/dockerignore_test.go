package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// dockerignore is the build context's allowlist as .dockerignore writes it,
// in the three forms that file keeps to: "*" (ignore everything), "!dir"
// or "!file" (admit it and all below it), and "**/pattern" (ignore any
// path element, or a file name, matching pattern). Docker's last matching
// line decides, as here.
type dockerignore struct {
	lines []string
}

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatalf("read .dockerignore: %v", err)
	}
	var d dockerignore
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case line == "*" && len(d.lines) == 0:
		case strings.HasPrefix(line, "!") && !strings.ContainsAny(line[1:], "*?[!"):
		case strings.HasPrefix(line, "**/") && !strings.Contains(line[3:], "/"):
		default:
			t.Fatalf(".dockerignore line %d %q: this test knows only a first \"*\", \"!path\" and \"**/name\" lines; keep the file to them", n, line)
		}
		d.lines = append(d.lines, line)
	}
	if len(d.lines) == 0 || d.lines[0] != "*" {
		t.Fatal(`.dockerignore must start with "*": an allowlist, so that nothing unlisted reaches the builder`)
	}
	return d
}

// admits reports whether the file at rel (slash-separated, from the
// repository root) is sent to the builder.
func (d dockerignore) admits(rel string) bool {
	admitted := false
	for _, line := range d.lines {
		switch {
		case line == "*":
			admitted = false
		case strings.HasPrefix(line, "!"):
			p := line[1:]
			if rel == p || strings.HasPrefix(rel, p+"/") {
				admitted = true
			}
		case strings.HasPrefix(line, "**/"):
			pattern := line[3:]
			for _, elem := range strings.Split(rel, "/") {
				if ok, _ := path.Match(pattern, elem); ok {
					admitted = false
				}
			}
		}
	}
	return admitted
}

// TestDockerignoreAdmitsTheBuild lists every file that
// `go build ./cmd/radkit-access-facade` reads from this module (Go files,
// embedded files, go.mod and go.sum) and checks that the allowlist admits
// each, and that what must stay out (binaries, .git, tests, docs, secrets
// examples) does.
func TestDockerignoreAdmitsTheBuild(t *testing.T) {
	d := readDockerignore(t)

	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=Dir,Module,GoFiles,CgoFiles,EmbedFiles,SFiles,HFiles,CFiles", "./cmd/radkit-access-facade")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			Dir    string
			Module *struct{ Main bool }
			GoFiles, CgoFiles, EmbedFiles,
			SFiles, HFiles, CFiles []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue // the standard library and module dependencies come from the module cache
		}
		dir, err := filepath.Rel(root, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, files := range [][]string{pkg.GoFiles, pkg.CgoFiles, pkg.EmbedFiles, pkg.SFiles, pkg.HFiles, pkg.CFiles} {
			for _, f := range files {
				needed = append(needed, filepath.ToSlash(filepath.Join(dir, f)))
			}
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files of this module in the build: %v", len(needed), needed)
	}
	for _, f := range needed {
		if !d.admits(f) {
			t.Errorf(".dockerignore keeps %s out of the build context, but the build reads it", f)
		}
	}

	for _, f := range []string{
		".git/config", "radkit-access-facade", "tools/bench/bench", "Dockerfile", "README.md",
		"docs/performance.md", "deploy/kubernetes/secret.example.yaml", "deploy/emulator-secrets/customer-a.api-token",
		"e2e/node/node_modules/x/index.js", "server/facade/facade_test.go", "server/upstream/testdata/x.json",
		"tools/bench/main.go", "tools/bench/go.mod", "tools/go.mod",
	} {
		if d.admits(f) {
			t.Errorf(".dockerignore admits %s into the build context; the build does not need it", f)
		}
	}
}
