package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestRunThroughEgressProxy runs the whole command with HTTPS_PROXY naming
// a CONNECT proxy that requires the user and password of its URL, against
// the emulator over TLS with its CA given by RADKIT_FACADE_UPSTREAM_CA_FILE. The
// upstream is addressed by a name that is not loopback (Go never proxies
// loopback targets), which only the proxy maps to 127.0.0.1: the calls can
// only have succeeded through it. The proxy must have seen CONNECTs with
// the credentials of the URL and then only TLS: no secret, token, OTP or
// path in the bytes it relayed.
func TestRunThroughEgressProxy(t *testing.T) {
	const upstreamHost = "radkit-upstream.test"
	te := testkit.StartTLSEmulator(t, emulator.Config{}, upstreamHost)
	_, port, err := net.SplitHostPort(te.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testkit.StartConnectProxy(t, testkit.ProxyOptions{
		User: "egress", Password: "proxy-pass-5f2c",
		Hosts: map[string]string{upstreamHost: "127.0.0.1"},
	})
	client := emulator.DefaultSeed().Clients[0]
	env := map[string]string{
		"RADKIT_FACADE_UPSTREAM_URL":     "https://" + net.JoinHostPort(upstreamHost, port),
		"RADKIT_FACADE_UPSTREAM_CA_FILE": te.CAFile,
		"RADKIT_ACCESS_CLIENT_ID":        client.ID,
		"RADKIT_ACCESS_CLIENT_SECRET":    client.Secret,
		"RADKIT_FACADE_LOG_FORMAT":       "json",
		"HTTPS_PROXY":                    proxy.URL.String(),
		"NO_PROXY":                       "example.com", // names another host: the upstream still goes through the proxy
	}
	httpAddr := runUntilReady(t, env)

	// An OTP through the gateway: token fetch (Basic client credentials)
	// and the OTP call (Bearer token) both go through the proxy.
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://"+httpAddr+"/v1/otp", "application/json",
		strings.NewReader(`{"owner":"owner@example.com","endpoint_id":"endpoint-1","description":"through the proxy"}`))
	if err != nil {
		t.Fatalf("POST /v1/otp: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		OTP string `json:"otp"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.OTP == "" {
		t.Fatalf("POST /v1/otp = %d %s", resp.StatusCode, body)
	}

	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("egress:proxy-pass-5f2c"))
	targets, auths := proxy.Targets(), proxy.ProxyAuthorizations()
	if len(targets) == 0 {
		t.Fatal("the proxy saw no CONNECT")
	}
	for i, target := range targets {
		if target != net.JoinHostPort(upstreamHost, port) || auths[i] != wantAuth {
			t.Errorf("CONNECT %d: target %q, Proxy-Authorization %q; want %s:%s with the URL's credentials", i, target, auths[i], upstreamHost, port)
		}
	}
	if other := proxy.NonConnect(); len(other) != 0 {
		t.Errorf("the proxy saw requests other than CONNECT: %q", other)
	}
	relayed := proxy.Relayed()
	if len(relayed) == 0 || relayed[0] != 0x16 { // a TLS handshake record
		t.Errorf("relayed bytes do not start with a TLS handshake: % x", relayed[:min(len(relayed), 8)])
	}
	for _, clear := range []string{client.Secret, "Bearer", "Basic", "Authorization", "/public/otp", "/oauth2/token", answer.OTP, "owner@example.com"} {
		if bytes.Contains(bytes.ToLower(relayed), bytes.ToLower([]byte(clear))) {
			t.Errorf("the proxy relayed %q in clear", clear)
		}
	}
	if protos := te.Emulator.Protocols(); protos["HTTP/2.0"] == 0 || len(protos) != 1 {
		t.Errorf("emulator requests by protocol = %v, want HTTP/2.0 only", protos)
	}
}

// runUntilReady runs the command with env (and free loopback ports) until
// the test ends, waits until it logs that the upstream is ready, and
// returns its HTTP address.
func runUntilReady(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, envOf(env), io.Discard, pw, processHooks{})
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30s of its context ending")
		}
	})
	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(io.TeeReader(pr, logs))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	// Whatever happens, keep reading the log so that run never blocks on it.
	defer func() {
		go func() {
			for range lines {
			}
		}()
	}()
	var httpAddr string
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("run ended before the upstream was ready: %v\nlogs:\n%s", <-done, logs.String())
			}
			if m["msg"] == "serving" {
				httpAddr, _ = m["http_addr"].(string)
			}
			if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "ready:") && httpAddr != "" {
				return httpAddr
			}
		case <-deadline:
			t.Fatalf("not ready within 30s\nlogs:\n%s", logs.String())
		}
	}
}

