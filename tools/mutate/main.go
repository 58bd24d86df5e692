// Command mutate is the repository's mutation check: it applies each of a
// list of known mutations (an exact text replacement in one file) to a
// temporary copy of the working tree, one at a time, runs the tests of the
// package the mutation belongs to, and expects them to fail. A mutation
// the tests do not notice "survived": some behaviour is not tested.
//
// Usage, from anywhere in the checkout:
//
//	go -C tools run ./mutate [-list FILE] [-run REGEXP] [-timeout D] [-v] [-n]
//
// -n only reports which mutations still apply, without running tests: run
// it after a change to find the STALE entries to refresh.
//
// It prints one line per mutation and then "killed N / M". Outcomes:
//
//	killed     the package's tests failed
//	timeout    the tests were stopped by go test -timeout: killed, but a
//	           test waited without a deadline of its own
//	SURVIVED   the tests passed with the mutation in place
//	STALE      the original text is not in the file (or not exactly once):
//	           the code moved on and the list needs refreshing
//	INVALID    the mutated code does not build
//
// M counts the mutations that applied and built. The exit status is 0 only
// when every mutation was killed and none was stale or invalid.
//
// The working tree is never modified: the files git knows of (tracked, and
// untracked but not ignored) are copied to a temporary directory first.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	list := flag.String("list", "", "mutation list (default: tools/mutate/mutations.txt of the checkout)")
	run := flag.String("run", "", "only the mutations whose name matches this regular expression")
	timeout := flag.Duration("timeout", 2*time.Minute, "go test -timeout for one mutation's tests")
	verbose := flag.Bool("v", false, "print the test output of surviving and invalid mutations")
	dryRun := flag.Bool("n", false, "only report which mutations still apply (STALE or not), run no tests")
	flag.Parse()
	// Interrupted, it stops the test run and still removes its temporary tree.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mainErr(ctx, options{list: *list, run: *run, timeout: *timeout, verbose: *verbose, dryRun: *dryRun}, os.Stdout); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

// errNotAllKilled is returned when some mutation was not killed.
var errNotAllKilled = errors.New("not every mutation was killed (see above)")

// options are the command's flags.
type options struct {
	list    string
	run     string
	timeout time.Duration
	verbose bool
	dryRun  bool
}

func mainErr(ctx context.Context, opt options, out io.Writer) error {
	listPath, run, timeout, verbose := opt.list, opt.run, opt.timeout, opt.verbose
	root, err := gitRoot()
	if err != nil {
		return err
	}
	if listPath == "" {
		listPath = filepath.Join(root, "tools", "mutate", "mutations.txt")
	}
	f, err := os.Open(listPath)
	if err != nil {
		return fmt.Errorf("open mutation list: %w", err)
	}
	muts, err := parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", listPath, err)
	}
	if run != "" {
		re, err := regexp.Compile(run)
		if err != nil {
			return fmt.Errorf("-run: %w", err)
		}
		var kept []mutation
		for _, m := range muts {
			if re.MatchString(m.name) {
				kept = append(kept, m)
			}
		}
		muts = kept
	}
	if len(muts) == 0 {
		return errors.New("no mutations to run")
	}

	tmp, err := os.MkdirTemp("", "radkit-mutate-")
	if err != nil {
		return fmt.Errorf("temporary tree: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(root, tmp); err != nil {
		return err
	}

	var killed, applied, stale, invalid, survived int
	start := time.Now()
	for _, m := range muts {
		t0 := time.Now()
		res, output, err := apply(ctx, tmp, m, timeout, opt.dryRun)
		if err != nil {
			return fmt.Errorf("mutation %q: %w", m.name, err)
		}
		switch res {
		case resKilled, resTimeout:
			killed++
			applied++
		case resSurvived:
			survived++
			applied++
		case resStale:
			stale++
		case resInvalid:
			invalid++
		case resApplies:
			applied++
		}
		fmt.Fprintf(out, "%-9s %-62s %s %s (%s)\n", res, m.name, m.pkg, m.file, time.Since(t0).Round(time.Second))
		if verbose && (res == resSurvived || res == resInvalid) {
			fmt.Fprintf(out, "%s\n", indent(output))
		}
	}
	if opt.dryRun {
		fmt.Fprintf(out, "\n%d apply, %d stale\n", applied, stale)
		if stale > 0 {
			return errors.New("some mutations are stale: refresh them in the list")
		}
		return nil
	}
	fmt.Fprintf(out, "\nkilled %d / %d", killed, applied)
	if stale+invalid > 0 {
		fmt.Fprintf(out, " (%d stale, %d invalid, not counted)", stale, invalid)
	}
	fmt.Fprintf(out, " in %s\n", time.Since(start).Round(time.Second))
	if survived+stale+invalid > 0 {
		return errNotAllKilled
	}
	return nil
}

// mutation is one entry of the list.
type mutation struct {
	name     string
	file     string // relative to the repository root
	pkg      string // go test packages, space-separated, e.g. "./server ./server/facade"
	runTests string // optional go test -run
	from, to string
	line     int // where the entry starts in the list
}

