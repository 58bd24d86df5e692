package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// panickingService panics in every method: with no interceptor chain
// around it, the gateway's own recovery is all that stands between the
// panic and the process.
type panickingService struct {
	accessv1.UnimplementedAccessServiceServer
}

func (panickingService) GetServiceStatus(context.Context, *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	panic("unary boom")
}

func (panickingService) WatchServiceStatus(*accessv1.WatchServiceStatusRequest, grpc.ServerStreamingServer[accessv1.WatchServiceStatusResponse]) error {
	panic("stream boom")
}

// TestGatewayRecoversPanics panics in an HTTP handler and in the goroutine
// of an HTTP stream: each request answers 500 with reason INTERNAL and
// the request ID, each panic is reported once where it happened, and the
// server goes on serving.
func TestGatewayRecoversPanics(t *testing.T) {
	var logs testkit.Buffer
	counts := map[string]*atomic.Int32{panics.HTTPHandler: {}, panics.GatewayStream: {}}
	r := panics.NewReporter(slog.New(slog.NewJSONHandler(&logs, nil)), func(where string) { counts[where].Add(1) })
	h, err := gateway.New(context.Background(), gateway.Config{
		Service: panickingService{},
		Ready:   func() (bool, string) { return true, "" },
		Panics:  r,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	for _, tc := range []struct{ path, where string }{
		{"/v1/services/1ryq-e8n8-5g5n/status", panics.HTTPHandler},
		{"/v1/services/1ryq-e8n8-5g5n/status:watch", panics.GatewayStream},
	} {
		before := len(logs.Records(t))
		req, _ := http.NewRequestWithContext(testkit.Context(t, 20*time.Second), http.MethodGet, srv.URL+tc.path, nil)
		req.Header.Set("X-Request-ID", "req-"+tc.where)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var st struct {
			Code    int
			Details []struct{ Reason string }
		}
		_ = json.Unmarshal(body, &st)
		if resp.StatusCode != http.StatusInternalServerError || len(st.Details) == 0 || st.Details[0].Reason != "INTERNAL" {
			t.Errorf("GET %s: HTTP %d %s, want 500 with reason INTERNAL", tc.path, resp.StatusCode, body)
		}
		recs := logs.Records(t)[before:]
		if len(recs) != 1 || recs[0]["where"] != tc.where || recs[0]["x_request_id"] != "req-"+tc.where || !strings.Contains(recs[0]["stack"].(string), "panic_test.go") {
			t.Errorf("GET %s: panic log %v, want one record where %s with the request ID and the stack", tc.path, recs, tc.where)
		}
		if n := counts[tc.where].Load(); n != 1 {
			t.Errorf("%s counted %d times, want 1", tc.where, n)
		}
	}
	// Still serving.
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the panics: %v %v", resp, err)
	}
	resp.Body.Close()
}
