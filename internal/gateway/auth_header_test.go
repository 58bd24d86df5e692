package gateway_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"google.golang.org/grpc/metadata"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/gateway"
)

// metadataRecorder is an AccessService that answers GetServiceStatus and
// hands the incoming metadata of each call to the test.
type metadataRecorder struct {
	accessv1.UnimplementedAccessServiceServer
	seen chan metadata.MD
}

func (s *metadataRecorder) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.seen <- md.Copy()
	return &accessv1.GetServiceStatusResponse{ServiceId: req.GetServiceId(), Active: true, Online: true}, nil
}

// TestAuthorizationHeaderReachesMetadata checks that an HTTP caller's
// Authorization header reaches the service as the metadata key
// "authorization", once, as a native gRPC caller's would, and nowhere else;
// and that no other header can put a value under that key.
func TestAuthorizationHeaderReachesMetadata(t *testing.T) {
	svc := &metadataRecorder{seen: make(chan metadata.MD, 1)}
	h, err := gateway.New(t.Context(), gateway.Config{
		Service: svc,
		Ready:   func() (bool, string) { return true, "" },
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	tests := []struct {
		name    string
		headers http.Header
		want    map[string][]string // metadata key: values; nil values: key absent
	}{
		{
			name:    "bearer key",
			headers: http.Header{"Authorization": {"Bearer x"}},
			want:    map[string][]string{"authorization": {"Bearer x"}, "grpcgateway-authorization": nil},
		},
		{
			name:    "scheme as sent",
			headers: http.Header{"Authorization": {"bearer some-key_123"}},
			want:    map[string][]string{"authorization": {"bearer some-key_123"}},
		},
		{
			name:    "no header",
			headers: http.Header{},
			want:    map[string][]string{"authorization": nil, "grpcgateway-authorization": nil},
		},
		{
			name:    "grpc-metadata prefix cannot inject",
			headers: http.Header{"Grpc-Metadata-Authorization": {"Bearer injected"}},
			want:    map[string][]string{"authorization": nil},
		},
		{
			name:    "real header comes first and alone",
			headers: http.Header{"Authorization": {"Bearer real"}, "Grpc-Metadata-Authorization": {"Bearer injected"}},
			want:    map[string][]string{"authorization": {"Bearer real"}},
		},
		{
			// The default matcher still applies to every other header.
			name:    "default behaviour kept for other headers",
			headers: http.Header{"Accept-Language": {"de"}, "X-Custom": {"y"}},
			want:    map[string][]string{"grpcgateway-accept-language": {"de"}, "x-custom": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/services/1ryq-e8n8-5g5n/status", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.headers {
				req.Header[k] = vs
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			md := <-svc.seen
			for key, want := range tt.want {
				if got := md.Get(key); !slices.Equal(got, want) {
					t.Errorf("metadata %q = %q, want %q (keys present: %q)", key, got, want, slices.Sorted(maps.Keys(md)))
				}
			}
		})
	}
}
