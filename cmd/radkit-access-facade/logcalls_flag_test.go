package main

import (
	"io"
	"strings"
	"testing"
)

func TestLogCallsFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"default", []string{"--emulator"}, nil, "all", ""},
		{"errors", []string{"--emulator", "--log-calls", "errors"}, nil, "errors", ""},
		{"sample", []string{"--emulator", "--log-calls", "sample:100"}, nil, "sample:100", ""},
		{"sample of one is all", []string{"--emulator", "--log-calls", "sample:1"}, nil, "all", ""},
		{"environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "errors"}, "errors", ""},
		{"flag wins over the environment", []string{"--emulator", "--log-calls", "all"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "errors"}, "all", ""},
		{"sample of zero", []string{"--emulator", "--log-calls", "sample:0"}, nil, "", "log-calls"},
		{"sample of nothing", []string{"--emulator", "--log-calls", "sample:"}, nil, "", "log-calls"},
		{"unknown", []string{"--emulator", "--log-calls", "some"}, nil, "", "log-calls"},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "sample:x"}, "", "RADKIT_FACADE_LOG_CALLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got := c.facade.CallLog.String(); got != tt.want {
				t.Errorf("call log %s, want %s", got, tt.want)
			}
		})
	}
}
