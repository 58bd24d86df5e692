package e2e

// Several facade processes sharing one Redis: the guarantees a
// single replica gives hold over all of them.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// liveServiceID is a service of emulator.DefaultSeed, active and online.
const liveServiceID = "1ryq-e8n8-5g5n"

// replica is one facade process and a gRPC client of it.
type replica struct {
	p      *facadeProcess
	client accessv1.AccessServiceClient
}

// startReplicas starts n facade binaries against upstreamURL sharing
// redisURL, with args added, and waits until each serves.
func startReplicas(t *testing.T, n int, upstreamURL, redisURL, stateKey string, args ...string) []replica {
	t.Helper()
	return startReplicasEnv(t, n, upstreamURL, redisURL, stateKey, nil, args...)
}

// startReplicasEnv is startReplicas with env added to each binary's
// environment.
func startReplicasEnv(t *testing.T, n int, upstreamURL, redisURL, stateKey string, env []string, args ...string) []replica {
	t.Helper()
	var out []replica
	for range n {
		p, err := startBinary(t,
			append([]string{"--upstream-url", upstreamURL, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--redis-url", redisURL}, args...),
			binaryEnv(append([]string{"RADKIT_ACCESS_CLIENT_ID=" + emulatorClient.ID, "RADKIT_ACCESS_CLIENT_SECRET=" + emulatorClient.Secret,
				"RADKIT_FACADE_STATE_KEY=" + stateKey}, env...)...))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		waitServing(t, conn)
		out = append(out, replica{p: p, client: accessv1.NewAccessServiceClient(conn)})
	}
	t.Cleanup(func() {
		for _, r := range out {
			if strings.Contains(r.p.Stderr.String(), stateKey) {
				t.Errorf("a replica's log shows the state key")
			}
		}
	})
	return out
}

func newStateKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return hex.EncodeToString(k)
}

func reasonOfErr(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			return info.GetReason()
		}
	}
	return ""
}

