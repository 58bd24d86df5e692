package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// Deadlines of the deadline-exceeded cases. The upstream is held far
// longer (holdLatency), so the deadline always passes first, however slow
// the machine; the test never measures how long anything took.
const (
	callDeadline = 500 * time.Millisecond
	// grpcurlDeadline is grpcurl's -max-time, which also bounds its server
	// reflection round trips before the call.
	grpcurlDeadline = 3 * time.Second
	holdLatency     = time.Minute
)

// otpPattern is the shape of the OTPs the emulator mints.
var otpPattern = regexp.MustCompile(`^[a-z]{4}-[0-9]{4}-[a-z]{4}-[0-9]{4}$`)

// rpcCase is one call and what every client must see of it.
type rpcCase struct {
	name string
	rpc  string // GenerateOTP, GetServiceStatus or RevokeToken
	// request is the request message with proto field names.
	request map[string]any
	// freshToken sets request["token"] to a live access token.
	freshToken bool

	// route is the upstream route the RPC calls; faults are scripted on it
	// (enough of them to outlast any retries) and latency holds it.
	route   emulator.Route
	faults  []emulator.Fault
	latency time.Duration
	// deadline is the caller's deadline; zero sets none.
	deadline time.Duration

	wantCode    codes.Code
	wantHTTP    int
	wantReason  string // ErrorInfo reason; "" on success
	wantMessage string // substring of the status message
	// check inspects a successful response (proto field names, defaults
	// present) and the upstream's state after it.
	check func(t *testing.T, h *harness, req, resp map[string]any)
}

// outcome is what one client saw of a call, in a common form.
type outcome struct {
	code    codes.Code
	message string
	// reasons and domains are those of the google.rpc.ErrorInfo details.
	reasons, domains []string
	// httpStatus is the HTTP status; 0 for gRPC clients.
	httpStatus int
	// response is the response message with proto field names and every
	// field present; nil on error.
	response map[string]any
}

// clientKind is one way of calling the facade.
type clientKind struct {
	name string
	call func(t *testing.T, h *harness, c rpcCase, req map[string]any) outcome
	// clientDeadline is whether the client enforces the deadline itself,
	// so that it may report DEADLINE_EXCEEDED before the facade's status
	// (with its ErrorInfo) arrives.
	clientDeadline bool
}

