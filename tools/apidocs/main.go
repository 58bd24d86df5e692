// Command apidocs vendors the API reference page's renderer, Swagger UI,
// into the gateway, which embeds it: it installs swagger-ui-dist at the
// version pinned in tools/apidocs/package-lock.json (npm ci, no install
// scripts: see .npmrc) and copies the few files the page needs into
// internal/gateway/apidocs. Run it from anywhere in the checkout
// after changing the pinned version:
//
//	go -C tools run ./apidocs
//
// The scripts and the stylesheet are stored gzip-compressed (name.gz): the
// bundle is 1.8 MB, over the 1 MB limit of a tracked file, and about a
// quarter of that compressed, which the facade serves as it is to every
// browser (Content-Encoding: gzip). With -check it changes nothing and
// fails unless every vendored file, decompressed, is byte for byte what the
// pinned package holds and no other vendored file is there (CI runs it, as
// it checks that gen/ equals buf generate's output). Comparing contents,
// not compressed bytes, keeps the check independent of the compressor.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// pkg is the npm package vendored.
const pkg = "swagger-ui-dist"

// vendored lists the files of the package that the page uses, and whether
// each is stored compressed. The page's own files (index.html and init.js)
// live beside them and are written by hand.
var vendored = []struct {
	name     string
	compress bool
}{
	{"swagger-ui-bundle.js", true},
	{"swagger-ui.css", true},
	{"favicon-32x32.png", false},
	// The licences travel with the code they cover.
	{"LICENSE", false},
	{"NOTICE", false},
	{"swagger-ui-bundle.js.LICENSE.txt", false},
}

// ownFiles are the page's own files in the output directory.
var ownFiles = []string{"index.html", "init.js"}

// npmTimeout bounds npm ci.
const npmTimeout = 5 * time.Minute

func main() {
	root := flag.String("root", "..", "the checkout's root `directory`")
	check := flag.Bool("check", false, "change nothing; fail unless the vendored files equal the pinned package's")
	flag.Parse()
	if err := run(*root, *check); err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
}

func run(root string, check bool) error {
	npmDir := filepath.Join(root, "tools", "apidocs")
	out := filepath.Join(root, "internal", "gateway", "apidocs")
	if err := npmCI(npmDir); err != nil {
		return err
	}
	src := filepath.Join(npmDir, "node_modules", pkg)
	version, err := packageVersion(src)
	if err != nil {
		return err
	}
	if check {
		if err := compare(src, out); err != nil {
			return fmt.Errorf("%w\ninternal/gateway/apidocs differs from %s %s as tools/apidocs/package-lock.json pins it; run: go -C tools run ./apidocs", err, pkg, version)
		}
		fmt.Printf("apidocs: internal/gateway/apidocs holds %s %s\n", pkg, version)
		return nil
	}
	if err := write(src, out); err != nil {
		return err
	}
	fmt.Printf("apidocs: wrote %s %s to internal/gateway/apidocs\n", pkg, version)
	return nil
}

// npmCI installs the pinned package in dir, exactly as the lockfile says.
func npmCI(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	// Scarf, a dependency of swagger-ui-dist, reads this too.
	cmd.Env = append(os.Environ(), "SCARF_ANALYTICS=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

func packageVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("reading %s's package.json: %w", pkg, err)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return "", fmt.Errorf("decoding %s's package.json: %w", pkg, err)
	}
	return p.Version, nil
}

// storedName is the name a vendored file has in the output directory.
func storedName(name string, compress bool) string {
	if compress {
		return name + ".gz"
	}
	return name
}

// write replaces the vendored files in out with the package's.
func write(src, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	stale, err := strangers(out)
	if err != nil {
		return err
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(out, name)); err != nil {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	for _, f := range vendored {
		data, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			return fmt.Errorf("reading %s from %s: %w", f.name, pkg, err)
		}
		if f.compress {
			if data, err = compress(data); err != nil {
				return fmt.Errorf("compressing %s: %w", f.name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(out, storedName(f.name, f.compress)), data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return nil
}

// compare fails unless out holds exactly the vendored files and the page's
// own, and each vendored file's content equals the package's.
func compare(src, out string) error {
	var errs []error
	stale, err := strangers(out)
	if err != nil {
		return err
	}
	for _, name := range stale {
		errs = append(errs, fmt.Errorf("%s is neither vendored nor one of the page's own files", name))
	}
	for _, f := range vendored {
		want, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			return fmt.Errorf("reading %s from %s: %w", f.name, pkg, err)
		}
		stored := storedName(f.name, f.compress)
		got, err := os.ReadFile(filepath.Join(out, stored))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", stored, err))
			continue
		}
		if f.compress {
			if got, err = decompress(got); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", stored, err))
				continue
			}
		}
		if !bytes.Equal(got, want) {
			errs = append(errs, fmt.Errorf("%s differs from the package's %s", stored, f.name))
		}
	}
	return errors.Join(errs...)
}

// strangers lists the files of out that are neither vendored nor the
// page's own: left over from another version, or added by hand.
func strangers(out string) ([]string, error) {
	known := slices.Clone(ownFiles)
	for _, f := range vendored {
		known = append(known, storedName(f.name, f.compress))
	}
	var stale []string
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		if !d.IsDir() && !slices.Contains(known, filepath.ToSlash(rel)) {
			stale = append(stale, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing %s: %w", out, err)
	}
	return stale, nil
}

// compress gzips data at the best compression, with no name or time in
// the header, so that the same input gives the same file.
func compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decompress(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return b, nil
}