// TestReplicasShareState: one emulator, one redis-server, three facade
// processes.
func TestReplicasShareState(t *testing.T) {
	facadeBinary(t) // built before any clock starts
	// "redis down and back" must lose nothing.
	redis := testkit.StartRedis(t, durableRedis...)
	emu, up := testkit.StartEmulator(t, emulator.Config{})
	stateKey := newStateKey()
	const ttl = 500 * time.Millisecond
	reps := startReplicas(t, 3, up.URL, redis.URL(), stateKey, "--status-cache-ttl", ttl.String(), "--rate-limit", "0")
	ctx := testkit.Context(t, 2*time.Minute)
	otpWithID := func(r replica, id string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		resp, err := r.client.GenerateOTP(cctx, &accessv1.GenerateOTPRequest{
			Owner: "owner@example.com", EndpointId: "router-1", Description: "replicas", RequestId: id,
		})
		return resp.GetOtp(), err
	}

	t.Run("one OTP for one request_id over three replicas", func(t *testing.T) {
		const id = "0b7e3c52-1d0c-4a57-9a43-5b1f0c2d9e01"
		before := len(emu.OTPs())
		var wg sync.WaitGroup
		otps, errs := make([]string, 30), make([]error, 30)
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				otps[i], errs[i] = otpWithID(reps[i%3], id)
			}()
		}
		wg.Wait()
		for i := range 30 {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if otps[i] != otps[0] {
				t.Fatalf("call %d got another OTP than call 0", i)
			}
		}
		if n := len(emu.OTPs()) - before; n != 1 {
			t.Fatalf("the upstream minted %d OTPs for one request_id, want 1", n)
		}
	})

	t.Run("status cache shared", func(t *testing.T) {
		before := emu.Calls(emulator.RouteStatus)
		start := time.Now()
		const run = 3 * time.Second
		var wg sync.WaitGroup
		errc := make(chan error, 12)
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < run {
					cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					_, err := reps[i%3].client.GetServiceStatus(cctx, &accessv1.GetServiceStatusRequest{ServiceId: liveServiceID})
					cancel()
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatalf("poller: %v", err)
		}
		elapsed := time.Since(start)
		calls := emu.Calls(emulator.RouteStatus) - before
		periods := int64(elapsed/ttl) + 1
		t.Logf("%d upstream status calls in %s, TTL %s, 3 replicas, 12 pollers", calls, elapsed.Round(time.Millisecond), ttl)
		if calls > periods+3 {
			t.Fatalf("%d upstream status calls for %d TTLs: the replicas do not share the cache", calls, periods)
		}
	})

	t.Run("redis down and back", func(t *testing.T) {
		redis.Stop()
		_, err := otpWithID(reps[0], "0b7e3c52-1d0c-4a57-9a43-5b1f0c2d9e02")
		if status.Code(err) != codes.Unavailable || reasonOfErr(err) != accessv1.ErrorReason_STATE_UNAVAILABLE.String() {
			t.Fatalf("idempotent OTP with Redis down: %v, want UNAVAILABLE %s", err, accessv1.ErrorReason_STATE_UNAVAILABLE.String())
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := reps[1].client.GetServiceStatus(cctx, &accessv1.GetServiceStatusRequest{ServiceId: liveServiceID}); err != nil {
			t.Fatalf("status with Redis down: %v", err)
		}
		redis.Start()
		const id = "0b7e3c52-1d0c-4a57-9a43-5b1f0c2d9e03"
		first, err := otpWithID(reps[2], id)
		if err != nil {
			t.Fatalf("idempotent OTP after Redis came back: %v", err)
		}
		if again, err := otpWithID(reps[0], id); err != nil || again != first {
			t.Fatalf("retry on another replica after Redis came back: %v (same OTP: %v)", err, again == first)
		}
	})

	t.Run("no OTP in clear in Redis", func(t *testing.T) {
		rdb := goredis.NewClient(&goredis.Options{Network: "unix", Addr: redis.Socket(), DisableIdentity: true})
		defer rdb.Close()
		var values []string
		iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
		for iter.Next(ctx) {
			if typ, err := rdb.Type(ctx, iter.Val()).Result(); err == nil && typ == "zset" {
				// A caller's request_id digests: read them as members.
				members, err := rdb.ZRange(ctx, iter.Val(), 0, -1).Result()
				if err != nil {
					t.Fatalf("ZRANGE %s: %v", iter.Val(), err)
				}
				values = append(values, iter.Val())
				values = append(values, members...)
				continue
			}
			v, err := rdb.Get(ctx, iter.Val()).Result()
			if err != nil && err != goredis.Nil {
				t.Fatalf("GET %s: %v", iter.Val(), err)
			}
			values = append(values, iter.Val(), v)
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if len(values) == 0 {
			t.Fatal("Redis holds nothing: the replicas did not use it")
		}
		for _, rec := range emu.OTPs() {
			for _, v := range values {
				if strings.Contains(v, rec.OTP) {
					t.Fatal("an OTP is in Redis in clear text")
				}
			}
		}
	})
}

// TestReplicasShareRateLimit: a caller limited to 20/s calling three
// replicas as fast as it can for 3s gets about 60 + burst successes, not
// three times that.
func TestReplicasShareRateLimit(t *testing.T) {
	facadeBinary(t)
	redis := testkit.StartRedis(t)
	_, up := testkit.StartEmulator(t, emulator.Config{})
	const limit, burst = 20, 10
	reps := startReplicas(t, 3, up.URL, redis.URL(), newStateKey(), "--rate-limit", "20", "--rate-burst", "10")
	ctx := testkit.Context(t, time.Minute)
	start := time.Now()
	const run = 3 * time.Second
	var mu sync.Mutex
	ok, limited := 0, 0
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < run {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := reps[i%3].client.GetServiceStatus(cctx, &accessv1.GetServiceStatusRequest{ServiceId: liveServiceID})
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case reasonOfErr(err) == accessv1.ErrorReason_CALLER_RATE_LIMITED.String():
					limited++
				default:
					mu.Unlock()
					t.Errorf("call: %v", err)
					return
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	want := limit*elapsed + burst
	t.Logf("%d calls allowed, %d limited in %.1fs over 3 replicas (one shared limit allows about %.0f)", ok, limited, elapsed, want)
	// Generous both ways: per-replica limits would allow about 3*want.
	if float64(ok) > 1.6*want || float64(ok) < 0.5*want {
		t.Fatalf("%d calls allowed in %.1fs, want about %.0f", ok, elapsed, want)
	}
	if limited == 0 {
		t.Fatal("no call was limited")
	}
}

// TestReplicasShareRequestIDQuota: --idempotency-keys-per-caller holds
// over the replicas, not per replica; replays of held request_ids still
// work at the quota.
func TestReplicasShareRequestIDQuota(t *testing.T) {
	facadeBinary(t)
	redis := testkit.StartRedis(t, durableRedis...)
	_, up := testkit.StartEmulator(t, emulator.Config{})
	reps := startReplicas(t, 3, up.URL, redis.URL(), newStateKey(), "--rate-limit", "0", "--idempotency-keys-per-caller", "2")
	ctx := testkit.Context(t, time.Minute)
	call := func(i int, id string) error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := reps[i].client.GenerateOTP(cctx, &accessv1.GenerateOTPRequest{
			Owner: "owner@example.com", EndpointId: "router-1", Description: "quota", RequestId: id,
		})
		return err
	}
	for i, id := range []string{"quota-1", "quota-2"} {
		if err := call(i, id); err != nil {
			t.Fatalf("request_id %d of 2 on replica %d: %v", i+1, i, err)
		}
	}
	err := call(2, "quota-3")
	if status.Code(err) != codes.ResourceExhausted || reasonOfErr(err) != accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String() {
		t.Fatalf("a third request_id on a third replica: %v, want RESOURCE_EXHAUSTED %s", err, accessv1.ErrorReason_TOO_MANY_REQUEST_IDS.String())
	}
	if err := call(2, "quota-1"); err != nil {
		t.Fatalf("a replay at the quota: %v", err)
	}
}
