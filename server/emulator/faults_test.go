package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

const otpBody = `{"owner":"user@example.com","endpoint_id":"ep-1","description":"d"}`

func TestStatusFault(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	e.emu.Script(emulator.RouteOTP,
		emulator.Fault{Status: 503, Retry: true, RetryAfter: 1500 * time.Millisecond},
		emulator.Fault{Status: 429, Details: "slow down", Retry: true},
		emulator.Fault{Status: 500})
	tests := []struct {
		status     int
		body       string
		retryAfter string
	}{
		{503, `{"success":false,"details":"Service Unavailable","retry":true}`, "2"},
		{429, `{"success":false,"details":"slow down","retry":true}`, ""},
		{500, `{"success":false,"details":"Internal Server Error","retry":false}`, ""},
	}
	for i, tt := range tests {
		r := e.do(t, otpRequest(tok, otpBody))
		if r.status != tt.status || string(r.body) != tt.body || r.header.Get("Retry-After") != tt.retryAfter ||
			r.header.Get("Content-Type") != "application/json" {
			t.Errorf("call %d: got %d %s Retry-After=%q, want %d %s %q", i, r.status, r.body, r.header.Get("Retry-After"), tt.status, tt.body, tt.retryAfter)
		}
	}
	if n := len(e.emu.OTPs()); n != 0 {
		t.Errorf("status faults issued %d OTPs, want 0 (handler must not run)", n)
	}
	if r := e.do(t, otpRequest(tok, otpBody)); r.status != 200 {
		t.Errorf("after script: status %d, want 200", r.status)
	}
}

func TestBodyFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault emulator.Fault
		check func(t *testing.T, resp *http.Response, body []byte, readErr error)
	}{
		{"malformed", emulator.Fault{Body: emulator.BodyMalformed}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			if readErr != nil || resp.StatusCode != 200 || json.Valid(body) || !strings.HasPrefix(string(body), `{'otp': '`) && !strings.HasPrefix(string(body), `{'otp':'`) {
				t.Errorf("got %d %q %v, want 200 invalid JSON", resp.StatusCode, body, readErr)
			}
		}},
		{"truncated", emulator.Fault{Body: emulator.BodyTruncated}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			if !errors.Is(readErr, io.ErrUnexpectedEOF) || resp.ContentLength <= int64(len(body)) || len(body) == 0 {
				t.Errorf("got %q (Content-Length %d) err %v, want a cut body and io.ErrUnexpectedEOF", body, resp.ContentLength, readErr)
			}
		}},
		{"oversized", emulator.Fault{Body: emulator.BodyOversized}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			var m map[string]any
			if readErr != nil || len(body) <= 2<<20 || json.Unmarshal(body, &m) != nil || !otpFormat.MatchString(m["otp"].(string)) {
				t.Errorf("got %d bytes err %v, want valid JSON over 2 MiB with an otp", len(body), readErr)
			}
		}},
		{"trailing comma", emulator.Fault{Body: emulator.BodyTrailingComma}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			s := string(body)
			if readErr != nil || json.Valid(body) || !strings.HasPrefix(s, "{\n  \"otp\": \"") || !strings.HasSuffix(s, "\",\n}") {
				t.Errorf("got %q, want the guide's {\"otp\": \"...\",}", s)
			}
		}},
		{"empty otp", emulator.Fault{Body: emulator.BodyEmptyOTP}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			if readErr != nil || string(body) != `{"otp":""}` {
				t.Errorf("got %q", body)
			}
		}},
		{"missing fields", emulator.Fault{Body: emulator.BodyMissingFields}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			if readErr != nil || string(body) != `{}` {
				t.Errorf("got %q", body)
			}
		}},
		{"status and malformed", emulator.Fault{Status: 502, Body: emulator.BodyMalformed}, func(t *testing.T, resp *http.Response, body []byte, readErr error) {
			if resp.StatusCode != 502 || string(body) != `{'success':false,'details':'Bad Gateway','retry':false}` {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, emulator.Config{})
			tok := e.clientToken(t, clientID, clientSecret)
			e.emu.Script(emulator.RouteOTP, tt.fault)
			resp, err := e.send(t, otpRequest(tok, otpBody))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			defer resp.Body.Close()
			body, readErr := io.ReadAll(resp.Body)
			tt.check(t, resp, body, readErr)
			if r := e.do(t, otpRequest(tok, otpBody)); r.status != 200 || !otpFormat.MatchString(r.json(t)["otp"].(string)) {
				t.Errorf("next call: %d %s, want a normal OTP", r.status, r.body)
			}
		})
	}
}

