package e2e

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

const testOTP = "abcd-1234-efgh-5678"

// fakeAccess is a fixed AccessService for proving the Node.js harness.
type fakeAccess struct {
	accessv1.UnimplementedAccessServiceServer

	mu        sync.Mutex
	requestID []string // values of the x-request-id metadata seen by GenerateOTP
}

func (f *fakeAccess) GenerateOTP(ctx context.Context, req *accessv1.GenerateOTPRequest) (*accessv1.GenerateOTPResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.requestID = append(f.requestID, md.Get("x-request-id")...)
	f.mu.Unlock()
	if req.GetOwner() == "" || req.GetEndpointId() == "" {
		return nil, status.Error(codes.InvalidArgument, "owner and endpoint_id are required")
	}
	return &accessv1.GenerateOTPResponse{Otp: testOTP}, nil
}

func (f *fakeAccess) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	switch req.GetServiceId() {
	case "missing":
		st, err := status.New(codes.NotFound, "service missing not found").WithDetails(&errdetails.ErrorInfo{
			Reason:   "UPSTREAM_NOT_FOUND",
			Domain:   "radkit-access-facade",
			Metadata: map[string]string{"upstream_status": "404"},
		})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "building status: %v", err)
		}
		return nil, st.Err()
	case "slow":
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(10 * time.Second):
		}
	}
	return &accessv1.GetServiceStatusResponse{ServiceId: req.GetServiceId(), Active: false, Online: true}, nil
}

func (f *fakeAccess) RevokeToken(context.Context, *accessv1.RevokeTokenRequest) (*accessv1.RevokeTokenResponse, error) {
	return &accessv1.RevokeTokenResponse{}, nil
}

// serveFake starts a plaintext gRPC server with fakeAccess on 127.0.0.1 and
// returns its address; the server stops when the test ends.
func serveFake(t *testing.T, f *fakeAccess) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	accessv1.RegisterAccessServiceServer(srv, f)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func TestNodeClient(t *testing.T) {
	node := NodeClient(t)
	fake := &fakeAccess{}
	addr := serveFake(t, fake)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	got, err := node.Call(ctx, addr, []NodeCall{
		{
			RPC:      "GenerateOTP",
			Request:  map[string]any{"owner": "user@example.com", "endpoint_id": "ep-1", "description": "e2e"},
			Metadata: map[string]string{"x-request-id": "node-e2e-1"},
		},
		{RPC: "GetServiceStatus", Request: map[string]any{"service_id": "1ryq-e8n8-5g5n"}},
		{RPC: "RevokeToken", Request: map[string]any{"token": "eyJ.test.token"}},
		{RPC: "GetServiceStatus", Request: map[string]any{"service_id": "missing"}},
		{RPC: "GetServiceStatus", Request: map[string]any{"service_id": "slow"}, DeadlineMS: 50},
		{RPC: "GenerateOTP"},
	})
	if err != nil {
		t.Fatalf("node client: %v", err)
	}
	t.Logf("node client made %d calls in %s", len(got), time.Since(start).Round(time.Millisecond))

	wantOK := func(i int, rpc string) NodeResult {
		t.Helper()
		r := got[i]
		if r.RPC != rpc || !r.OK || r.Code != codes.OK || r.Details != "" || len(r.ErrorReasons) != 0 || r.Response == nil {
			t.Errorf("call %d: got %+v, want a successful %s", i, r, rpc)
		}
		return r
	}
	wantErr := func(i int, rpc string, code codes.Code, reasons ...string) {
		t.Helper()
		r := got[i]
		if r.RPC != rpc || r.OK || r.Code != code || r.Response != nil {
			t.Errorf("call %d: got %+v, want %s failing with %s", i, r, rpc, code)
		}
		if len(r.ErrorReasons) != len(reasons) {
			t.Errorf("call %d: error reasons %q, want %q", i, r.ErrorReasons, reasons)
			return
		}
		for j := range reasons {
			if r.ErrorReasons[j] != reasons[j] {
				t.Errorf("call %d: error reasons %q, want %q", i, r.ErrorReasons, reasons)
			}
		}
	}

	if r := wantOK(0, "GenerateOTP"); r.Response["otp"] != testOTP {
		t.Errorf("GenerateOTP response %v, want otp %q", r.Response, testOTP)
	}
	r := wantOK(1, "GetServiceStatus")
	if r.Response["service_id"] != "1ryq-e8n8-5g5n" || r.Response["online"] != true {
		t.Errorf("GetServiceStatus response %v, want service_id 1ryq-e8n8-5g5n, online true", r.Response)
	}
	// proto3 does not put false on the wire; defaults:true must fill it in.
	if active, present := r.Response["active"]; !present || active != false {
		t.Errorf("GetServiceStatus response %v: active = %v (present %v), want false and present", r.Response, active, present)
	}
	if r := wantOK(2, "RevokeToken"); len(r.Response) != 0 {
		t.Errorf("RevokeToken response %v, want {}", r.Response)
	}
	wantErr(3, "GetServiceStatus", codes.NotFound, "UPSTREAM_NOT_FOUND")
	if got[3].Code != 5 || got[3].Details != "service missing not found" {
		t.Errorf("NOT_FOUND call: code %d details %q, want 5 and %q", got[3].Code, got[3].Details, "service missing not found")
	}
	wantErr(4, "GetServiceStatus", codes.DeadlineExceeded)
	wantErr(5, "GenerateOTP", codes.InvalidArgument)

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requestID) != 1 || fake.requestID[0] != "node-e2e-1" {
		t.Errorf("x-request-id metadata seen by the server: %q, want [node-e2e-1]", fake.requestID)
	}
}

// TestNodeCallConnectionError shows that a server that cannot be reached is
// an error from Call, not a result.
func TestNodeCallConnectionError(t *testing.T) {
	node := NodeClient(t)
	addr := testkit.ClosedAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := node.Call(ctx, addr, []NodeCall{{RPC: "RevokeToken"}}); err == nil {
		t.Fatalf("Call to closed port %s: got %+v and no error", addr, got)
	}
}
