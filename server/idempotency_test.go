package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// testCallerHeader names the caller in the tests' requests. Production
// authenticates callers elsewhere; here an interceptor trusts the header, so
// that tests can act as different callers through a real gRPC server.
const testCallerHeader = "x-test-caller"

// otpEnv is a Server behind a real gRPC server on 127.0.0.1, calling the
// emulator through a real upstream client, with a fake clock for the
// idempotency store.
type otpEnv struct {
	emu    *emulator.Emulator
	client accessv1.AccessServiceClient
	clock  *testkit.Clock
	audit  *testkit.Buffer
}

func newOTPEnv(t *testing.T, maxEntries int) *otpEnv {
	t.Helper()
	return newOTPEnvWith(t, idempotency.Config{MaxEntries: maxEntries})
}

// newOTPEnvWith is newOTPEnv with the request_id store configured by cfg
// (its clock is the env's).
func newOTPEnvWith(t *testing.T, cfg idempotency.Config) *otpEnv {
	t.Helper()
	emu, up := testkit.StartEmulator(t, emulator.Config{})
	seed := emulator.DefaultSeed()
	uc, err := upstream.New(upstream.Config{BaseURL: up.URL, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uc.Close() })

	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	audit := &testkit.Buffer{}
	// The production Store, with a clock the test moves. Closed after the
	// gRPC server has stopped (cleanups run last registered first).
	cfg.Now = clock.Now
	otps := idempotency.New(cfg)
	t.Cleanup(otps.Close)
	s := New(Config{Upstream: uc, AuditLog: slog.New(slog.NewJSONHandler(audit, nil)), Idempotency: otps})

	callerFromHeader := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(testCallerHeader); len(v) > 0 {
				SetCaller(ctx, v[0])
			}
		}
		return handler(ctx, req)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryLogger(slog.New(slog.DiscardHandler)), callerFromHeader))
	accessv1.RegisterAccessServiceServer(gs, s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &otpEnv{emu: emu, client: accessv1.NewAccessServiceClient(conn), clock: clock, audit: audit}
}

// generate calls GenerateOTP as caller ("" for none).
func (e *otpEnv) generate(caller string, req *accessv1.GenerateOTPRequest) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if caller != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, testCallerHeader, caller)
	}
	resp, err := e.client.GenerateOTP(ctx, req)
	return resp.GetOtp(), err
}

func (e *otpEnv) otpCalls() int64 { return e.emu.Calls(emulator.RouteOTP) }

func otpRequest(requestID string) *accessv1.GenerateOTPRequest {
	return &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "ep-1", Description: "lab router", RequestId: requestID}
}

// errorDetails returns the reason of err's ErrorInfo, the fields of its
// BadRequest and the delay of its RetryInfo.
func errorDetails(err error) (reason string, fields []string, retry time.Duration) {
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == ErrorDomain {
				reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		}
	}
	return reason, fields, retry
}

func TestGenerateOTPWithRequestIDReturnsTheFirstOTP(t *testing.T) {
	env := newOTPEnv(t, 0)
	first, err := env.generate("alice", otpRequest("req-1"))
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	env.clock.Advance(idempotency.DefaultTTL - time.Second)
	again, err := env.generate("alice", otpRequest("req-1"))
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if again != first {
		t.Errorf("repeat returned another OTP; want the first one back")
	}
	if n := env.otpCalls(); n != 1 {
		t.Errorf("%d upstream OTP calls, want 1", n)
	}
	if len(env.emu.OTPs()) != 1 {
		t.Errorf("the emulator minted %d OTPs, want 1", len(env.emu.OTPs()))
	}
	recs := env.audit.Records(t)
	if len(recs) != 2 || recs[0]["replayed"] != false || recs[1]["replayed"] != true {
		t.Errorf("audit records %v, want the second marked replayed", recs)
	}
	if strings.Contains(env.audit.String(), first) {
		t.Error("the audit log contains the OTP")
	}
}

