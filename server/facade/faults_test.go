package facade_test

// The fault matrix: the whole facade on loopback, the emulator misbehaving
// in one way at a time, and the caller's view of it through the generated
// gRPC client (and the gateway where the HTTP answer matters).

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/telemetry"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestUpstreamDownAtStart starts the facade while nothing listens at the
// upstream URL: it must start anyway, report NOT_SERVING and answer
// UNAVAILABLE, then become SERVING by itself once the upstream appears at
// that address.
func TestUpstreamDownAtStart(t *testing.T) {
	checkGoroutines(t)
	const clientID, clientSecret = "down-at-start-client", "down-at-start-secret"
	// Reserved, not listened on: dials are refused until startUpstream
	// takes the very port over, and no parallel test can take it meanwhile.
	port := testkit.Reserve(t)
	addr := port.Addr()
	h := startFacade(t, facade.Config{
		UpstreamURL:  "http://" + addr,
		ClientID:     clientID,
		ClientSecret: clientSecret,
	})

	// A call proves that the facade has tried the upstream and failed.
	_, err := h.status(liveService)
	wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String())
	resp, err := h.health.Check(callCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Check: %v", err)
	}
	if got := resp.GetStatus(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health with the upstream down = %s, want NOT_SERVING", got)
	}
	// Liveness does not follow the upstream: a restart would not help.
	resp, err = h.health.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: server.LivenessService})
	if err != nil {
		t.Fatalf("health Check %q: %v", server.LivenessService, err)
	}
	if got := resp.GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("liveness with the upstream down = %s, want SERVING", got)
	}

	// Watch from now on; the first message is the current status.
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	stream, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	if first.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health Watch started at %s, want NOT_SERVING", first.GetStatus())
	}

	startUpstream(t, emulator.Config{Seed: testSeed(clientID, clientSecret, "down-at-start-api-token")}, port.Listen(t))
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("health never became SERVING after the upstream came up: %v", err)
		}
		if msg.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	h.mustStatus(t)
}

// TestStatus5xxBurstRetried: a short burst of 503s on the status route is
// absorbed by the facade's retries, and the caller sees success.
func TestStatus5xxBurstRetried(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t)

	before := emu.Calls(emulator.RouteStatus)
	emu.Script(emulator.RouteStatus,
		emulator.Fault{Status: http.StatusServiceUnavailable},
		emulator.Fault{Status: http.StatusServiceUnavailable})
	h.mustStatus(t)
	if got := emu.Calls(emulator.RouteStatus) - before; got != 3 {
		t.Errorf("status route calls = %d, want 3 (two 503s, then the answer)", got)
	}
}

// TestOTPFailureNotRetried: an OTP request that reached the upstream and
// failed without "retry": true is never sent again (each try may mint an
// OTP), and the failure reaches the caller as the error table says.
func TestOTPFailureNotRetried(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	if _, err := h.otp(); err != nil {
		t.Fatalf("GenerateOTP before any fault: %v", err)
	}

	tests := []struct {
		name   string
		fault  emulator.Fault
		code   codes.Code
		reason string
	}{
		{"500", emulator.Fault{Status: http.StatusInternalServerError, Details: "boom"}, codes.Internal, accessv1.ErrorReason_UPSTREAM_ERROR.String()},
		{"503", emulator.Fault{Status: http.StatusServiceUnavailable}, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { emu.ResetRouteFaults(emulator.RouteOTP) })
			before := emu.Calls(emulator.RouteOTP)
			emu.Script(emulator.RouteOTP, tt.fault)
			_, err := h.otp()
			wantError(t, err, tt.code, tt.reason)
			if got := emu.Calls(emulator.RouteOTP) - before; got != 1 {
				t.Errorf("OTP route calls = %d, want exactly 1", got)
			}
		})
	}
}