// TestProxyFromEnv checks that the upstream proxy follows the environment
// the command is given: HTTPS_PROXY (or https_proxy) for https targets,
// NO_PROXY exempting hosts and domains, and loopback never proxied.
func TestProxyFromEnv(t *testing.T) {
	const proxyURL = "http://user:pass@proxy.internal:3128"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		target string
		want   string // "" for a direct connection
	}{
		{"https proxy", map[string]string{"HTTPS_PROXY": proxyURL}, "https://radkit.example.com", proxyURL},
		{"lower case", map[string]string{"https_proxy": proxyURL}, "https://radkit.example.com", proxyURL},
		{"upper case wins", map[string]string{"HTTPS_PROXY": proxyURL, "https_proxy": "http://other:1"}, "https://radkit.example.com", proxyURL},
		{"http proxy is not for https", map[string]string{"HTTP_PROXY": proxyURL}, "https://radkit.example.com", ""},
		{"no proxy host", map[string]string{"HTTPS_PROXY": proxyURL, "NO_PROXY": "radkit.example.com"}, "https://radkit.example.com", ""},
		{"no proxy domain", map[string]string{"HTTPS_PROXY": proxyURL, "no_proxy": ".example.com"}, "https://radkit.example.com", ""},
		{"no proxy other", map[string]string{"HTTPS_PROXY": proxyURL, "NO_PROXY": "other.example.org"}, "https://radkit.example.com", proxyURL},
		{"loopback", map[string]string{"HTTPS_PROXY": proxyURL}, "https://127.0.0.1:8443", ""},
		{"none", nil, "https://radkit.example.com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, _ := url.Parse(tc.target)
			proxy, err := proxyFromEnv(envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := proxy(target)
			if err != nil {
				t.Fatal(err)
			}
			if gotS := urlString(got); gotS != tc.want {
				t.Errorf("proxy for %s = %q, want %q", tc.target, gotS, tc.want)
			}
		})
	}
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// TestProxyFromEnvRefusesWhatDoesNotParse checks that proxy variables
// that do not parse stop the facade at start (with an error naming the
// variable and never showing the password), rather than being dropped,
// which would send the upstream calls directly, past the egress proxy.
func TestProxyFromEnvRefusesWhatDoesNotParse(t *testing.T) {
	const secret = "s3cr%zzet"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantVar string // "" when the environment is valid
	}{
		{"bad percent escape in the password", map[string]string{"HTTPS_PROXY": "http://egress:" + secret + "@proxy.internal:3128"}, "HTTPS_PROXY"},
		{"lower case", map[string]string{"https_proxy": "http://egress:" + secret + "@proxy.internal:3128"}, "https_proxy"},
		{"HTTP_PROXY", map[string]string{"HTTP_PROXY": "http://egress:" + secret + "@proxy.internal:3128"}, "HTTP_PROXY"},
		{"bad port", map[string]string{"HTTPS_PROXY": "http://egress:s3cret@proxy.internal:99999"}, "HTTPS_PROXY"},
		{"port not a number", map[string]string{"HTTPS_PROXY": "http://egress:s3cret@proxy.internal:http"}, "HTTPS_PROXY"},
		{"unsupported scheme", map[string]string{"HTTPS_PROXY": "ftp://egress:s3cret@proxy.internal:21"}, "HTTPS_PROXY"},
		{"no host", map[string]string{"HTTPS_PROXY": "http://egress:s3cret@:3128"}, "HTTPS_PROXY"},
		{"bad CIDR in NO_PROXY", map[string]string{"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "10.0.0.0/33"}, "NO_PROXY"},
		{"URL in NO_PROXY", map[string]string{"NO_PROXY": "https://radkit.example.com"}, "NO_PROXY"},
		{"bad port in no_proxy", map[string]string{"no_proxy": "radkit.example.com:0"}, "no_proxy"},
		{"bare host:port proxy", map[string]string{"HTTPS_PROXY": "proxy.internal:3128"}, ""},
		{"socks5", map[string]string{"HTTPS_PROXY": "socks5://proxy.internal:1080"}, ""},
		{"NO_PROXY of every kind", map[string]string{"NO_PROXY": "*, radkit.example.com, .example.org, 10.1.2.3, 10.0.0.0/8, [::1]:8443, host:443, ::1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxyFromEnv(envOf(tc.env))
			if tc.wantVar == "" {
				if err != nil {
					t.Fatalf("proxyFromEnv = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatal("proxyFromEnv succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tc.wantVar+" ") && !strings.HasPrefix(err.Error(), tc.wantVar+":") {
				t.Errorf("error %q does not start with the variable %s", err, tc.wantVar)
			}
			for _, s := range []string{secret, "s3cret", "egress"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows %q from the proxy URL", err, s)
				}
			}
		})
	}
}
