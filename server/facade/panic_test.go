package facade_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// panicking is an upstream proxy chooser that panics, once per arming,
// for the upstream requests whose path contains the armed fragment: the
// transport calls it on the goroutine that sends the request, so the
// panic is a real one on the path that request takes (a handler's own
// goroutine for an OTP, a coalesced lookup's for a status).
type panicking struct{ armed atomic.Pointer[string] }

func (p *panicking) arm(fragment string) { p.armed.Store(&fragment) }

func (p *panicking) proxy(u *url.URL) (*url.URL, error) {
	if f := p.armed.Load(); f != nil && strings.Contains(u.Path, *f) && p.armed.CompareAndSwap(f, nil) {
		panic("test panic on " + u.Path)
	}
	return nil, nil
}

// panicLines returns the "panic recovered" log lines so far.
func (h *harness) panicLines() []map[string]any {
	var out []map[string]any
	for _, m := range testkit.JSONLines(h.logs.String()) {
		if m["msg"] == "panic recovered" {
			out = append(out, m)
		}
	}
	return out
}

// panicCount reads radkit_facade_panics_total{where} from /metrics.
func (h *harness) panicCount(t *testing.T, where string) int {
	t.Helper()
	body := string(h.do(t, http.MethodGet, "/metrics", nil).body)
	m := regexp.MustCompile(`(?m)^radkit_facade_panics_total\{where="` + where + `"\} (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no radkit_facade_panics_total{where=%q}", where)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// noPanicValue fails t when an answer carries the panic's value: it goes to
// the log only.
func noPanicValue(t *testing.T, answer string) {
	t.Helper()
	if strings.Contains(answer, "test panic") {
		t.Errorf("the answer carries the panic's value: %s", answer)
	}
}

// TestPanicIsOneFailedCall drives real panics through both doors and a
// coalesced lookup's goroutine: each call answers INTERNAL with reason
// INTERNAL, the panic is logged once at ERROR with its stack and the
// call's x_request_id, counted by where it happened, the call's own log
// line says INTERNAL, and the next call succeeds.
func TestPanicIsOneFailedCall(t *testing.T) {
	p := &panicking{}
	h := startFacade(t, facade.Config{Emulator: true, UpstreamProxy: p.proxy})
	h.waitServing(t)

	tests := []struct {
		name     string
		fragment string // the upstream path that panics
		where    string
		call     func(t *testing.T, requestID string) (codes.Code, string)
	}{
		{"grpc unary", "/otp/", "unary_call", func(t *testing.T, id string) (codes.Code, string) {
			ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-request-id", id)
			_, err := h.client.GenerateOTP(ctx, otpRequest())
			noPanicValue(t, status.Convert(err).Message())
			return codeAndReason(err)
		}},
		{"http unary", "/otp/", "unary_call", func(t *testing.T, id string) (codes.Code, string) {
			r := h.doWithID(t, http.MethodPost, "/v1/otp", id, `{"owner": "owner@example.com", "endpoint_id": "router-1"}`)
			noPanicValue(t, string(r.body))
			switch r.code {
			case http.StatusOK:
				return codes.OK, ""
			case http.StatusInternalServerError:
				return codes.Internal, r.reason()
			}
			return codes.Unknown, fmt.Sprintf("HTTP %d %s", r.code, r.body)
		}},
		{"coalesced lookup", "/status/", "coalesced_call", func(t *testing.T, id string) (codes.Code, string) {
			ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-request-id", id)
			_, err := h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: liveService})
			noPanicValue(t, status.Convert(err).Message())
			return codeAndReason(err)
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("panic-test-%d", i)
			before, counted := len(h.panicLines()), h.panicCount(t, tc.where)
			p.arm(tc.fragment)
			code, reason := tc.call(t, id)
			if code != codes.Internal || reason != accessv1.ErrorReason_INTERNAL.String() {
				t.Fatalf("answer %s %q, want INTERNAL %q", code, reason, accessv1.ErrorReason_INTERNAL.String())
			}
			var lines []map[string]any
			testkit.Eventually(t, 5*time.Second, "the panic's log line", func() bool {
				lines = h.panicLines()[before:]
				return len(lines) > 0
			})
			if len(lines) != 1 {
				t.Fatalf("%d panic log lines, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["level"] != "ERROR" || l["where"] != tc.where || l["x_request_id"] != id ||
				!strings.Contains(fmt.Sprint(l["stack"]), "panic_test.go") || !strings.Contains(fmt.Sprint(l["panic"]), "test panic") {
				t.Errorf("panic log line %v, want ERROR, where %s, x_request_id %s, the panic and a stack through the proxy", l, tc.where, id)
			}
			if got := h.panicCount(t, tc.where); got != counted+1 {
				t.Errorf("radkit_facade_panics_total{where=%q} = %d, want %d", tc.where, got, counted+1)
			}
			if line := h.callLineByID(t, id); line["grpc.code"] != "Internal" || line["level"] != "ERROR" {
				t.Errorf("call log line %v, want grpc.code Internal at ERROR", line)
			}
			// The process serves on: the same call now succeeds.
			if code, reason := tc.call(t, id+"-next"); code != codes.OK {
				t.Fatalf("the call after the panic: %s %q, want OK", code, reason)
			}
		})
	}
	if _, err := h.otp(); err != nil {
		t.Fatalf("GenerateOTP after the panics: %v", err)
	}
	if r := h.do(t, http.MethodPost, "/v1/otp", map[string]string{"owner": "owner@example.com", "endpoint_id": "router-1"}); r.code != http.StatusOK {
		t.Fatalf("POST /v1/otp after the panics: HTTP %d %s", r.code, r.body)
	}
}

// codeAndReason is err's gRPC code and ErrorInfo reason.
func codeAndReason(err error) (codes.Code, string) {
	if err == nil {
		return codes.OK, ""
	}
	return status.Code(err), reasonOf(err)
}

// doWithID sends an HTTP request with a JSON body and an X-Request-ID
// header to the facade's gateway.
func (h *harness) doWithID(t *testing.T, method, path, requestID, body string) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(callCtx(t), method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", requestID)
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return httpResult{code: resp.StatusCode, body: b}
}

// callLineByID waits for the per-call log line with x_request_id id.
func (h *harness) callLineByID(t *testing.T, id string) map[string]any {
	t.Helper()
	var line map[string]any
	testkit.Eventually(t, 5*time.Second, "the call's log line", func() bool {
		for _, m := range testkit.JSONLines(h.logs.String()) {
			if m["msg"] == "finished call" && m["x_request_id"] == id {
				line = m
				return true
			}
		}
		return false
	})
	return line
}