// TestSlowUpstreamCallerDeadline: when the upstream is slower than the
// caller's deadline, the caller gets DEADLINE_EXCEEDED on time, and the
// facade does not leave the upstream request running past a bound.
func TestSlowUpstreamCallerDeadline(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t) // token held, connections up: the deadline covers the status call only

	const deadline = 500 * time.Millisecond
	// The one wall-clock bound this test holds, because a caller's deadline
	// is only useful if it is kept: the answer comes within 100ms of it.
	const slack = 100 * time.Millisecond
	emu.SetLatency(emulator.RouteStatus, 3*time.Second)
	defer emu.SetLatency(emulator.RouteStatus, 0)
	before := emu.Calls(emulator.RouteStatus)

	// Collect garbage now rather than during the measured call.
	goruntime.GC()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: liveService})
	elapsed := time.Since(start)
	wantError(t, err, codes.DeadlineExceeded)
	if elapsed > deadline+slack {
		t.Errorf("DEADLINE_EXCEEDED after %s, want within %s", elapsed, deadline+slack)
	}

	// Over HTTP/1.1 the abandoned request runs on for a bounded time (see
	// upstream.Limiter: cancelling it would cost its connection), then
	// gives its slot back, answered or cancelled.
	testkit.Eventually(t, 10*time.Second, "the abandoned upstream request to end", func() bool {
		return scrape(t, h)[telemetry.MetricUpstreamInFlight] == 0
	})
	if got := emu.Calls(emulator.RouteStatus) - before; got != 1 {
		t.Errorf("status route calls = %d, want 1", got)
	}
}

// TestTokenEndpointOutageRecovery: the token endpoint fails while the
// cached access token expires. Calls fail with UNAVAILABLE meanwhile, and
// succeed again once the endpoint is back, without restarting the facade.
func TestTokenEndpointOutageRecovery(t *testing.T) {
	checkGoroutines(t)
	const clientID, clientSecret = "outage-client", "outage-secret"
	up := startUpstream(t, emulator.Config{
		Seed: testSeed(clientID, clientSecret, "outage-api-token"),
		// Short, so that the token the facade holds runs out during the
		// outage (the facade stops using it a little before that).
		TokenLifetime: 2 * time.Second,
	}, nil)
	h := startFacade(t, facade.Config{UpstreamURL: up.url, ClientID: clientID, ClientSecret: clientSecret})
	h.waitServing(t)
	h.mustStatus(t)

	tokenCalls := up.emu.Calls(emulator.RouteToken)
	// The Retry-After is longer than the facade waits between attempts,
	// so each call fails after one: the outage's calls then stay below
	// the breaker's threshold, and recovery need not wait for it.
	up.emu.SetFailureRate(emulator.RouteToken, 1, emulator.Fault{
		Status: http.StatusServiceUnavailable, Details: "token service down", RetryAfter: time.Minute,
	})
	// Calls keep succeeding on the cached token until it is used up; then
	// every call needs a new token and fails.
	var err error
	testkit.Eventually(t, 20*time.Second, "a call to fail once the token ran out", func() bool {
		_, err = h.status(liveService)
		return err != nil
	})
	wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String())
	_, err = h.status(liveService)
	wantError(t, err, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String())
	if got := up.emu.Calls(emulator.RouteToken) - tokenCalls; got < 2 {
		t.Errorf("token route calls during the outage = %d, want at least 2 (refresh and calls)", got)
	}

	up.emu.ResetRouteFaults(emulator.RouteToken)
	testkit.Eventually(t, 30*time.Second, "calls to succeed after the outage", func() bool {
		_, err = h.status(liveService)
		return err == nil
	})
	h.mustStatus(t)
	h.waitServing(t)
}

