package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/gateway"
)

// retryingService answers every GetServiceStatus with RESOURCE_EXHAUSTED
// carrying a RetryInfo of delay (none when delay is negative), the way the
// rate limiter and the upstream-429 mapping answer.
type retryingService struct {
	accessv1.UnimplementedAccessServiceServer
	delay time.Duration
}

func (s retryingService) GetServiceStatus(context.Context, *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	st := status.New(codes.ResourceExhausted, "slow down")
	if s.delay < 0 {
		return nil, st.Err()
	}
	d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.delay)})
	if err != nil {
		return nil, err
	}
	return nil, d.Err()
}

// TestRetryAfterRoundsUp checks the Retry-After header the gateway derives
// from RetryInfo: whole seconds, rounded up, so that a client that waits
// as told never comes back early (0.5 s is 1, not 0).
func TestRetryAfterRoundsUp(t *testing.T) {
	tests := []struct {
		delay time.Duration // negative: no RetryInfo
		want  string        // "" : no header
	}{
		{delay: 500 * time.Millisecond, want: "1"},
		{delay: time.Millisecond, want: "1"},
		{delay: time.Second, want: "1"},
		{delay: 1001 * time.Millisecond, want: "2"},
		{delay: 2500 * time.Millisecond, want: "3"},
		{delay: -1, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.delay.String(), func(t *testing.T) {
			h, err := gateway.New(t.Context(), gateway.Config{
				Service: retryingService{delay: tt.delay},
				Ready:   func() (bool, string) { return true, "" },
			})
			if err != nil {
				t.Fatalf("gateway.New: %v", err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()

			resp, err := client.Get(srv.URL + "/v1/services/1ryq-e8n8-5g5n/status")
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429", resp.StatusCode)
			}
			got, present := resp.Header.Get("Retry-After"), len(resp.Header.Values("Retry-After")) > 0
			if tt.want == "" {
				if present {
					t.Errorf("Retry-After = %q without a RetryInfo, want no header", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("RetryInfo %s: Retry-After = %q, want %q", tt.delay, got, tt.want)
			}
		})
	}
}
