package ratelimit_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/ratelimit"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
)

// callerHeader carries the caller's name in the tests, standing in for the
// identity that caller authentication finds.
const callerHeader = "x-test-caller"

// callerKey is the tests' Config.Key: the caller named in metadata.
func callerKey(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(callerHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// countingService is the AccessService the tests call: it answers every
// GetServiceStatus and counts the calls that reached it.
type countingService struct {
	accessv1.UnimplementedAccessServiceServer
	calls atomic.Int64
}

func (s *countingService) GetServiceStatus(_ context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	s.calls.Add(1)
	return &accessv1.GetServiceStatusResponse{ServiceId: req.GetServiceId(), Active: true, Online: true}, nil
}

// testServer is a real gRPC server on loopback with the limiter's
// interceptor, the AccessService and the health service, and a client
// connected to it.
type testServer struct {
	svc    *countingService
	access accessv1.AccessServiceClient
	health healthpb.HealthClient
}

func startServer(t *testing.T, l *ratelimit.Limiter) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	svc := &countingService{}
	s := grpc.NewServer(grpc.UnaryInterceptor(l.UnaryServerInterceptor()))
	accessv1.RegisterAccessServiceServer(s, svc)
	healthpb.RegisterHealthServer(s, health.NewServer())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &testServer{
		svc:    svc,
		access: accessv1.NewAccessServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
	}
}

func (ts *testServer) getStatus(t *testing.T, caller string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if caller != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, callerHeader, caller)
	}
	resp, err := ts.access.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
	if err == nil && resp.GetServiceId() != "1ryq-e8n8-5g5n" {
		t.Fatalf("GetServiceStatus answered for %q", resp.GetServiceId())
	}
	return err
}

// checkLimited fails the test unless err is the limiter's refusal of
// caller: ResourceExhausted, ErrorInfo with the reason and the limits,
// RetryInfo with the delay. It returns the retry delay.
func checkLimited(t *testing.T, err error, caller, wantLimit, wantBurst string) time.Duration {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		t.Fatalf("err = %v, want ResourceExhausted", err)
	}
	if want := `rate limit exceeded for caller "` + caller + `"`; !strings.Contains(st.Message(), want) {
		t.Errorf("message %q does not contain %q", st.Message(), want)
	}
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	if info == nil {
		t.Fatalf("no ErrorInfo in %v", st.Details())
	}
	if info.GetReason() != accessv1.ErrorReason_CALLER_RATE_LIMITED.String() || info.GetReason() != "CALLER_RATE_LIMITED" {
		t.Errorf("reason = %q, want CALLER_RATE_LIMITED", info.GetReason())
	}
	if info.GetDomain() != server.ErrorDomain {
		t.Errorf("domain = %q, want %q", info.GetDomain(), server.ErrorDomain)
	}
	if got := info.GetMetadata()[ratelimit.MetadataLimit]; got != wantLimit {
		t.Errorf("metadata limit = %q, want %q", got, wantLimit)
	}
	if got := info.GetMetadata()[ratelimit.MetadataBurst]; got != wantBurst {
		t.Errorf("metadata burst = %q, want %q", got, wantBurst)
	}
	if retry == nil {
		t.Fatalf("no RetryInfo in %v", st.Details())
	}
	d := retry.GetRetryDelay().AsDuration()
	if d <= 0 {
		t.Errorf("RetryInfo delay = %v, want > 0", d)
	}
	return d
}