// rpcCases is the table every client kind runs.
func rpcCases() []rpcCase {
	unavailable := func() []emulator.Fault {
		// More than any retry layer makes: GetServiceStatus is retried on
		// 5xx. The harness is per case, so leftovers never leak.
		f := make([]emulator.Fault, 10)
		for i := range f {
			f[i] = emulator.Fault{Status: http.StatusServiceUnavailable, Details: "maintenance window"}
		}
		return f
	}
	held := func(route emulator.Route) (emulator.Route, time.Duration, time.Duration) {
		return route, holdLatency, callDeadline
	}
	otpReq := map[string]any{"owner": "user@example.com", "endpoint_id": "ep-e2e-1", "description": "e2e test"}
	const unknownToken = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"

	c := []rpcCase{
		{
			name: "GenerateOTP/ok", rpc: "GenerateOTP", request: otpReq, route: emulator.RouteOTP,
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: func(t *testing.T, h *harness, req, resp map[string]any) {
				otp, _ := resp["otp"].(string)
				if !otpPattern.MatchString(otp) || len(resp) != 1 {
					t.Errorf("response %v: want exactly an otp like abcd-1234-efgh-5678", resp)
					return
				}
				rec, ok := h.emu.OTP(otp)
				if !ok || rec.Owner != req["owner"] || rec.EndpointID != req["endpoint_id"] || rec.Description != req["description"] {
					t.Errorf("emulator's record of OTP: %+v (found %v), want the request's owner, endpoint_id and description", rec, ok)
				}
			},
		},
		{
			name: "GenerateOTP/invalid", rpc: "GenerateOTP", request: map[string]any{"owner": "not-an-email", "endpoint_id": "ep"},
			route:    emulator.RouteOTP,
			wantCode: codes.InvalidArgument, wantHTTP: http.StatusBadRequest, wantReason: accessv1.ErrorReason_INVALID_REQUEST.String(), wantMessage: "owner",
		},
		{
			name: "GenerateOTP/not_found", rpc: "GenerateOTP", request: otpReq,
			route: emulator.RouteOTP, faults: []emulator.Fault{{Status: http.StatusNotFound, Details: "Unknown endpoint"}},
			wantCode: codes.NotFound, wantHTTP: http.StatusNotFound, wantReason: accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String(), wantMessage: "Unknown endpoint",
		},
		{
			name: "GenerateOTP/upstream_503", rpc: "GenerateOTP", request: otpReq,
			route: emulator.RouteOTP, faults: unavailable(),
			wantCode: codes.Unavailable, wantHTTP: http.StatusServiceUnavailable, wantReason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), wantMessage: "maintenance window",
		},
		{
			// A plain 500 (no "retry": true) is the upstream's own failure;
			// GenerateOTP is never retried on it, so one fault is enough.
			name: "GenerateOTP/upstream_500", rpc: "GenerateOTP", request: otpReq,
			route: emulator.RouteOTP, faults: []emulator.Fault{{Status: http.StatusInternalServerError}},
			wantCode: codes.Internal, wantHTTP: http.StatusInternalServerError, wantReason: accessv1.ErrorReason_UPSTREAM_ERROR.String(), wantMessage: "Internal Server Error",
		},
		{
			name: "GetServiceStatus/ok", rpc: "GetServiceStatus", request: map[string]any{"service_id": "1ryq-e8n8-5g5n"},
			route:    emulator.RouteStatus,
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: wantResponse(map[string]any{"service_id": "1ryq-e8n8-5g5n", "active": true, "online": true}),
		},
		{
			// proto3 leaves false off the wire; every client must still
			// show "active": false and "online": false.
			name: "GetServiceStatus/ok_inactive", rpc: "GetServiceStatus", request: map[string]any{"service_id": "inac-tive-0001"},
			route:    emulator.RouteStatus,
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: wantResponse(map[string]any{"service_id": "inac-tive-0001", "active": false, "online": false}),
		},
		{
			name: "GetServiceStatus/invalid", rpc: "GetServiceStatus", request: map[string]any{"service_id": "bad id"},
			route:    emulator.RouteStatus,
			wantCode: codes.InvalidArgument, wantHTTP: http.StatusBadRequest, wantReason: accessv1.ErrorReason_INVALID_REQUEST.String(), wantMessage: "service_id",
		},
		{
			name: "GetServiceStatus/not_found", rpc: "GetServiceStatus", request: map[string]any{"service_id": "no-such-service"},
			route:    emulator.RouteStatus,
			wantCode: codes.NotFound, wantHTTP: http.StatusNotFound, wantReason: accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String(), wantMessage: "Unknown Service ID",
		},
		{
			name: "GetServiceStatus/upstream_503", rpc: "GetServiceStatus", request: map[string]any{"service_id": "1ryq-e8n8-5g5n"},
			route: emulator.RouteStatus, faults: unavailable(),
			wantCode: codes.Unavailable, wantHTTP: http.StatusServiceUnavailable, wantReason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), wantMessage: "maintenance window",
		},
		{
			name: "RevokeToken/ok", rpc: "RevokeToken", freshToken: true,
			route:    emulator.RouteRevoke,
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: func(t *testing.T, h *harness, req, resp map[string]any) {
				if len(resp) != 0 {
					t.Errorf("response %v, want {}", resp)
				}
				token, _ := req["token"].(string)
				if got := h.emulatorRevokeStatus(t, token); got != http.StatusBadRequest {
					t.Errorf("revoking the token again at the emulator: HTTP %d, want 400 (already revoked)", got)
				}
			},
		},
		{
			name: "RevokeToken/invalid", rpc: "RevokeToken", request: map[string]any{"token": ""},
			route:    emulator.RouteRevoke,
			wantCode: codes.InvalidArgument, wantHTTP: http.StatusBadRequest, wantReason: accessv1.ErrorReason_INVALID_REQUEST.String(), wantMessage: "token",
		},
		{
			name: "RevokeToken/unknown_token", rpc: "RevokeToken", request: map[string]any{"token": unknownToken},
			route:    emulator.RouteRevoke,
			wantCode: codes.InvalidArgument, wantHTTP: http.StatusBadRequest, wantReason: accessv1.ErrorReason_UPSTREAM_BAD_REQUEST.String(), wantMessage: "Token unknown or expired",
		},
		{
			name: "RevokeToken/not_found", rpc: "RevokeToken", request: map[string]any{"token": unknownToken},
			route: emulator.RouteRevoke, faults: []emulator.Fault{{Status: http.StatusNotFound}},
			wantCode: codes.NotFound, wantHTTP: http.StatusNotFound, wantReason: accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String(),
		},
		{
			name: "RevokeToken/upstream_503", rpc: "RevokeToken", freshToken: true,
			route: emulator.RouteRevoke, faults: unavailable(),
			wantCode: codes.Unavailable, wantHTTP: http.StatusServiceUnavailable, wantReason: accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), wantMessage: "maintenance window",
		},
	}
	// Identities (deploy/identities.example.yaml; callers are anonymous, so
	// every identity may be used): each call acts upstream as the one it
	// names, and one that does not exist is refused before the upstream.
	c = append(c,
		rpcCase{
			name: "GenerateOTP/identity", rpc: "GenerateOTP", route: emulator.RouteOTP,
			request:  map[string]any{"owner": "user@example.com", "endpoint_id": "ep-e2e-2", "identity": "customer-b"},
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: func(t *testing.T, h *harness, req, resp map[string]any) {
				otp, _ := resp["otp"].(string)
				if rec, ok := h.emu.OTP(otp); !ok || rec.Identity != "automation+customer-b@example.com" {
					t.Errorf("emulator's record of the OTP: %+v (found %v), want it minted as automation+customer-b@example.com", rec, ok)
				}
			},
		},
		rpcCase{
			name: "GetServiceStatus/identity", rpc: "GetServiceStatus", route: emulator.RouteStatus,
			request:  map[string]any{"service_id": "1ryq-e8n8-5g5n", "identity": "customer-c"},
			wantCode: codes.OK, wantHTTP: http.StatusOK,
			check: wantResponse(map[string]any{"service_id": "1ryq-e8n8-5g5n", "active": true, "online": true}),
		},
		rpcCase{
			name: "GetServiceStatus/identity_not_granted", rpc: "GetServiceStatus", route: emulator.RouteStatus,
			request:  map[string]any{"service_id": "1ryq-e8n8-5g5n", "identity": "no-such-identity"},
			wantCode: codes.PermissionDenied, wantHTTP: http.StatusForbidden, wantReason: accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String(),
		},
		rpcCase{
			name: "RevokeToken/identity_not_granted", rpc: "RevokeToken", route: emulator.RouteRevoke,
			request:  map[string]any{"token": unknownToken, "identity": "no-such-identity"},
			wantCode: codes.PermissionDenied, wantHTTP: http.StatusForbidden, wantReason: accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String(),
		},
	)
	// Deadline exceeded, for each RPC: the upstream holds the call past the
	// caller's deadline.
	for _, d := range []struct {
		rpc     string
		request map[string]any
		fresh   bool
		route   emulator.Route
	}{
		{"GenerateOTP", otpReq, false, emulator.RouteOTP},
		{"GetServiceStatus", map[string]any{"service_id": "1ryq-e8n8-5g5n"}, false, emulator.RouteStatus},
		{"RevokeToken", nil, true, emulator.RouteRevoke},
	} {
		rc := rpcCase{
			name: d.rpc + "/deadline_exceeded", rpc: d.rpc, request: d.request, freshToken: d.fresh,
			wantCode: codes.DeadlineExceeded, wantHTTP: http.StatusGatewayTimeout, wantReason: accessv1.ErrorReason_UPSTREAM_TIMEOUT.String(),
		}
		rc.route, rc.latency, rc.deadline = held(d.route)
		c = append(c, rc)
	}
	return c
}

