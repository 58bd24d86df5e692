package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
)

// sentinelSecret is a client secret given to the binary through the
// environment; it must never show in its output.
const sentinelSecret = "sentinel-client-secret-3f9a1c"

// facadeProcess is the facade binary running as a child process, logging
// JSON.
type facadeProcess struct {
	*testkit.Process

	grpcAddr, httpAddr string // from the "serving" log line
}

// binaryEnv is the test process's environment without RADKIT_* and OTEL_*
// variables, which would change the facade's configuration, plus extra.
func binaryEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RADKIT_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startBinary starts the facade binary with args and env and waits for its
// "serving" log line. The error reports a process that exited or logged
// nothing before readyTimeout; the test's cleanup kills a process still
// running.
func startBinary(t *testing.T, args, env []string) (*facadeProcess, error) {
	t.Helper()
	cmd := exec.Command(facadeBinary(t), append([]string{"--log-format", "json"}, args...)...)
	cmd.Env = env
	proc, err := testkit.StartProcess(t, cmd)
	if err != nil {
		return nil, fmt.Errorf("starting the facade binary: %w", err)
	}
	p := &facadeProcess{Process: proc}

	deadline := time.After(readyTimeout)
	for {
		if line, ok := p.logLine("serving"); ok {
			p.grpcAddr, _ = line["grpc_addr"].(string)
			p.httpAddr, _ = line["http_addr"].(string)
			if p.grpcAddr == "" || p.httpAddr == "" {
				return p, fmt.Errorf("the serving log line has no grpc_addr or http_addr: %v", line)
			}
			return p, nil
		}
		select {
		case <-p.Exited():
			return p, fmt.Errorf("the facade exited before serving: %v\nstderr:\n%s", p.Err(), p.Stderr.String())
		case <-deadline:
			return p, fmt.Errorf("no serving log line within %s\nstderr:\n%s", readyTimeout, p.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logLine returns the first JSON log line whose msg is msg.
func (p *facadeProcess) logLine(msg string) (map[string]any, bool) {
	return p.findLog(func(m string) bool { return m == msg })
}

// logLines returns every JSON log line whose msg is msg.
func (p *facadeProcess) logLines(msg string) []map[string]any {
	return p.scanLog(func(m string) bool { return m == msg }, false)
}

// findLog returns the first JSON log line whose msg satisfies match.
func (p *facadeProcess) findLog(match func(msg string) bool) (map[string]any, bool) {
	lines := p.scanLog(match, true)
	if len(lines) == 0 {
		return nil, false
	}
	return lines[0], true
}

// scanLog returns the JSON log lines whose msg satisfies match, only the
// first if first is set.
func (p *facadeProcess) scanLog(match func(msg string) bool, first bool) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if msg, ok := line["msg"].(string); ok && match(msg) {
			if lines = append(lines, line); first {
				break
			}
		}
	}
	return lines
}

// terminate sends SIGTERM and waits for the process to exit, at most
// stopTimeout. It returns the exit code.
func (p *facadeProcess) terminate(t *testing.T) int {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.Exited():
	case <-time.After(stopTimeout):
		t.Fatalf("the facade did not exit within %s of SIGTERM\nstderr:\n%s", stopTimeout, p.Stderr.String())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// TestBinary runs the facade binary in emulator mode and probes it the way
// an operator and a load balancer would, then stops it with SIGTERM.
func TestBinary(t *testing.T) {
	// Built before any clock starts: with a cold build cache, building
	// grpcurl alone takes longer than the calls' deadline below.
	grpcurlBinary(t)
	p, err := startBinary(t,
		[]string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		binaryEnv("RADKIT_ACCESS_CLIENT_ID=ignored-client", "RADKIT_ACCESS_CLIENT_SECRET="+sentinelSecret))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", p.grpcAddr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()

	waitServing(t, conn)
	// The names the Kubernetes probes use (deploy/kubernetes): "" for
	// readiness, "liveness" for liveness; and the service itself.
	for _, service := range []string{"", server.LivenessService, accessv1.AccessService_ServiceDesc.ServiceName} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check %q: %v, %v; want SERVING", service, resp, err)
		}
	}

	stdout, stderr, exit := runGRPCurl(t, "", "-plaintext", p.grpcAddr, "list")
	if exit != 0 || !strings.Contains(string(stdout), "radkit.access.v1.AccessService") {
		t.Errorf("grpcurl list: exit %d\nstdout:\n%s\nstderr:\n%s\nwant radkit.access.v1.AccessService listed", exit, stdout, stderr)
	}

	client := accessv1.NewAccessServiceClient(conn)
	st, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
	if err != nil || st.GetServiceId() != "1ryq-e8n8-5g5n" || !st.GetActive() || !st.GetOnline() {
		t.Errorf("GetServiceStatus: %v, %v; want 1ryq-e8n8-5g5n active and online", st, err)
	}
	otp, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "ep-binary"})
	if err != nil || !otpPattern.MatchString(otp.GetOtp()) {
		t.Errorf("GenerateOTP: %v, %v; want an OTP", otp, err)
	}

	httpClient := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	defer httpClient.CloseIdleConnections()
	for _, probe := range []struct {
		path string
		want []string
	}{
		{"/healthz", []string{`"ok"`}},
		{"/readyz", []string{`"ready"`}},
		{"/openapi.json", []string{`"/v1/otp"`, `"/v1/services/{service_id}/status"`, `"endpoint_id"`}},
	} {
		resp, err := httpClient.Get("http://" + p.httpAddr + probe.path)
		if err != nil {
			t.Errorf("GET %s: %v", probe.path, err)
			continue
		}
		var body json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Errorf("GET %s: HTTP %d, JSON error %v, body %.200s; want 200 with JSON", probe.path, resp.StatusCode, err, body)
			continue
		}
		for _, w := range probe.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s: body %.200s does not contain %s", probe.path, body, w)
			}
		}
	}
	httpClient.CloseIdleConnections()
	_ = conn.Close()

	if code := p.terminate(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr.String())
	}

	output := p.Stdout.String() + p.Stderr.String()
	warn, ok := p.findLog(func(msg string) bool { return strings.HasPrefix(msg, "EMULATOR MODE") })
	if !ok || warn["level"] != "WARN" {
		t.Errorf("no EMULATOR MODE warning in the log:\n%s", output)
	}
	if _, ok := p.logLine("shutting down"); !ok {
		t.Errorf("no shutting down line in the log:\n%s", output)
	}
	for name, secret := range map[string]string{
		"the emulator's client secret": emulatorClient.Secret,
		"the configured client secret": sentinelSecret,
		"the OTP":                      otp.GetOtp(),
	} {
		if secret != "" && strings.Contains(output, secret) {
			t.Errorf("the output shows %s", name)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", output)
	}
}

