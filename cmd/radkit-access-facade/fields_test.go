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
			want = "RADKIT_ACCESS_"
		}
		if !strings.HasPrefix(cred.env, want) {
			t.Errorf("%s (%s) does not start with %s", cred.env, cred.field, want)
		}
	}
}