// wantResponse checks that the response is exactly want.
func wantResponse(want map[string]any) func(*testing.T, *harness, map[string]any, map[string]any) {
	return func(t *testing.T, _ *harness, _, resp map[string]any) {
		t.Helper()
		if !reflect.DeepEqual(resp, want) {
			t.Errorf("response %v, want %v", resp, want)
		}
	}
}

// TestAccessService runs every case of rpcCases through every client: the
// generated Go client, HTTP/JSON through the gateway, grpcurl through
// server reflection, and the Node.js @grpc/grpc-js client. Each case gets a
// facade (with its emulator) of its own; the client kinds run in parallel.
func TestAccessService(t *testing.T) {
	kinds := []clientKind{
		{name: "go", call: callGo, clientDeadline: true},
		{name: "http", call: callHTTP},
		{name: "grpcurl", call: callGRPCurl, clientDeadline: true},
		{name: "node", call: callNode, clientDeadline: true},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range rpcCases() {
				t.Run(c.name, func(t *testing.T) {
					runCase(t, kind, c)
				})
			}
		})
	}
}

// runCase starts a facade, scripts the case's faults, makes the call with
// kind and checks the outcome and the upstream's view of it.
func runCase(t *testing.T, kind clientKind, c rpcCase) {
	h := startFacade(t)
	req := maps.Clone(c.request)
	if req == nil {
		req = map[string]any{}
	}
	if c.freshToken {
		req["token"] = h.freshAccessToken(t)
	}
	if len(c.faults) > 0 {
		h.emu.Script(c.route, c.faults...)
	}
	if c.latency > 0 {
		h.emu.SetLatency(c.route, c.latency)
	}

	got := kind.call(t, h, c, req)

	if got.code != c.wantCode {
		t.Fatalf("code %s (message %q, reasons %q), want %s", got.code, got.message, got.reasons, c.wantCode)
	}
	if kind.name == "http" && got.httpStatus != c.wantHTTP {
		t.Errorf("HTTP status %d, want %d", got.httpStatus, c.wantHTTP)
	}
	if c.wantCode == codes.OK {
		if c.check != nil {
			c.check(t, h, req, got.response)
		}
	} else {
		checkError(t, kind, c, got)
	}

	calls := h.emu.Calls(c.route)
	refused := c.wantReason == accessv1.ErrorReason_INVALID_REQUEST.String() || c.wantReason == accessv1.ErrorReason_IDENTITY_NOT_GRANTED.String()
	switch {
	case refused && calls != 0:
		t.Errorf("a request refused by the facade reached the upstream: %d calls to %s", calls, c.route)
	case !refused && calls == 0:
		t.Errorf("no call reached the upstream route %s", c.route)
	}
	if c.deadline > 0 {
		// The facade's upstream call must not wait out the upstream: over
		// HTTP/1.1 it runs on for at most 5 s after the caller's deadline
		// (to keep its connection), then the emulator counts the abandoned
		// request.
		if !eventually(readyTimeout, func() bool { return h.emu.Cancelled(c.route) > 0 }) {
			t.Errorf("the upstream call to %s was not cancelled when the caller's deadline passed", c.route)
		}
	}
}

