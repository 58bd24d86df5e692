package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// AtomicDir is a directory updated the way Kubernetes updates a mounted
// Secret or ConfigMap (pkg/volume/util/atomic_writer.go): the files live
// in a timestamped directory "..2026_01_02_15_04_05.N", "..data" is a
// symlink to it, and each file name is a symlink "name -> ..data/name".
// An update writes a new timestamped directory, points a new symlink
// "..data_tmp" at it, renames that over "..data" (one atomic step), and
// removes the old directory: the files' own paths never change, only what
// they resolve to.
type AtomicDir struct {
	Dir string

	mu  sync.Mutex
	n   int
	cur string // the timestamped directory in force
}

// NewAtomicDir returns an AtomicDir in a new temporary directory holding
// files (name to content).
func NewAtomicDir(tb testing.TB, files map[string]string) *AtomicDir {
	tb.Helper()
	d := &AtomicDir{Dir: tb.TempDir()}
	d.Update(tb, files)
	return d
}

// Path returns the path of the file name, as a pod sees it.
func (d *AtomicDir) Path(name string) string { return filepath.Join(d.Dir, name) }

// Update replaces the directory's content with files in one atomic
// symlink swap, as the kubelet does.
func (d *AtomicDir) Update(tb testing.TB, files map[string]string) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	ts := fmt.Sprintf("..2026_01_02_15_04_05.%d", d.n)
	if err := os.Mkdir(filepath.Join(d.Dir, ts), 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d.Dir, ts, name), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	tmp := filepath.Join(d.Dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Dir, "..data")); err != nil {
		tb.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(d.Dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			tb.Fatal(err)
		}
	}
	if d.cur != "" {
		if err := os.RemoveAll(filepath.Join(d.Dir, d.cur)); err != nil {
			tb.Fatal(err)
		}
	}
	d.cur = ts
}
