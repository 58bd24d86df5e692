package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// TestGRPCurlReflection lists and describes the services through server
// reflection, as an operator with nothing but grpcurl would.
func TestGRPCurlReflection(t *testing.T) {
	h := startFacade(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "list",
			args: []string{"list"},
			want: []string{"radkit.access.v1.AccessService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"},
		},
		{
			name: "describe",
			args: []string{"describe", "radkit.access.v1.AccessService"},
			want: []string{"rpc GenerateOTP", "rpc GetServiceStatus", "rpc RevokeToken"},
		},
		{
			name: "describe request",
			args: []string{"describe", "radkit.access.v1.GenerateOTPRequest"},
			want: []string{"owner", "endpoint_id", "description", "request_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, exit := runGRPCurl(t, "", append([]string{"-plaintext", h.grpcAddr}, tt.args...)...)
			if exit != 0 {
				t.Fatalf("grpcurl %s: exit %d\n%s", strings.Join(tt.args, " "), exit, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(stdout), w) {
					t.Errorf("grpcurl %s printed:\n%s\nwant it to contain %q", strings.Join(tt.args, " "), stdout, w)
				}
			}
		})
	}
}

// TestGRPCurlProtoSource calls the facade with grpcurl reading the contract
// from proto/ instead of asking the server: the source protos and what the
// facade serves must agree.
func TestGRPCurlProtoSource(t *testing.T) {
	h := startFacade(t)
	root := repoRoot(t)
	protoArgs := []string{
		"-plaintext", "-format-error",
		"-import-path", "proto", "-import-path", "third_party/googleapis",
		"-proto", "radkit/access/v1/access.proto",
	}
	tests := []struct {
		name       string
		request    string
		wantCode   codes.Code
		wantStatus *accessv1.GetServiceStatusResponse
	}{
		{
			name:       "ok",
			request:    `{"service_id": "123-123-123"}`,
			wantCode:   codes.OK,
			wantStatus: &accessv1.GetServiceStatusResponse{ServiceId: "123-123-123", Active: true, Online: true},
		},
		{
			name:     "not found",
			request:  `{"service_id": "no-such-service"}`,
			wantCode: codes.NotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, protoArgs...), "-d", tt.request, h.grpcAddr, "radkit.access.v1.AccessService/GetServiceStatus")
			stdout, stderr, exit := runGRPCurl(t, root, args...)
			if tt.wantCode == codes.OK {
				if exit != 0 {
					t.Fatalf("exit %d, want 0\nstderr:\n%s", exit, stderr)
				}
				got := &accessv1.GetServiceStatusResponse{}
				if err := protojson.Unmarshal(stdout, got); err != nil {
					t.Fatalf("grpcurl printed %q: %v", stdout, err)
				}
				if got.GetServiceId() != tt.wantStatus.GetServiceId() || got.GetActive() != tt.wantStatus.GetActive() || got.GetOnline() != tt.wantStatus.GetOnline() {
					t.Errorf("response %v, want %v", got, tt.wantStatus)
				}
				return
			}
			if want := grpcurlExitOffset + int(tt.wantCode); exit != want {
				t.Fatalf("exit %d, want %d (%s)\nstdout:\n%s\nstderr:\n%s", exit, want, tt.wantCode, stdout, stderr)
			}
			var st struct {
				Code    int              `json:"code"`
				Message string           `json:"message"`
				Details []map[string]any `json:"details"`
			}
			if err := json.Unmarshal(stderr, &st); err != nil {
				t.Fatalf("grpcurl printed %q: not a JSON google.rpc.Status: %v", stderr, err)
			}
			if codes.Code(st.Code) != tt.wantCode || !strings.Contains(st.Message, "Unknown Service ID") {
				t.Errorf("status %+v, want %s with the upstream's details", st, tt.wantCode)
			}
			// The ErrorInfo type is not in access.proto's imports, so grpcurl
			// may only show it as an unknown Any; its type URL is there
			// either way.
			var types []string
			for _, d := range st.Details {
				typ, _ := d["@type"].(string)
				types = append(types, typ)
			}
			if !strings.Contains(strings.Join(types, " "), "google.rpc.ErrorInfo") {
				t.Errorf("status details of types %q, want a google.rpc.ErrorInfo", types)
			}
			if reasons, _ := errorInfoJSON(st.Details); len(reasons) > 0 && reasons[0] != accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String() {
				t.Errorf("ErrorInfo reasons %q, want [%s]", reasons, accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String())
			}
		})
	}
}
