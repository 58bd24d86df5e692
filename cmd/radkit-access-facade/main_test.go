package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Secrets the tests hand to the command; none may ever show in its output
// or errors.
const (
	testClientSecret = "client-secret-value-8d1e"
	testAPIToken     = "api-token-value-47ac"
)

// envOf returns a getenv over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeSecretFile writes content to a file of its own in the test's
// temporary directory and returns its path.
func writeSecretFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertNoSecrets fails the test if any of texts shows a test secret.
func assertNoSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range []string{testClientSecret, testAPIToken} {
			if strings.Contains(text, s) {
				t.Errorf("output or error shows a secret: %q", text)
			}
		}
	}
}

func TestParseConfig(t *testing.T) {
	secretFile := writeSecretFile(t, "client-secret", testClientSecret+"\n")
	tokenFile := writeSecretFile(t, "api-token", "  "+testAPIToken+"\r\n\n")
	emptyFile := writeSecretFile(t, "empty", "\n")
	missingFile := filepath.Join(t.TempDir(), "no-such-file")

	tests := []struct {
		name string
		args []string
		env  map[string]string
		// check inspects a successful parse.
		check func(t *testing.T, c config)
		// wantErr lists what the error must mention; nil means success.
		wantErr []string
	}{
		{
			name: "defaults with the emulator",
			args: []string{"--emulator"},
			check: func(t *testing.T, c config) {
				f := c.facade
				if !f.Emulator || f.UpstreamURL != "" || f.GRPCAddr != facade.DefaultGRPCAddr || f.HTTPAddr != facade.DefaultHTTPAddr {
					t.Errorf("facade config %+v, want the emulator on the default addresses", f)
				}
				if c.logFormat != "text" || c.logLevel != slog.LevelInfo || c.showVersion {
					t.Errorf("log format %q level %q version %v, want text, info, false", c.logFormat, c.logLevel, c.showVersion)
				}
			},
		},
		{
			name: "environment fallbacks",
			env: map[string]string{
				"RADKIT_FACADE_UPSTREAM_URL":  "https://radkit.example.com",
				"RADKIT_ACCESS_CLIENT_ID":     "client-1",
				"RADKIT_ACCESS_CLIENT_SECRET": testClientSecret,
				"RADKIT_FACADE_GRPC_ADDR":     "127.0.0.1:19090",
				"RADKIT_FACADE_HTTP_ADDR":     "127.0.0.1:18080",
				"RADKIT_FACADE_LOG_FORMAT":    "json",
				"RADKIT_FACADE_LOG_LEVEL":     "debug",
			},
			check: func(t *testing.T, c config) {
				f := c.facade
				if f.UpstreamURL != "https://radkit.example.com" || f.ClientID != "client-1" || f.ClientSecret != testClientSecret {
					t.Errorf("upstream %q client %q (secret set: %v), want them from the environment", f.UpstreamURL, f.ClientID, f.ClientSecret == testClientSecret)
				}
				if f.GRPCAddr != "127.0.0.1:19090" || f.HTTPAddr != "127.0.0.1:18080" || c.logFormat != "json" || c.logLevel != slog.LevelDebug {
					t.Errorf("addresses %q %q, log %q %q: want them from the environment", f.GRPCAddr, f.HTTPAddr, c.logFormat, c.logLevel)
				}
			},
		},
		{
			name: "no rate limit by default for anonymous callers",
			args: []string{"--emulator"},
			check: func(t *testing.T, c config) {
				if c.facade.RateLimit != 0 {
					t.Errorf("rate limit %v, want off without caller authentication", c.facade.RateLimit)
				}
			},
		},
		{
			name: "default rate limit with caller keys",
			args: []string{"--emulator", "--caller-keys-file", "callers.keys"},
			check: func(t *testing.T, c config) {
				if c.facade.RateLimit != defaultRateLimit || c.facade.RateBurst != defaultRateBurst {
					t.Errorf("rate limit %v burst %d, want %v %d", c.facade.RateLimit, c.facade.RateBurst, float64(defaultRateLimit), defaultRateBurst)
				}
			},
		},
		{
			name: "explicit rate limit for anonymous callers",
			args: []string{"--emulator", "--rate-limit", "5", "--rate-burst", "7"},
			check: func(t *testing.T, c config) {
				if c.facade.RateLimit != 5 || c.facade.RateBurst != 7 {
					t.Errorf("rate limit %v burst %d, want 5 7", c.facade.RateLimit, c.facade.RateBurst)
				}
			},
		},
		{
			name: "rate limit from the environment",
			args: []string{"--emulator"},
			env:  map[string]string{"RADKIT_FACADE_RATE_LIMIT": "2.5", "RADKIT_FACADE_STATUS_CACHE_TTL": "1s", "RADKIT_FACADE_METRICS_ADDR": "127.0.0.1:9464"},
			check: func(t *testing.T, c config) {
				if c.facade.RateLimit != 2.5 || c.facade.StatusCacheTTL != time.Second || c.facade.MetricsAddr != "127.0.0.1:9464" {
					t.Errorf("rate %v cache %v metrics %q, want them from the environment", c.facade.RateLimit, c.facade.StatusCacheTTL, c.facade.MetricsAddr)
				}
			},
		},
		{
			name:    "malformed duration in the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_STATUS_CACHE_TTL": "soon"},
			wantErr: []string{"RADKIT_FACADE_STATUS_CACHE_TTL"},
		},
		{
			name:    "negative rate limit",
			args:    []string{"--emulator", "--rate-limit", "-1"},
			wantErr: []string{"flag -rate-limit", "negative"},
		},
		{
			name:    "NaN rate limit",
			args:    []string{"--emulator", "--rate-limit", "NaN"},
			wantErr: []string{"rate-limit", "finite"},
		},
		{
			name:    "infinite rate limit",
			args:    []string{"--emulator", "--rate-limit=+Inf"},
			wantErr: []string{"rate-limit", "finite"},
		},
		{
			name:    "NaN rate limit in the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_RATE_LIMIT": "nan"},
			wantErr: []string{"RADKIT_FACADE_RATE_LIMIT", "finite"},
		},
		{
			name:    "infinite rate limit in the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_RATE_LIMIT": "-Infinity"},
			wantErr: []string{"RADKIT_FACADE_RATE_LIMIT", "finite"},
		},
		{
			name: "emulator from the environment",
			env:  map[string]string{"RADKIT_FACADE_EMULATOR": "true"},
			check: func(t *testing.T, c config) {
				if !c.facade.Emulator {
					t.Error("RADKIT_FACADE_EMULATOR=true did not turn the emulator on")
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--upstream-url", "https://flag.example.com", "--grpc-addr", "127.0.0.1:29090", "--log-format", "text"},
			env: map[string]string{
				"RADKIT_FACADE_UPSTREAM_URL": "https://env.example.com",
				"RADKIT_FACADE_GRPC_ADDR":    "127.0.0.1:19090",
				"RADKIT_FACADE_LOG_FORMAT":   "json",
				"RADKIT_ACCESS_API_TOKEN":    testAPIToken,
			},
			check: func(t *testing.T, c config) {
				if c.facade.UpstreamURL != "https://flag.example.com" || c.facade.GRPCAddr != "127.0.0.1:29090" || c.logFormat != "text" {
					t.Errorf("upstream %q grpc %q log %q: want the flags' values", c.facade.UpstreamURL, c.facade.GRPCAddr, c.logFormat)
				}
			},
		},
		{
			name: "secrets from files, trimmed",
			args: []string{"--upstream-url", "https://radkit.example.com"},
			env: map[string]string{
				"RADKIT_ACCESS_CLIENT_ID":          "client-1",
				"RADKIT_ACCESS_CLIENT_SECRET_FILE": secretFile,
				"RADKIT_ACCESS_API_TOKEN_FILE":     tokenFile,
			},
			check: func(t *testing.T, c config) {
				if c.facade.ClientSecret != testClientSecret {
					t.Errorf("client secret from file: got %d bytes, want the file's content without its newline", len(c.facade.ClientSecret))
				}
				if c.facade.APIToken != testAPIToken {
					t.Errorf("API token from file: got %d bytes, want the file's content without surrounding space", len(c.facade.APIToken))
				}
			},
		},
		{
			name: "API token alone is enough",
			args: []string{"--upstream-url", "https://radkit.example.com"},
			env:  map[string]string{"RADKIT_ACCESS_API_TOKEN": testAPIToken},
			check: func(t *testing.T, c config) {
				if c.facade.APIToken != testAPIToken || c.facade.ClientID != "" {
					t.Errorf("API token set: %v, client ID %q; want the token alone", c.facade.APIToken == testAPIToken, c.facade.ClientID)
				}
			},
		},
		{
			name:    "no upstream and no emulator",
			env:     map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET": testClientSecret},
			wantErr: []string{"--upstream-url", "--emulator"},
		},
		{
			name:    "emulator and upstream together",
			args:    []string{"--emulator", "--upstream-url", "https://radkit.example.com"},
			wantErr: []string{"--emulator", "--upstream-url"},
		},
		{
			name: "client secret and its file",
			args: []string{"--upstream-url", "https://radkit.example.com"},
			env: map[string]string{
				"RADKIT_ACCESS_CLIENT_ID":          "client-1",
				"RADKIT_ACCESS_CLIENT_SECRET":      testClientSecret,
				"RADKIT_ACCESS_CLIENT_SECRET_FILE": secretFile,
			},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_SECRET", "RADKIT_ACCESS_CLIENT_SECRET_FILE"},
		},
		{
			name: "API token and its file",
			args: []string{"--emulator"},
			env: map[string]string{
				"RADKIT_ACCESS_API_TOKEN":      testAPIToken,
				"RADKIT_ACCESS_API_TOKEN_FILE": tokenFile,
			},
			wantErr: []string{"RADKIT_ACCESS_API_TOKEN", "RADKIT_ACCESS_API_TOKEN_FILE"},
		},
		{
			name:    "empty secret file",
			args:    []string{"--upstream-url", "https://radkit.example.com"},
			env:     map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET_FILE": emptyFile},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_SECRET_FILE", "empty"},
		},
		{
			name:    "missing secret file",
			args:    []string{"--upstream-url", "https://radkit.example.com"},
			env:     map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET_FILE": missingFile},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_SECRET_FILE"},
		},
		{
			name:    "client ID without its secret",
			args:    []string{"--upstream-url", "https://radkit.example.com"},
			env:     map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1"},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_SECRET"},
		},
		{
			name:    "client secret without its ID",
			args:    []string{"--upstream-url", "https://radkit.example.com"},
			env:     map[string]string{"RADKIT_ACCESS_CLIENT_SECRET": testClientSecret},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_ID"},
		},
		{
			name:    "no credentials",
			args:    []string{"--upstream-url", "https://radkit.example.com"},
			wantErr: []string{"RADKIT_ACCESS_CLIENT_ID", "RADKIT_ACCESS_API_TOKEN"},
		},
		{
			name:    "client secret as a flag",
			args:    []string{"--emulator", "--client-secret", testClientSecret},
			wantErr: []string{"flag provided but not defined", "client-secret"},
		},
		{
			name:    "client secret as a flag with =",
			args:    []string{"--emulator", "--client-secret=" + testClientSecret},
			wantErr: []string{"flag provided but not defined", "client-secret"},
		},
		{
			name:    "API token as a flag",
			args:    []string{"--emulator", "--api-token=" + testAPIToken},
			wantErr: []string{"flag provided but not defined", "api-token"},
		},
		{
			name:    "malformed boolean in the environment",
			env:     map[string]string{"RADKIT_FACADE_EMULATOR": "maybe"},
			wantErr: []string{"RADKIT_FACADE_EMULATOR"},
		},
		{
			name: "CORS origins, trimmed",
			args: []string{"--emulator", "--cors-allowed-origins", " https://admin.example.com , http://localhost:3000,"},
			check: func(t *testing.T, c config) {
				if got, want := c.facade.CORSAllowedOrigins, []string{"https://admin.example.com", "http://localhost:3000"}; !slices.Equal(got, want) {
					t.Errorf("CORSAllowedOrigins %q, want %q", got, want)
				}
			},
		},
		{
			name:    "positional arguments",
			args:    []string{"--emulator", "serve"},
			wantErr: []string{"unexpected arguments", "serve"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := parseConfig(tt.args, envOf(tt.env), &stderr)
			errText := ""
			if err != nil {
				errText = err.Error()
			}
			assertNoSecrets(t, errText, stderr.String())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("parseConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("parseConfig succeeded, want an error mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errText, w) {
					t.Errorf("error %q does not mention %q", errText, w)
				}
			}
		})
	}
}