// TestBinaryRefusesToStart checks configurations that must stop the binary
// before it serves: exit status 2, a message saying what to do, and no
// secret in the output.
func TestBinaryRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	secretFile := dir + "/client-secret"
	if err := os.WriteFile(secretFile, []byte(sentinelSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{
			name: "no upstream",
			env:  []string{"RADKIT_ACCESS_CLIENT_ID=c", "RADKIT_ACCESS_CLIENT_SECRET=" + sentinelSecret},
			want: []string{"--upstream-url", "--emulator"},
		},
		{
			name: "secret and secret file",
			args: []string{"--upstream-url", "https://radkit.example.com"},
			env: []string{"RADKIT_ACCESS_CLIENT_ID=c", "RADKIT_ACCESS_CLIENT_SECRET=" + sentinelSecret,
				"RADKIT_ACCESS_CLIENT_SECRET_FILE=" + secretFile},
			want: []string{"RADKIT_ACCESS_CLIENT_SECRET", "RADKIT_ACCESS_CLIENT_SECRET_FILE"},
		},
		{
			name: "former name of the upstream URL's variable",
			env:  []string{"RADKIT_ACCESS_URL=https://radkit.example.com", "RADKIT_ACCESS_CLIENT_ID=c", "RADKIT_ACCESS_CLIENT_SECRET=" + sentinelSecret},
			want: []string{"RADKIT_ACCESS_URL is no longer read: rename it RADKIT_FACADE_UPSTREAM_URL"},
		},
		{
			name: "secret as a flag",
			args: []string{"--emulator", "--client-secret=" + sentinelSecret},
			want: []string{"flag provided but not defined"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := facadeBinary(t) // built before the clock starts
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = binaryEnv(tt.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2\noutput:\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), sentinelSecret) {
				t.Errorf("output shows the secret:\n%s", out)
			}
		})
	}
}

// TestBinaryGCPercent checks the collector's GOGC of the running binary,
// as its /metrics reports it: the facade's default when the environment
// sets none (docs/configuration.md), the operator's GOGC otherwise.
func TestBinaryGCPercent(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"GOGC unset: the facade's default", nil, "75"},
		{"GOGC=100: Go's default, asked for", []string{"GOGC=100"}, "100"},
		{"GOGC=200", []string{"GOGC=200"}, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := []string{} // not nil: a nil Env is the test's own environment
			for _, kv := range binaryEnv(tt.env...) {
				if !strings.HasPrefix(kv, "GOGC=") || slices.Contains(tt.env, kv) {
					env = append(env, kv)
				}
			}
			p, err := startBinary(t, []string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
				"--metrics-addr", "127.0.0.1:0"}, env)
			if err != nil {
				t.Fatal(err)
			}
			line, _ := p.logLine("serving")
			addr, _ := line["metrics_addr"].(string)
			if addr == "" {
				t.Fatalf("the serving log line has no metrics_addr: %v", line)
			}
			hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := ""
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gogc_percent "); ok {
					got = v
				}
			}
			if got != tt.want {
				t.Errorf("go_gc_gogc_percent = %q, want %s", got, tt.want)
			}
			if code := p.terminate(t); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
		})
	}
}
