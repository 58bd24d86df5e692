package facade_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
		client := benchFacade(b, cfg)
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

// benchFacade serves a facade made from cfg until b ends and returns a
// client of it, once the facade answers.
func benchFacade(b *testing.B, cfg facade.Config) accessv1.AccessServiceClient {
	b.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	f, err := facade.New(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	client := accessv1.NewAccessServiceClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
		if err == nil {
			return client
		}
		if time.Now().After(deadline) {
			b.Fatalf("facade not serving: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
