package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryNamesNoFlags checks the layering rule that only this command
// knows its flags and environment variables: no library package (server/)
// may name them, in code or in messages, so that a library's errors speak
// of its Config fields and this command says them in its user's terms.
func TestLibraryNamesNoFlags(t *testing.T) {
	var c config
	var names []string
	for _, o := range c.options() {
		names = append(names, "--"+o.flag, o.env)
	}
	for _, cred := range c.credentials() {
		names = append(names, cred.env)
	}
	names = append(names, "RADKIT_") // any variable of ours, present or future
	root := filepath.Join(repoRoot, "server")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, n := range names {
				if strings.Contains(line, n) {
					t.Errorf("%s:%d names %s, which only cmd/radkit-access-facade may know: %s", path, i+1, n, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
}
