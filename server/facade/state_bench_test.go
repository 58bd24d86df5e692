package facade_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// BenchmarkIdempotentOTP compares GenerateOTP with a request_id on the
// in-memory store and on Redis, in one run: "first" mints a new OTP per
// call (a fresh request_id), "replay" repeats one request_id. With Redis it
// reports the commands Redis processed per call (redis_cmds/op), which
// counts the commands a script runs as well as the script: a first call is
// two round trips (SET NX, then the EVALSHA that runs GET and SET), a
// replay two (SET NX, GET). Run it with
//
//	go test -run '^$' -bench IdempotentOTP -benchtime 2000x ./server/facade
func BenchmarkIdempotentOTP(b *testing.B) {
	redis := testkit.StartRedis(b)
	rdb := goredis.NewClient(&goredis.Options{Network: "unix", Addr: redis.Socket(), DisableIdentity: true})
	b.Cleanup(func() { _ = rdb.Close() })
	for _, store := range []string{"memory", "redis"} {
		cfg := facade.Config{Emulator: true}
		if store == "redis" {
			cfg.RedisURL, cfg.StateKey = redis.URL(), benchStateKey
		}
		client, _ := benchFacade(b, cfg)
		for _, mode := range []string{"first", "replay"} {
			b.Run(store+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				before := commands(b, rdb)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
					if mode == "replay" {
						id = "00000000-0000-4000-8000-ffffffffffff"
					}
					_, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{
						Owner: "owner@example.com", EndpointId: "router-1", Description: store, RequestId: id,
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if store == "redis" {
					// INFO itself is one command.
					b.ReportMetric(float64(commands(b, rdb)-before-1)/float64(b.N), "redis_cmds/op")
				}
			})
		}
	}
}

// benchStateKey is a fixed state key for benchmarks (hex, 32 bytes).
const benchStateKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// commands is the number of commands the Redis server has processed.
func commands(b *testing.B, rdb *goredis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no total_commands_processed in INFO")
	return 0
}
