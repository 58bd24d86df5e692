package facade

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"slices"
	"time"

	"github.com/radkit/radkit-access-facade/internal/identity"
)

// DefaultReloadPollInterval is the interval at which the files Reload
// reads are checked for changes, as cmd/radkit-access-facade sets it by
// default.
const DefaultReloadPollInterval = 5 * time.Second

// maxWatchedFileBytes bounds how much of one watched file is hashed: far
// above any caller-keys file, CA bundle or secret.
const maxWatchedFileBytes = 16 << 20

// watchedFiles returns every file Reload reads, by the path it is
// configured as. Reading by path follows symbolic links, so a Kubernetes
// Secret or ConfigMap volume, whose "..data" symlink is swapped to a new
// directory in one rename, reads as changed once the swap is done.
func (f *Facade) watchedFiles() []string {
	c := &f.cfg
	var files []string
	for _, p := range []string{c.CallerKeysFile, c.TLSCertFile, c.TLSKeyFile, c.ClientCAFile, c.UpstreamCAFile, c.ClientSecretFile, c.APITokenFile} {
		if p != "" {
			files = append(files, p)
		}
	}
	if c.IdentitiesFile != "" {
		files = append(files, identity.Files(c.IdentitiesFile)...)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// fingerprint is what each watched file held at one poll: a hash of its
// content, or of the error reading it.
type fingerprint map[string][sha256.Size]byte

func (f *Facade) fingerprint() fingerprint {
	fp := make(fingerprint)
	for _, path := range f.watchedFiles() {
		h := sha256.New()
		fi, err := os.Stat(path) // through symlinks, as the reload reads it
		switch {
		case err != nil:
			_, _ = io.WriteString(h, "error: "+err.Error())
		case !fi.Mode().IsRegular():
			// Never opened: reading a FIFO or a device would block the
			// poll, or take what the reload is meant to read.
			_, _ = io.WriteString(h, "not a regular file: "+fi.Mode().String())
		default:
			fh, err := os.Open(path)
			if err != nil {
				_, _ = io.WriteString(h, "error: "+err.Error())
				break
			}
			if _, err := io.Copy(h, io.LimitReader(fh, maxWatchedFileBytes)); err != nil {
				_, _ = io.WriteString(h, "error: "+err.Error())
			}
			_ = fh.Close()
		}
		fp[path] = [sha256.Size]byte(h.Sum(nil))
	}
	return fp
}

// changed returns the files whose content differs between a and b, or
// that only one of them has.
func (a fingerprint) changed(b fingerprint) []string {
	var out []string
	for p, h := range a {
		if bh, ok := b[p]; !ok || bh != h {
			out = append(out, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// watchFiles polls the files Reload reads every ReloadPollInterval and
// reloads when one has changed, until ctx is done. A change is applied
// once the files have stayed the same for one settle time (a fifth of the
// interval), so that files written one after the other without an atomic
// swap are read together; the reload itself is all or nothing, with the
// log lines of SIGHUP's. A failed reload is not retried until the files
// change again.
//
// Polling rather than inotify (fsnotify): a Kubernetes volume changes by
// swapping a symlink in the parent directory, which a watch on the files'
// paths never sees; polling by path sees it, and any other way a file
// changes (NFS, a bind mount, an editor's rename), with no dependency and
// at the cost of hashing a few small files every few seconds.
func (f *Facade) watchFiles(ctx context.Context) {
	interval := f.cfg.ReloadPollInterval
	if interval <= 0 {
		return
	}
	settle := interval / 5
	last := f.fingerprint()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := f.fingerprint()
		changed := last.changed(now)
		if len(changed) == 0 {
			continue
		}
		// Debounce: wait until the files stop changing.
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(settle):
			}
			again := f.fingerprint()
			if len(now.changed(again)) == 0 {
				break
			}
			now = again
		}
		f.logger.Info("watched files changed; reloading", "files", last.changed(now))
		_ = f.Reload() // logs its own outcome
		last = now
	}
}
