package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestHangupReloadsIdentities runs the binary with --emulator and an
// identities file naming the emulator's seeded credentials: SIGHUP after a
// new identity is added makes it usable, with no call failing meanwhile;
// SIGHUP on a broken file keeps the whole previous configuration.
func TestHangupReloadsIdentities(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	for name, secret := range map[string]string{"a.token": emulator.DefaultAPIToken("emulator-api-token"), "b.secret": "customer-b-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "identities.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const onlyA = "identities:\n  customer-a:\n    api_token_file: a.token\n"
	const withB = onlyA + "  customer-b:\n    client_id: customer-b-client\n    client_secret_file: b.secret\n"
	write(onlyA)

	p := startBinary(t, bin, nil, "--emulator", "--log-format", "json", "--identities-file", file,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	p.waitLog(t, `"msg":"serving"`)
	base := "http://" + logField(t, p.Stderr.String(), "serving", "http_addr")
	hc := &http.Client{Timeout: 10 * time.Second}
	status := func(identity string) int {
		t.Helper()
		resp, err := hc.Get(base + "/v1/services/1ryq-e8n8-5g5n/status?identity=" + identity)
		if err != nil {
			t.Errorf("GET status as %s: %v", identity, err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("customer-b"); got != http.StatusForbidden {
		t.Fatalf("customer-b before the reload: HTTP %d, want 403", got)
	}

	// Calls as customer-a keep flowing through both reloads.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				calls.Add(1)
				if got := status("customer-a"); got != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}

	write(withB)
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	p.waitLog(t, `"msg":"reloaded"`)
	if got := status("customer-b"); got != http.StatusOK {
		t.Errorf("customer-b after the reload: HTTP %d, want 200", got)
	}

	write(withB + "  not a valid: [entry\n")
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	p.waitLog(t, `"msg":"reload failed; keeping the previous configuration"`)
	if got := status("customer-b"); got != http.StatusOK {
		t.Errorf("customer-b after a failed reload: HTTP %d, want 200 (previous configuration kept)", got)
	}
	cancel()
	wg.Wait()
	if n := failed.Load(); n != 0 || calls.Load() == 0 {
		t.Errorf("%d of %d calls as customer-a failed across the reloads, want none", n, calls.Load())
	}
	p.stop(t)
}

// logField returns field of the first JSON log record with message msg.
func logField(t *testing.T, log, msg, field string) string {
	t.Helper()
	for line := range strings.Lines(log) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != msg {
			continue
		}
		if v, ok := rec[field].(string); ok {
			return v
		}
	}
	t.Fatalf("no %q record with %s in the log", msg, field)
	return ""
}