func TestBodyFaultOnOtherRoutes(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.emu.Script(emulator.RouteToken, emulator.Fault{Body: emulator.BodyEmptyValues})
	r := e.do(t, request{method: http.MethodPost, path: "/oauth2/token?grant_type=client_credentials", basic: [2]string{clientID, clientSecret}})
	got := r.json(t)
	if got["access_token"] != "" || got["token_type"] != "" || got["expires_in"] != 3600.0 {
		t.Errorf("empty values on token = %v", got)
	}
	e.emu.Script(emulator.RouteDiscovery, emulator.Fault{Body: emulator.BodyTrailingComma})
	r = e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"})
	if json.Valid(r.body) || !strings.HasSuffix(string(r.body), "/oauth2/user_info\",\n}") {
		t.Errorf("trailing comma on discovery = %q", r.body)
	}
}

func TestResetFault(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	for _, tc := range []struct {
		name  string
		route emulator.Route
		req   request
	}{
		{"otp", emulator.RouteOTP, otpRequest(tok, otpBody)},
		{"revoke (no body)", emulator.RouteRevoke, request{method: http.MethodPost, path: "/oauth2/revoke?token=" + tok, basic: [2]string{clientID, clientSecret}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.emu.Script(tc.route, emulator.Fault{Body: emulator.BodyReset})
			resp, err := e.send(t, tc.req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Fatal("request succeeded, want a connection error")
			}
		})
	}
}

func TestScriptOrderAndCounters(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	tok := e.clientToken(t, clientID, clientSecret)
	e.emu.Script(emulator.RouteStatus, emulator.Fault{Status: 500}, emulator.Fault{Status: 429})
	e.emu.Script(emulator.RouteStatus, emulator.Fault{}, emulator.Fault{Status: 503})
	var got []int
	for range 5 {
		got = append(got, e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/123-123-123", header: bearer(tok)}).status)
	}
	if want := []int{500, 429, 200, 503, 200}; !jsonEqual(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	e.do(t, request{method: http.MethodPost, path: "/public/admin/service/status/x"}) // 405 counts too
	want := map[emulator.Route]int64{emulator.RouteToken: 1, emulator.RouteStatus: 6, emulator.RouteOTP: 0, emulator.RouteDiscovery: 0}
	for route, n := range want {
		if got := e.emu.Calls(route); got != n {
			t.Errorf("Calls(%s) = %d, want %d", route, got, n)
		}
	}
	if got := e.emu.Calls("/unknown"); got != 0 {
		t.Errorf("Calls(unknown) = %d", got)
	}
}

func TestFailureRate(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	get := func() int { return e.do(t, request{method: http.MethodGet, path: "/oauth2/keys"}).status }
	e.emu.SetFailureRate(emulator.RouteKeys, 1, emulator.Fault{Status: 503})
	for range 5 {
		if s := get(); s != 503 {
			t.Fatalf("rate 1: status %d, want 503", s)
		}
	}
	e.emu.Script(emulator.RouteKeys, emulator.Fault{Status: 418 + 82}) // script wins over rate
	if s := get(); s != 500 {
		t.Errorf("scripted over rate: status %d, want 500", s)
	}
	e.emu.SetFailureRate(emulator.RouteKeys, 0.5, emulator.Fault{Status: 502})
	seen := map[int]int{}
	for range 200 {
		seen[get()]++
	}
	if seen[502] == 0 || seen[200] == 0 || seen[502]+seen[200] != 200 {
		t.Errorf("rate 0.5 over 200 calls: %v", seen)
	}
	e.emu.ResetFaults()
	for range 5 {
		if s := get(); s != 200 {
			t.Fatalf("after ResetFaults: status %d", s)
		}
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.emu.SetLatency(emulator.RouteKeys, 50*time.Millisecond)
	e.emu.Script(emulator.RouteKeys, emulator.Fault{Latency: 50 * time.Millisecond})
	for _, min := range []time.Duration{100 * time.Millisecond, 50 * time.Millisecond} {
		start := time.Now()
		if r := e.do(t, request{method: http.MethodGet, path: "/oauth2/keys"}); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if d := time.Since(start); d < min {
			t.Errorf("answered after %v, want at least %v", d, min)
		}
	}
	if n := e.emu.Cancelled(emulator.RouteKeys); n != 0 {
		t.Errorf("Cancelled = %d, want 0", n)
	}
}

func TestLatencyCancelledByClient(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.emu.SetLatency(emulator.RouteKeys, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/oauth2/keys", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded, want deadline exceeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("client deadline not honoured")
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.emu.Cancelled(emulator.RouteKeys) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Cancelled = %d, want 1", e.emu.Cancelled(emulator.RouteKeys))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := e.emu.Calls(emulator.RouteKeys); n != 1 {
		t.Errorf("Calls = %d, want 1", n)
	}
}

func TestFaultJSON(t *testing.T) {
	f := emulator.Fault{Status: 503, Details: "d", Retry: true, RetryAfter: 2 * time.Second, Body: emulator.BodyTruncated, Latency: 250 * time.Millisecond}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"status":503,"details":"d","retry":true,"retry_after":"2s","body":"truncated","latency":"250ms"}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var back emulator.Fault
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{`{"status":200}`, `{"body":"nope"}`, `{"latency":"soon"}`, `{"latency":"-1s"}`, `{"stauts":500}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want error", bad)
		}
	}
}
