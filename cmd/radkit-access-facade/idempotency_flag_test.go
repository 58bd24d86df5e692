package main

import (
	"io"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
)

func TestIdempotencyKeysPerCallerFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    int
		wantErr string
	}{
		{"default", []string{"--emulator"}, nil, idempotency.DefaultMaxEntriesPerOwner, ""},
		{"flag", []string{"--emulator", "--idempotency-keys-per-caller", "250"}, nil, 250, ""},
		{"environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "300"}, 300, ""},
		{"flag wins over the environment", []string{"--emulator", "--idempotency-keys-per-caller", "7"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "300"}, 7, ""},
		{"zero", []string{"--emulator", "--idempotency-keys-per-caller", "0"}, nil, 0, "idempotency-keys-per-caller"},
		{"zero in the environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "0"}, 0, "RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER"},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "many"}, 0, "RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER"},
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
			if got := c.facade.IdempotencyKeysPerCaller; got != tt.want {
				t.Errorf("keys per caller %d, want %d", got, tt.want)
			}
		})
	}
}