func TestGenerateOTPConcurrentDuplicatesShareOneCall(t *testing.T) {
	env := newOTPEnv(t, 0)
	// Hold the upstream answer so that the duplicates overlap the call.
	env.emu.SetLatency(emulator.RouteOTP, 200*time.Millisecond)
	const n = 50
	otps := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			otps[i], errs[i] = env.generate("alice", otpRequest("req-concurrent"))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || otps[i] != otps[0] || otps[i] == "" {
			t.Errorf("caller %d: err %v, same OTP as caller 0: %v", i, errs[i], otps[i] == otps[0])
		}
	}
	// Whether a duplicate joined the call in flight or came after it, the
	// upstream was called once.
	if got := env.otpCalls(); got != 1 {
		t.Errorf("%d upstream OTP calls for %d duplicates, want 1", got, n)
	}
}

func TestGenerateOTPRequestIDReusedWithOtherFields(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*accessv1.GenerateOTPRequest)
	}{
		{"owner", func(r *accessv1.GenerateOTPRequest) { r.Owner = "other@example.com" }},
		{"endpoint_id", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "ep-2" }},
		{"description", func(r *accessv1.GenerateOTPRequest) { r.Description = "lab router 2" }},
		{"description emptied", func(r *accessv1.GenerateOTPRequest) { r.Description = "" }},
	}
	env := newOTPEnv(t, 0)
	if _, err := env.generate("alice", otpRequest("req-reuse")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := otpRequest("req-reuse")
			tt.modify(req)
			_, err := env.generate("alice", req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want INVALID_ARGUMENT", err)
			}
			reason, fields, _ := errorDetails(err)
			if reason != accessv1.ErrorReason_REQUEST_ID_REUSED.String() || len(fields) != 1 || fields[0] != "request_id" {
				t.Errorf("reason %q, violations %v; want %s on request_id", reason, fields, accessv1.ErrorReason_REQUEST_ID_REUSED.String())
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "already used") || !strings.Contains(msg, "10 minutes") {
				t.Errorf("message %q does not say the request_id was already used within 10 minutes", msg)
			}
		})
	}
	if n := env.otpCalls(); n != 1 {
		t.Errorf("%d upstream OTP calls, want 1: refused reuses must not reach the upstream", n)
	}
}

func TestGenerateOTPRequestIDExpires(t *testing.T) {
	env := newOTPEnv(t, 0)
	first, err := env.generate("alice", otpRequest("req-ttl"))
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(idempotency.DefaultTTL)
	second, err := env.generate("alice", otpRequest("req-ttl"))
	if err != nil {
		t.Fatal(err)
	}
	if second == first || env.otpCalls() != 2 {
		t.Errorf("after the TTL: same OTP %v, %d upstream calls; want a new OTP from a second call", second == first, env.otpCalls())
	}
	// Expired, the request_id may even carry other fields.
	env.clock.Advance(idempotency.DefaultTTL)
	req := otpRequest("req-ttl")
	req.EndpointId = "ep-other"
	if _, err := env.generate("alice", req); err != nil {
		t.Errorf("expired request_id with other fields: %v, want a new OTP", err)
	}
}

func TestGenerateOTPFailuresAreNotRemembered(t *testing.T) {
	env := newOTPEnv(t, 0)
	env.emu.Script(emulator.RouteOTP, emulator.Fault{Status: http.StatusInternalServerError, Details: "database down"})
	_, err := env.generate("alice", otpRequest("req-fail"))
	if status.Code(err) != codes.Internal {
		t.Fatalf("first call: %v, want INTERNAL (upstream 500)", err)
	}
	if reason, _, _ := errorDetails(err); reason != accessv1.ErrorReason_UPSTREAM_ERROR.String() {
		t.Errorf("first call reason %q, want %q", reason, accessv1.ErrorReason_UPSTREAM_ERROR.String())
	}
	otp, err := env.generate("alice", otpRequest("req-fail"))
	if err != nil || otp == "" {
		t.Fatalf("retry with the same request_id: %v, want an OTP", err)
	}
	if n := env.otpCalls(); n != 2 {
		t.Errorf("%d upstream OTP calls, want 2: the retry must reach the upstream", n)
	}
	if again, err := env.generate("alice", otpRequest("req-fail")); err != nil || again != otp {
		t.Errorf("repeat after the success: %v, same OTP %v; want the remembered OTP", err, again == otp)
	}
}