// checkError checks the status message and ErrorInfo of a failed call.
func checkError(t *testing.T, kind clientKind, c rpcCase, got outcome) {
	t.Helper()
	if got.response != nil {
		t.Errorf("failed call returned a response too: %v", got.response)
	}
	if len(got.reasons) == 0 && c.deadline > 0 && kind.clientDeadline {
		// The client's own deadline fired before the facade's status
		// arrived; the code alone is all it has.
		return
	}
	if !slices.Equal(got.reasons, []string{c.wantReason}) {
		t.Errorf("ErrorInfo reasons %q, want [%s]", got.reasons, c.wantReason)
	}
	for _, d := range got.domains {
		if d != server.ErrorDomain {
			t.Errorf("ErrorInfo domain %q, want %q", d, server.ErrorDomain)
		}
	}
	if !strings.Contains(got.message, c.wantMessage) {
		t.Errorf("message %q, want it to contain %q", got.message, c.wantMessage)
	}
	if strings.Contains(got.message, emulatorClient.Secret) || strings.Contains(got.message, "127.0.0.1") {
		t.Errorf("message %q names a secret or an internal address", got.message)
	}
}

// newRequest returns an empty request message for rpc.
func newRequest(t *testing.T, rpc string) proto.Message {
	t.Helper()
	switch rpc {
	case "GenerateOTP":
		return &accessv1.GenerateOTPRequest{}
	case "GetServiceStatus":
		return &accessv1.GetServiceStatusRequest{}
	case "RevokeToken":
		return &accessv1.RevokeTokenRequest{}
	}
	t.Fatalf("unknown RPC %q", rpc)
	return nil
}

