package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// The addresses the README's examples use, as the binary's defaults serve
// them.
const (
	readmeGRPCPort = "9090"
	readmeHTTPPort = "8080"
)

// readmeExample is one fenced ```sh block of README.md or a page under
// docs/ marked as an example:
//
//	# example: what it shows
//	# expect: text the output must contain (any number of lines)
//	# exit: the exit status, when it is not 0
type readmeExample struct {
	name   string
	file   string // relative to the repository root
	line   int    // of the opening fence
	script string
	expect []string
	exit   int
}

// readmeExamples parses the examples out of the Markdown file rel of the
// repository at root.
func readmeExamples(root, rel string) ([]readmeExample, error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	var (
		examples []readmeExample
		cur      *readmeExample
		body     []string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```sh":
			cur, body = &readmeExample{file: rel, line: n}, nil
		case cur != nil && trimmed == "```":
			if cur.name != "" {
				cur.script = strings.Join(body, "\n") + "\n"
				examples = append(examples, *cur)
			}
			cur = nil
		case cur != nil:
			body = append(body, line)
			if v, ok := strings.CutPrefix(trimmed, "# example:"); ok {
				cur.name = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(trimmed, "# expect:"); ok {
				cur.expect = append(cur.expect, strings.TrimSpace(v))
			} else if v, ok := strings.CutPrefix(trimmed, "# exit:"); ok {
				if cur.exit, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
					return nil, fmt.Errorf("%s line %d: # exit: %w", rel, n, err)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s line %d: unterminated code block", rel, cur.line)
	}
	return examples, nil
}

// removeSpace drops all white space: grpcurl and protojson vary theirs.
func removeSpace(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer lis.Close()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	return port
}

// portFree reports whether 127.0.0.1:port can be listened on now.
func portFree(port string) bool {
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return false
	}
	_ = lis.Close()
	return true
}

// TestREADMEExamples runs every example of README.md and of the pages
// under docs/ verbatim against the facade binary in emulator mode, with the pinned grpcurl first in PATH,
// and checks each one's output and exit status.
func TestREADMEExamples(t *testing.T) {
	for _, tool := range []string{"curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Skip(t, fmt.Sprintf("the README examples need %s, which is not on PATH (Debian: apt-get install %s)", tool, tool))
		}
	}
	root := repoRoot(t)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var examples []readmeExample
	for _, page := range append([]string{filepath.Join(root, "README.md")}, pages...) {
		rel, err := filepath.Rel(root, page)
		if err != nil {
			t.Fatal(err)
		}
		found, err := readmeExamples(root, rel)
		if err != nil {
			t.Fatal(err)
		}
		// A broken convention must not pass as "no examples".
		if rel == "README.md" && len(found) < 3 {
			t.Fatalf("found %d examples in README.md, want its three: is the # example: convention intact?", len(found))
		}
		examples = append(examples, found...)
	}
	if len(examples) < 20 {
		t.Fatalf("found %d examples in README.md and docs/, want the two dozen or so they have: is the # example: convention intact?", len(examples))
	}
	for _, ex := range examples {
		if len(ex.expect) == 0 {
			t.Errorf("%s line %d: example %q has no # expect: line, so it could not fail", ex.file, ex.line, ex.name)
		}
	}
	grpcurl := grpcurlBinary(t)

	// The examples use the default ports; other ports are used only when
	// those are taken, and the commands rewritten to match.
	grpcPort, httpPort := readmeGRPCPort, readmeHTTPPort
	if !portFree(grpcPort) || !portFree(httpPort) {
		grpcPort, httpPort = freePort(t), freePort(t)
	}
	var p *facadeProcess
	for attempt := 1; ; attempt++ {
		p, err = startBinary(t, []string{"--emulator", "--identities-file", filepath.Join(root, "deploy", "identities.example.yaml"),
			"--grpc-addr", "127.0.0.1:" + grpcPort, "--http-addr", "127.0.0.1:" + httpPort}, binaryEnv())
		if err == nil {
			break
		}
		// Another process may have taken a port between the check and
		// the start.
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v", attempt, err)
		grpcPort, httpPort = freePort(t), freePort(t)
	}
	rewrite := strings.NewReplacer(
		"localhost:"+readmeGRPCPort, "localhost:"+grpcPort, "127.0.0.1:"+readmeGRPCPort, "127.0.0.1:"+grpcPort,
		"localhost:"+readmeHTTPPort, "localhost:"+httpPort, "127.0.0.1:"+readmeHTTPPort, "127.0.0.1:"+httpPort,
	)
	if grpcPort != readmeGRPCPort || httpPort != readmeHTTPPort {
		t.Logf("ports %s and %s are busy: running the examples against %s (gRPC) and %s (HTTP) instead",
			readmeGRPCPort, readmeHTTPPort, grpcPort, httpPort)
	}

	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", p.grpcAddr, err)
	}
	waitServing(t, conn)
	_ = conn.Close()

	env := binaryEnv("PATH=" + filepath.Dir(grpcurl) + string(os.PathListSeparator) + os.Getenv("PATH"))
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", rewrite.Replace(ex.script))
			cmd.Dir = root
			cmd.Env = env
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			exit := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				exit = ee.ExitCode()
			case err != nil:
				t.Fatalf("running the example: %v", err)
			}
			if exit != ex.exit {
				t.Errorf("%s line %d: exit status %d, want %d", ex.file, ex.line, exit, ex.exit)
			}
			compact := removeSpace(string(out))
			for _, want := range ex.expect {
				if !strings.Contains(compact, removeSpace(want)) {
					t.Errorf("%s line %d: output does not contain %q", ex.file, ex.line, want)
				}
			}
			if t.Failed() {
				t.Logf("script:\n%s\noutput:\n%s", ex.script, out)
			}
		})
	}

	if code := p.terminate(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr.String())
	}
}