func TestGenerateOTPRequestIDIsScopedByCaller(t *testing.T) {
	env := newOTPEnv(t, 0)
	alice, err := env.generate("alice", otpRequest("req-shared"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := env.generate("bob", otpRequest("req-shared"))
	if err != nil {
		t.Fatal(err)
	}
	if alice == bob {
		t.Error("bob got alice's OTP by reusing her request_id")
	}
	// Nor may bob's use of the id with other fields be refused: it is his.
	req := otpRequest("req-shared")
	req.EndpointId = "ep-bob"
	if _, err := env.generate("carol", req); err != nil {
		t.Errorf("another caller's request_id with other fields: %v, want a new OTP", err)
	}
	if n := env.otpCalls(); n != 3 {
		t.Errorf("%d upstream OTP calls, want 3", n)
	}
}

func TestGenerateOTPWithoutRequestIDMintsEachTime(t *testing.T) {
	env := newOTPEnv(t, 0)
	a, errA := env.generate("alice", otpRequest(""))
	b, errB := env.generate("alice", otpRequest(""))
	if errA != nil || errB != nil {
		t.Fatalf("calls: %v, %v", errA, errB)
	}
	if a == b || env.otpCalls() != 2 {
		t.Errorf("same OTP %v, %d upstream calls; want two OTPs from two calls", a == b, env.otpCalls())
	}
}

func TestGenerateOTPRefusesNewRequestIDsWhenFull(t *testing.T) {
	env := newOTPEnv(t, 2)
	for _, id := range []string{"req-a", "req-b"} {
		if _, err := env.generate("alice", otpRequest(id)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := env.generate("alice", otpRequest("req-c"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third request_id: %v, want RESOURCE_EXHAUSTED", err)
	}
	if reason, _, retry := errorDetails(err); reason != accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String() || retry != idempotency.DefaultTTL {
		t.Errorf("reason %q, retry %s; want %s and the time until the oldest expires", reason, retry, accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String())
	}
	// Calls without request_id are unaffected.
	if _, err := env.generate("alice", otpRequest("")); err != nil {
		t.Errorf("without request_id when full: %v", err)
	}
	env.clock.Advance(idempotency.DefaultTTL)
	if _, err := env.generate("alice", otpRequest("req-c")); err != nil {
		t.Errorf("new request_id once the others expired: %v", err)
	}
}

// TestGenerateOTPRequestIDQuotaIsPerCaller: a caller holding its quota of
// request_ids is refused a new one, while another caller's fresh
// request_ids are still accepted.
func TestGenerateOTPRequestIDQuotaIsPerCaller(t *testing.T) {
	env := newOTPEnvWith(t, idempotency.Config{MaxEntries: 100, MaxEntriesPerOwner: 2})
	for _, id := range []string{"req-a", "req-b"} {
		if _, err := env.generate("greedy", otpRequest(id)); err != nil {
			t.Fatalf("greedy within its quota: %v", err)
		}
	}
	_, err := env.generate("greedy", otpRequest("req-c"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("greedy's third request_id: %v, want RESOURCE_EXHAUSTED", err)
	}
	if reason, _, retry := errorDetails(err); reason != accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String() || retry != idempotency.DefaultTTL {
		t.Errorf("reason %q, retry %s; want %s and the time until greedy's oldest expires", reason, retry, accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String())
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "this caller") {
		t.Errorf("message %q does not say that the quota is this caller's", msg)
	}
	for _, id := range []string{"req-a", "req-b"} {
		if _, err := env.generate("modest", otpRequest(id)); err != nil {
			t.Errorf("another caller's fresh request_id %q while greedy is at its quota: %v", id, err)
		}
	}
	// greedy's remembered request_ids still replay.
	if _, err := env.generate("greedy", otpRequest("req-a")); err != nil {
		t.Errorf("greedy's remembered request_id: %v", err)
	}
	if n := env.otpCalls(); n != 4 {
		t.Errorf("%d upstream OTP calls, want 4: the refused one must not reach the upstream", n)
	}
}

// TestGenerateOTPRequestIDFieldsAreDelimited: endpoint "ep-1l"
// with description "ab" joins to the same string as "ep-1" with "lab"; the
// request_id must still see other fields, not replay the first OTP.
func TestGenerateOTPRequestIDFieldsAreDelimited(t *testing.T) {
	env := newOTPEnv(t, 0)
	first := &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "ep-1", Description: "lab", RequestId: "req-shift"}
	if _, err := env.generate("alice", first); err != nil {
		t.Fatal(err)
	}
	shifted := &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "ep-1l", Description: "ab", RequestId: "req-shift"}
	otp, err := env.generate("alice", shifted)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("request_id reused with the boundary between endpoint_id and description shifted: OTP given %v, err %v; want INVALID_ARGUMENT (REQUEST_ID_REUSED)", otp != "", err)
	}
	if reason, _, _ := errorDetails(err); reason != accessv1.ErrorReason_REQUEST_ID_REUSED.String() {
		t.Errorf("reason %q, want %s", reason, accessv1.ErrorReason_REQUEST_ID_REUSED.String())
	}
}

func TestGenerateOTPValidatesRequestID(t *testing.T) {
	tests := []struct {
		id    string
		valid bool
	}{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"job_42.retry-1", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"slash/inside", false},
		{"ünïcode", false},
	}
	env := newOTPEnv(t, 0)
	for _, tt := range tests {
		_, err := env.generate("alice", otpRequest(tt.id))
		if tt.valid != (err == nil) {
			t.Errorf("request_id %q: %v, want valid=%v", tt.id, err, tt.valid)
			continue
		}
		if err != nil {
			if reason, fields, _ := errorDetails(err); status.Code(err) != codes.InvalidArgument ||
				reason != accessv1.ErrorReason_INVALID_REQUEST.String() || len(fields) != 1 || fields[0] != "request_id" {
				t.Errorf("request_id %q: %v (%s on %v), want INVALID_ARGUMENT on request_id", tt.id, err, reason, fields)
			}
		}
	}
}

// TestRememberedRequestIDHeapThroughGRPC measures what a remembered
// request_id keeps on the heap when it came in through a real gRPC server:
// nothing of the call (its context, stream, metadata, buffers) may survive
// it. The emulator in the same process keeps a record of every OTP it
// mints, so the growth of as many calls without request_id is subtracted.
func TestRememberedRequestIDHeapThroughGRPC(t *testing.T) {
	const (
		n       = 3000
		workers = 8
		limit   = 1024 // bytes per remembered key
	)
	env := newOTPEnv(t, 0)
	calls := func(prefix string, count int, withID bool) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < count; i += workers {
					id := ""
					if withID {
						id = fmt.Sprintf("%s-%d", prefix, i)
					}
					if _, err := env.generate("alice", otpRequest(id)); err != nil {
						errs <- fmt.Errorf("call %d: %w", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Warm up the connections, the token and every map involved.
	calls("warm", 500, true)
	calls("", 500, false)

	h0 := testkit.HeapAfterGC().HeapAlloc
	calls("", n, false)
	h1 := testkit.HeapAfterGC().HeapAlloc
	calls("key", n, true)
	h2 := testkit.HeapAfterGC().HeapAlloc

	perKey := (float64(h2) - float64(h1) - (float64(h1) - float64(h0))) / n
	t.Logf("live heap per remembered request_id through gRPC: %.0f bytes (calls without request_id: %.0f bytes each, the emulator's records)",
		perKey, (float64(h1)-float64(h0))/n)
	if perKey > limit {
		t.Errorf("each remembered request_id holds %.0f bytes of live heap, want at most %d: something of the call outlives it", perKey, limit)
	}
}