// newResponse returns an empty response message for rpc.
func newResponse(t *testing.T, rpc string) proto.Message {
	t.Helper()
	switch rpc {
	case "GenerateOTP":
		return &accessv1.GenerateOTPResponse{}
	case "GetServiceStatus":
		return &accessv1.GetServiceStatusResponse{}
	case "RevokeToken":
		return &accessv1.RevokeTokenResponse{}
	}
	t.Fatalf("unknown RPC %q", rpc)
	return nil
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return b
}

// protoMap turns a message into the common response form: proto field
// names, every field present.
func protoMap(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatalf("encoding %T: %v", m, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return out
}

// callContext returns the context of a call: deadline away, or a minute
// (a bound against hangs, never reached) when deadline is zero.
func callContext(deadline time.Duration) (context.Context, context.CancelFunc) {
	if deadline > 0 {
		return context.WithTimeout(context.Background(), deadline)
	}
	return context.WithTimeout(context.Background(), time.Minute)
}

// callGo calls with the generated Go client.
func callGo(t *testing.T, h *harness, c rpcCase, req map[string]any) outcome {
	t.Helper()
	msg := newRequest(t, c.rpc)
	if err := protojson.Unmarshal(mustJSON(t, req), msg); err != nil {
		t.Fatalf("building the %s request: %v", c.rpc, err)
	}
	ctx, cancel := callContext(c.deadline)
	defer cancel()
	var (
		resp proto.Message
		err  error
	)
	switch m := msg.(type) {
	case *accessv1.GenerateOTPRequest:
		resp, err = h.client.GenerateOTP(ctx, m)
	case *accessv1.GetServiceStatusRequest:
		resp, err = h.client.GetServiceStatus(ctx, m)
	case *accessv1.RevokeTokenRequest:
		resp, err = h.client.RevokeToken(ctx, m)
	}
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			t.Fatalf("%s: not a gRPC status: %v", c.rpc, err)
		}
		out := outcome{code: st.Code(), message: st.Message()}
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				out.reasons = append(out.reasons, info.GetReason())
				out.domains = append(out.domains, info.GetDomain())
			}
		}
		if st.Code() == codes.Unavailable && out.reasons != nil && !hasRetryInfo(st) {
			t.Errorf("UNAVAILABLE status without google.rpc.RetryInfo: %v", st.Proto())
		}
		return out
	}
	return outcome{code: codes.OK, response: protoMap(t, resp)}
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// callHTTP calls through the gateway with net/http. A deadline travels as
// the Grpc-Timeout header, which the gateway turns into the call's deadline.
func callHTTP(t *testing.T, h *harness, c rpcCase, req map[string]any) outcome {
	t.Helper()
	var (
		method, path string
		body         io.Reader
	)
	switch c.rpc {
	case "GenerateOTP":
		method, path, body = http.MethodPost, "/v1/otp", bytes.NewReader(mustJSON(t, req))
	case "GetServiceStatus":
		id, _ := req["service_id"].(string)
		method, path = http.MethodGet, "/v1/services/"+url.PathEscape(id)+"/status"
		if ident, _ := req["identity"].(string); ident != "" {
			path += "?identity=" + url.QueryEscape(ident)
		}
	case "RevokeToken":
		method, path, body = http.MethodPost, "/v1/tokens:revoke", bytes.NewReader(mustJSON(t, req))
	default:
		t.Fatalf("unknown RPC %q", c.rpc)
	}
	hreq, err := http.NewRequest(method, "http://"+h.httpAddr+path, body)
	if err != nil {
		t.Fatalf("building the HTTP request: %v", err)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if c.deadline > 0 {
		hreq.Header.Set("Grpc-Timeout", fmt.Sprintf("%dm", c.deadline.Milliseconds()))
	}
	resp, err := h.http.Do(hreq)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	out := outcome{httpStatus: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		out.code = codes.OK
		if err := json.Unmarshal(raw, &out.response); err != nil {
			t.Fatalf("%s %s: HTTP 200 body %s: %v", method, path, raw, err)
		}
		return out
	}

	// An error body is a google.rpc.Status: code, message and details,
	// each present.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("%s %s: HTTP %d body %s is not a JSON object: %v", method, path, resp.StatusCode, raw, err)
	}
	for _, k := range []string{"code", "message", "details"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("HTTP %d body %s has no %q: want a google.rpc.Status", resp.StatusCode, raw, k)
		}
	}
	var st struct {
		Code    int              `json:"code"`
		Message string           `json:"message"`
		Details []map[string]any `json:"details"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s %s: HTTP %d body %s: %v", method, path, resp.StatusCode, raw, err)
	}
	out.code, out.message = codes.Code(st.Code), st.Message
	out.reasons, out.domains = errorInfoJSON(st.Details)
	return out
}

// errorInfoJSON returns the reasons and domains of the
// google.rpc.ErrorInfo entries among JSON-encoded status details.
func errorInfoJSON(details []map[string]any) (reasons, domains []string) {
	for _, d := range details {
		if typ, _ := d["@type"].(string); strings.HasSuffix(typ, "/google.rpc.ErrorInfo") {
			r, _ := d["reason"].(string)
			dom, _ := d["domain"].(string)
			reasons, domains = append(reasons, r), append(domains, dom)
		}
	}
	return reasons, domains
}

// grpcurlExitOffset is what grpcurl adds to the gRPC code of a failed
// call to make its exit status.
const grpcurlExitOffset = 64

// callGRPCurl calls with grpcurl, which learns the service through server
// reflection. -format-error prints a failure's status as JSON on stderr.
func callGRPCurl(t *testing.T, h *harness, c rpcCase, req map[string]any) outcome {
	t.Helper()
	args := []string{"-plaintext", "-format-error", "-emit-defaults"}
	if c.deadline > 0 {
		args = append(args, "-max-time", fmt.Sprint(grpcurlDeadline.Seconds()))
	}
	args = append(args, "-d", string(mustJSON(t, req)), h.grpcAddr, "radkit.access.v1.AccessService/"+c.rpc)
	stdout, stderr, exit := runGRPCurl(t, "", args...)
	switch {
	case exit == 0:
		msg := newResponse(t, c.rpc)
		if err := protojson.Unmarshal(stdout, msg); err != nil {
			t.Fatalf("grpcurl printed %q: not a %s: %v", stdout, c.rpc, err)
		}
		return outcome{code: codes.OK, response: protoMap(t, msg)}
	case exit > grpcurlExitOffset && exit <= grpcurlExitOffset+int(codes.Unauthenticated):
		out := outcome{code: codes.Code(exit - grpcurlExitOffset)}
		var st struct {
			Code    int              `json:"code"`
			Message string           `json:"message"`
			Details []map[string]any `json:"details"`
		}
		if err := json.Unmarshal(stderr, &st); err != nil {
			t.Fatalf("grpcurl exit %d printed %q: not a JSON google.rpc.Status: %v", exit, stderr, err)
		}
		if codes.Code(st.Code) != out.code {
			t.Errorf("grpcurl exit %d but printed status code %d", exit, st.Code)
		}
		out.message = st.Message
		out.reasons, out.domains = errorInfoJSON(st.Details)
		return out
	}
	t.Fatalf("grpcurl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), exit, stdout, stderr)
	return outcome{}
}

// runGRPCurl runs the pinned grpcurl with args in dir ("" for the current
// directory) and returns its output and exit status.
func runGRPCurl(t *testing.T, dir string, args ...string) (stdout, stderr []byte, exit int) {
	t.Helper()
	// Build (or find) grpcurl before the clock starts: a cold build takes
	// longer than a call may.
	bin := grpcurlBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("running grpcurl: %v\nstderr:\n%s", err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes(), exit
}

// callNode calls with the Node.js @grpc/grpc-js client.
func callNode(t *testing.T, h *harness, c rpcCase, req map[string]any) outcome {
	t.Helper()
	node := NodeClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := node.Call(ctx, h.grpcAddr, []NodeCall{{RPC: c.rpc, Request: req, DeadlineMS: int(c.deadline.Milliseconds())}})
	if err != nil {
		t.Fatalf("node client: %v", err)
	}
	r := results[0]
	out := outcome{code: r.Code, message: r.Details, reasons: r.ErrorReasons}
	if r.OK {
		out.response = r.Response
		if out.response == nil {
			out.response = map[string]any{}
		}
	}
	return out
}

// TestHealthFollowsUpstream watches the gRPC health of AccessService on one
// stream while the upstream's discovery fails, comes back, and the facade
// shuts down: NOT_SERVING, then SERVING only once the upstream is back,
// then NOT_SERVING again. /readyz says the same.
func TestHealthFollowsUpstream(t *testing.T) {
	h := newHarness(t, func(emu *emulator.Emulator) {
		emu.SetFailureRate(emulator.RouteDiscovery, 1, emulator.Fault{Status: http.StatusServiceUnavailable})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	stream, err := healthpb.NewHealthClient(h.conn).Watch(ctx,
		&healthpb.HealthCheckRequest{Service: accessv1.AccessService_ServiceDesc.ServiceName}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	updates := make(chan healthpb.HealthCheckResponse_ServingStatus, 16)
	go func() {
		defer close(updates)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			updates <- resp.GetStatus()
		}
	}()
	next := func(what string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		select {
		case st, ok := <-updates:
			if !ok {
				t.Fatalf("%s: the health Watch stream ended", what)
			}
			return st
		case <-time.After(readyTimeout):
			t.Fatalf("%s: no health update within %s", what, readyTimeout)
		}
		return 0
	}

	if st := next("first update"); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("first health status %s while discovery fails, want NOT_SERVING", st)
	}
	// Two discovery attempts: the first readiness check failed and the
	// facade is trying again.
	if !eventually(readyTimeout, func() bool { return h.emu.Calls(emulator.RouteDiscovery) >= 2 }) {
		t.Fatalf("discovery called %d times, want the facade to keep trying", h.emu.Calls(emulator.RouteDiscovery))
	}
	code, body := getHTTP(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz while discovery fails: HTTP %d %s, want 503 not ready", code, body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, emulatorClient.Secret) {
		t.Errorf("/readyz reason %s names an internal address or a secret", body)
	}
	select {
	case st := <-updates:
		if st == healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("SERVING while discovery still fails")
		}
	default:
	}

	h.emu.ResetFaults()
	for st := next("after the upstream came back"); st != healthpb.HealthCheckResponse_SERVING; st = next("after the upstream came back") {
		t.Logf("health %s; waiting for SERVING", st)
	}
	if code, body := getHTTP(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("/readyz once SERVING: HTTP %d %s, want 200 ready", code, body)
	}
	resp, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check of the whole server: %v, %v; want SERVING", resp, err)
	}

	// Shutting down turns NOT_SERVING at once, on the same stream, while
	// the stream (an in-flight call) drains.
	h.stop()
	if st := next("on shutdown"); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health on shutdown %s, want NOT_SERVING", st)
	}
	cancel()
}

// getHTTP gets path from the facade's HTTP listener and returns the status
// and body.
func getHTTP(t *testing.T, h *harness, path string) (int, string) {
	t.Helper()
	resp, err := h.http.Get("http://" + h.httpAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}
