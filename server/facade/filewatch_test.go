package facade_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// keysLine is a caller-keys file granting each name its key.
func keysLine(entries map[string]string) string {
	var b strings.Builder
	for name, key := range entries {
		sum := sha256.Sum256([]byte(key))
		fmt.Fprintf(&b, "%s %s\n", name, hex.EncodeToString(sum[:]))
	}
	return b.String()
}

// TestReloadOnMountedFileChange: a caller-keys file mounted the way
// Kubernetes mounts a Secret is reloaded when its "..data" symlink is
// swapped, with no SIGHUP; a broken update is refused and keeps the keys
// in force.
func TestReloadOnMountedFileChange(t *testing.T) {
	const newKey = "k-alice-new-Zx8Wq2Lr5Tn"
	mount := testkit.NewAtomicDir(t, map[string]string{"callers.keys": keysLine(map[string]string{"alice": aliceKey})})
	h := startFacade(t, facade.Config{Emulator: true, CallerKeysFile: mount.Path("callers.keys"), ReloadPollInterval: 100 * time.Millisecond})
	h.waitServing(t)
	statusAs := func(key string) int {
		code, _ := h.as(t, key, http.MethodGet, httpStatusPath("1ryq-e8n8-5g5n"), nil)
		return code
	}
	if got := statusAs(newKey); got != http.StatusUnauthorized {
		t.Fatalf("new key before the swap: %d, want 401", got)
	}

	mount.Update(t, map[string]string{"callers.keys": keysLine(map[string]string{"alice": newKey})})
	testkit.Eventually(t, 30*time.Second, "the new key to work after the ..data swap", func() bool { return statusAs(newKey) == http.StatusOK })
	if got := statusAs(aliceKey); got != http.StatusUnauthorized {
		t.Errorf("old key after the swap: %d, want 401", got)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "watched files changed; reloading") || !strings.Contains(logs, `"msg":"reloaded"`) {
		t.Errorf("the reload is not logged as SIGHUP's is:\n%s", tail(logs, 4<<10))
	}

	mount.Update(t, map[string]string{"callers.keys": "not a keys file\n"})
	testkit.Eventually(t, 30*time.Second, "a broken update to be refused", func() bool {
		return strings.Contains(h.logs.String(), "reload failed; keeping the previous configuration")
	})
	if got := statusAs(newKey); got != http.StatusOK {
		t.Errorf("the key in force after a broken update: %d, want 200", got)
	}
}
