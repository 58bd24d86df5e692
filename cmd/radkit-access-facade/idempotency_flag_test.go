package main

import (
	"testing"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
)

func TestIdempotencyKeysPerCallerFlag(t *testing.T) {
	runFlagCases(t, []flagCase[int]{
		{"default", []string{"--emulator"}, nil, idempotency.DefaultMaxEntriesPerOwner, ""},
		{"flag", []string{"--emulator", "--idempotency-keys-per-caller", "250"}, nil, 250, ""},
		{"environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "300"}, 300, ""},
		{"flag wins over the environment", []string{"--emulator", "--idempotency-keys-per-caller", "7"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "300"}, 7, ""},
		{"zero", []string{"--emulator", "--idempotency-keys-per-caller", "0"}, nil, 0, "idempotency-keys-per-caller"},
		{"zero in the environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "0"}, 0, "RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER"},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER": "many"}, 0, "RADKIT_FACADE_IDEMPOTENCY_KEYS_PER_CALLER"},
	}, func(c config) int { return c.facade.IdempotencyKeysPerCaller })
}
