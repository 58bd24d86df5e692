package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestOptionFieldsNameConfigFields: each option's and credential's field
// names a real facade.Config field, so that a typo cannot turn the
// refusal naming what the user set into one naming a Go field.
func TestOptionFieldsNameConfigFields(t *testing.T) {
	cfgType := reflect.TypeOf(facade.Config{})
	c := &config{}
	for _, o := range c.options() {
		if o.field == "" {
			continue
		}
		if _, ok := cfgType.FieldByName(o.field); !ok {
			t.Errorf("--%s fills field %q, which facade.Config does not have", o.flag, o.field)
		}
	}
	for _, cred := range c.credentials() {
		if _, ok := cfgType.FieldByName(cred.field); !ok {
			t.Errorf("%s fills field %q, which facade.Config does not have", cred.env, cred.field)
		}
	}
}

// TestEnvPrefix: every variable of the option table starts with
// RADKIT_FACADE_, and so does every credential but the upstream's, as
// docs/configuration.md says.
func TestEnvPrefix(t *testing.T) {
	c := &config{}
	for _, o := range c.options() {
		if !strings.HasPrefix(o.env, "RADKIT_FACADE_") {
			t.Errorf("--%s falls back on %s, outside RADKIT_FACADE_", o.flag, o.env)
		}
	}
	upstream := []string{"ClientID", "ClientSecret", "APIToken"}
	for _, cred := range c.credentials() {
		want := "RADKIT_FACADE_"
		if slices.Contains(upstream, cred.field) {
			want = upstreamCredentialPrefix
		}
		if !strings.HasPrefix(cred.env, want) {
			t.Errorf("%s (%s) does not start with %s", cred.env, cred.field, want)
		}
	}
}

// TestConfigFieldsHaveNames: every facade.Config field, which a
// *facade.ConfigError may name, is named in a refusal by a flag or a
// variable of the option table or the credentials, unless it is listed
// below as no setting of the user's. A new field without a flag fails
// here, before a refusal shows a user a Go field name.
func TestConfigFieldsHaveNames(t *testing.T) {
	notSettings := map[string]string{
		"ClientSecretFile":      "the path of RADKIT_ACCESS_CLIENT_SECRET_FILE, a form of ClientSecret",
		"APITokenFile":          "the path of RADKIT_ACCESS_API_TOKEN_FILE, a form of APIToken",
		"ClientSecretExpiresAt": "read from secretExpiryEnv, whose errors name it",
		"UpstreamProxy":         "read from HTTPS_PROXY and the rest, whose errors name them",
		"Now":                   "a test clock",
		"Version":               "the build's version",
		"Logger":                "built from --log-format and --log-level",
		"AuditLogger":           "built from --log-format",
		"TracerProvider":        "built from the OTEL_ variables",
		"Propagator":            "built from the OTEL_ variables",
		"MaxMessageBytes":       "the facade's default, not a setting of the command",
		"MaxConcurrentStreams":  "the facade's default, not a setting of the command",
	}
	c := config{from: map[string]string{}, secretFrom: map[string]string{}}
	cfgType := reflect.TypeFor[facade.Config]()
	for f := range cfgType.Fields() {
		if _, ok := notSettings[f.Name]; ok {
			continue
		}
		if name := c.fieldName(f.Name); !strings.HasPrefix(name, "--") && !strings.HasPrefix(name, "RADKIT_") {
			t.Errorf("facade.Config.%s has no flag or variable: a refusal would call it %q; add it to the option table, or list it here with why it is no setting", f.Name, name)
		}
	}
	for name := range notSettings {
		if _, ok := cfgType.FieldByName(name); !ok {
			t.Errorf("%s is listed as no setting, but facade.Config has no such field", name)
		}
	}
}