// result is a mutation's outcome.
type result string

const (
	resKilled   result = "killed"
	resTimeout  result = "timeout"
	resSurvived result = "SURVIVED"
	resStale    result = "STALE"
	resInvalid  result = "INVALID"
	resApplies  result = "applies" // -n only
)

// apply applies m in tree, runs its package's tests and restores the file.
// With dryRun, it only checks that m applies, and reports it "applies".
func apply(ctx context.Context, tree string, m mutation, timeout time.Duration, dryRun bool) (res result, output string, err error) {
	path := filepath.Join(tree, filepath.FromSlash(m.file))
	orig, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return resStale, "", nil
		}
		return "", "", err
	}
	if bytes.Count(orig, []byte(m.from)) != 1 {
		return resStale, "", nil
	}
	if dryRun {
		return resApplies, "", nil
	}
	mutated := bytes.Replace(orig, []byte(m.from), []byte(m.to), 1)
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return "", "", err
	}
	defer func() {
		if rerr := os.WriteFile(path, orig, 0o644); rerr != nil && err == nil {
			err = fmt.Errorf("restore %s: %w", m.file, rerr)
		}
	}()

	args := []string{"test", "-count=1", "-timeout", timeout.String()}
	if m.runTests != "" {
		args = append(args, "-run", m.runTests)
	}
	args = append(args, strings.Fields(m.pkg)...)
	// The outer bound only guards against go test itself hanging.
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = tree
	cmd.WaitDelay = 10 * time.Second
	out, runErr := cmd.CombinedOutput()
	text := string(out)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return "", text, fmt.Errorf("interrupted: %w", cause)
	}
	switch {
	case runErr == nil:
		return resSurvived, text, nil
	case strings.Contains(text, "[build failed]") || strings.Contains(text, "[setup failed]"):
		return resInvalid, text, nil
	case strings.Contains(text, "panic: test timed out") || ctx.Err() != nil:
		return resTimeout, text, nil
	default:
		return resKilled, text, nil
	}
}

// parse reads a mutation list. An entry is:
//
//	=== name
//	file: path/relative/to/root.go
//	pkg: ./package [./another]
//	run: TestRegexp            (optional)
//	<<<
//	original text, one or more lines, exactly as in the file
//	>>>
//	replacement text (may be empty)
//
// The entry ends at the next "===" line or at the end of the list. Lines
// starting with # outside the texts are comments. The texts are taken
// without their final newline, and trailing blank lines of the replacement
// are dropped.
func parse(r io.Reader) ([]mutation, error) {
	var (
		muts  []mutation
		cur   *mutation
		state int // 0 headers, 1 from, 2 to
		from  []string
		to    []string
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.file == "" || cur.pkg == "" || state != 2 || len(from) == 0 {
			return fmt.Errorf("line %d: entry %q needs file:, pkg:, <<< original and >>> replacement", cur.line, cur.name)
		}
		// Blank lines between entries belong to no text.
		for len(to) > 0 && strings.TrimSpace(to[len(to)-1]) == "" {
			to = to[:len(to)-1]
		}
		cur.from, cur.to = strings.Join(from, "\n"), strings.Join(to, "\n")
		if cur.from == cur.to {
			return fmt.Errorf("line %d: entry %q changes nothing", cur.line, cur.name)
		}
		muts = append(muts, *cur)
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			if err := finish(); err != nil {
				return nil, err
			}
			name = strings.TrimSpace(name)
			if prev, dup := seen[name]; dup {
				return nil, fmt.Errorf("line %d: name %q already used on line %d", n, name, prev)
			}
			seen[name] = n
			cur, state, from, to = &mutation{name: name, line: n}, 0, nil, nil
			continue
		}
		switch {
		case state == 0 && line == "<<<":
			state = 1
		case state == 1 && line == ">>>":
			state = 2
		case state == 1:
			from = append(from, line)
		case state == 2:
			to = append(to, line)
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case cur == nil:
			return nil, fmt.Errorf("line %d: text before the first === entry", n)
		default:
			key, value, ok := strings.Cut(line, ":")
			value = strings.TrimSpace(value)
			switch {
			case !ok:
				return nil, fmt.Errorf("line %d: want key: value, <<< or >>>", n)
			case key == "file":
				cur.file = value
			case key == "pkg":
				cur.pkg = value
			case key == "run":
				cur.runTests = value
			default:
				return nil, fmt.Errorf("line %d: unknown key %q", n, key)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return muts, nil
}

// gitRoot returns the top of the checkout.
func gitRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse --show-toplevel (run inside the checkout): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies the files git knows of in root (tracked, and untracked
// but not ignored, as they are in the working tree) to dst.
func copyTree(root, dst string) error {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, rel := range strings.Split(string(out), "\x00") {
		if rel == "" {
			continue
		}
		src := filepath.Join(root, rel)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree, not yet in the index
		}
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// indent prefixes every line of s for the verbose output.
func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
