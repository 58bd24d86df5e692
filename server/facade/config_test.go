package facade_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestValidate checks every refusal of a Config: it is a *ConfigError
// whose message names the fields at fault (listed in Fields) and nothing
// of a command line, and Explain renames exactly those fields.
func TestValidate(t *testing.T) {
	upstreamOK := facade.Config{UpstreamURL: "https://radkit.example.com", APIToken: "token"}
	with := func(edit func(c *facade.Config)) facade.Config {
		c := upstreamOK
		edit(&c)
		return c
	}
	tests := []struct {
		name       string
		cfg        facade.Config
		wantFields []string // nil: valid
		wantText   string
	}{
		{"emulator", facade.Config{Emulator: true}, nil, ""},
		{"upstream with an API token", upstreamOK, nil, ""},
		{"no upstream", facade.Config{APIToken: "token"}, []string{"UpstreamURL", "Emulator"}, "no upstream"},
		{"emulator and upstream", with(func(c *facade.Config) { c.Emulator = true }), []string{"Emulator", "UpstreamURL"}, "exclude"},
		{"no credentials", with(func(c *facade.Config) { c.APIToken = "" }), []string{"ClientID", "ClientSecret", "APIToken"}, "set either"},
		{"client ID alone", with(func(c *facade.Config) { c.APIToken, c.ClientID = "", "client" }), []string{"ClientID", "ClientSecret"}, "together"},
		{"invalid gRPC address", with(func(c *facade.Config) { c.GRPCAddr = "notanaddr" }), []string{"GRPCAddr"}, "invalid address"},
		{"pprof without a metrics listener", with(func(c *facade.Config) { c.Pprof = true }), []string{"Pprof", "MetricsAddr"}, "MetricsAddr"},
		{"pprof on the metrics listener", with(func(c *facade.Config) { c.Pprof, c.MetricsAddr = true, "127.0.0.1:9464" }), nil, ""},
		{"invalid metrics address", with(func(c *facade.Config) { c.MetricsAddr = "9464" }), []string{"MetricsAddr"}, "invalid address"},
		{"non-loopback without caller auth", with(func(c *facade.Config) { c.HTTPAddr = "0.0.0.0:8080" }),
			[]string{"HTTPAddr", "CallerKeysFile", "ClientCAFile", "InsecureNoCallerAuth"}, "non-loopback"},
		{"non-loopback, insecure on purpose", with(func(c *facade.Config) { c.HTTPAddr, c.InsecureNoCallerAuth = "0.0.0.0:8080", true }), nil, ""},
		{"non-loopback with caller keys", with(func(c *facade.Config) { c.HTTPAddr, c.CallerKeysFile = "0.0.0.0:8080", "keys" }), nil, ""},
		{"certificate without key", with(func(c *facade.Config) { c.TLSCertFile = "cert.pem" }), []string{"TLSCertFile", "TLSKeyFile"}, "together"},
		{"client CA without certificate", with(func(c *facade.Config) { c.ClientCAFile = "ca.pem" }), []string{"ClientCAFile", "TLSCertFile"}, "needs"},
		{"NaN rate limit", with(func(c *facade.Config) { c.RateLimit = math.NaN() }), []string{"RateLimit"}, "finite"},
		{"infinite rate limit", with(func(c *facade.Config) { c.RateLimit = math.Inf(1) }), []string{"RateLimit"}, "finite"},
		{"rate limit without burst", with(func(c *facade.Config) { c.RateLimit = 5 }), []string{"RateBurst", "RateLimit"}, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantFields == nil {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ce *facade.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate: %v (%T), want a *facade.ConfigError", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantText) {
				t.Errorf("error %q does not say %q", msg, tt.wantText)
			}
			if strings.Contains(msg, "--") || strings.Contains(msg, "RADKIT_") {
				t.Errorf("error %q names a flag or variable: the library knows only Config fields", msg)
			}
			for _, f := range tt.wantFields {
				if !strings.Contains(msg, f) || !slices.Contains(ce.Fields, f) {
					t.Errorf("field %s: named %v, in Fields %v; want both (%q)", f, strings.Contains(msg, f), ce.Fields, msg)
				}
			}
			renamed := ce.Explain(func(f string) string { return "<" + f + ">" })
			for _, f := range ce.Fields {
				if !strings.Contains(renamed, "<"+f+">") {
					t.Errorf("Explain left %s unnamed: %q", f, renamed)
				}
			}
		})
	}
}

// TestNewValidates checks that New refuses what Validate refuses, before
// opening anything.
func TestNewValidates(t *testing.T) {
	_, err := facade.New(t.Context(), facade.Config{GRPCAddr: "notanaddr", Emulator: true})
	var ce *facade.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "invalid address") {
		t.Fatalf("New with an invalid address: %v, want a *facade.ConfigError saying invalid address", err)
	}
}
