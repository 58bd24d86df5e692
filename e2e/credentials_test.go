package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// callerKeys is a caller-keys file granting each name its key.
func callerKeys(entries map[string]string) string {
	var b strings.Builder
	for name, key := range entries {
		sum := sha256.Sum256([]byte(key))
		fmt.Fprintf(&b, "%s %s\n", name, hex.EncodeToString(sum[:]))
	}
	return b.String()
}

// metricsOf returns the facade's /metrics text.
func metricsOf(t *testing.T, p *facadeProcess) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricLine returns the line of text that starts with series, or "".
func metricLine(text, series string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// TestRotationTheKubernetesWay swaps a caller-keys file and an identity's
// API token file the way the kubelet updates a mounted Secret (a new
// timestamped directory, the "..data" symlink renamed over), with no
// SIGHUP, while a caller loops throughout. The rotation is the one
// docs/operations.md prescribes: the new key is added next to the old,
// the caller moves to it once it works, then the old is removed; the new
// API token is installed, then the old revoked upstream. No call with a
// key the facade holds at that moment may fail, and each change is in
// force within a few poll intervals.
func TestRotationTheKubernetesWay(t *testing.T) {
	const (
		oldKey   = "k-rotate-old-Hq7Vw2Ns4Kd"
		newKey   = "k-rotate-new-Pz3Xc8Lm1Ry"
		interval = time.Second
	)
	facadeBinary(t) // built before any clock starts
	emu, up := testkit.StartEmulator(t, emulator.Config{Seed: emulator.DefaultSeed()})
	oldToken := emulator.DefaultAPIToken("emulator-api-token")

	keys := testkit.NewAtomicDir(t, map[string]string{"callers.keys": callerKeys(map[string]string{"svc": oldKey})})
	secrets := testkit.NewAtomicDir(t, map[string]string{"api-token": oldToken + "\n"})
	identities := filepath.Join(t.TempDir(), "identities.yaml")
	if err := os.WriteFile(identities, []byte(fmt.Sprintf(`identities:
  customer-a:
    api_token_file: %s
grants:
  svc: [customer-a]
  svc-next: [customer-a]
`, secrets.Path("api-token"))), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := startBinary(t, []string{"--upstream-url", up.URL, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--caller-keys-file", keys.Path("callers.keys"), "--identities-file", identities, "--reload-poll-interval", interval.String(), "--rate-limit", "0"},
		binaryEnv("RADKIT_ACCESS_CLIENT_ID="+emulatorClient.ID, "RADKIT_ACCESS_CLIENT_SECRET="+emulatorClient.Secret))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	waitServing(t, conn)
	client := accessv1.NewAccessServiceClient(conn)
	call := func(key string) error {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key), 10*time.Second)
		defer cancel()
		_, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Identity: "customer-a"})
		return err
	}
	if err := call(oldKey); err != nil {
		t.Fatalf("first call with the old key: %v", err)
	}

	// The caller loop: always the key the caller has been told to use.
	var (
		current  atomic.Pointer[string]
		calls    atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	current.Store(ptr(oldKey))
	ctx, stop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for ctx.Err() == nil {
			key := *current.Load()
			if err := call(key); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v", key[:12], err))
				mu.Unlock()
			}
			calls.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { stop(); <-loopDone })

	// within waits for cond and returns how long it took.
	within := func(what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		if !eventually(30*interval, cond) {
			t.Fatalf("%s: not within %s\nlog:\n%s", what, 30*interval, p.Stderr.String())
		}
		return time.Since(start)
	}

	// 1. The new key is added next to the old.
	keys.Update(t, map[string]string{"callers.keys": callerKeys(map[string]string{"svc": oldKey, "svc-next": newKey})})
	added := within("the new key works", func() bool { return call(newKey) == nil })
	current.Store(ptr(newKey))
	// 2. The old key is removed.
	keys.Update(t, map[string]string{"callers.keys": callerKeys(map[string]string{"svc-next": newKey})})
	removed := within("the old key is refused", func() bool { return status.Code(call(oldKey)) == codes.Unauthenticated })

	// 3. A new API token for customer-a is installed, then the old one is
	// revoked upstream.
	minted, err := emu.MintAPIToken("automation+customer-a@example.com", 0, []string{emulator.ClaimOTP, emulator.ClaimStatus}, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	series := `radkit_facade_credential_expiry_timestamp_seconds{identity="customer-a",kind="api_token"}`
	if line := metricLine(metricsOf(t, p), series); !strings.HasSuffix(line, fmt.Sprintf(" %g", float64(time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC).Unix()))) {
		t.Errorf("before the swap: %q, want the seeded token's expiry", line)
	}
	secrets.Update(t, map[string]string{"api-token": minted.Token + "\n"})
	swapped := within("the new API token is in force", func() bool {
		return strings.HasSuffix(metricLine(metricsOf(t, p), series), fmt.Sprintf(" %g", float64(minted.ExpiresAt.Unix())))
	})
	emu.RevokeAPIToken(oldToken)
	time.Sleep(3 * interval) // calls keep going with the old token revoked

	stop()
	<-loopDone
	t.Logf("in force after: new key %s, old key removed %s, new API token %s (poll interval %s); %d calls", added, removed, swapped, interval, calls.Load())
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the rotation, e.g. %s", len(failures), calls.Load(), failures[0])
	}
	if err := call(newKey); err != nil {
		t.Errorf("after the rotation: %v", err)
	}
	if _, ok := p.logLine("watched files changed; reloading"); !ok {
		t.Error("no 'watched files changed; reloading' log line")
	}
	if strings.Contains(p.Stderr.String(), "reload failed") {
		t.Errorf("a reload failed:\n%s", p.Stderr.String())
	}
	for _, secret := range []string{oldKey, newKey, oldToken, minted.Token} {
		if strings.Contains(p.Stderr.String(), secret) {
			t.Error("the log shows a key or token")
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestCredentialExpiryBinary: a facade whose API token expires within the
// hour exports its expiry and logs the 1-hour warning; one whose token has
// expired answers CREDENTIALS_EXPIRED and sends nothing upstream.
func TestCredentialExpiryBinary(t *testing.T) {
	facadeBinary(t) // built before any clock starts
	emu, up := testkit.StartEmulator(t, emulator.Config{Seed: emulator.DefaultSeed()})
	start := func(t *testing.T, lifetime time.Duration) (*facadeProcess, accessv1.AccessServiceClient, emulator.APIToken) {
		t.Helper()
		tok, err := emu.MintAPIToken("automation+customer-a@example.com", 0, []string{emulator.ClaimOTP, emulator.ClaimStatus}, lifetime)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "api-token")
		if err := os.WriteFile(file, []byte(tok.Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := startBinary(t, []string{"--upstream-url", up.URL, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
			binaryEnv("RADKIT_ACCESS_API_TOKEN_FILE="+file))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return p, accessv1.NewAccessServiceClient(conn), tok
	}

	t.Run("expires within the hour", func(t *testing.T) {
		p, client, tok := start(t, 30*time.Minute)
		line, ok := p.findLog(func(m string) bool { return strings.Contains(m, "expires within 1 hour") })
		if !ok || line["identity"] != "default" || line["kind"] != "api_token" || line["level"] != "WARN" {
			t.Errorf("1-hour warning: %v (found %t)\nlog:\n%s", line, ok, p.Stderr.String())
		}
		want := fmt.Sprintf(`radkit_facade_credential_expiry_timestamp_seconds{identity="default",kind="api_token"} %g`, float64(tok.ExpiresAt.Unix()))
		if text := metricsOf(t, p); !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}); err != nil {
			t.Errorf("a call before expiry: %v", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		upstreamCalls := func() int64 {
			return emu.Calls(emulator.RouteAPIToken) + emu.Calls(emulator.RouteStatus) + emu.Calls(emulator.RouteOTP)
		}
		before := upstreamCalls()
		p, client, _ := start(t, -time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
		if status.Code(err) != codes.Unavailable || reasonOfErr(err) != "CREDENTIALS_EXPIRED" {
			t.Errorf("GetServiceStatus: %v (reason %q), want UNAVAILABLE CREDENTIALS_EXPIRED", err, reasonOfErr(err))
		}
		_, err = client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "owner@example.com", EndpointId: "ep-1"})
		if reasonOfErr(err) != "CREDENTIALS_EXPIRED" {
			t.Errorf("GenerateOTP: %v, want CREDENTIALS_EXPIRED", err)
		}
		if got := upstreamCalls() - before; got != 0 {
			t.Errorf("%d calls reached the emulator with an expired API token, want none", got)
		}
		if _, ok := p.findLog(func(m string) bool { return strings.HasPrefix(m, "upstream credential expired") }); !ok {
			t.Errorf("no expiry error logged:\n%s", p.Stderr.String())
		}
	})
}
