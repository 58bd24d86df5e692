package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Bounds of the harness. They are generous on purpose: the tests run under
// -race on a loaded two-core machine, and a bound here only turns a hang
// into a failure; it never measures speed.
const (
	// readyTimeout bounds waiting for a facade to report SERVING.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds a facade's or a process's shutdown.
	stopTimeout = 30 * time.Second
	// callTimeout is the deadline of a call that is expected to finish.
	callTimeout = 20 * time.Second
)

// liveService is a service of emulator.DefaultSeed that is active and
// online.
const liveService = "1ryq-e8n8-5g5n"

// checkGoroutines fails t if goroutines that did not exist when it was
// called are still running once t and all its cleanups are done. Call it
// first in a test, so that its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	baseline := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, baseline) })
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// callCtx returns a context for one call that is expected to finish.
func callCtx(t *testing.T) context.Context {
	t.Helper()
	return testkit.Context(t, callTimeout)
}

// upstreamServer is an emulator of the test's own, served on a loopback
// listener, for tests that need their own seed or lifetimes, or control
// over when the upstream is reachable.
type upstreamServer struct {
	emu *emulator.Emulator
	url string
}

// startUpstream serves an emulator made from cfg on lis (nil: a new
// loopback listener) until the test ends.
func startUpstream(t *testing.T, cfg emulator.Config, lis net.Listener) *upstreamServer {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	if lis == nil {
		lis = testkit.Listen(t)
	}
	srv := httptest.NewUnstartedServer(emu)
	_ = srv.Listener.Close()
	srv.Listener = lis
	srv.Start()
	t.Cleanup(srv.Close)
	return &upstreamServer{emu: emu, url: srv.URL}
}

// testSeed is an emulator seed with the default seed's services, one
// client and one API token that hold both claims.
func testSeed(clientID, clientSecret, apiToken string) emulator.Seed {
	claims := []string{emulator.ClaimOTP, emulator.ClaimStatus}
	return emulator.Seed{
		Services:  emulator.DefaultSeed().Services,
		Clients:   []emulator.Client{{ID: clientID, Secret: clientSecret, Identity: "facade-test@example.com", Claims: claims}},
		APITokens: []emulator.APIToken{{Token: apiToken, Identity: "facade-test+token@example.com", Claims: claims}},
	}
}

// harness is one facade on loopback, served by Run in the background, with
// a gRPC connection and an HTTP client for it, and its log captured.
type harness struct {
	f      *facade.Facade
	logs   *testkit.Buffer
	conn   *grpc.ClientConn
	client accessv1.AccessServiceClient
	health healthpb.HealthClient
	http   *http.Client
	base   string // the gateway's base URL
}

// startFacade builds a facade from cfg and serves it until the test ends;
// then it checks that Run returns nil in time. Listen addresses are
// loopback with free ports, rate limiting is off (fault tests make bursts
// of calls that are not what it is about), and a nil Logger is replaced by
// a JSON logger at debug level writing to h.logs.
func startFacade(t *testing.T, cfg facade.Config) *harness {
	t.Helper()
	h := &harness{logs: &testkit.Buffer{}}
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RateLimit = 0
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := facade.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("facade.New: %v", err)
	}
	h.f = f
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		<-done
		t.Fatalf("grpc.NewClient: %v", err)
	}
	transport := &http.Transport{}
	h.conn = conn
	h.client = accessv1.NewAccessServiceClient(conn)
	h.health = healthpb.NewHealthClient(conn)
	h.http = &http.Client{Transport: transport, Timeout: callTimeout}
	h.base = "http://" + f.HTTPAddr()

	t.Cleanup(func() {
		_ = conn.Close()
		transport.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("Run did not return within %s of its context ending", stopTimeout)
		}
		if t.Failed() {
			t.Logf("facade log (tail):\n%s", tail(h.logs.String(), 16<<10))
		}
	})
	return h
}

// startEmulatorFacade starts a facade in emulator mode, waits until it is
// serving and returns it with its emulator.
func startEmulatorFacade(t *testing.T) (*harness, *emulator.Emulator) {
	t.Helper()
	h := startFacade(t, facade.Config{Emulator: true})
	h.waitServing(t)
	return h, h.f.Emulator()
}

// waitServing waits, through the health service's Watch stream, until the
// facade reports SERVING.
func (h *harness) waitServing(t *testing.T) {
	t.Helper()
	if err := waitHealth(h.health, healthpb.HealthCheckResponse_SERVING, readyTimeout); err != nil {
		t.Fatalf("facade never became ready: %v", err)
	}
}

