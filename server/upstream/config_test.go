package upstream

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func TestConfigValidation(t *testing.T) {
	ok := Config{BaseURL: "https://radkit.example.com", APIToken: testAPIToken}
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid api token", func(c *Config) {}, ""},
		{"valid client credentials", func(c *Config) { c.APIToken, c.ClientID, c.ClientSecret = "", testClientID, testClientSecret }, ""},
		{"valid both", func(c *Config) { c.ClientID, c.ClientSecret = testClientID, testClientSecret }, ""},
		{"secret file newline trimmed", func(c *Config) { c.APIToken = testAPIToken + "\n" }, ""},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "BaseURL is required"},
		{"bad base URL", func(c *Config) { c.BaseURL = "http://a b/%zz" }, "not a valid URL"},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://radkit.example.com" }, "http or https"},
		{"no host", func(c *Config) { c.BaseURL = "https:///x" }, "host is required"},
		{"relative", func(c *Config) { c.BaseURL = "radkit.example.com" }, "http or https"},
		{"user info", func(c *Config) { c.BaseURL = "https://u:" + secretMarker + "@radkit.example.com" }, "user info"},
		{"query", func(c *Config) { c.BaseURL = "https://radkit.example.com/?a=1" }, "query or fragment"},
		{"no credentials", func(c *Config) { c.APIToken = "" }, "set either"},
		{"id without secret", func(c *Config) { c.ClientID = testClientID }, "together"},
		{"secret without id", func(c *Config) { c.ClientSecret = testClientSecret }, "together"},
		{"secret with a space", func(c *Config) { c.APIToken = "api " + secretMarker }, "APIToken contains white space"},
		{"secret with a control char", func(c *Config) { c.APIToken, c.ClientID, c.ClientSecret = "", testClientID, "a\x00"+secretMarker }, "ClientSecret contains"},
		{"negative limit", func(c *Config) { c.MaxResponseBytes = -1 }, "MaxResponseBytes"},
		{"fraction 1", func(c *Config) { c.RefreshFraction = 1 }, "RefreshFraction"},
		{"fraction negative", func(c *Config) { c.RefreshFraction = -0.5 }, "RefreshFraction"},
		{"fraction NaN", func(c *Config) { c.RefreshFraction = math.NaN() }, "RefreshFraction"},
		{"user agent newline", func(c *Config) { c.UserAgent = "a\nb" }, "UserAgent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mutate(&cfg)
			c, err := New(cfg)
			checkErr(t, err)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := New(Config{BaseURL: "HTTPS://RadKit.Example.com//", APIToken: testAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.base.String() != "https://radkit.example.com" || c.userAgent != defaultUserAgent ||
		c.maxResponseBytes != 1<<20 || c.refreshFraction != 0.8 || c.ownTransport == nil || c.http.Transport != c.ownTransport {
		t.Errorf("defaults: base %q ua %q max %d fraction %v", c.base, c.userAgent, c.maxResponseBytes, c.refreshFraction)
	}
	if !sameBase(c.base, "https://radkit.example.com/") || sameBase(c.base, "https://radkit.example.com/x") || sameBase(c.base, "http://radkit.example.com") {
		t.Error("sameBase")
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg := Config{BaseURL: "https://radkit.example.com", ClientID: testClientID, ClientSecret: testClientSecret, APIToken: testAPIToken}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg), logs.String()} {
		if strings.Contains(s, secretMarker) {
			t.Errorf("secret shown: %s", s)
		}
		if !strings.Contains(s, "radkit.example.com") {
			t.Errorf("base URL not shown: %s", s)
		}
	}
}

func TestNewTransport(t *testing.T) {
	tr := NewTransport()
	if tr.MaxIdleConnsPerHost < 64 || tr.MaxIdleConns < tr.MaxIdleConnsPerHost || tr.DisableKeepAlives || !tr.ForceAttemptHTTP2 ||
		tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 ||
		tr.TLSHandshakeTimeout <= 0 || tr.ResponseHeaderTimeout <= 0 || tr.IdleConnTimeout <= 0 || tr.DialContext == nil {
		t.Errorf("transport not tuned: %+v", tr)
	}
	if NewTransport() == tr || NewTransport().TLSClientConfig == tr.TLSClientConfig {
		t.Error("transports share state")
	}
}

func TestNewDoesNoIO(t *testing.T) {
	// An address that would hang or fail if dialled: New must not touch it.
	start := time.Now()
	c, err := New(Config{BaseURL: "http://" + testkit.ClosedAddr(t), APIToken: testAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, ok := c.TokenInfo(); ok || time.Since(start) > time.Second {
		t.Error("New did I/O")
	}
	if err := c.Ready(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close = %v", err)
	}
}

// TestCheckCredentialsFields: each refusal of CheckCredentials is a
// *CredentialsError listing exactly the fields its message names, which
// Explain renders in a program's own terms.
func TestCheckCredentialsFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"none", Config{}, []string{"ClientID", "ClientSecret", "APIToken"}},
		{"ID alone", Config{ClientID: testClientID}, []string{"ClientID", "ClientSecret"}},
		{"token with a space", Config{APIToken: "api " + secretMarker}, []string{"APIToken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ce *CredentialsError
			if err := tc.cfg.CheckCredentials(); !errors.As(err, &ce) {
				t.Fatalf("CheckCredentials = %v, want a *CredentialsError", err)
			}
			if fmt.Sprint(ce.Fields) != fmt.Sprint(tc.fields) {
				t.Errorf("Fields %v, want %v", ce.Fields, tc.fields)
			}
			explained := ce.Explain(func(f string) string { return "<" + f + ">" })
			for _, f := range tc.fields {
				explained = strings.Replace(explained, "<"+f+">", "", 1)
				if !strings.Contains(ce.Error(), f) || strings.Contains(explained, f) {
					t.Errorf("%s: not named through Fields in %q (explained: %q)", f, ce.Error(), explained)
				}
			}
			if strings.Contains(ce.Error(), "%!") || strings.Contains(ce.Error(), secretMarker) {
				t.Errorf("message %q: bad format or a secret", ce.Error())
			}
		})
	}
}