// TestPrecedence checks that a flag wins over the environment exactly: the
// variable it overrides is not even read, a flag of an exclusive pair wins
// over the other's variable, and every message names what the user set
// (the variable or the flag), never the other.
func TestPrecedence(t *testing.T) {
	token := map[string]string{"RADKIT_ACCESS_API_TOKEN": testAPIToken}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{"RADKIT_ACCESS_API_TOKEN": testAPIToken}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c config) // for a successful parse
		// wantErr lists what the error must mention, notErr what it must
		// not; wantErr nil means success.
		wantErr, notErr []string
	}{
		{
			name: "flag hides a malformed variable",
			args: []string{"--emulator", "--rate-limit", "5"},
			env:  map[string]string{"RADKIT_FACADE_RATE_LIMIT": "abc"},
			check: func(t *testing.T, c config) {
				if c.facade.RateLimit != 5 {
					t.Errorf("rate limit %v, want 5 from the flag", c.facade.RateLimit)
				}
			},
		},
		{
			name: "flag hides a malformed boolean variable",
			args: []string{"--emulator"},
			env:  map[string]string{"RADKIT_FACADE_EMULATOR": "maybe"},
			check: func(t *testing.T, c config) {
				if !c.facade.Emulator {
					t.Error("emulator off, want on from the flag")
				}
			},
		},
		{
			name: "--emulator wins over RADKIT_FACADE_UPSTREAM_URL",
			args: []string{"--emulator"},
			env:  with(map[string]string{"RADKIT_FACADE_UPSTREAM_URL": "https://env.example.com"}),
			check: func(t *testing.T, c config) {
				if !c.facade.Emulator || c.facade.UpstreamURL != "" {
					t.Errorf("emulator %v upstream %q, want the emulator and no URL", c.facade.Emulator, c.facade.UpstreamURL)
				}
			},
		},
		{
			name: "--upstream-url wins over RADKIT_FACADE_EMULATOR",
			args: []string{"--upstream-url", "https://flag.example.com"},
			env:  with(map[string]string{"RADKIT_FACADE_EMULATOR": "true"}),
			check: func(t *testing.T, c config) {
				if c.facade.Emulator || c.facade.UpstreamURL != "https://flag.example.com" {
					t.Errorf("emulator %v upstream %q, want the flag's URL", c.facade.Emulator, c.facade.UpstreamURL)
				}
			},
		},
		{
			name:    "both in the environment",
			env:     with(map[string]string{"RADKIT_FACADE_EMULATOR": "true", "RADKIT_FACADE_UPSTREAM_URL": "https://env.example.com"}),
			wantErr: []string{"RADKIT_FACADE_EMULATOR", "RADKIT_FACADE_UPSTREAM_URL", "exclude"},
			notErr:  []string{"--"},
		},
		{
			name:    "both as flags",
			args:    []string{"--emulator", "--upstream-url", "https://flag.example.com"},
			env:     token,
			wantErr: []string{"--emulator", "--upstream-url", "exclude"},
			notErr:  []string{"RADKIT_"},
		},
		{
			name:    "malformed variable named as the variable",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_RATE_LIMIT": "abc"},
			wantErr: []string{"RADKIT_FACADE_RATE_LIMIT", "abc"},
			notErr:  []string{"-rate-limit"},
		},
		{
			name:    "malformed flag named as the flag",
			args:    []string{"--emulator", "--rate-limit", "abc"},
			wantErr: []string{"-rate-limit", "abc"},
			notErr:  []string{"RADKIT_"},
		},
		{
			name:    "negative variable",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_CALL_TIMEOUT": "-1s"},
			wantErr: []string{"RADKIT_FACADE_CALL_TIMEOUT", "negative"},
			notErr:  []string{"-call-timeout"},
		},
		{
			name:    "malformed address in the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_GRPC_ADDR": "notanaddr"},
			wantErr: []string{"RADKIT_FACADE_GRPC_ADDR", "notanaddr", "invalid address"},
			notErr:  []string{"non-loopback", "--grpc-addr"},
		},
		{
			name:    "malformed address as a flag",
			args:    []string{"--emulator", "--http-addr", "localhost"},
			wantErr: []string{"--http-addr", "localhost", "invalid address"},
			notErr:  []string{"non-loopback", "RADKIT_"},
		},
		{
			name:    "non-loopback address from the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_HTTP_ADDR": "0.0.0.0:8080"},
			wantErr: []string{"RADKIT_FACADE_HTTP_ADDR", "non-loopback", "--caller-keys-file", "--insecure-no-caller-auth"},
			notErr:  []string{"--http-addr"},
		},
		{
			name:    "TLS key without its certificate, from a flag",
			args:    []string{"--emulator", "--tls-key", "key.pem"},
			wantErr: []string{"--tls-key", "--tls-cert"},
		},
		{
			name:    "burst too small, from the environment",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_RATE_LIMIT": "5", "RADKIT_FACADE_RATE_BURST": "0"},
			wantErr: []string{"RADKIT_FACADE_RATE_BURST", "RADKIT_FACADE_RATE_LIMIT"},
			notErr:  []string{"--"},
		},
		{
			name:    "burst too small, from flags",
			args:    []string{"--emulator", "--rate-limit", "5", "--rate-burst", "0"},
			wantErr: []string{"--rate-burst", "--rate-limit"},
			notErr:  []string{"RADKIT_"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, envOf(tt.env), io.Discard)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("parseConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("parseConfig succeeded, want an error mentioning %q", tt.wantErr)
			}
			assertNoSecrets(t, err.Error())
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, w := range tt.notErr {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q mentions %q, which the user did not set", err, w)
				}
			}
		})
	}
}