func TestUnaryServerInterceptor(t *testing.T) {
	// call is one step: advance the clock, then call GetServiceStatus as
	// caller. wantRetry is the RetryInfo delay expected when limited.
	type call struct {
		advance   time.Duration
		caller    string
		limited   bool
		wantRetry time.Duration
	}
	tests := []struct {
		name    string
		rate    rate.Limit
		burst   int
		maxKeys int
		calls   []call
		wantLen int
	}{
		{
			name: "burst passes, then limited",
			rate: 1, burst: 3,
			calls: []call{
				{caller: "alice"},
				{caller: "alice"},
				{caller: "alice"},
				{caller: "alice", limited: true, wantRetry: time.Second},
				{caller: "alice", limited: true, wantRetry: time.Second},
			},
			wantLen: 1,
		},
		{
			name: "callers limited independently",
			rate: 1, burst: 2,
			calls: []call{
				{caller: "alice"},
				{caller: "alice"},
				{caller: "alice", limited: true, wantRetry: time.Second},
				{caller: "bob"},
				{caller: "bob"},
				{caller: "bob", limited: true, wantRetry: time.Second},
				{caller: "alice", limited: true, wantRetry: time.Second},
			},
			wantLen: 2,
		},
		{
			name: "tokens refill with time",
			rate: 2, burst: 1,
			calls: []call{
				{caller: "alice"},
				{caller: "alice", limited: true, wantRetry: 500 * time.Millisecond},
				{advance: 250 * time.Millisecond, caller: "alice", limited: true, wantRetry: 250 * time.Millisecond},
				{advance: 250 * time.Millisecond, caller: "alice"},
				{caller: "alice", limited: true, wantRetry: 500 * time.Millisecond},
				{advance: time.Hour, caller: "alice"},
			},
			wantLen: 1,
		},
		{
			name: "fractional rate",
			rate: 0.5, burst: 1,
			calls: []call{
				{caller: "alice"},
				{caller: "alice", limited: true, wantRetry: 2 * time.Second},
			},
			wantLen: 1,
		},
		{
			name: "LRU bound holds three callers to two",
			rate: 1, burst: 1, maxKeys: 2,
			calls: []call{
				{caller: "alice"},
				{caller: "bob"},
				{caller: "alice", limited: true, wantRetry: time.Second},
				{caller: "carol"}, // bob, least recently seen, is dropped
				{caller: "alice", limited: true, wantRetry: time.Second},
				{caller: "bob"}, // fresh bucket
			},
			wantLen: 2,
		},
		{
			name: "disabled when rate is zero",
			rate: 0, burst: 1,
			calls: []call{
				{caller: "alice"},
				{caller: "alice"},
				{caller: "alice"},
				{caller: "alice"},
			},
			wantLen: 0,
		},
		{
			name: "disabled when rate is negative",
			rate: -5, burst: 1,
			calls: []call{
				{caller: "alice"},
				{caller: "alice"},
			},
			wantLen: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			l := ratelimit.New(ratelimit.Config{
				Rate: tt.rate, Burst: tt.burst, MaxKeys: tt.maxKeys,
				Key: callerKey, Now: clock.Now,
			})
			ts := startServer(t, l)
			var passed int64
			for i, c := range tt.calls {
				clock.Advance(c.advance)
				err := ts.getStatus(t, c.caller)
				if !c.limited {
					if err != nil {
						t.Fatalf("call %d (%s): %v, want success", i, c.caller, err)
					}
					passed++
					continue
				}
				got := checkLimited(t, err, c.caller, formatRate(tt.rate), formatInt(tt.burst))
				if got != c.wantRetry {
					t.Errorf("call %d (%s): retry delay %v, want %v", i, c.caller, got, c.wantRetry)
				}
				if tt.maxKeys > 0 && l.Len() > tt.maxKeys {
					t.Errorf("call %d: Len() = %d, over MaxKeys %d", i, l.Len(), tt.maxKeys)
				}
			}
			// Limited calls must never reach the service.
			if got := ts.svc.calls.Load(); got != passed {
				t.Errorf("service saw %d calls, want %d", got, passed)
			}
			if got := l.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
		})
	}
}

// TestHealthNeverLimited checks that a caller over its limit can still run
// health checks: probes must not fail because of a busy caller.
func TestHealthNeverLimited(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, Key: callerKey, Now: clock.Now})
	ts := startServer(t, l)
	if err := ts.getStatus(t, "alice"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	checkLimited(t, ts.getStatus(t, "alice"), "alice", "1", "1")

	ctx := metadata.AppendToOutgoingContext(context.Background(), callerHeader, "alice")
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range 20 {
		resp, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health check %d: %v", i, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health check %d: %v", i, resp.GetStatus())
		}
	}
	// Health checks took no token: alice is still limited, no more and no
	// less than before.
	if got := checkLimited(t, ts.getStatus(t, "alice"), "alice", "1", "1"); got != time.Second {
		t.Errorf("retry delay %v after health checks, want 1s", got)
	}
}

