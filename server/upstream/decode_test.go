package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStripTrailingCommas(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"otp": "abcd-1234-efgh-5678",}`, `{"otp": "abcd-1234-efgh-5678"}`},
		{"{\n\"service_id\": \"1\",\n\"active\": true,\n\"online\": true,\n}", "{\n\"service_id\": \"1\",\n\"active\": true,\n\"online\": true\n}"},
		{`[1, 2, ]`, `[1, 2 ]`},
		{`{"a": [1, {"b": null,},],}`, `{"a": [1, {"b": null}]}`},
		{`{"a": false ,	}`, `{"a": false 	}`},
		{`{"a": 1e5,}`, `{"a": 1e5}`},
		// Commas inside strings are content.
		{`{"a": ",}", "b": ",]"}`, `{"a": ",}", "b": ",]"}`},
		{`{"a": "\",}",}`, `{"a": "\",}"}`},
		{`{"a": "\\",}`, `{"a": "\\"}`},
		// Not trailing commas: left for the JSON decoder to reject.
		{`{,}`, `{,}`},
		{`[,]`, `[,]`},
		{`[1,,]`, `[1,,]`},
		{`{"a":,}`, `{"a":,}`},
		{`{"a": 1,, }`, `{"a": 1,, }`},
		{`{"a": 1, "b"}`, `{"a": 1, "b"}`},
		{`1,`, `1,`},
		{`"unterminated,}`, `"unterminated,}`},
		{``, ``},
	} {
		got := string(stripTrailingCommas([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("stripTrailingCommas(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	in := []byte(`{"a": 1}`)
	if out := stripTrailingCommas(in); &out[0] != &in[0] {
		t.Error("valid JSON was copied")
	}
}

func TestDecodeStatus(t *testing.T) {
	st, err := decodeStatus([]byte(`{"service_id": "1ryq-e8n8-5g5n", "active": false, "online": false, "extra": {"x": 1}}`))
	if err != nil || st != (ServiceStatus{ServiceID: "1ryq-e8n8-5g5n"}) {
		t.Errorf("got %+v, %v: false values and unknown fields must be accepted", st, err)
	}
}

func TestDecodeErrorBody(t *testing.T) {
	for _, tc := range []struct {
		status      int
		body        string
		wantDetails string
		wantRetry   bool
	}{
		{400, `{"success": false, "details": "Missing required field 'owner'", "retry": false}`, "Missing required field 'owner'", false},
		{503, `{"success": false, "details": "busy", "retry": true,}`, "busy", true},
		{503, `{"retry": true}`, "Service Unavailable", true},
		{404, `<html>not found</html>`, "Not Found", false},
		{404, ``, "Not Found", false},
		{401, `{"error": "invalid_client", "error_description": "bad"}`, "bad", false},
		{599, `nope`, "HTTP status 599", false},
		{500, `{"details": 5}`, "Internal Server Error", false},
	} {
		d, r := decodeErrorBody(tc.status, []byte(tc.body))
		if d != tc.wantDetails || r != tc.wantRetry {
			t.Errorf("decodeErrorBody(%d, %q) = %q, %v; want %q, %v", tc.status, tc.body, d, r, tc.wantDetails, tc.wantRetry)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"99999999999999999", 365 * 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"soon", 0},
		{"1.5", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestReadBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		n       int
		wantErr bool
	}{{0, false}, {10, false}, {11, true}, {1000, true}} {
		b, err := readBody(strings.NewReader(strings.Repeat("x", tc.n)), 10)
		if tc.wantErr != errors.Is(err, ErrMalformedResponse) || (!tc.wantErr && len(b) != tc.n) {
			t.Errorf("readBody(%d bytes, 10) = %d bytes, %v", tc.n, len(b), err)
		}
	}
}

func TestErrorStrings(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&Error{Op: "otp", StatusCode: 400, Details: "Missing required field 'owner'"}, `upstream: otp: HTTP 400 Bad Request: "Missing required field 'owner'"`},
		{&Error{Op: "status", StatusCode: 404, Details: "Not Found"}, `upstream: status: HTTP 404 Not Found`},
		{&Error{Op: "otp", StatusCode: 429, Details: "slow down", Retry: true, RetryAfter: 7 * time.Second}, `upstream: otp: HTTP 429 Too Many Requests: "slow down" (retryable after 7s)`},
		{&TransportError{Op: "otp", BeforeSend: true, Err: errors.New("refused")}, `upstream: otp: request not sent: refused`},
		{&TransportError{Op: "otp", Err: errors.New("reset")}, `upstream: otp: transport error: reset`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if got := redactURL("https://u:p@h/oauth2/revoke?token=" + secretMarker + "#f"); got != "https://h/oauth2/revoke" {
		t.Errorf("redactURL = %q", got)
	}
}

// Fuzz targets. Their seed corpora are under testdata/fuzz/<name>/; the
// decoders must never panic and never return a zero value as a success.

func FuzzStripTrailingCommas(f *testing.F) {
	for _, s := range []string{`{"otp": "x",}`, `[1, 2, ]`, `{,}`, `{"a": ",}",}`, `[1,,]`, `{"a":[1,],}`, `"\\",]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		out := stripTrailingCommas(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("input modified")
		}
		if json.Valid(b) && !bytes.Equal(out, b) {
			t.Fatalf("valid JSON changed: %q -> %q", b, out)
		}
		if again := stripTrailingCommas(out); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", b, out, again)
		}
		// out is b less some commas, each right before a closing bracket.
		var removed []int
		j := 0
		for i := range b {
			if j < len(out) && b[i] == out[j] {
				j++
				continue
			}
			if b[i] != ',' {
				t.Fatalf("%q -> %q: byte %d (%q) removed", b, out, i, b[i])
			}
			removed = append(removed, i)
		}
		if j != len(out) {
			t.Fatalf("%q -> %q: output is not a subsequence", b, out)
		}
		next := func(i int) int {
			for i++; i < len(b) && isJSONSpace(b[i]); i++ {
			}
			return i
		}
		for _, i := range removed {
			if k := next(i); k >= len(b) || (b[k] != '}' && b[k] != ']') {
				t.Fatalf("%q: removed comma %d is not before a closing bracket", b, i)
			}
		}
		if len(removed) == 0 || !json.Valid(out) {
			return
		}
		// Accepted only thanks to the removal: std json must reject b first
		// at the bracket after the first removed comma, and the removed
		// commas must not have been string content.
		var v any
		var se *json.SyntaxError
		if err := json.Unmarshal(b, &v); !errors.As(err, &se) || int(se.Offset)-1 != next(removed[0]) {
			t.Fatalf("%q accepted, but std json fails elsewhere: %v", b, err)
		}
		spaced := bytes.Clone(b)
		for _, i := range removed {
			spaced[i] = ' '
		}
		var a, c any
		if json.Unmarshal(out, &a) != nil || json.Unmarshal(spaced, &c) != nil || !reflect.DeepEqual(a, c) {
			t.Fatalf("%q: a removed comma was string content", b)
		}
	})
}