// TestRunFails runs the whole command with configurations that must stop
// it before it serves: run returns an error (main exits 2), nothing goes to
// stdout, and no secret shows anywhere.
func TestRunFails(t *testing.T) {
	secretFile := writeSecretFile(t, "client-secret", testClientSecret+"\n")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	busy := lis.Addr().String()
	withSecrets := map[string]string{
		"RADKIT_ACCESS_CLIENT_ID":     "client-1",
		"RADKIT_ACCESS_CLIENT_SECRET": testClientSecret,
		"RADKIT_ACCESS_API_TOKEN":     testAPIToken,
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
	}{
		{"no upstream", nil, withSecrets, []string{"--upstream-url", "--emulator"}},
		{"bad log format", []string{"--emulator", "--log-format", "xml"}, withSecrets, []string{"flag -log-format", "xml"}},
		{"bad log format from the environment", []string{"--emulator"},
			map[string]string{"RADKIT_FACADE_LOG_FORMAT": "yaml", "RADKIT_ACCESS_API_TOKEN": testAPIToken}, []string{"RADKIT_FACADE_LOG_FORMAT", "yaml"}},
		{"bad log level", []string{"--emulator", "--log-level", "loud"}, withSecrets, []string{"flag -log-level", "loud"}},
		{"secret and secret file", []string{"--upstream-url", "https://radkit.example.com"},
			map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET": testClientSecret, "RADKIT_ACCESS_CLIENT_SECRET_FILE": secretFile},
			[]string{"RADKIT_ACCESS_CLIENT_SECRET_FILE"}},
		{"CORS wildcard", []string{"--emulator", "--cors-allowed-origins", "*"}, withSecrets, []string{"--cors-allowed-origins", "wildcard"}},
		{"listen address in use", []string{"--upstream-url", "https://radkit.example.com", "--grpc-addr", busy},
			withSecrets, []string{"gRPC listener", busy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, tt.args, envOf(tt.env), &stdout, &stderr, processHooks{})
			if err == nil {
				t.Fatalf("run succeeded, want an error mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			assertNoSecrets(t, err.Error(), stdout.String(), stderr.String())
		})
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// --version needs no upstream, and must not start anything.
	if err := run(context.Background(), []string{"--version"}, envOf(nil), &stdout, &stderr, processHooks{}); err != nil {
		t.Fatalf("run --version: %v", err)
	}
	if got, want := stdout.String(), "radkit-access-facade "+version+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, envOf(nil), &stdout, &stderr, processHooks{})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v, want flag.ErrHelp (main prints nothing more)", err)
	}
	// The usage names every way to pass a secret, and no flag takes one.
	for _, w := range []string{"--upstream-url", "--emulator", "RADKIT_ACCESS_CLIENT_SECRET", "RADKIT_ACCESS_API_TOKEN", "_FILE"} {
		if !strings.Contains(stderr.String(), strings.TrimPrefix(w, "-")) {
			t.Errorf("usage does not mention %s:\n%s", w, stderr.String())
		}
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if f := strings.TrimSpace(line); strings.HasPrefix(f, "-") && (strings.Contains(f, "secret") || strings.Contains(f, "token")) {
			t.Errorf("usage lists a flag that looks like it takes a secret: %q", f)
		}
	}
	// A flag's text and the "(default …)" that package flag adds must not
	// disagree ("default 100 … (default 0)").
	for _, entry := range strings.Split(stderr.String(), "\n  -")[1:] {
		shown := helpDefault.FindStringSubmatch(entry)
		if shown == nil {
			continue
		}
		for _, said := range textDefault.FindAllStringSubmatch(strings.TrimSuffix(entry, shown[0]), -1) {
			if strings.TrimRight(said[1], ";,.") != shown[1] {
				t.Errorf("--%s: the text says default %s, the help (default %s)", strings.Fields(entry)[0], said[1], shown[1])
			}
		}
	}
	if !strings.Contains(stderr.String(), "streams one caller may have open (env RADKIT_FACADE_MAX_WATCHES_PER_CALLER) (default 100)") {
		t.Errorf("--max-watches-per-caller does not show its default, 100:\n%s", stderr.String())
	}
}

