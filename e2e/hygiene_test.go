package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestHostileHeadersAndQueries sends the facade binary (emulator mode)
// what a route would otherwise drop without a word: query parameters it
// does not read, on every route, and header values that cannot pass the
// gateway's header matcher. Each is a 400 INVALID_REQUEST naming the
// parameter or header, before anything is minted; a malformed
// X-Request-ID is replaced; and none of it writes an ERROR line.
func TestHostileHeadersAndQueries(t *testing.T) {
	p, err := startBinary(t,
		[]string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		binaryEnv("RADKIT_ACCESS_CLIENT_ID=ignored-client", "RADKIT_ACCESS_CLIENT_SECRET="+sentinelSecret))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + p.httpAddr
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	waitReady(t, client, base)

	const otpBody = `{"owner":"owner@example.com","endpoint_id":"router-1"}`
	const status = "/v1/services/1ryq-e8n8-5g5n/status"
	type call struct {
		name, method, target, body string
		header                     map[string]string
		want                       int
		names                      string // the parameter or header the refusal names
	}
	calls := []call{
		{"otp identity in query", "POST", "/v1/otp?identity=customer-b", otpBody, nil, 400, "identity"},
		{"otp unknown query", "POST", "/v1/otp?foo=1", otpBody, nil, 400, "foo"},
		{"otp request_id in query", "POST", "/v1/otp?request_id=r-1", otpBody, nil, 400, "request_id"},
		{"revoke identity in query", "POST", "/v1/tokens:revoke?identity=default", `{"token":"t"}`, nil, 400, "identity"},
		{"status upper-case key", "GET", status + "?IDENTITY=x", "", nil, 400, "IDENTITY"},
		{"status unknown key", "GET", status + "?foo=1", "", nil, 400, "foo"},
		{"status path field in query", "GET", status + "?service_id=other", "", nil, 400, "service_id"},
		{"status map syntax", "GET", status + "?identity[a]=default", "", nil, 400, "identity[a]"},
		{"status key without value", "GET", status + "?verbose", "", nil, 400, "verbose"},
		{"status undecodable query", "GET", status + "?identity=%zz", "", nil, 400, "query string"},
		{"status known key", "GET", status + "?identity=default", "", nil, 200, ""},
		{"status known key escaped", "GET", status + "?%69dentity=default", "", nil, 200, ""},
		{"watch unknown key", "GET", status + ":watch?until=UNTIL_ONLINE&foo=1", "", nil, 400, "foo"},
		{"watch known keys", "GET", status + ":watch?until=UNTIL_ONLINE&identity=default", "", nil, 200, ""},
		{"healthz query", "GET", "/healthz?x=1", "", nil, 400, "x"},
		{"readyz query", "GET", "/readyz?verbose=1", "", nil, 400, "verbose"},
		{"openapi query", "GET", "/openapi.json?x=1", "", nil, 400, "x"},
		{"openapi v3 query", "GET", "/openapi.v3.json?x=1", "", nil, 400, "x"},
		{"idempotency key non-ASCII", "POST", "/v1/otp", otpBody, map[string]string{"Idempotency-Key": "clé-1"}, 400, "Idempotency-Key"},
		{"idempotency key 0xFF", "POST", "/v1/otp", otpBody, map[string]string{"Idempotency-Key": "key-\xff"}, 400, "Idempotency-Key"},
		{"idempotency key tab", "POST", "/v1/otp", otpBody, map[string]string{"Idempotency-Key": "key\t1"}, 400, "Idempotency-Key"},
		{"user agent non-ASCII", "POST", "/v1/otp", otpBody, map[string]string{"User-Agent": "clïent/1.0", "Accept-Language": "\xff"}, 200, ""},
	}
	audits := func() int {
		n := 0
		for _, m := range testkit.JSONLines(p.Stderr.String()) {
			if m["msg"] == "audit" {
				n++
			}
		}
		return n
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, base+c.target, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.target, resp.StatusCode, body, c.want)
			}
			if c.want != 400 {
				return
			}
			var st struct {
				Message string `json:"message"`
				Details []struct {
					Reason string `json:"reason"`
				} `json:"details"`
			}
			if err := json.Unmarshal(body, &st); err != nil || len(st.Details) == 0 || st.Details[0].Reason != "INVALID_REQUEST" {
				t.Errorf("body %s, want a google.rpc.Status with reason INVALID_REQUEST", body)
			}
			if !strings.Contains(st.Message, c.names) {
				t.Errorf("message %q does not name %q", st.Message, c.names)
			}
		})
	}

	// A refused call mints and revokes nothing, so it has no audit
	// record: once a last OTP's record is out (records are written in
	// order), there is one per call served, and none more.
	minted := 1
	for _, c := range calls {
		if c.want == 200 && c.target == "/v1/otp" {
			minted++
		}
	}
	last, err := http.NewRequest("POST", base+"/v1/otp", strings.NewReader(otpBody))
	if err != nil {
		t.Fatal(err)
	}
	last.Header.Set("Content-Type", "application/json")
	last.Header.Set("X-Request-ID", "hygiene-last")
	resp, err := client.Do(last)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("last OTP: %v %v", resp, err)
	}
	resp.Body.Close()
	testkit.Eventually(t, 10*time.Second, "the last OTP's audit record", func() bool {
		for _, m := range testkit.JSONLines(p.Stderr.String()) {
			if m["msg"] == "audit" && m["x_request_id"] == "hygiene-last" {
				return true
			}
		}
		return false
	})
	if n := audits(); n != minted {
		t.Errorf("%d audit records, want %d: a refused call minted or revoked", n, minted)
	}

	t.Run("malformed x-request-id replaced", func(t *testing.T) {
		for _, sent := range []string{"clé-1", "id-\xff", "id\t1", "has space"} {
			req, _ := http.NewRequest("GET", base+status, nil)
			req.Header.Set("X-Request-ID", sent)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != 200 || got == sent || !requestIDPattern.MatchString(got) {
				t.Errorf("X-Request-ID %q: answer %d with %q, want 200 with a fresh ID", sent, resp.StatusCode, got)
			}
			testkit.Eventually(t, 10*time.Second, "the call's log line with the fresh ID", func() bool {
				for _, m := range testkit.JSONLines(p.Stderr.String()) {
					if m["msg"] == "finished call" && m["x_request_id"] == got {
						return true
					}
				}
				return false
			})
		}
	})

	t.Run("control byte in a header", func(t *testing.T) {
		// Go's client refuses to send one; net/http's server refuses it
		// before the facade sees it.
		conn, err := net.DialTimeout("tcp", p.httpAddr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\nConnection: close\r\n\r\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(line, " 400 ") {
			t.Errorf("status line %q (%v), want a 400", line, err)
		}
	})

	for _, m := range testkit.JSONLines(p.Stderr.String()) {
		if m["level"] == "ERROR" {
			t.Errorf("ERROR log line: %v", m)
		}
	}
}

// requestIDPattern matches a well-formed request ID (README: at most 128
// characters of [A-Za-z0-9._:-]).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, c *http.Client, base string) {
	t.Helper()
	testkit.Eventually(t, readyTimeout, "GET /readyz 200", func() bool {
		resp, err := c.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
