package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// openAPITimeout bounds openapi.mjs: two validations, a generation, a tsc
// compile and four calls, on a loaded machine.
const openAPITimeout = 4 * time.Minute

// TestOpenAPIGeneratedClient proves the served OpenAPI documents with real
// tools (e2e/node/openapi.mjs): both validate (swagger-parser), and a
// TypeScript client generated from /openapi.v3.json (openapi-typescript,
// openapi-fetch, compiled by tsc) gets an OTP and a status with a caller
// key, and reads the ErrorInfo reason of a 404 and of a 401 from the typed
// error body.
func TestOpenAPIGeneratedClient(t *testing.T) {
	node := NodeClient(t)
	const key = "openapi-e2e-caller-key"
	sum := sha256.Sum256([]byte(key))
	keys := filepath.Join(t.TempDir(), "caller-keys")
	if err := os.WriteFile(keys, []byte("ts-client "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, func(c *facade.Config) { c.CallerKeysFile = keys }, nil)
	waitServing(t, h.conn)

	out, err := node.Script(testkit.Context(t, openAPITimeout), "openapi.mjs", "--base", "http://"+h.httpAddr, "--key", key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("openapi.mjs printed %q: %v", line, err)
		}
		switch {
		case m["validated"] != nil:
			got[m["validated"].(string)] = m
		case m["call"] != nil:
			got[m["call"].(string)] = m
		}
	}
	want := map[string]map[string]any{
		"/openapi.json":    {"version": "2.0"},
		"/openapi.v3.json": {"version": "3.0.3"},
		"otp":              {"http": 200.0, "request_id": "ts-client-otp"},
		"status":           {"http": 200.0, "service_id": "1ryq-e8n8-5g5n", "active": true, "online": true},
		"not_found":        {"http": 404.0, "code": 5.0, "reason": "UPSTREAM_NOT_FOUND"},
		"unauthenticated":  {"http": 401.0, "reason": "CALLER_UNAUTHENTICATED", "www_authenticate": `Bearer realm="radkit-access-facade"`},
	}
	for name, fields := range want {
		m, ok := got[name]
		if !ok {
			t.Errorf("%s: no line in the output:\n%s", name, out)
			continue
		}
		for k, v := range fields {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", name, k, m[k], v)
			}
		}
	}
	if otp, _ := got["otp"]["otp"].(string); otp == "" {
		t.Errorf("otp: no OTP in %v", got["otp"])
	} else if _, ok := h.emu.OTP(otp); !ok {
		t.Errorf("otp: the emulator never minted %q", otp)
	}
}
