package main

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docsRow is one row of the flag table of docs/configuration.md.
type docsRow struct {
	line     int
	flags    []string // without dashes
	env      []string
	defaults string // the Default cell, backquotes removed
}

var (
	docsFlagRE = regexp.MustCompile("`--([a-z0-9-]+)`")
	docsEnvRE  = regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
)

// readDocsTable parses the table under "## Flags and environment" in
// docs/configuration.md.
func readDocsTable(t *testing.T) []docsRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatalf("read docs/configuration.md: %v", err)
	}
	var (
		rows    []docsRow
		inTable bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			inTable = line == "## Flags and environment"
			continue
		case !inTable || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "| ---") || strings.HasPrefix(line, "| Flag"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("docs/configuration.md line %d: %d cells, want 4 (flag, environment, default, meaning)", n, len(cells))
		}
		row := docsRow{line: n, defaults: strings.ReplaceAll(strings.TrimSpace(cells[2]), "`", "")}
		for _, m := range docsFlagRE.FindAllStringSubmatch(cells[0], -1) {
			row.flags = append(row.flags, m[1])
		}
		for _, m := range docsEnvRE.FindAllStringSubmatch(cells[1], -1) {
			row.env = append(row.env, m[1])
		}
		rows = append(rows, row)
	}
	if len(rows) < 20 {
		t.Fatalf("docs/configuration.md: found %d rows under \"## Flags and environment\"; is the table still there?", len(rows))
	}
	return rows
}

// TestDocsMatchHelp checks docs/configuration.md against the command's
// own option table, which --help prints: every flag has a row naming its
// environment variable and, where --help shows one, its default; every
// credential variable is documented; and the page names no flag the
// command does not have.
func TestDocsMatchHelp(t *testing.T) {
	rows := readDocsTable(t)
	rowOf := map[string]docsRow{}
	documentedEnv := map[string]bool{}
	for _, r := range rows {
		for _, f := range r.flags {
			if prev, ok := rowOf[f]; ok {
				t.Errorf("docs/configuration.md lines %d and %d both document --%s", prev.line, r.line, f)
			}
			rowOf[f] = r
		}
		for _, e := range r.env {
			documentedEnv[e] = true
		}
	}

	c := config{from: map[string]string{}, secretFrom: map[string]string{}}
	c.setDefaults()
	opts := c.options()
	fs := newFlagSet(opts, c.credentials(), io.Discard)
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	envOf := map[string]string{}
	for _, o := range opts {
		envOf[o.flag] = o.env
	}
	fs.VisitAll(func(f *flag.Flag) {
		r, ok := rowOf[f.Name]
		if !ok {
			t.Errorf("--%s is not documented in docs/configuration.md", f.Name)
			return
		}
		if env := envOf[f.Name]; env != "" && !slices.Contains(r.env, env) {
			t.Errorf("docs/configuration.md line %d: --%s falls back on %s, but the row names %v", r.line, f.Name, env, r.env)
		}
		if !documentsDefault(r.defaults, f.DefValue) {
			t.Errorf("docs/configuration.md line %d: --%s defaults to %q (--help), but the row says %q", r.line, f.Name, f.DefValue, r.defaults)
		}
	})
	for name, r := range rowOf {
		if fs.Lookup(name) == nil {
			t.Errorf("docs/configuration.md line %d documents --%s, which the command does not have", r.line, name)
		}
	}
	for _, cred := range c.credentials() {
		names := []string{cred.env}
		if cred.file {
			names = append(names, cred.env+"_FILE")
		}
		for _, name := range names {
			if !documentedEnv[name] {
				t.Errorf("%s is not documented in docs/configuration.md", name)
			}
		}
	}
}

// documentsDefault reports whether a Default cell of the docs agrees with
// the default --help prints. A zero default (--help prints none, or a
// zero that the facade replaces with its own) is not checked.
func documentsDefault(cell, def string) bool {
	switch def {
	case "", "0", "false", "0s", "[]":
		return true
	}
	if strings.Contains(cell, def) {
		return true
	}
	want, err := time.ParseDuration(def)
	if err != nil {
		return false
	}
	got, err := time.ParseDuration(strings.Fields(cell + " x")[0])
	return err == nil && got == want
}
