package main

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// repoRoot is the repository root, relative to this package's directory.
const repoRoot = "../.."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// stage is one FROM and the instructions that follow it.
type stage struct {
	from         instruction
	instructions []instruction
}

// readDockerfile parses the repository's Dockerfile into stages. It knows
// what this Dockerfile uses: comments, blank lines, backslash continuations.
func readDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatalf("open Dockerfile: %v", err)
	}
	defer f.Close()
	var (
		stages  []stage
		cur     strings.Builder
		startAt int
	)
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: startAt}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in})
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" { // only ARG may precede the first FROM
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			return
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			startAt = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	flush()
	return stages
}

// image returns the image of a FROM instruction, flags such as --platform
// dropped.
func (s stage) image() string {
	for _, f := range strings.Fields(s.from.args) {
		if !strings.HasPrefix(f, "--") {
			return f
		}
	}
	return ""
}

// find returns the instructions of s with command cmd.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goBuild returns the build stage's `go build` command line split into
// words, and the ENV settings of the stage.
func goBuild(t *testing.T, s stage) (words []string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	for _, in := range s.find("ENV") {
		for _, kv := range shellWords(t, in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	for _, in := range s.find("RUN") {
		_, cmd, ok := strings.Cut(in.args, "go build ")
		if !ok {
			continue
		}
		return append([]string{"go", "build"}, shellWords(t, cmd)...), env
	}
	t.Fatal("Dockerfile: the build stage has no RUN ... go build")
	return nil, nil
}

// shellWords splits s as a POSIX shell would for the simple quoting used
// in the Dockerfile (single and double quotes, no escapes inside them).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// TestDockerfileInvariants checks what the image promises: a multi-stage
// build on the go.mod Go version, a static (CGO_ENABLED=0), trimmed build
// with the version injected, a distroless or scratch final stage running as
// a non-root user, and the listen addresses and ports.
func TestDockerfileInvariants(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s); want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if img := build.image(); !strings.HasPrefix(img, "golang:"+string(m[1])) {
		t.Errorf("build stage FROM %s: want golang:%s... (go.mod says go %s)", img, m[1], m[1])
	}

	words, env := goBuild(t, build)
	if env["CGO_ENABLED"] != "0" && !slices.Contains(words, "CGO_ENABLED=0") {
		t.Error("the build stage does not set CGO_ENABLED=0")
	}
	if !slices.Contains(words, "-trimpath") {
		t.Errorf("go build without -trimpath: %q", words)
	}
	ldflags := flagValue(words, "-ldflags")
	for _, want := range []string{"-s", "-w", "-X"} {
		if !slices.Contains(strings.Fields(ldflags), want) {
			t.Errorf("-ldflags %q lacks %s", ldflags, want)
		}
	}
	if !strings.Contains(ldflags, "main.version=${VERSION}") && !strings.Contains(ldflags, "main.version=$VERSION") {
		t.Errorf("-ldflags %q does not inject VERSION into main.version", ldflags)
	}
	hasVersionArg := false
	for _, in := range build.find("ARG") {
		if in.args == "VERSION" || strings.HasPrefix(in.args, "VERSION=") {
			hasVersionArg = in.line < lineOfGoBuild(build)
		}
	}
	if !hasVersionArg {
		t.Error("the build stage declares no ARG VERSION before go build")
	}

	if img := final.image(); !strings.HasPrefix(img, "gcr.io/distroless/static") && img != "scratch" {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static... or scratch", img)
	}
	users := final.find("USER")
	if len(users) == 0 {
		t.Error("final stage has no USER")
	} else if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q is root", users[len(users)-1].args)
	}
	entry := final.find("ENTRYPOINT")
	if len(entry) != 1 || !strings.HasPrefix(entry[0].args, "[") {
		t.Errorf("final stage ENTRYPOINT %v: want one, in exec (JSON) form, so that the binary is PID 1 and gets SIGTERM", entry)
	}
	var exposed []string
	for _, in := range final.find("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, port := range []string{"9090", "8080"} {
		if !slices.Contains(exposed, port) {
			t.Errorf("final stage does not EXPOSE %s (exposes %v)", port, exposed)
		}
	}
	finalEnv := map[string]string{}
	for _, in := range final.find("ENV") {
		for _, kv := range shellWords(t, in.args) {
			k, v, _ := strings.Cut(kv, "=")
			finalEnv[k] = v
		}
	}
	for k, want := range map[string]string{
		"RADKIT_FACADE_GRPC_ADDR":  "0.0.0.0:9090",
		"RADKIT_FACADE_HTTP_ADDR":  "0.0.0.0:8080",
		"RADKIT_FACADE_LOG_FORMAT": "json",
	} {
		if finalEnv[k] != want {
			t.Errorf("final stage ENV %s=%q, want %q", k, finalEnv[k], want)
		}
	}
}

func lineOfGoBuild(s stage) int {
	for _, in := range s.find("RUN") {
		if strings.Contains(in.args, "go build ") {
			return in.line
		}
	}
	return 0
}

// flagValue returns the value of flag in words ("-f v" or "-f=v").
func flagValue(words []string, flag string) string {
	for i, w := range words {
		if w == flag && i+1 < len(words) {
			return words[i+1]
		}
		if v, ok := strings.CutPrefix(w, flag+"="); ok {
			return v
		}
	}
	return ""
}

// TestStaticBinary builds the facade with the Dockerfile's own go build
// command and environment, and checks that the binary runs on a distroless
// static (or scratch) image: no ELF interpreter, no shared libraries. It
// then runs --version to check the injected version.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds the facade binary (about 20s); skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		testkit.Skip(t, "no go command in PATH")
	}
	stages := readDockerfile(t)
	words, env := goBuild(t, stages[0])
	const version = "v0.0.0-static-test"
	out := filepath.Join(t.TempDir(), "radkit-access-facade")

	// The Dockerfile's words, with VERSION substituted and the output
	// redirected; the platform is the host's.
	var args []string
	for i := 2; i < len(words); i++ {
		w := strings.NewReplacer("${VERSION}", version, "$VERSION", version).Replace(words[i])
		if w == "-o" {
			i++
			args = append(args, "-o", out)
			continue
		}
		args = append(args, w)
	}
	// The build is bounded by the test binary's own -timeout only: on a
	// loaded machine a cold build takes minutes, and no clock of ours
	// should fail it.
	cmd := exec.CommandContext(t.Context(), goBin, append([]string{"build"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	t.Logf("go build %s (env %v)", strings.Join(args, " "), env)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("read the binary as ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked and will not start on distroless/static")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("read DT_NEEDED: %v", err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s was not applied")
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	got, err := exec.CommandContext(ctx, out, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, got)
	}
	if want := "radkit-access-facade " + version; strings.TrimSpace(string(got)) != want {
		t.Errorf("--version printed %q, want %q", strings.TrimSpace(string(got)), want)
	}
}
