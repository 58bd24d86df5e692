package e2e

// One request_id, at most one OTP given out, through the Redis faults the
// world brings: three facade binaries on one real redis-server, one
// emulator behind them, and a ledger of every (request_id, OTP) pair any
// caller saw. README.md ("Idempotent OTPs") states the guarantee fault by
// fault; docs/adr/0007-one-otp-through-redis-faults.md explains it.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// durableRedis are the redis-server arguments the promise needs: every
// acknowledged write is in the append-only file before the answer.
var durableRedis = []string{"--appendonly", "yes", "--appendfsync", "always"}

// otpLedger records every OTP a caller was given per request_id, and
// every refusal by reason; a second OTP for one request_id fails the test.
type otpLedger struct {
	t        *testing.T
	mu       sync.Mutex
	otps     map[string]string
	refusals map[string]int
}

func newLedger(t *testing.T) *otpLedger {
	return &otpLedger{t: t, otps: map[string]string{}, refusals: map[string]int{}}
}

// record notes the outcome of one call with request_id id. Success and
// the refusals the README documents for it are fine; anything else fails
// the test unless allowed lists it (by reason, or by code for an error
// without one).
func (l *otpLedger) record(id, otp string, err error, allowed ...string) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		if first, ok := l.otps[id]; ok && first != otp {
			l.t.Errorf("request_id %s was given two OTPs", id)
		}
		l.otps[id] = otp
		return
	}
	why := reasonOfErr(err)
	if why == "" {
		why = status.Code(err).String()
	}
	l.refusals[why]++
	switch why {
	case accessv1.ErrorReason_STATE_UNAVAILABLE.String(), accessv1.ErrorReason_STATE_LOST.String():
		if retryDelay(err) <= 0 {
			l.t.Errorf("request_id %s: %s without RetryInfo", id, why)
		}
		return
	}
	for _, a := range allowed {
		if a == why {
			return
		}
	}
	l.t.Errorf("request_id %s: unexpected error %v", id, err)
}

// otp is the OTP recorded for id.
func (l *otpLedger) otp(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.otps[id]
	return v, ok
}