func FuzzDecodeOTP(f *testing.F) {
	for _, s := range []string{`{"otp": "abcd-1234-efgh-5678",}`, `{"otp": ""}`, `{}`, `null`, `{"otp": 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		otp, err := decodeOTP(b)
		switch {
		case err != nil && !errors.Is(err, ErrMalformedResponse):
			t.Fatalf("error %v is not ErrMalformedResponse", err)
		case err != nil && otp != "":
			t.Fatal("otp alongside an error")
		case err == nil && otp == "":
			t.Fatal("empty otp accepted")
		case err == nil && !json.Valid(stripTrailingCommas(b)):
			t.Fatalf("invalid JSON %q accepted", b)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []string{`{"service_id": "123-123-123", "active": true, "online": true,}`, `{"service_id": "x", "active": false}`, `{"active": null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStatus(b)
		switch {
		case err != nil && !errors.Is(err, ErrMalformedResponse):
			t.Fatalf("error %v is not ErrMalformedResponse", err)
		case err != nil && st != (ServiceStatus{}):
			t.Fatal("status alongside an error")
		case err == nil && st.ServiceID == "":
			t.Fatal("empty service_id accepted")
		case err == nil && !json.Valid(stripTrailingCommas(b)):
			t.Fatalf("invalid JSON %q accepted", b)
		}
	})
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token": "eyJhbGciOi...", "token_type": "Bearer", "expires_in": 3600, "refresh_remaining_lifetime": 600, "radkit_access_token": "x", "identity": "user@example.com", "admin_level": 0}`,
		`{"access_token": "a", "expires_in": "60", "endpoint_id": "e",}`,
		`{"access_token": "a", "expires_in": -1, "admin_level": 1e300}`,
		`{"access_token": "a.eyJleHAiOjF9.c"}`,
	} {
		f.Add([]byte(s))
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		ot, err := decodeAPIToken(b)
		var tr tokenResponse
		if err == nil {
			tr, err = readToken(ot)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		if tr.AccessToken == "" || tr.TokenType == "" {
			t.Fatal("token without access_token or token_type accepted")
		}
		if tr.ExpiresIn < 0 || tr.ExpiresIn > maxTokenLifetime || tr.RefreshRemaining < 0 || tr.RefreshRemaining > maxTokenLifetime {
			t.Fatalf("durations out of range: %+v", tr)
		}
		tok := newToken(tr, start, 0.8)
		if !tok.info.Expiry.After(start) || tok.refreshAt.After(tok.usableUntil) || tok.usableUntil.After(tok.info.Expiry) {
			t.Fatalf("bad schedule: refresh %v usable %v expiry %v", tok.refreshAt, tok.usableUntil, tok.info.Expiry)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(400, []byte(`{"success": false, "details": "Missing required field 'owner'", "retry": false}`))
	f.Add(503, []byte(`{"success": false, "details": "x", "retry": true,}`))
	f.Add(502, []byte(`<html>`))
	f.Add(0, []byte(``))
	f.Fuzz(func(t *testing.T, status int, b []byte) {
		details, _ := decodeErrorBody(status, b)
		if details == "" {
			t.Fatal("empty details")
		}
		e := newError("otp", status, http.Header{"Retry-After": {string(b)}}, b, time.Now())
		if e.RetryAfter < 0 || e.Error() == "" {
			t.Fatalf("bad error %+v", e)
		}
	})
}