// TestPeerKeyOverGRPC checks the default key over a real connection: every
// call from this process comes from 127.0.0.1, whatever its port, so the
// calls share one bucket.
func TestPeerKeyOverGRPC(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 2, Now: clock.Now}) // Key nil: PeerKey
	a := startServer(t, l)
	if err := a.getStatus(t, "alice"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if err := a.getStatus(t, "bob"); err != nil {
		t.Fatalf("second call: %v", err)
	}
	checkLimited(t, a.getStatus(t, "carol"), "127.0.0.1", "1", "2")
}

// TestGateway checks the limiter through the real in-process gateway: the
// gateway's peer gives the key, and a limited call is HTTP 429 with the
// ErrorInfo and RetryInfo in the JSON body.
func TestGateway(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, Now: clock.Now}) // Key nil: PeerKey
	svc := &countingService{}
	h, err := gateway.New(context.Background(), gateway.Config{
		Service:     svc,
		Interceptor: l.UnaryServerInterceptor(),
		Ready:       func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	get := func() (int, []byte) {
		t.Helper()
		resp, err := client.Get(srv.URL + "/v1/services/1ryq-e8n8-5g5n/status")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body: %v", err)
		}
		return resp.StatusCode, body
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("first GET: %d %s", code, body)
	}
	code, body := get()
	if code != http.StatusTooManyRequests {
		t.Fatalf("second GET: %d %s, want 429", code, body)
	}
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type       string            `json:"@type"`
			Reason     string            `json:"reason"`
			Domain     string            `json:"domain"`
			Metadata   map[string]string `json:"metadata"`
			RetryDelay string            `json:"retry_delay"`
		} `json:"details"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if codes.Code(st.Code) != codes.ResourceExhausted {
		t.Errorf("code = %d, want ResourceExhausted", st.Code)
	}
	if want := `caller "127.0.0.1"`; !strings.Contains(st.Message, want) {
		t.Errorf("message %q does not name %s", st.Message, want)
	}
	var sawInfo, sawRetry bool
	for _, d := range st.Details {
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.ErrorInfo"):
			sawInfo = d.Reason == accessv1.ErrorReason_CALLER_RATE_LIMITED.String() && d.Domain == server.ErrorDomain &&
				d.Metadata["limit"] == "1" && d.Metadata["burst"] == "1"
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			sawRetry = d.RetryDelay == "1s"
		}
	}
	if !sawInfo || !sawRetry {
		t.Errorf("details lack the expected ErrorInfo (%v) or RetryInfo (%v): %s", sawInfo, sawRetry, body)
	}
	if got := svc.calls.Load(); got != 1 {
		t.Errorf("service saw %d calls, want 1", got)
	}
}

// TestMessageBoundsKey checks that a huge caller key is not repeated whole
// in the status message.
func TestMessageBoundsKey(t *testing.T) {
	long := strings.Repeat("é", 2000) // multi-byte, to catch a cut mid-rune
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{
		Rate: 1, Burst: 1, Now: clock.Now,
		Key: func(context.Context) string { return long },
	})
	ts := startServer(t, l)
	if err := ts.getStatus(t, ""); err != nil {
		t.Fatalf("first call: %v", err)
	}
	st := status.Convert(ts.getStatus(t, ""))
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code = %v, want ResourceExhausted", st.Code())
	}
	if n := len(st.Message()); n > 400 {
		t.Errorf("message is %d bytes, want the key cut short: %q", n, st.Message())
	}
	if strings.ContainsRune(st.Message(), '\uFFFD') || strings.Contains(st.Message(), `\x`) {
		t.Errorf("message has a cut rune: %q", st.Message())
	}
}

func formatRate(r rate.Limit) string {
	b, _ := json.Marshal(float64(r))
	return string(b)
}

func formatInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