// waitHealth watches the overall health of a server until it reports want.
func waitHealth(hc healthpb.HealthClient, want healthpb.HealthCheckResponse_ServingStatus, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		resp, err := stream.Recv()
		if err != nil {
			return errors.Join(err, errors.New("last status "+last.String()))
		}
		if last = resp.GetStatus(); last == want {
			return nil
		}
	}
}

// status calls GetServiceStatus for serviceID within callTimeout.
func (h *harness) status(serviceID string) (*accessv1.GetServiceStatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: serviceID})
}

// otp calls GenerateOTP with a valid request within callTimeout.
func (h *harness) otp() (*accessv1.GenerateOTPResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return h.client.GenerateOTP(ctx, otpRequest())
}

// otpRequest is a valid GenerateOTP request.
func otpRequest() *accessv1.GenerateOTPRequest {
	return &accessv1.GenerateOTPRequest{Owner: "owner@example.com", EndpointId: "router-1", Description: "fault matrix"}
}

// mustStatus calls GetServiceStatus for liveService and fails t unless it
// succeeds with the emulator's answer.
func (h *harness) mustStatus(t *testing.T) {
	t.Helper()
	resp, err := h.status(liveService)
	if err != nil {
		t.Fatalf("GetServiceStatus(%s): %v", liveService, err)
	}
	if resp.GetServiceId() != liveService || !resp.GetActive() || !resp.GetOnline() {
		t.Fatalf("GetServiceStatus(%s) = %v, want the service active and online", liveService, resp)
	}
}

// httpResult is a gateway response, fully read.
type httpResult struct {
	code int
	body []byte
}

// do sends an HTTP request with a JSON body (none if body is nil) to the
// facade's gateway.
func (h *harness) do(t *testing.T, method, path string, body any) httpResult {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(callCtx(t), method, h.base+path, r)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return httpResult{code: resp.StatusCode, body: b}
}

// httpStatusPath is the gateway path of GetServiceStatus.
func httpStatusPath(serviceID string) string {
	return "/v1/services/" + url.PathEscape(serviceID) + "/status"
}

// reason returns the ErrorInfo reason of a google.rpc.Status JSON body, or
// "" when it has none.
func (r httpResult) reason() string {
	var st struct {
		Details []struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
		} `json:"details"`
	}
	if json.Unmarshal(r.body, &st) != nil {
		return ""
	}
	for _, d := range st.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
			return d.Reason
		}
	}
	return ""
}

// reasonOf returns the ErrorInfo reason of a gRPC status error, or "".
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// wantError fails t unless err is a gRPC status with code and, when any
// reasons are given, an ErrorInfo in the facade's domain with one of them.
func wantError(t *testing.T, err error, code codes.Code, reasons ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %s %v", code, reasons)
	}
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("code = %s (%q, reason %q), want %s %v", st.Code(), st.Message(), reasonOf(err), code, reasons)
	}
	if len(reasons) == 0 {
		return
	}
	got := reasonOf(err)
	for _, r := range reasons {
		if got == r {
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() != server.ErrorDomain {
					t.Fatalf("ErrorInfo domain = %q, want %q", info.GetDomain(), server.ErrorDomain)
				}
			}
			return
		}
	}
	t.Fatalf("reason = %q (%q), want one of %v", got, st.Message(), reasons)
}

// emulatorAdmin calls the emulator's admin API at base (the emulator's URL)
// and returns the response body, failing t unless the answer is 2xx.
func emulatorAdmin(t *testing.T, c *http.Client, base, method, path string, query url.Values, body any) []byte {
	t.Helper()
	u := base + emulator.DefaultAdminPrefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode admin body: %v", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(callCtx(t), method, u, r)
	if err != nil {
		t.Fatalf("build admin request: %v", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("emulator admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("emulator admin %s %s: reading body: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("emulator admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	return b
}

// emulatorCalls reads, through the admin API, how many requests route has
// received.
func emulatorCalls(t *testing.T, c *http.Client, base string, route emulator.Route) int64 {
	t.Helper()
	var counters emulator.Counters
	if err := json.Unmarshal(emulatorAdmin(t, c, base, http.MethodGet, "/counters", nil, nil), &counters); err != nil {
		t.Fatalf("decode emulator counters: %v", err)
	}
	return counters.Calls[route]
}
