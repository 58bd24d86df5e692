package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Bounds of the harness. They are generous on purpose: the tests run on a
// loaded two-core machine under -race, and a bound here only turns a hang
// into a failure, it never measures speed.
const (
	// readyTimeout bounds waiting for a facade to report SERVING.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds a facade's or a binary's shutdown.
	stopTimeout = 20 * time.Second
	// buildTimeout bounds building one binary with go build.
	buildTimeout = 5 * time.Minute
)

// emulatorClient is the default seed's client whose credentials the facade
// uses in emulator mode. Its secret must never show in any output.
var emulatorClient = emulator.DefaultSeed().Clients[0]

// testBinaries builds, at most once per test process, the binaries the
// tests run: the facade from ./cmd/radkit-access-facade and grpcurl from the
// version pinned in tools/go.mod. Like nodeSetup it is written only inside
// its sync.Once calls; TestMain removes dir at the end.
var testBinaries struct {
	dir string // created by TestMain

	facadeOnce sync.Once
	facade     string
	facadeErr  error

	grpcurlOnce sync.Once
	grpcurl     string
	grpcurlErr  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "radkit-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: creating the binaries directory:", err)
		os.Exit(1)
	}
	testBinaries.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		// Every facade, client and child process a test started must be
		// gone: shutdown that leaves goroutines behind is a bug.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// moduleRoot returns the module root: the directory of `go env GOMOD`.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside the module (got %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// repoRoot is moduleRoot for a test.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// goBuild runs go build in the module root with args and returns the
// binary's path, dir/name.
func goBuild(name string, args ...string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(testBinaries.dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = root
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s after %s: %w\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, output)
	}
	return out, nil
}

// facadeBinary returns the path of the facade binary, building it once.
func facadeBinary(t testing.TB) string {
	t.Helper()
	testBinaries.facadeOnce.Do(func() {
		testBinaries.facade, testBinaries.facadeErr = goBuild("radkit-access-facade", "./cmd/radkit-access-facade")
	})
	if testBinaries.facadeErr != nil {
		t.Fatalf("building the facade: %v", testBinaries.facadeErr)
	}
	return testBinaries.facade
}

// grpcurlBinary returns the path of grpcurl, built once from the version
// pinned in tools/go.mod (the same one `go tool -modfile=tools/go.mod
// grpcurl` runs).
func grpcurlBinary(t testing.TB) string {
	t.Helper()
	testBinaries.grpcurlOnce.Do(func() {
		testBinaries.grpcurl, testBinaries.grpcurlErr = goBuild("grpcurl",
			"-modfile=tools/go.mod", "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	})
	if testBinaries.grpcurlErr != nil {
		t.Fatalf("building grpcurl: %v", testBinaries.grpcurlErr)
	}
	return testBinaries.grpcurl
}

// harness is one facade in emulator mode on loopback, served by Run in the
// background, with a Go gRPC connection and an HTTP client for it. Each
// test case gets its own, so that faults, caches and circuit state never
// carry over from one case to the next.
type harness struct {
	f    *facade.Facade
	emu  *emulator.Emulator
	logs *testkit.Buffer

	conn   *grpc.ClientConn
	client accessv1.AccessServiceClient
	http   *http.Client

	grpcAddr string
	httpAddr string

	// stop starts the facade's shutdown (cancels Run's context); the
	// test's cleanup waits for Run to return.
	stop context.CancelFunc
}

// newHarness starts a facade in emulator mode. beforeRun, if not nil, runs
// after the facade is built and before it serves, so that faults can be in
// place before the first readiness check. The facade stops when the test
// ends, and the test fails if it does not stop cleanly or if its log shows
// the upstream client secret.
func newHarness(t *testing.T, beforeRun func(*emulator.Emulator)) *harness {
	t.Helper()
	return newHarnessWith(t, nil, beforeRun)
}

// newHarnessWith is newHarness with the facade's Config changed by
// configure first, when it is not nil.
func newHarnessWith(t *testing.T, configure func(*facade.Config), beforeRun func(*emulator.Emulator)) *harness {
	t.Helper()
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := facade.Config{
		Emulator:        true,
		IdentitiesFile:  filepath.Join(repoRoot(t), "deploy", "identities.example.yaml"),
		GRPCAddr:        "127.0.0.1:0",
		HTTPAddr:        "127.0.0.1:0",
		Logger:          logger,
		ShutdownTimeout: stopTimeout / 2,
	}
	if configure != nil {
		configure(&cfg)
	}
	f, err := facade.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("facade.New: %v", err)
	}
	h := &harness{
		f:        f,
		emu:      f.Emulator(),
		logs:     logs,
		grpcAddr: f.GRPCAddr(),
		httpAddr: f.HTTPAddr(),
		http:     &http.Client{Timeout: time.Minute, Transport: &http.Transport{}},
		stop:     cancel,
	}
	if h.emu == nil {
		cancel()
		t.Fatal("facade.New with Emulator: true: Emulator() is nil")
	}
	if beforeRun != nil {
		beforeRun(h.emu)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	t.Cleanup(func() {
		// In-flight upstream calls held by injected latency end with their
		// callers; nothing new should be delayed while shutting down.
		h.emu.ResetFaults()
		if h.conn != nil {
			_ = h.conn.Close()
		}
		h.http.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("facade Run: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("facade Run did not return within %s of its context ending", stopTimeout)
		}
		logText := logs.String()
		if strings.Contains(logText, emulatorClient.Secret) {
			t.Errorf("the facade's log shows the upstream client secret")
		}
		if t.Failed() {
			t.Logf("facade log:\n%s", logText)
		}
	})

	h.conn, err = grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", h.grpcAddr, err)
	}
	h.client = accessv1.NewAccessServiceClient(h.conn)
	return h
}

// startFacade starts a facade in emulator mode and waits until it is ready.
func startFacade(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	waitServing(t, h.conn)
	return h
}

// waitServing waits until the health service over conn reports
// radkit.access.v1.AccessService SERVING, watching rather than polling.
func waitServing(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	service := accessv1.AccessService_ServiceDesc.ServiceName
	var last healthpb.HealthCheckResponse_ServingStatus
	for ctx.Err() == nil {
		stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
		if err != nil {
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				break // reconnect and watch again, until ctx ends
			}
			if last = resp.GetStatus(); last == healthpb.HealthCheckResponse_SERVING {
				return
			}
		}
	}
	t.Fatalf("%s not SERVING within %s (last status %s)", service, readyTimeout, last)
}

// freshAccessToken gets a new access token for the emulator's seeded client
// straight from the emulator, as a caller of RevokeToken would hold one.
func (h *harness) freshAccessToken(t testing.TB) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.f.UpstreamURL()+string(emulator.RouteToken),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatalf("building the token request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(emulatorClient.ID, emulatorClient.Secret)
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("token request to the emulator: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token request to the emulator: HTTP %d, decode error %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// emulatorRevokeStatus asks the emulator directly to revoke token and
// returns the HTTP status: 204 while the token is live, 400 once revoked.
func (h *harness) emulatorRevokeStatus(t testing.TB, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.f.UpstreamURL()+string(emulator.RouteRevoke)+"?"+url.Values{"token": {token}}.Encode(), nil)
	if err != nil {
		t.Fatalf("building the revoke request: %v", err)
	}
	req.SetBasicAuth(emulatorClient.ID, emulatorClient.Secret)
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("revoke request to the emulator: %v", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond until it holds or timeout passes; it is for
// counters that other goroutines update after the call under test returned.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
