//go:build unix

package facade_test

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestFileWatchLeavesFIFOsAlone: a watched file that is a FIFO (a keys file
// fed by another process) is never opened by the poll, which would block on
// it and take what a reload is meant to read: a reload on SIGHUP reads the
// keys fed to it.
func TestFileWatchLeavesFIFOsAlone(t *testing.T) {
	const newKey = "k-alice-fifo-Qw3Er5Ty7Ui"
	fifo := filepath.Join(t.TempDir(), "callers.keys")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	// feed writes content once a reader opens the FIFO.
	feed := func(content string) <-chan error {
		written := make(chan error, 1)
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				written <- err
				return
			}
			_, err = f.WriteString(content)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			written <- err
		}()
		return written
	}
	started := feed(keysLine(map[string]string{"alice": aliceKey}))
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: fifo, ReloadPollInterval: 10 * time.Millisecond})
	if err := testkit.Receive(t, started, 30*time.Second, "the keys read at start"); err != nil {
		t.Fatal(err)
	}
	h.waitServing(t)
	time.Sleep(200 * time.Millisecond) // many polls of the FIFO

	fed := feed(keysLine(map[string]string{"alice": newKey}))
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.f.Reload() }()
	if err := testkit.Receive(t, reloaded, 30*time.Second, "the reload to read the keys fed to it"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := testkit.Receive(t, fed, 30*time.Second, "the fed keys to be read"); err != nil {
		t.Fatal(err)
	}
	if code, _ := h.as(t, newKey, http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n"), nil); code != http.StatusOK {
		t.Errorf("the key fed to the reload: %d, want 200", code)
	}
}
