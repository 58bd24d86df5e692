package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestRedisURLSecrets runs the whole command with a Redis password in
// each form a Redis URL can carry one, from the flag and from the
// environment: each is refused before anything starts, and the password
// shows neither in the error nor in the log. A URL without one, with the
// password from RADKIT_FACADE_REDIS_PASSWORD_FILE, starts, and its start
// log names the URL without the password.
func TestRedisURLSecrets(t *testing.T) {
	const pw = "redis-url-pw-s3cret"
	const key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	for _, tc := range []struct{ name, url string }{
		{"userinfo", "redis://facade:" + pw + "@127.0.0.1:6379/0"},
		{"userinfo without user", "rediss://:" + pw + "@redis.example:6380"},
		{"userinfo, unix", "unix://facade:" + pw + "@/run/redis.sock"},
		{"password parameter", "redis://127.0.0.1:6379/0?password=" + pw},
		{"sentinel, password parameter", "redis://s1:26379/0?master_name=m&password=" + pw},
		{"sentinel, sentinel_password parameter", "redis://s1:26379/0?master_name=m&sentinel_password=" + pw},
		{"sentinel, addr userinfo", "redis://s1:26379/0?master_name=m&addr=facade:" + pw + "@s2:26379"},
		{"sentinel, userinfo", "redis://facade:" + pw + "@s1:26379/0?master_name=m"},
	} {
		for _, from := range []string{"flag", "environment"} {
			t.Run(tc.name+", "+from, func(t *testing.T) {
				env := map[string]string{"RADKIT_FACADE_STATE_KEY": key, "RADKIT_FACADE_LOG_FORMAT": "json"}
				args := []string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
				if from == "flag" {
					args = append(args, "--redis-url", tc.url)
				} else {
					env["RADKIT_FACADE_REDIS_URL"] = tc.url
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var stdout, stderr bytes.Buffer
				err := run(ctx, args, envOf(env), &stdout, &stderr, processHooks{})
				if err == nil {
					t.Fatal("run accepted the URL")
				}
				if !strings.Contains(err.Error(), "RADKIT_FACADE_REDIS_PASSWORD") {
					t.Errorf("error %q does not say where the password goes", err)
				}
				for _, s := range []string{err.Error(), stdout.String(), stderr.String()} {
					if strings.Contains(s, pw) {
						t.Errorf("the password shows in %q", s)
					}
				}
			})
		}
	}

	t.Run("password from its file", func(t *testing.T) {
		redis := testkit.StartRedis(t, "--requirepass", pw)
		env := map[string]string{
			"RADKIT_FACADE_STATE_KEY":           key,
			"RADKIT_FACADE_REDIS_PASSWORD_FILE": writeSecretFile(t, "redis-password", pw+"\n"),
			"RADKIT_FACADE_REDIS_URL":           redis.URL() + "?db=0",
			"RADKIT_FACADE_LOG_FORMAT":          "json",
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stderr := &testkit.Buffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, envOf(env), &bytes.Buffer{}, stderr, processHooks{})
		}()
		testkit.Eventually(t, 30*time.Second, "the serving log line", func() bool {
			return strings.Contains(stderr.String(), `"msg":"serving"`)
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		var logged bool
		for _, rec := range testkit.JSONLines(stderr.String()) {
			if rec["msg"] == "shared state in Redis" {
				logged = rec["redis_url"] == redis.URL()+"?db=0"
			}
		}
		if !logged {
			t.Errorf("no start line names the Redis URL:\n%s", stderr.String())
		}
		if strings.Contains(stderr.String(), pw) {
			t.Errorf("the password shows in the log:\n%s", stderr.String())
		}
	})
}
