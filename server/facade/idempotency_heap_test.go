package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestRememberedRequestIDHeapThroughBothDoors measures what a remembered
// request_id keeps on the heap when it came in through the whole facade,
// by HTTP (the gateway) and by gRPC: nothing of the call may survive it
// (pinning the request context for the TTL would cost 8.5 KB a key). The
// facade's emulator keeps a record of every OTP it mints, so the growth of
// as many calls without request_id through the same door, before and
// after, is subtracted. Map growth comes in steps (a table splits, then
// fills), so the figure wanders by a few hundred bytes with where the maps
// stand; it is deterministic for given code (live heap, HeapAlloc after
// GC), and a pinned request context costs several KB. The Store's own
// figure is BenchmarkRememberedKeyHeap's.
func TestRememberedRequestIDHeapThroughBothDoors(t *testing.T) {
	checkGoroutines(t)
	const (
		n     = 1000
		limit = 1024 // bytes per remembered key
	)
	h := startFacade(t, facade.Config{Emulator: true, Logger: slog.New(slog.DiscardHandler)})
	h.waitServing(t)

	viaHTTP := func(req *accessv1.GenerateOTPRequest) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		body, err := json.Marshal(map[string]string{
			"owner": req.GetOwner(), "endpoint_id": req.GetEndpointId(), "description": req.GetDescription(), "request_id": req.GetRequestId(),
		})
		if err != nil {
			return err
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/v1/otp", bytes.NewReader(body))
		if err != nil {
			return err
		}
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := h.http.Do(hreq)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		return nil
	}
	viaGRPC := func(req *accessv1.GenerateOTPRequest) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_, err := h.client.GenerateOTP(ctx, req)
		return err
	}
	calls := func(door func(*accessv1.GenerateOTPRequest) error, prefix string, count int) {
		t.Helper()
		for i := range count {
			req := otpRequest()
			if prefix != "" {
				req.RequestId = fmt.Sprintf("%s-%08d-9dcb-469f-a165-70867728950e", prefix, i)
			}
			if err := door(req); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	for _, tt := range []struct {
		door string
		call func(*accessv1.GenerateOTPRequest) error
	}{{"http", viaHTTP}, {"grpc", viaGRPC}} {
		// Warm up the connections, the token and every map involved.
		calls(tt.call, tt.door+"-warm", 200)
		calls(tt.call, "", 200)
		// Calls without request_id before and after those with, so that
		// the baseline is not skewed by what the previous door left behind.
		h0 := testkit.HeapAfterGC().HeapAlloc
		calls(tt.call, "", n)
		h1 := testkit.HeapAfterGC().HeapAlloc
		calls(tt.call, tt.door, n)
		h2 := testkit.HeapAfterGC().HeapAlloc
		calls(tt.call, "", n)
		h3 := testkit.HeapAfterGC().HeapAlloc
		baseline := (float64(h1) - float64(h0) + float64(h3) - float64(h2)) / 2
		perKey := (float64(h2) - float64(h1) - baseline) / n
		t.Logf("%s: live heap per remembered request_id %.0f bytes (calls without request_id: %.0f and %.0f bytes each)",
			tt.door, perKey, (float64(h1)-float64(h0))/n, (float64(h3)-float64(h2))/n)
		if perKey > limit {
			t.Errorf("%s: each remembered request_id holds %.0f bytes of live heap, want at most %d: something of the call outlives it", tt.door, perKey, limit)
		}
	}
}