// TestTokenRevokedUpstream: when the upstream revokes the facade's access
// token, the next call gets a 401, the facade fetches exactly one new token
// and retries, and the caller sees success.
func TestTokenRevokedUpstream(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t)

	admin := &http.Client{Transport: &http.Transport{}, Timeout: callTimeout}
	defer admin.CloseIdleConnections()
	tokenCalls := emu.Calls(emulator.RouteToken)
	statusCalls := emu.Calls(emulator.RouteStatus)
	emulatorAdmin(t, admin, h.f.UpstreamURL(), http.MethodPost, "/revoke-tokens", nil, nil)

	h.mustStatus(t)
	if got := emu.Calls(emulator.RouteToken) - tokenCalls; got != 1 {
		t.Errorf("token fetches after the revocation = %d, want 1", got)
	}
	if got := emu.Calls(emulator.RouteStatus) - statusCalls; got != 2 {
		t.Errorf("status route calls = %d, want 2 (the 401, then the retry with the new token)", got)
	}
	h.mustStatus(t)
	if got := emu.Calls(emulator.RouteToken) - tokenCalls; got != 1 {
		t.Errorf("token fetches after a second call = %d, want still 1: the new token is cached", got)
	}
}

// TestUnusableBodies: a 200 whose body the facade cannot use never turns
// into a success with empty fields. It is INTERNAL with
// UPSTREAM_MALFORMED_RESPONSE, over gRPC and HTTP alike, except where the
// body is usable after all (trailing commas, as the guide prints them) or
// never arrived whole (truncated: a transport failure). The facade stays
// healthy afterwards. Each case has a facade of its own and makes one call,
// so that neither retries nor breaker state carry over.
func TestUnusableBodies(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		body   emulator.BodyFault
		code   codes.Code // OK: the call succeeds with the emulator's values
		reason string
	}{
		{emulator.BodyMalformed, codes.Internal, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String()},
		{emulator.BodyOversized, codes.Internal, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String()},
		{emulator.BodyEmptyValues, codes.Internal, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String()},
		{emulator.BodyMissingFields, codes.Internal, accessv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String()},
		// The guide's examples carry trailing commas, and the client reads
		// them (server/upstream/decode.go): the values must come through.
		{emulator.BodyTrailingComma, codes.OK, ""},
		// Half the body under a Content-Length for all of it, then the
		// connection closes: the answer never arrived, as with a reset.
		{emulator.BodyTruncated, codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String()},
	}
	for _, route := range []emulator.Route{emulator.RouteStatus, emulator.RouteOTP} {
		for _, tt := range tests {
			for _, via := range []string{"grpc", "http"} {
				t.Run(strings.Trim(string(route), "/")+"/"+string(tt.body)+"/"+via, func(t *testing.T) {
					h, emu := startEmulatorFacade(t)
					before := emu.Calls(route)
					// Every attempt gets the fault, whatever the retries,
					// until the reset below.
					emu.SetFailureRate(route, 1, emulator.Fault{Body: tt.body})
					code, reason := h.callRoute(t, route, via)
					if code != tt.code || reason != tt.reason {
						t.Fatalf("%s call: %s %q, want %s %q", via, code, reason, tt.code, tt.reason)
					}
					// An OTP request that reached the upstream is never
					// sent twice. A status request may be tried three times.
					switch got := emu.Calls(route) - before; {
					case route == emulator.RouteOTP && got != 1:
						t.Errorf("OTP route calls = %d, want exactly 1", got)
					case route == emulator.RouteStatus && (got < 1 || got > 3):
						t.Errorf("status route calls = %d, want 1 to 3", got)
					}

					emu.ResetRouteFaults(route)
					resp, err := h.health.Check(callCtx(t), &healthpb.HealthCheckRequest{})
					if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						t.Fatalf("health after the fault = %v, %v; want SERVING", resp, err)
					}
					h.mustStatus(t)
					if _, err := h.otp(); err != nil {
						t.Fatalf("GenerateOTP after the fault: %v", err)
					}
				})
			}
		}
	}
}