func (l *otpLedger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d request_ids given an OTP, refusals %v", len(l.otps), l.refusals)
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// faultRig is one fault's world: a redis-server, three facade binaries
// sharing it and the test's emulator, and a ledger.
type faultRig struct {
	redis  *testkit.Redis
	reps   []replica
	ledger *otpLedger
	rdb    *goredis.Client
}

func newFaultRig(t *testing.T, upstreamURL string, redisArgs ...string) *faultRig {
	t.Helper()
	return startFaultRig(t, upstreamURL, testkit.StartRedis(t, redisArgs...), redisLogin{}, "--rate-limit", "0")
}

// redisLogin is the Redis ACL user the replicas log in as; the zero
// value is the default user.
type redisLogin struct{ user, password string }

// startFaultRig is newFaultRig on a redis-server of the caller's, logged
// in to as login (the password given the way deployments give it, in
// RADKIT_FACADE_REDIS_PASSWORD_FILE), with facadeArgs for the replicas.
func startFaultRig(t *testing.T, upstreamURL string, redis *testkit.Redis, login redisLogin, facadeArgs ...string) *faultRig {
	t.Helper()
	r := &faultRig{redis: redis, ledger: newLedger(t)}
	url, env := redis.URL(), []string(nil)
	if login.user != "" {
		url = "unix://" + login.user + "@" + redis.Socket()
		file := filepath.Join(t.TempDir(), "redis-password")
		if err := os.WriteFile(file, []byte(login.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "RADKIT_FACADE_REDIS_PASSWORD_FILE="+file)
	}
	r.reps = startReplicasEnv(t, 3, upstreamURL, url, newStateKey(), env, facadeArgs...)
	r.rdb = goredis.NewClient(&goredis.Options{Network: "unix", Addr: redis.Socket(), Username: login.user, Password: login.password,
		DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() {
		_ = r.rdb.Close()
		t.Log(r.ledger)
	})
	return r
}

// call asks replica i for an OTP under request_id id with the given
// deadline, and records what it got.
func (r *faultRig) call(ctx context.Context, i int, id string, deadline time.Duration, allowed ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	resp, err := r.reps[i%len(r.reps)].client.GenerateOTP(cctx, &accessv1.GenerateOTPRequest{
		Owner: "owner@example.com", EndpointId: "router-1", Description: "faults", RequestId: id,
	})
	r.ledger.record(id, resp.GetOtp(), err, allowed...)
	return resp.GetOtp(), err
}

// learn makes one call on each replica, so that each has seen the data's
// generation before the fault.
func (r *faultRig) learn(t *testing.T, ctx context.Context) {
	t.Helper()
	for i := range r.reps {
		if _, err := r.call(ctx, i, fmt.Sprintf("learn-%d", i), 20*time.Second); err != nil {
			t.Fatalf("replica %d before the fault: %v", i, err)
		}
	}
}

// TestOneOTPThroughRedisFaults: after each fault, a replay gets the first
// OTP or a documented refusal (STATE_UNAVAILABLE, STATE_LOST), never a
// new OTP. The last sub-test runs the replicas as the ACL user the
// Kubernetes manifests ship, the one refusal it may meet being CONFIG.
func TestOneOTPThroughRedisFaults(t *testing.T) {
	facadeBinary(t) // built before any clock starts
	emu, up := testkit.StartEmulator(t, emulator.Config{})
	ctx := testkit.Context(t, 2*time.Minute)
	otpLatency := func(t *testing.T, d time.Duration) {
		emu.SetLatency(emulator.RouteOTP, d)
		t.Cleanup(func() { emu.ResetRouteFaults(emulator.RouteOTP) })
	}

	t.Run("redis stalled during the leader's upstream call, longer than the lease", func(t *testing.T) {
		r := newFaultRig(t, up.URL, durableRedis...)
		r.learn(t, ctx)
		otpLatency(t, 2*time.Second)
		// Two leaders: one whose caller waits past the stall, one whose
		// caller gives up during it.
		var wg sync.WaitGroup
		for i, deadline := range []time.Duration{30 * time.Second, 4 * time.Second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = r.call(ctx, i, fmt.Sprintf("stall-%d", i), deadline)
			}()
		}
		time.Sleep(time.Second)
		r.redis.Pause()
		// Replays during the stall are refused.
		for i := range 2 {
			_, _ = r.call(ctx, i+1, fmt.Sprintf("stall-%d", i), 2*time.Second, codes.DeadlineExceeded.String())
		}
		time.Sleep(6 * time.Second) // longer than the 5 s lease
		r.redis.Resume()
		wg.Wait()
		// The replays come once a leader's write had time to land.
		time.Sleep(1500 * time.Millisecond)
		for i := range 2 {
			id := fmt.Sprintf("stall-%d", i)
			for j := range 3 {
				if _, err := r.call(ctx, j, id, 20*time.Second); err != nil {
					t.Errorf("replay of %s on replica %d after the stall: %v", id, j, err)
				}
			}
		}
	})

	t.Run("redis SIGKILLed under load, appendfsync always, restarted on its data", func(t *testing.T) {
		r := newFaultRig(t, up.URL, durableRedis...)
		r.learn(t, ctx)
		otpLatency(t, 30*time.Millisecond)
		var n atomic.Int64
		stop := testkit.Loop(8, func(c int) bool {
			id := fmt.Sprintf("load-%d-%d", c, n.Add(1))
			_, _ = r.call(ctx, c, id, 5*time.Second, codes.DeadlineExceeded.String())
			_, _ = r.call(ctx, c+1+rand.IntN(2), id, 5*time.Second, codes.DeadlineExceeded.String())
			return true
		})
		time.Sleep(time.Second)
		before := n.Load()
		r.redis.Stop() // SIGKILL
		time.Sleep(300 * time.Millisecond)
		r.redis.Start()
		t.Logf("request_ids: %d before the kill, %d once redis answered again", before, n.Load())
		time.Sleep(1500 * time.Millisecond)
		stop()
		// Every request_id once more, on every replica.
		for i := range n.Load() {
			for c := range 8 {
				id := fmt.Sprintf("load-%d-%d", c, i+1)
				if _, ok := r.ledger.otp(id); !ok {
					continue
				}
				for j := range 3 {
					if _, err := r.call(ctx, j, id, 20*time.Second); err != nil {
						t.Errorf("replay of %s after the restart: %v", id, err)
					}
				}
			}
		}
		if r.ledger.refusals[accessv1.ErrorReason_STATE_LOST.String()] > 0 {
			t.Errorf("STATE_LOST after a restart that lost nothing")
		}
	})

	t.Run("redis restarted without persistence", func(t *testing.T) {
		r := newFaultRig(t, up.URL) // no persistence
		r.learn(t, ctx)
		var ids []string
		for i := range 6 {
			id := fmt.Sprintf("before-%d", i)
			if _, err := r.call(ctx, i, id, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		r.redis.Stop()
		r.redis.Start() // empty
		lost := 0
		for _, id := range append(ids, "after-new") {
			for j := range 3 {
				// The first call of a replica after the restart may find
				// its pooled connection dead: STATE_UNAVAILABLE is fine,
				// an OTP is not.
				_, err := r.call(ctx, j, id, 20*time.Second)
				switch reasonOfErr(err) {
				case accessv1.ErrorReason_STATE_LOST.String():
					lost++
				case accessv1.ErrorReason_STATE_UNAVAILABLE.String():
				default:
					t.Errorf("%s on replica %d after the data was lost: %v, want %s", id, j, err, accessv1.ErrorReason_STATE_LOST.String())
				}
			}
		}
		if lost < 3*len(ids) {
			t.Errorf("%d of %d calls after the loss answered %s", lost, 3*(len(ids)+1), accessv1.ErrorReason_STATE_LOST.String())
		}
	})

	t.Run("FLUSHALL between a call and its replay", func(t *testing.T) {
		r := newFaultRig(t, up.URL, durableRedis...)
		r.learn(t, ctx)
		if _, err := r.call(ctx, 0, "flushed", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := r.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			_, err := r.call(ctx, 2-j, "flushed", 20*time.Second)
			if reasonOfErr(err) != accessv1.ErrorReason_STATE_LOST.String() {
				t.Errorf("replay on replica %d after FLUSHALL: %v, want %s", 2-j, err, accessv1.ErrorReason_STATE_LOST.String())
			}
		}
	})

	t.Run("a facade replica SIGKILLed mid-call", func(t *testing.T) {
		r := newFaultRig(t, up.URL, durableRedis...)
		otpLatency(t, 1500*time.Millisecond)
		done := make(chan error, 1)
		go func() {
			_, err := r.call(ctx, 0, "killed", 20*time.Second, codes.Unavailable.String())
			done <- err
		}()
		time.Sleep(500 * time.Millisecond)
		if err := r.reps[0].p.Cmd.Process.Signal(syscall.SIGKILL); err != nil && err != os.ErrProcessDone {
			t.Fatal(err)
		}
		if err := <-done; err == nil {
			t.Fatal("the call on the killed replica succeeded")
		}
		// The dead replica's lease holds the retry at most the lease.
		for j := 1; j < 3; j++ {
			if _, err := r.call(ctx, j, "killed", 20*time.Second); err != nil {
				t.Errorf("retry on replica %d after the leader died: %v", j, err)
			}
		}
	})

	t.Run("orphaned lease from a call refused during a stall", func(t *testing.T) {
		r := newFaultRig(t, up.URL, durableRedis...)
		r.learn(t, ctx)
		r.redis.Pause()
		_, err := r.call(ctx, 0, "orphan", 5*time.Second)
		if reasonOfErr(err) != accessv1.ErrorReason_STATE_UNAVAILABLE.String() {
			t.Fatalf("call during the stall: %v, want %s", err, accessv1.ErrorReason_STATE_UNAVAILABLE.String())
		}
		told := retryDelay(err)
		r.redis.Resume()
		// The claim sent before the refusal runs now; the retry must not
		// wait on it longer than the caller was told to wait.
		start := time.Now()
		if _, err := r.call(ctx, 1, "orphan", 5*time.Second); err != nil {
			t.Fatalf("retry right after the stall (told to wait %s): %v", told, err)
		}
		t.Logf("retry answered after %s (RetryInfo %s)", time.Since(start).Round(time.Millisecond), told)
	})

	t.Run("the shipped ACL user", func(t *testing.T) {
		const password = "faults-acl-pw"
		const ids, fanout = 30, 3 // each request_id asked of every replica at once
		const spare = 12          // calls the caller has left after the load
		const burst = ids*(fanout+1) + spare
		redis := testkit.StartRedisACL(t, testkit.DeployedRedisACL(t, password), durableRedis...)
		r := startFaultRig(t, up.URL, redis, redisLogin{testkit.DeployedRedisACLUser, password},
			// A limit that refills nothing in the test's time: the burst is
			// the caller's whole allowance, over all replicas.
			"--rate-limit", "0.001", "--rate-burst", strconv.Itoa(burst),
			"--upstream-rate-limit", "100", "--status-cache-ttl", "1s")
		otpLatency(t, 30*time.Millisecond)
		minted := len(emu.OTPs())
		var wg sync.WaitGroup
		for c := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range ids / 6 {
					id := fmt.Sprintf("acl-%d-%d", c, k)
					var each sync.WaitGroup
					for j := range fanout {
						each.Add(1)
						go func() {
							defer each.Done()
							_, _ = r.call(ctx, c+j, id, 20*time.Second)
						}()
					}
					each.Wait()
				}
			}()
		}
		wg.Wait()
		// One replay more per request_id, once all are settled.
		for c := range 6 {
			for k := range ids / 6 {
				id := fmt.Sprintf("acl-%d-%d", c, k)
				first, ok := r.ledger.otp(id)
				if !ok {
					t.Errorf("request_id %s was given no OTP", id)
					continue
				}
				if otp, err := r.call(ctx, c+k+1, id, 20*time.Second); err != nil || otp != first {
					t.Errorf("replay of %s: %v, want its first OTP", id, err)
				}
			}
		}
		if len(r.ledger.refusals) != 0 {
			t.Errorf("refusals under the shipped ACL user: %v", r.ledger.refusals)
		}
		if n := len(emu.OTPs()) - minted; n != ids {
			t.Errorf("the upstream minted %d OTPs for %d request_ids", n, ids)
		}
		// The caller's limit is one over the three replicas: what is left
		// of the burst, then a refusal.
		allowed := 0
		for i := 0; allowed <= 3*spare; i++ {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := r.reps[i%3].client.GetServiceStatus(cctx, &accessv1.GetServiceStatusRequest{ServiceId: liveServiceID})
			cancel()
			if reasonOfErr(err) == accessv1.ErrorReason_CALLER_RATE_LIMITED.String() {
				break
			}
			if err != nil {
				t.Fatalf("status call %d: %v", i, err)
			}
			allowed++
		}
		if allowed != spare {
			t.Errorf("%d status calls allowed after %d OTP calls with a burst of %d, want %d", allowed, burst-spare, burst, spare)
		}
		// The shipped ACL leaves CONFIG out: a replica's start-up look at
		// the persistence settings is the one refusal it may meet.
		const persistenceUnknown = "cannot read Redis's persistence settings"
		for i, rep := range r.reps {
			if n := stateFallbacks(t, rep); n != 0 {
				t.Errorf("replica %d: %v state fallbacks, want none", i, n)
			}
			logs := rep.p.Stderr.String()
			if !strings.Contains(logs, persistenceUnknown) {
				t.Errorf("replica %d did not say that it cannot check persistence under the shipped ACL", i)
			}
			if strings.Contains(logs, password) {
				t.Errorf("replica %d logged the Redis password", i)
			}
			for line := range strings.Lines(logs) {
				if strings.Contains(line, persistenceUnknown) {
					continue
				}
				if strings.Contains(line, "NOPERM") || strings.Contains(line, "shared state (Redis)") {
					t.Errorf("replica %d: %s", i, line)
				}
			}
		}
	})
}

// stateFallbacks is the sum of rep's radkit_facade_state_fallbacks_total
// series, read from its /metrics.
func stateFallbacks(t *testing.T, rep replica) float64 {
	t.Helper()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + rep.p.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "radkit_facade_") {
		t.Fatalf("GET /metrics: HTTP %d, %v: %.200s", resp.StatusCode, err, body)
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), "{")
		if !ok || name != "radkit_facade_state_fallbacks_total" {
			continue
		}
		_, value, _ := strings.Cut(rest, "} ")
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			sum += v
		}
	}
	return sum
}
