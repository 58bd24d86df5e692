package main

import (
	"reflect"
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
