package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// testServer is a Server on a real upstream client talking to the emulator
// on loopback, with its audit log captured.
func testServer(t *testing.T) (*Server, *emulator.Emulator, *testkit.Buffer) {
	t.Helper()
	emu, srv := testkit.StartEmulator(t, emulator.Config{})
	seed := emulator.DefaultSeed()
	client, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	audit := &testkit.Buffer{}
	return New(Config{Upstream: client, AuditLog: slog.New(slog.NewJSONHandler(audit, nil))}), emu, audit
}

// call runs one method through UnaryLogger, as the gRPC server and the
// gateway do, as the given caller.
func call[Req, Resp any](t *testing.T, logger *slog.Logger, caller, method string, req Req, fn func(context.Context, Req) (Resp, error)) (Resp, error) {
	t.Helper()
	var resp Resp
	_, err := UnaryLogger(logger)(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: method},
		func(ctx context.Context, req any) (any, error) {
			SetCaller(ctx, caller)
			var err error
			resp, err = fn(ctx, req.(Req))
			return resp, err
		})
	return resp, err
}

func TestGenerateOTPAuditsWithoutTheOTP(t *testing.T) {
	s, emu, audit := testServer(t)
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	req := &accessv1.GenerateOTPRequest{Owner: "user+lab@example.com", EndpointId: "ep-1", Description: "lab router", RequestId: "req-1"}
	resp, err := call(t, logger, "ci-bot", accessv1.AccessService_GenerateOTP_FullMethodName, req, s.GenerateOTP)
	if err != nil {
		t.Fatalf("GenerateOTP: %v", err)
	}
	rec, ok := emu.OTP(resp.GetOtp())
	if !ok || rec.Owner != req.Owner || rec.EndpointID != req.EndpointId || rec.Description != req.Description {
		t.Fatalf("the emulator minted %+v (known %v), want the request's owner, endpoint and description", rec, ok)
	}

	records := audit.Records(t)
	if len(records) != 1 {
		t.Fatalf("%d audit records, want 1: %s", len(records), audit)
	}
	want := map[string]any{"msg": "audit", "rpc": "GenerateOTP", "caller": "ci-bot", "owner": req.Owner,
		"endpoint_id": req.EndpointId, "request_id": req.RequestId, "outcome": "OK"}
	for k, v := range want {
		if records[0][k] != v {
			t.Errorf("audit %s = %v, want %v", k, records[0][k], v)
		}
	}
	for name, text := range map[string]string{"audit log": audit.String(), "call log": logs.String()} {
		if strings.Contains(text, resp.GetOtp()) {
			t.Errorf("the %s contains the OTP: %s", name, text)
		}
	}

	lines := logs.Records(t)
	if len(lines) != 1 || lines[0]["grpc.method"] != "GenerateOTP" || lines[0]["grpc.code"] != "OK" ||
		lines[0]["upstream.status"] != float64(200) || lines[0]["caller"] != "ci-bot" {
		t.Errorf("call log %v, want one line with method, code, upstream status and caller", lines)
	}
}

func TestRevokeTokenAuditsAFingerprintOnly(t *testing.T) {
	s, _, audit := testServer(t)
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1bmtub3duIn0.c2lnbmF0dXJl"
	_, err := call(t, slog.New(slog.DiscardHandler), "ops", accessv1.AccessService_RevokeToken_FullMethodName,
		&accessv1.RevokeTokenRequest{Token: token}, s.RevokeToken)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("revoking an unknown token: %v, want INVALID_ARGUMENT (upstream 400)", err)
	}
	records := audit.Records(t)
	if len(records) != 1 || records[0]["outcome"] != "InvalidArgument" || records[0]["token_sha256_prefix"] != tokenFingerprint(token) {
		t.Fatalf("audit %v, want one InvalidArgument record with the token's fingerprint", records)
	}
	if strings.Contains(audit.String(), token) || strings.Contains(statusMessage(err), token) {
		t.Error("the token leaked into the audit log or the error")
	}
}

func TestInvalidRequestsNeverReachTheUpstream(t *testing.T) {
	s, emu, _ := testServer(t)
	ctx := context.Background()
	_, errOTP := s.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "nobody", EndpointId: ""})
	_, errStatus := s.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "../admin"})
	_, errRevoke := s.RevokeToken(ctx, &accessv1.RevokeTokenRequest{Token: ""})
	for _, err := range []error{errOTP, errStatus, errRevoke} {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("got %v, want INVALID_ARGUMENT", err)
		}
	}
	for _, r := range []emulator.Route{emulator.RouteDiscovery, emulator.RouteToken, emulator.RouteOTP, emulator.RouteStatus, emulator.RouteRevoke} {
		if n := emu.Calls(r); n != 0 {
			t.Errorf("%d upstream calls to %s for invalid requests, want none", n, r)
		}
	}
}

func TestGetServiceStatusReportsFalseFields(t *testing.T) {
	s, _, _ := testServer(t)
	tests := []struct {
		id             string
		active, online bool
	}{
		{"1ryq-e8n8-5g5n", true, true},
		{"offl-ine0-0001", true, false},
		{"inac-tive-0001", false, false},
	}
	for _, tt := range tests {
		resp, err := s.GetServiceStatus(context.Background(), &accessv1.GetServiceStatusRequest{ServiceId: tt.id})
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if resp.GetServiceId() != tt.id || resp.GetActive() != tt.active || resp.GetOnline() != tt.online {
			t.Errorf("%s: got %v, want active=%v online=%v", tt.id, resp, tt.active, tt.online)
		}
	}
}

// TestHealthCallsLoggedAtDebug: probes check every few seconds; their log
// lines are debug, every other call's info (or above, by code).
func TestHealthCallsLoggedAtDebug(t *testing.T) {
	tests := []struct {
		level     slog.Level
		method    string
		wantLines int
	}{
		{slog.LevelInfo, healthpb.Health_Check_FullMethodName, 0},
		{slog.LevelInfo, healthpb.Health_Watch_FullMethodName, 0},
		{slog.LevelDebug, healthpb.Health_Check_FullMethodName, 1},
		{slog.LevelInfo, accessv1.AccessService_GetServiceStatus_FullMethodName, 1},
	}
	for _, tt := range tests {
		t.Run(tt.level.String()+tt.method, func(t *testing.T) {
			logs := &testkit.Buffer{}
			logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: tt.level}))
			_, err := UnaryLogger(logger)(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: tt.method},
				func(context.Context, any) (any, error) { return nil, nil })
			if err != nil {
				t.Fatal(err)
			}
			if got := len(logs.Records(t)); got != tt.wantLines {
				t.Errorf("%d log lines at level %s, want %d: %s", got, tt.level, tt.wantLines, logs)
			}
		})
	}
}