// callRoute makes one call that reaches route (status or OTP), over "grpc"
// or "http", and returns its gRPC code (for HTTP, the code whose HTTP
// status it answered with) and ErrorInfo reason. A success must carry the
// emulator's values, never empty fields.
func (h *harness) callRoute(t *testing.T, route emulator.Route, via string) (codes.Code, string) {
	t.Helper()
	var err error
	var res httpResult
	var msg proto.Message
	switch {
	case route == emulator.RouteStatus && via == "grpc":
		msg, err = h.status(liveService)
	case route == emulator.RouteStatus:
		res, msg = h.do(t, http.MethodGet, httpStatusPath(liveService), nil), &accessv1.GetServiceStatusResponse{}
	case via == "grpc":
		msg, err = h.otp()
	default:
		res, msg = h.do(t, http.MethodPost, "/v1/otp", otpRequest()), &accessv1.GenerateOTPResponse{}
	}
	if via == "http" {
		if res.code != http.StatusOK {
			for _, c := range []codes.Code{codes.Internal, codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted} {
				if runtime.HTTPStatusFromCode(c) == res.code {
					return c, res.reason()
				}
			}
			t.Fatalf("HTTP %d %s: not an answer this test expects", res.code, res.body)
		}
		if uerr := protojson.Unmarshal(res.body, msg); uerr != nil {
			t.Fatalf("HTTP 200 with a body that is not the response message: %v: %s", uerr, res.body)
		}
	}
	if err != nil {
		return status.Code(err), reasonOf(err)
	}
	switch m := msg.(type) {
	case *accessv1.GetServiceStatusResponse:
		if m.GetServiceId() != liveService || !m.GetActive() || !m.GetOnline() {
			t.Fatalf("GetServiceStatus succeeded with %v, want the emulator's values", m)
		}
	case *accessv1.GenerateOTPResponse:
		if m.GetOtp() == "" {
			t.Fatalf("GenerateOTP succeeded with an empty OTP")
		}
	}
	return codes.OK, ""
}

// TestConnectionResetMidBody: the connection is reset halfway through the
// response body. A status request is safe to send again, and is; an OTP
// request reached the upstream (which may have minted an OTP) and is not.
func TestConnectionResetMidBody(t *testing.T) {
	checkGoroutines(t)
	h, emu := startEmulatorFacade(t)
	h.mustStatus(t)

	tests := []struct {
		route emulator.Route
		call  func() error
		code  codes.Code // OK: the call succeeds
		calls int64
	}{
		{emulator.RouteStatus, func() error { _, err := h.status(liveService); return err }, codes.OK, 2},
		{emulator.RouteOTP, func() error { _, err := h.otp(); return err }, codes.Unavailable, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Trim(string(tt.route), "/"), func(t *testing.T) {
			t.Cleanup(func() { emu.ResetRouteFaults(tt.route) })
			before := emu.Calls(tt.route)
			emu.Script(tt.route, emulator.Fault{Body: emulator.BodyReset})
			err := tt.call()
			if tt.code == codes.OK {
				if err != nil {
					t.Fatalf("call after one reset: %v, want success on the retry", err)
				}
			} else {
				wantError(t, err, tt.code, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String())
			}
			if got := emu.Calls(tt.route) - before; got != tt.calls {
				t.Errorf("%s calls = %d, want %d", tt.route, got, tt.calls)
			}
		})
	}
}

