package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestStateFlags: the shared-state settings come from flags or the
// environment, secrets only from the environment or files, and errors
// name what the user set without repeating secrets.
func TestStateFlags(t *testing.T) {
	const key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyFile := writeSecretFile(t, "state-key", key+"\n")
	pwFile := writeSecretFile(t, "redis-password", "redis-pw-secret\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c config)
		wantErr []string
	}{
		{
			name: "defaults: no Redis, 5m connection age, no budget",
			args: []string{"--emulator"},
			check: func(t *testing.T, c config) {
				if f := c.facade; f.RedisURL != "" || f.MaxConnectionAge != 5*time.Minute || f.UpstreamRateLimit != 0 {
					t.Errorf("redis %q age %s budget %v", f.RedisURL, f.MaxConnectionAge, f.UpstreamRateLimit)
				}
			},
		},
		{
			name: "flags and files",
			args: []string{"--emulator", "--redis-url", "rediss://redis.example:6380/0", "--redis-prefix", "blue:",
				"--upstream-rate-limit", "12.5", "--max-connection-age", "2m"},
			env: map[string]string{"RADKIT_FACADE_STATE_KEY_FILE": keyFile, "RADKIT_FACADE_REDIS_PASSWORD_FILE": pwFile},
			check: func(t *testing.T, c config) {
				f := c.facade
				if f.RedisURL != "rediss://redis.example:6380/0" || f.RedisPrefix != "blue:" || f.UpstreamRateLimit != 12.5 || f.MaxConnectionAge != 2*time.Minute {
					t.Errorf("config %q %q %v %s", f.RedisURL, f.RedisPrefix, f.UpstreamRateLimit, f.MaxConnectionAge)
				}
				if f.StateKey != key || f.RedisPassword != "redis-pw-secret" {
					t.Error("state key or password not read from their files")
				}
			},
		},
		{
			name: "environment",
			args: []string{"--emulator"},
			env: map[string]string{"RADKIT_FACADE_REDIS_URL": "unix:///run/redis.sock", "RADKIT_FACADE_STATE_KEY": key,
				"RADKIT_FACADE_UPSTREAM_RATE_LIMIT": "3", "RADKIT_FACADE_MAX_CONNECTION_AGE": "0"},
			check: func(t *testing.T, c config) {
				if f := c.facade; f.RedisURL != "unix:///run/redis.sock" || f.UpstreamRateLimit != 3 || f.MaxConnectionAge != 0 {
					t.Errorf("config %q %v %s", f.RedisURL, f.UpstreamRateLimit, f.MaxConnectionAge)
				}
			},
		},
		{
			name:    "no state key",
			args:    []string{"--emulator", "--redis-url", "redis://127.0.0.1:6379"},
			wantErr: []string{"RADKIT_FACADE_STATE_KEY", "--redis-url"},
		},
		{
			name:    "password in the URL",
			args:    []string{"--emulator", "--redis-url", "redis://u:url-pw-secret@127.0.0.1:6379"},
			env:     map[string]string{"RADKIT_FACADE_STATE_KEY": key},
			wantErr: []string{"--redis-url", "RADKIT_FACADE_REDIS_PASSWORD"},
		},
		{
			name:    "bad state key",
			args:    []string{"--emulator", "--redis-url", "redis://127.0.0.1:6379"},
			env:     map[string]string{"RADKIT_FACADE_STATE_KEY": "too-short-key-secret"},
			wantErr: []string{"RADKIT_FACADE_STATE_KEY"},
		},
		{
			name: "expected replicas, flag and environment",
			args: []string{"--emulator", "--expect-replicas", "3"},
			env:  map[string]string{"RADKIT_FACADE_EXPECT_REPLICAS": "5"},
			check: func(t *testing.T, c config) {
				if n := c.facade.ExpectReplicas; n != 3 {
					t.Errorf("ExpectReplicas = %d, want the flag's 3", n)
				}
			},
		},
		{
			name:    "expected replicas from the environment, negative",
			args:    []string{"--emulator"},
			env:     map[string]string{"RADKIT_FACADE_EXPECT_REPLICAS": "-2"},
			wantErr: []string{"RADKIT_FACADE_EXPECT_REPLICAS"},
		},
		{
			name:    "negative budget",
			args:    []string{"--emulator", "--upstream-rate-limit", "-1"},
			wantErr: []string{"upstream-rate-limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("parseConfig succeeded, want an error naming %v", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				for _, secret := range []string{"url-pw-secret", "too-short-key-secret", key} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q repeats a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}
