package main

import (
	"io"
	"strings"
	"testing"
)

// TestAPIDocsFlag checks that the reference page is on unless turned off,
// by the flag or the environment, and that a typo is refused rather than
// read as either.
func TestAPIDocsFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    bool
		wantErr string
	}{
		{"default", []string{"--emulator"}, nil, true, ""},
		{"flag off", []string{"--emulator", "--api-docs=false"}, nil, false, ""},
		{"environment off", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_API_DOCS": "false"}, false, ""},
		{"flag wins over the environment", []string{"--emulator", "--api-docs"}, map[string]string{"RADKIT_FACADE_API_DOCS": "false"}, true, ""},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_API_DOCS": "off please"}, false, "RADKIT_FACADE_API_DOCS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := parseConfig(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got := c.facade.APIDocs; got != tt.want {
				t.Errorf("APIDocs %v, want %v", got, tt.want)
			}
		})
	}
}
