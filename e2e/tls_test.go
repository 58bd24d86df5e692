package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestBinaryOverTLS runs the emulator binary with --tls, which writes its
// self-signed CA to a file, and the facade binary against it trusting that
// file through --upstream-ca-file: the production path (HTTPS, HTTP/2, a
// private CA), process to process. The emulator's counters must show
// HTTP/2 only.
func TestBinaryOverTLS(t *testing.T) {
	emulatorBin, err := goBuild("radkit-access-emulator", "./cmd/radkit-access-emulator")
	if err != nil {
		t.Fatalf("building the emulator: %v", err)
	}
	caFile := filepath.Join(t.TempDir(), "emulator-ca.pem")
	base := startEmulatorBinary(t, emulatorBin, "--addr", "127.0.0.1:0", "--tls", "--tls-ca-out", caFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("emulator base URL %q, want https://", base)
	}

	p, err := startBinary(t,
		[]string{"--upstream-url", base, "--upstream-ca-file", caFile, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		binaryEnv("RADKIT_ACCESS_CLIENT_ID="+emulatorClient.ID, "RADKIT_ACCESS_CLIENT_SECRET="+emulatorClient.Secret))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", p.grpcAddr, err)
	}
	defer conn.Close()
	waitServing(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := accessv1.NewAccessServiceClient(conn)
	if otp, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "ep-tls"}); err != nil || !otpPattern.MatchString(otp.GetOtp()) {
		t.Errorf("GenerateOTP over TLS: %v, %v; want an OTP", otp, err)
	}
	if st, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"}); err != nil || !st.GetOnline() {
		t.Errorf("GetServiceStatus over TLS: %v, %v", st, err)
	}

	var counters struct {
		Protocols map[string]int64 `json:"protocols"`
	}
	getTrusting(t, caFile, base+"/_emulator/counters", &counters)
	if counters.Protocols["HTTP/2.0"] < 3 || len(counters.Protocols) != 1 {
		t.Errorf("emulator requests by protocol = %v, want HTTP/2.0 only", counters.Protocols)
	}
	if code := p.terminate(t); code != 0 {
		t.Errorf("facade exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr.String())
	}
}

// startEmulatorBinary starts the emulator binary with args until the test
// ends and returns the base URL its banner prints.
func startEmulatorBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out := &testkit.Buffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the emulator: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	var base string
	if !eventually(readyTimeout, func() bool {
		text := out.String()
		for _, line := range strings.Split(text, "\n") {
			if b, ok := strings.CutPrefix(line, "base URL: "); ok {
				base = b
			}
		}
		return base != "" && strings.Contains(text, "ready (SIGINT or SIGTERM to stop)")
	}) {
		t.Fatalf("the emulator printed no ready banner within %s:\n%s", readyTimeout, out.String())
	}
	return base
}

// getTrusting GETs url trusting only the certificates of caFile and
// decodes the JSON answer into v.
func getTrusting(t *testing.T, caFile, url string, v any) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: readyTimeout}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decoding: %v", url, err)
	}
}
