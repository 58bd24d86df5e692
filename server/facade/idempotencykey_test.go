package facade_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// postOTP sends POST /v1/otp with body and the given headers.
func (h *harness) postOTP(t *testing.T, body map[string]string, header map[string]string) httpResult {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodPost, h.base+"/v1/otp", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/otp: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /v1/otp: reading body: %v", err)
	}
	return httpResult{code: resp.StatusCode, body: data}
}

func (r httpResult) otp(t *testing.T) string {
	t.Helper()
	var v struct{ Otp string }
	if r.code != http.StatusOK || json.Unmarshal(r.body, &v) != nil || v.Otp == "" {
		t.Fatalf("answer %d %s, want 200 with an OTP", r.code, r.body)
	}
	return v.Otp
}

// TestIdempotencyKeyHeader checks POST /v1/otp's Idempotency-Key header:
// it stands for a missing request_id (a repeat gets the first OTP and
// the upstream mints once), an equal request_id is fine, and a different
// or malformed one is a 400 INVALID_REQUEST naming request_id.
func TestIdempotencyKeyHeader(t *testing.T) {
	h, emu := startEmulatorFacade(t)
	body := map[string]string{"owner": "owner@example.com", "endpoint_id": "router-1"}
	withID := func(id string) map[string]string {
		return map[string]string{"owner": "owner@example.com", "endpoint_id": "router-1", "request_id": id}
	}

	before := emu.Calls(emulator.RouteOTP)
	first := h.postOTP(t, body, map[string]string{"Idempotency-Key": "key-0001"}).otp(t)
	again := h.postOTP(t, body, map[string]string{"Idempotency-Key": "key-0001"}).otp(t)
	same := h.postOTP(t, withID("key-0001"), map[string]string{"Idempotency-Key": "key-0001"}).otp(t)
	bodyOnly := h.postOTP(t, withID("key-0001"), nil).otp(t)
	if again != first || same != first || bodyOnly != first {
		t.Errorf("OTPs %q, %q, %q, %q: want the first one replayed each time", first, again, same, bodyOnly)
	}
	if n := emu.Calls(emulator.RouteOTP) - before; n != 1 {
		t.Errorf("%d upstream OTP calls, want 1", n)
	}
	if other := h.postOTP(t, body, map[string]string{"Idempotency-Key": "key-0002"}).otp(t); other == first {
		t.Errorf("another key got the first key's OTP")
	}

	for _, tt := range []struct {
		name   string
		body   map[string]string
		header string
	}{
		{"differs from request_id", withID("key-0003"), "key-0004"},
		{"malformed", body, "not a key!"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := emu.Calls(emulator.RouteOTP)
			res := h.postOTP(t, tt.body, map[string]string{"Idempotency-Key": tt.header})
			if res.code != http.StatusBadRequest || res.reason() != "INVALID_REQUEST" || !strings.Contains(string(res.body), `"field":"request_id"`) {
				t.Errorf("answer %d %s, want 400 INVALID_REQUEST naming request_id", res.code, res.body)
			}
			if n := emu.Calls(emulator.RouteOTP) - before; n != 0 {
				t.Errorf("%d upstream OTP calls for a refused request", n)
			}
		})
	}
}

// TestIdempotencyKeyMetadata checks that a gRPC caller's idempotency-key
// metadata is the same as the header: a conflict is INVALID_ARGUMENT.
func TestIdempotencyKeyMetadata(t *testing.T) {
	h, _ := startEmulatorFacade(t)
	req := otpRequest()
	req.RequestId = "grpc-key-1"
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "idempotency-key", "grpc-key-2")
	_, err := h.client.GenerateOTP(ctx, req)
	wantError(t, err, codes.InvalidArgument, "INVALID_REQUEST")
}
