package facade_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Oversized requests are refused on both ways in before any work is done:
// gRPC messages over MaxMessageBytes, HTTP bodies over the gateway's limit
// and request headers over the header limit.
func TestRequestSizeLimits(t *testing.T) {
	s := startSecured(t, facade.Config{}, nil)
	huge := strings.Repeat("x", 2*facade.DefaultMaxMessageBytes)

	t.Run("grpc message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.access.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "a@example.com", EndpointId: "ep", Description: huge})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("oversized gRPC message: %v, want ResourceExhausted", err)
		}
	})

	tests := []struct {
		name       string
		body       string
		header     string
		wantStatus int
		wantBody   string
	}{
		{"http body", `{"owner":"a@example.com","endpoint_id":"ep","description":"` + huge + `"}`, "", http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"},
		{"http header", `{}`, strings.Repeat("h", 64<<10), http.StatusRequestHeaderFieldsTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+s.f.HTTPAddr()+"/v1/otp", bytes.NewReader([]byte(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("X-Padding", tt.header)
			}
			resp, err := s.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(b.String(), tt.wantBody) {
				t.Fatalf("HTTP %d %s, want %d with %q", resp.StatusCode, b.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
	if n := s.f.Emulator().Calls(emulator.RouteOTP); n != 0 {
		t.Errorf("oversized requests reached the upstream: %d OTP calls", n)
	}
}
