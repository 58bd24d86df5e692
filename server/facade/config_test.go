package facade_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestValidate checks every refusal of a Config: it is a *ConfigError
// whose Fields are exactly the fields at fault, whose message names them
// and nothing of a command line, and whose Explain renders each field
// through the same message, leaving none written out and values (even
// ones holding a %) as they are.
func TestValidate(t *testing.T) {
	const stateKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
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
		{"invalid address holding verbs", with(func(c *facade.Config) { c.HTTPAddr = "%s%v%d" }), []string{"HTTPAddr"}, `"%s%v%d": invalid address`},
		{"CORS origin holding a verb", with(func(c *facade.Config) { c.CORSAllowedOrigins = []string{"https://a.example/%s"} }),
			[]string{"CORSAllowedOrigins"}, `"https://a.example/%s"`},
		{"client ID with a space", with(func(c *facade.Config) { c.ClientID, c.ClientSecret = "client one", "secret" }), []string{"ClientID"}, "white space"},
		{"pprof without a metrics listener", with(func(c *facade.Config) { c.Pprof = true }), []string{"Pprof", "MetricsAddr"}, "MetricsAddr"},
		{"pprof on the metrics listener", with(func(c *facade.Config) { c.Pprof, c.MetricsAddr = true, "127.0.0.1:9464" }), nil, ""},
		{"invalid metrics address", with(func(c *facade.Config) { c.MetricsAddr = "9464" }), []string{"MetricsAddr"}, "invalid address"},
		{"non-loopback without caller auth", with(func(c *facade.Config) { c.HTTPAddr = "0.0.0.0:8080" }),
			[]string{"HTTPAddr", "CallerKeysFile", "ClientCAFile", "TLSCertFile", "TLSKeyFile", "InsecureNoCallerAuth"}, "non-loopback"},
		{"non-loopback, insecure on purpose", with(func(c *facade.Config) { c.HTTPAddr, c.InsecureNoCallerAuth = "0.0.0.0:8080", true }), nil, ""},
		{"non-loopback with caller keys", with(func(c *facade.Config) { c.HTTPAddr, c.CallerKeysFile = "0.0.0.0:8080", "keys" }), nil, ""},
		{"certificate without key", with(func(c *facade.Config) { c.TLSCertFile = "cert.pem" }), []string{"TLSCertFile", "TLSKeyFile"}, "together"},
		{"client CA without certificate", with(func(c *facade.Config) { c.ClientCAFile = "ca.pem" }), []string{"ClientCAFile", "TLSCertFile", "TLSKeyFile"}, "needs"},
		{"NaN rate limit", with(func(c *facade.Config) { c.RateLimit = math.NaN() }), []string{"RateLimit"}, "finite"},
		{"infinite rate limit", with(func(c *facade.Config) { c.RateLimit = math.Inf(1) }), []string{"RateLimit"}, "finite"},
		{"rate limit without burst", with(func(c *facade.Config) { c.RateLimit = 5 }), []string{"RateBurst", "RateLimit"}, "at least 1"},
		{"watch interval below the minimum", with(func(c *facade.Config) { c.WatchInterval = time.Millisecond }), []string{"WatchInterval"}, "below the minimum"},
		{"negative watch heartbeat", with(func(c *facade.Config) { c.WatchHeartbeat = -time.Second }), []string{"WatchHeartbeat"}, "negative"},
		{"negative reload poll interval", with(func(c *facade.Config) { c.ReloadPollInterval = -time.Second }), []string{"ReloadPollInterval"}, "negative"},
		{"negative watches per caller", with(func(c *facade.Config) { c.MaxWatchesPerCaller = -1 }), []string{"MaxWatchesPerCaller"}, "negative"},
		{"negative upstream bound", with(func(c *facade.Config) { c.UpstreamMaxInFlight = -1 }), []string{"UpstreamMaxInFlight"}, "negative"},
		{"clear text to a remote upstream", with(func(c *facade.Config) { c.UpstreamURL = "http://radkit.internal" }),
			[]string{"UpstreamURL", "InsecureUpstreamHTTP"}, "in clear"},
		{"negative upstream budget", with(func(c *facade.Config) { c.UpstreamRateLimit = -1 }), []string{"UpstreamRateLimit"}, "finite"},
		{"negative connection age", with(func(c *facade.Config) { c.MaxConnectionAge = -time.Second }), []string{"MaxConnectionAge"}, "negative"},
		{"negative replicas", with(func(c *facade.Config) { c.ExpectReplicas = -1 }), []string{"ExpectReplicas"}, "negative"},
		{"Redis URL of another scheme", with(func(c *facade.Config) { c.RedisURL, c.StateKey = "http://127.0.0.1:6379", stateKey }), []string{"RedisURL"}, "RedisURL"},
		{"Redis URL with a password", with(func(c *facade.Config) { c.RedisURL, c.StateKey = "redis://u:pw@127.0.0.1:6379", stateKey }),
			[]string{"RedisURL", "RedisPassword"}, "set RedisPassword"},
		{"Redis without a state key", with(func(c *facade.Config) { c.RedisURL = "redis://127.0.0.1:6379" }), []string{"StateKey", "RedisURL"}, "seal"},
		{"short state key", with(func(c *facade.Config) { c.RedisURL, c.StateKey = "redis://127.0.0.1:6379", stateKey[:32] }), []string{"StateKey"}, "key 1"},
		{"Redis with a state key", with(func(c *facade.Config) { c.RedisURL, c.StateKey = "redis://127.0.0.1:6379", stateKey }), nil, ""},
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
			if !slices.Equal(ce.Fields, tt.wantFields) {
				t.Errorf("Fields %v, want %v (%q)", ce.Fields, tt.wantFields, msg)
			}
			if strings.Contains(msg, "%!") {
				t.Errorf("error %q: its format and Fields disagree", msg)
			}
			// Each field rendered by Explain, once per entry of Fields;
			// with the renderings taken out, no field is left written
			// out, and what remains is what Error says around the fields.
			var calls []string
			renamed := ce.Explain(func(f string) string {
				calls = append(calls, f)
				return "<" + f + ">"
			})
			if !slices.Equal(calls, ce.Fields) {
				t.Errorf("Explain asked for the names of %v, want %v", calls, ce.Fields)
			}
			bare := renamed
			for _, f := range ce.Fields {
				if !strings.Contains(bare, "<"+f+">") {
					t.Errorf("Explain left %s unnamed: %q", f, renamed)
				}
				bare = strings.ReplaceAll(bare, "<"+f+">", "")
			}
			for _, f := range ce.Fields {
				if strings.Contains(bare, f) {
					t.Errorf("Explain left %s written out: %q", f, renamed)
				}
			}
			if got := "facade: config: " + ce.Explain(func(f string) string { return f }); got != msg {
				t.Errorf("Explain with the field names = %q, want Error's %q", got, msg)
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
