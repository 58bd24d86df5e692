package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// started is a run in the background and what it printed before serving.
type started struct {
	addr   string
	base   string
	banner []string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs the binary's main logic on a loopback port and waits for its
// banner.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &started{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw)
		pw.Close()
		s.done <- err
	}()
	t.Cleanup(func() { s.stop(t) })
	sc := bufio.NewScanner(pr)
	for sc.Scan() && sc.Text() != bannerEnd {
		line := sc.Text()
		s.banner = append(s.banner, line)
		if a, ok := strings.CutPrefix(line, "radkit-access-emulator listening on "); ok {
			s.addr = a
		}
		if b, ok := strings.CutPrefix(line, "base URL: "); ok {
			s.base = b
		}
	}
	// Keep draining logs so that run never blocks on its output.
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if s.addr == "" || s.base == "" {
		t.Fatalf("no address or base URL in banner %q", s.banner)
	}
	return s
}

// stop cancels the run and checks that it returns cleanly, once.
func (s *started) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
}

func get(t *testing.T, c *http.Client, url string) (int, map[string]any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestRunDefaults(t *testing.T) {
	s := start(t)
	banner := strings.Join(s.banner, "\n")
	for _, want := range []string{
		"listening on 127.0.0.1:",
		"client: id=emulator-client secret=emulator-secret identity=automation@example.com admin_level=0 claims=otp,status",
		"client: id=no-claims-client secret=no-claims-secret",
		"claims=none",
		"api token: " + emulator.DefaultAPIToken("emulator-api-token") + " identity=automation+customer-a@example.com admin_level=0 claims=otp,status (expires 2036-01-01T00:00:00Z)",
		"service: 1ryq-e8n8-5g5n active=true online=true",
		"service: 123-123-123 active=true online=true",
		"service: offl-ine0-0001 active=true online=false",
		"service: inac-tive-0001 active=false online=false",
		"admin API: " + s.base + "/_emulator",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	c := newClient(t)
	status, doc := get(t, c, s.base+"/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != s.base || doc["token_endpoint"] != s.base+"/oauth2/token" {
		t.Errorf("discovery = %d %v", status, doc)
	}
	s.stop(t)
	if _, err := c.Get(s.base + "/oauth2/keys"); err == nil {
		t.Error("server still answers after cancel")
	}
}

func TestRunFlags(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(`{"services":[{"service_id":"seed-svc-0001","active":true}],
		"clients":[{"client_id":"c","client_secret":"s","identity":"i@example.com","claims":["status"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--seed", seed, "--fail-rate", "1", "--fail-status", "429", "--fail-routes", "/oauth2/keys",
		"--token-lifetime", "90s", "--issuer", "http://emulator.invalid/", "--service", "flag-svc:true:false", "--log-level", "debug")
	banner := strings.Join(s.banner, "\n")
	for _, want := range []string{"base URL: http://emulator.invalid", "client: id=c secret=s", "service: seed-svc-0001 active=true online=false",
		"service: flag-svc active=true online=false", "token lifetime: 1m30s"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, "emulator-client") {
		t.Error("--seed did not replace the default seed")
	}
	addr := s.addr
	c := newClient(t)
	if status, body := get(t, c, "http://"+addr+"/oauth2/keys"); status != 429 || body["retry"] != true {
		t.Errorf("keys with --fail-rate 1: %d %v", status, body)
	}
	if status, doc := get(t, c, "http://"+addr+"/.well-known/openid-configuration"); status != 200 || doc["issuer"] != "http://emulator.invalid" {
		t.Errorf("discovery = %d %v", status, doc)
	}
}

// TestRunTLS starts the emulator with --tls and --tls-ca-out, trusts the
// CA file it wrote, and checks HTTP/2, https:// discovery and the
// protocol and connection counters on the admin API.
func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	s := start(t, "--tls", "--tls-ca-out", caFile)
	if !strings.HasPrefix(s.base, "https://") {
		t.Fatalf("base URL %q, want https://", s.base)
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("--tls-ca-out file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("--tls-ca-out file holds no certificate: %q", pemBytes)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	status, doc := get(t, c, s.base+"/.well-known/openid-configuration")
	if status != 200 || doc["issuer"] != s.base || doc["token_endpoint"] != s.base+"/oauth2/token" {
		t.Errorf("discovery = %d %v", status, doc)
	}
	status, counters := get(t, c, s.base+"/_emulator/counters")
	protos, _ := counters["protocols"].(map[string]any)
	if status != 200 || protos["HTTP/2.0"] != 1.0 || counters["connections"] != 1.0 {
		t.Errorf("counters = %d %v, want one HTTP/2.0 request on one connection", status, counters)
	}
	// A client that does not trust the CA is refused by the handshake.
	if _, err := newClient(t).Get(s.base + "/oauth2/keys"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET without the CA = %v, want a certificate error", err)
	}
	s.stop(t)
}

// TestRunHTTP2MaxStreams starts the emulator with --http2-max-streams and
// reads the SETTINGS frame it sends a new HTTP/2 connection: the stream
// limit is the one asked for; without the flag it is Go's default.
func TestRunHTTP2MaxStreams(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want uint32
	}{
		{args: []string{"--http2-max-streams", "7"}, want: 7},
		{args: nil, want: 250},
	} {
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		s := start(t, append([]string{"--tls", "--tls-ca-out", caFile}, tc.args...)...)
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatalf("--tls-ca-out file: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemBytes)
		conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
			t.Fatalf("write preface: %v", err)
		}
		f, err := http2.NewFramer(conn, conn).ReadFrame()
		if err != nil {
			t.Fatalf("read the first frame: %v", err)
		}
		settings, ok := f.(*http2.SettingsFrame)
		if !ok {
			t.Fatalf("first frame %v, want SETTINGS", f)
		}
		got, _ := settings.Value(http2.SettingMaxConcurrentStreams)
		if got != tc.want {
			t.Errorf("%q: SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", tc.args, got, tc.want)
		}
		conn.Close()
		s.stop(t)
	}
}

func TestRunShutdownAbortsHeldRequests(t *testing.T) {
	s := start(t, "--latency", "1m", "--shutdown-grace", "100ms")
	c := newClient(t)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + s.addr + "/oauth2/keys")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the latency
	began := time.Now()
	s.stop(t)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("shutdown took %v with a held request", d)
	}
	if err := <-errc; err == nil {
		t.Error("held request succeeded, want it aborted")
	}
}

func TestRunErrors(t *testing.T) {
	tests := map[string][]string{
		"bad flag":            {"--nope"},
		"extra arg":           {"extra"},
		"fail rate":           {"--fail-rate", "2"},
		"fail status":         {"--fail-status", "200"},
		"fail routes":         {"--fail-rate", "0.5", "--fail-routes", "/nope"},
		"service":             {"--service", "x:maybe"},
		"duplicate svc":       {"--service", "123-123-123"},
		"missing seed":        {"--seed", filepath.Join(t.TempDir(), "none.json")},
		"bad issuer":          {"--issuer", "not a url"},
		"bad address":         {"--addr", "256.0.0.1:1"},
		"negative lifetime":   {"--token-lifetime", "-1s"},
		"cert without key":    {"--tls-cert", "cert.pem"},
		"tls and tls-cert":    {"--tls", "--tls-cert", "c.pem", "--tls-key", "k.pem"},
		"ca-out without tls":  {"--tls-ca-out", filepath.Join(t.TempDir(), "ca.pem")},
		"streams without tls": {"--http2-max-streams", "10"},
		"negative streams":    {"--tls", "--http2-max-streams", "-1"},
		"missing tls cert":    {"--tls-cert", filepath.Join(t.TempDir(), "none.pem"), "--tls-key", filepath.Join(t.TempDir(), "none.key")},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if err := run(t.Context(), append([]string{"--addr", "127.0.0.1:0"}, args...), io.Discard); err == nil {
				t.Errorf("run(%q) succeeded, want error", args)
			}
		})
	}
	if err := run(t.Context(), []string{"-h"}, io.Discard); err != nil {
		t.Errorf("run(-h) = %v, want nil", err)
	}
}