// TestSIGTERMUnderLoad runs the real binary, sends it SIGTERM while calls
// are in flight, and checks the drain: every in-flight call succeeds, a
// new call is refused, and the process exits 0.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds and runs the binary; skipped with -short")
	}
	checkGoroutines(t)
	const inFlight = 20
	bin := buildFacade(t)

	// Port 0: the binary picks its ports and logs them in its "serving"
	// line, so that no other process can take them between a choice here
	// and the binary's listen.
	cmd := exec.Command(bin, "--emulator", "--rate-limit", "0", "--log-format", "json",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	cmd.Env = []string{} // nothing from the test's environment, secrets least of all
	p, err := testkit.StartProcess(t, cmd)
	if err != nil {
		t.Fatal(err)
	}
	stderr := p.Stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("facade stderr (tail):\n%s", tail(stderr.String(), 16<<10))
		}
	})

	var emuURL, grpcAddr string
	testkit.Eventually(t, readyTimeout, "the EMULATOR MODE and serving log lines", func() bool {
		for _, line := range testkit.JSONLines(stderr.String()) {
			switch msg, _ := line["msg"].(string); {
			case strings.HasPrefix(msg, "EMULATOR MODE"):
				emuURL, _ = line["emulator_url"].(string)
			case msg == "serving":
				grpcAddr, _ = line["grpc_addr"].(string)
			}
		}
		return emuURL != "" && grpcAddr != ""
	})
	if !strings.HasPrefix(emuURL, "http://127.0.0.1:") {
		t.Fatalf("emulator_url = %q, want a loopback URL", emuURL)
	}

	admin := &http.Client{Transport: &http.Transport{}, Timeout: callTimeout}
	defer admin.CloseIdleConnections()
	// One service per call, so that no layer of the facade can fold
	// concurrent calls into one upstream request: each must be in flight
	// on its own.
	services := make([]string, inFlight)
	for i := range services {
		services[i] = "load-" + string(rune('a'+i)) + "-0001"
		emulatorAdmin(t, admin, emuURL, http.MethodPut, "/services", nil,
			emulator.Service{ID: services[i], Active: true, Online: true})
	}
	emulatorAdmin(t, admin, emuURL, http.MethodPut, "/latency",
		url.Values{"route": {string(emulator.RouteStatus)}}, emulator.LatencyRequest{Latency: "1s"})

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer conn.Close()
	if err := waitHealth(healthpb.NewHealthClient(conn), healthpb.HealthCheckResponse_SERVING, readyTimeout); err != nil {
		t.Fatalf("binary never became ready: %v", err)
	}
	client := accessv1.NewAccessServiceClient(conn)

	before := emulatorCalls(t, admin, emuURL, emulator.RouteStatus)
	errs := make([]error, inFlight)
	var wg sync.WaitGroup
	for i, id := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			resp, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: id})
			if err == nil && resp.GetServiceId() != id {
				err = &unexpectedAnswer{got: resp.GetServiceId(), want: id}
			}
			errs[i] = err
		}()
	}
	// Every call is held in the emulator's latency: all are in flight.
	testkit.Eventually(t, callTimeout, "all calls to reach the upstream", func() bool {
		return emulatorCalls(t, admin, emuURL, emulator.RouteStatus)-before >= inFlight
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	testkit.Eventually(t, stopTimeout, "the shutting down log line", func() bool {
		return strings.Contains(stderr.String(), `"msg":"shutting down"`)
	})

	// A new connection once shutdown has begun finds the listener closed.
	late, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer late.Close()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err = accessv1.NewAccessServiceClient(late).GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: liveService})
	wantError(t, err, codes.Unavailable)

	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("in-flight call %d (%s): %v, want success", i, services[i], err)
		}
	}
	select {
	case <-p.Exited():
		if err := p.Err(); err != nil {
			t.Fatalf("process exit: %v, want exit status 0", err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("process still running %s after SIGTERM", stopTimeout)
	}
}

// unexpectedAnswer is a successful call that answered for another service.
type unexpectedAnswer struct{ got, want string }

func (e *unexpectedAnswer) Error() string {
	return "answered for service " + e.got + ", want " + e.want
}

// buildFacade builds cmd/radkit-access-facade into the test's temporary
// directory and returns the binary's path.
func buildFacade(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "radkit-access-facade")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/radkit-access-facade")
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/radkit-access-facade: %v\n%s", err, output)
	}
	return bin
}