// helpDefault is the "(default …)" package flag ends a flag's help with;
// textDefault a default the flag's own text states.
var (
	helpDefault = regexp.MustCompile(`\(default ([^)]*)\)\s*$`)
	textDefault = regexp.MustCompile(`\bdefault ([0-9][^\s)]*)`)
)

// TestRunServesUntilCancelled runs the whole command in emulator mode on
// free loopback ports until its context ends, as SIGTERM ends it in main.
func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	env := map[string]string{
		"RADKIT_FACADE_EMULATOR":      "1",
		"RADKIT_FACADE_LOG_FORMAT":    "json",
		"RADKIT_ACCESS_CLIENT_ID":     "client-1",
		"RADKIT_ACCESS_CLIENT_SECRET": testClientSecret, // ignored, with a warning, in emulator mode
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, envOf(env), stdout, stderr, processHooks{})
	}()

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"serving"`) {
		select {
		case err := <-done:
			t.Fatalf("run returned before serving: %v\nstderr:\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving log line within 30s\nstderr:\n%s", stderr.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after its context ended: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context ending")
	}

	logs := stderr.String()
	for _, w := range []string{"EMULATOR MODE", "ignoring the configured upstream credentials", `"msg":"shutting down"`} {
		if !strings.Contains(logs, w) {
			t.Errorf("log does not contain %q:\n%s", w, logs)
		}
	}
	if out := stdout.String(); out != "" {
		t.Errorf("stdout %q, want nothing: logs go to stderr", out)
	}
	assertNoSecrets(t, logs)
	if strings.Contains(logs, "emulator-secret") {
		t.Errorf("log shows the emulator's client secret:\n%s", logs)
	}
}

// buildBinary builds this command into the test's temporary directory, with
// a deadline of its own: the build may be slow on a cold cache, and no
// deadline of the test proper has started yet.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "radkit-access-facade")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// feedFIFO waits until a reader has opened the FIFO at path, calls
// opened, then writes content and closes the FIFO. It fails the test if no
// reader comes within timeout or the process exits first. Opening without
// blocking keeps a missing reader from leaving a goroutine stuck in open(2).
func feedFIFO(t *testing.T, p *process, path, content string, opened func()) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			opened()
			f := os.NewFile(uintptr(fd), path)
			_, werr := f.WriteString(content)
			if cerr := f.Close(); werr != nil || cerr != nil {
				t.Fatalf("write FIFO: %v %v", werr, cerr)
			}
			return
		}
		if !errors.Is(err, syscall.ENXIO) {
			t.Fatalf("open FIFO for writing: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process opened %s for reading within 30s", path)
		}
		select {
		case <-p.Exited():
			t.Fatalf("process exited (%v) before opening %s", p.Err(), path)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// process is the binary started by a test.
type process struct{ *testkit.Process }

// startBinary starts bin with args and an environment of env alone; the
// process is killed at the end of the test if it still runs, and its
// standard error is logged if the test failed.
func startBinary(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{}, env...) // nothing from the test's environment
	p, err := testkit.StartProcess(t, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", p.Stderr.String())
		}
	})
	return &process{p}
}

// waitLog waits up to 30s for the process to log what.
func (p *process) waitLog(t *testing.T, what string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "a "+what+" log line", func() bool {
		select {
		case <-p.Exited():
			t.Fatalf("process exited (%v) before logging %s", p.Err(), what)
		default:
		}
		return strings.Contains(p.Stderr.String(), what)
	})
}

// TestEarlyHangup sends SIGHUP while the binary is still starting: it must
// neither die (SIGHUP's default action) nor lose the signal. The caller
// keys file is a FIFO, so that the process provably sits inside its
// start-up (reading the keys) when the signal arrives; the early SIGHUP
// then reloads the keys once the facade serves.
func TestEarlyHangup(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	fifo := filepath.Join(t.TempDir(), "callers.keys")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	const keys = "billing 947317540ad3dede8c61b70cbf4d4242b77a084b074bb5e040bfe3c842fd8f42\n"

	p := startBinary(t, bin, nil, "--emulator", "--log-format", "json", "--caller-keys-file", fifo,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	// The process blocks reading its keys until a writer opens the FIFO:
	// the signal lands in the middle of start-up.
	feedFIFO(t, p, fifo, keys, func() {
		if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	})
	p.waitLog(t, `"msg":"serving"`)
	// The early SIGHUP is not lost: it reloads the keys.
	feedFIFO(t, p, fifo, keys, func() {})
	p.waitLog(t, `"msg":"reloaded"`)

	p.stop(t)
}

// stop sends SIGTERM and waits up to 30s for a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.Exited():
		if p.Err() != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0", p.Err())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
}

// TestJSONLogStaysJSON runs the binary with --log-format json and an OTLP
// endpoint where nothing listens: the export failures that OpenTelemetry
// reports (and anything gRPC logs) must come out as JSON records of the
// process log, not as plain-text lines in the middle of it.
func TestJSONLogStaysJSON(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			p := startBinary(t, bin, []string{
				"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + testkit.ClosedAddr(t),
				"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
				"OTEL_EXPORTER_OTLP_TIMEOUT=300", // ms: each export fails fast
				"OTEL_BSP_SCHEDULE_DELAY=50",     // ms: export soon after a span ends
			}, "--emulator", "--log-format", "json", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
			p.waitLog(t, `"msg":"serving"`)
			var httpAddr string
			for _, rec := range testkit.JSONLines(p.Stderr.String()) {
				if rec["msg"] == "serving" {
					httpAddr, _ = rec["http_addr"].(string)
				}
			}
			// One traced call, whose span the exporter then fails to send.
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + httpAddr + "/v1/services/123-123-123/status")
			if err != nil {
				t.Fatalf("GET status: %v", err)
			}
			_ = resp.Body.Close()
			client.CloseIdleConnections()
			// Waits for the failure in either form, so that a plain-text
			// line fails below rather than as a timeout.
			p.waitLog(t, "traces export")
			p.stop(t)

			for i, line := range strings.Split(strings.TrimSpace(p.Stderr.String()), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("stderr line %d is not JSON: %s", i+1, line)
				}
			}
		})
	}
}

// TestJSONLogStaysJSONWithRedisDown runs the binary with --log-format json
// and a Redis that was stopped: go-redis's own reports (a pool that cannot
// dial) come out as JSON records of the process log, as the facade's own
// warnings do.
func TestJSONLogStaysJSONWithRedisDown(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	redis := testkit.StartRedis(t)
	redis.Stop()
	p := startBinary(t, bin, []string{
		"RADKIT_FACADE_REDIS_URL=" + redis.URL(),
		"RADKIT_FACADE_STATE_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	}, "--emulator", "--log-format", "json", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	p.waitLog(t, `"msg":"serving"`)
	var httpAddr string
	for _, rec := range testkit.JSONLines(p.Stderr.String()) {
		if rec["msg"] == "serving" {
			httpAddr, _ = rec["http_addr"].(string)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/services/123-123-123/status", ""},
		{http.MethodPost, "/v1/otp", `{"owner":"o@example.com","endpoint_id":"ep","description":"d","request_id":"8f6c2d3e-0000-4000-8000-00000000000a"}`},
		{http.MethodGet, "/readyz", ""},
	} {
		r, _ := http.NewRequest(req.method, "http://"+httpAddr+req.path, strings.NewReader(req.body))
		resp, err := client.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", req.method, req.path, err)
		}
		_ = resp.Body.Close()
	}
	client.CloseIdleConnections()
	// go-redis's report, in either form, so that a plain-text line fails
	// below rather than as a timeout.
	p.waitLog(t, "failed to dial")
	p.waitLog(t, "shared state (Redis) unavailable")
	p.stop(t)

	for i, line := range strings.Split(strings.TrimSpace(p.Stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line %d is not JSON: %s", i+1, line)
		}
	}
}
