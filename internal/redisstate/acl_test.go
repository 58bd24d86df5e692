package redisstate_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// TestEveryKeyUnderPrefix runs every use of Redis (limits, status cache,
// idempotency, the readiness ping) as the ACL user that the Kubernetes
// manifests ship (deploy/kubernetes/redis/users.acl: keys ~radkit-facade:*
// only, and only the commands listed there): none may fail. A user
// whose key pattern misses the prefix, a wrong password and no password
// fail as ErrMisconfigured, not as an outage.
func TestEveryKeyUnderPrefix(t *testing.T) {
	const password = "facade-pw"
	srv := testkit.StartRedisACL(t, testkit.DeployedRedisACL(t, password)+
		"user elsewhere on #"+sha256Hex("other-pw")+" ~other:* +@all\n")
	ctx := testkit.Context(t, 30*time.Second)
	url := "unix://" + testkit.DeployedRedisACLUser + "@" + srv.Socket()
	c := open(t, redisstate.Config{URL: url, Password: password, Keyring: keyring(t)})

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	l := c.Limiter("caller")
	for i := range 3 {
		ok, retry, err := l.Allow(ctx, "billing", rate.Limit(1), 2)
		if err != nil {
			t.Fatalf("Allow %d: %v", i, err)
		}
		if want := i < 2; ok != want {
			t.Fatalf("Allow %d = %v (retry %s), want %v: rate 1/s, burst 2", i, ok, retry, want)
		}
		if !ok && (retry <= 0 || retry > time.Second) {
			t.Fatalf("Allow %d: retry in %s, want within the emission interval (1s)", i, retry)
		}
	}
	sc := c.StatusCache("default")
	if _, err := sc.Lead(ctx, "svc-1", time.Second); err != nil {
		t.Fatalf("status cache Lead: %v", err)
	}
	if err := sc.Put(ctx, "svc-1", upstream.ServiceStatus{ServiceID: "svc-1", Online: true}, time.Minute); err != nil {
		t.Fatalf("status cache Put: %v", err)
	}
	if st, _, ok, err := sc.Get(ctx, "svc-1"); err != nil || !ok || !st.Online {
		t.Fatalf("status cache Get = %+v %v %v", st, ok, err)
	}
	d, err := c.Idempotency(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		v, replayed, err := d.Do(ctx, "billing", "req-1", idempotency.Fingerprint("o", "e", "d"), func(ctx context.Context) (string, error) { return "otp-1", nil })
		if err != nil || v != "otp-1" || replayed != (i == 1) {
			t.Fatalf("idempotency Do %d = %q %v %v", i, v, replayed, err)
		}
	}

	for _, tc := range []struct{ name, url, password string }{
		{"key pattern without the prefix", "unix://elsewhere@" + srv.Socket(), "other-pw"},
		{"wrong password", url, "not-the-password"},
		{"no password", url, ""},
		{"default user, disabled", srv.URL(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, redisstate.Config{URL: tc.url, Password: tc.password})
			_, _, allowErr := c.Limiter("caller").Allow(ctx, "billing", 1, 1)
			for what, err := range map[string]error{"Ping": c.Ping(ctx), "Allow": allowErr} {
				if !errors.Is(err, redisstate.ErrMisconfigured) || errors.Is(err, redisstate.ErrUnavailable) {
					t.Errorf("%s = %v, want ErrMisconfigured only", what, err)
				}
				if got := redisstate.Cause(err); got != redisstate.CauseMisconfigured {
					t.Errorf("Cause(%s's error) = %q", what, got)
				}
			}
		})
	}
}

// TestScriptCommandDeniedIsMisconfigured: an ACL that admits EVAL but not
// a command the script runs is refused inside the script, where Redis
// answers "ERR The user executing the script can't run this command"
// rather than NOPERM: a configuration error all the same, never an outage
// to retry.
func TestScriptCommandDeniedIsMisconfigured(t *testing.T) {
	srv := testkit.StartRedisACL(t, testkit.DeployedRedisACL(t, "facade-pw")+
		"user scriptless on #"+sha256Hex("scriptless-pw")+" ~radkit-facade:* resetchannels -@all +ping +get +eval +evalsha\n")
	ctx := testkit.Context(t, 30*time.Second)
	c := open(t, redisstate.Config{URL: "unix://scriptless@" + srv.Socket(), Password: "scriptless-pw"})
	_, _, err := c.Limiter("caller").Allow(ctx, "billing", 1, 1)
	if !errors.Is(err, redisstate.ErrMisconfigured) || errors.Is(err, redisstate.ErrUnavailable) {
		t.Errorf("Allow = %v, want ErrMisconfigured only", err)
	}
	if got := redisstate.Cause(err); got != redisstate.CauseMisconfigured {
		t.Errorf("Cause(Allow's error) = %q, want %q", got, redisstate.CauseMisconfigured)
	}
}

// TestCallBudget: during a Redis stall (SIGSTOP), the first Redis call of
// an incoming call pays the call timeout; the later ones within the same
// call fail at once without asking (CauseSkipped), while another call has
// a budget of its own.
func TestCallBudget(t *testing.T) {
	srv := testkit.StartRedis(t)
	c := open(t, redisstate.Config{URL: srv.URL(), CallTimeout: 100 * time.Millisecond})
	ctx := testkit.Context(t, 30*time.Second)
	sc := c.StatusCache("default")
	call := redisstate.WithCallBudget(ctx)
	if _, _, err := c.Limiter("caller").Allow(call, "k", 10, 10); err != nil {
		t.Fatalf("Allow before the stall: %v", err)
	}

	srv.Pause()
	defer srv.Resume()
	_, _, err := c.Limiter("caller").Allow(call, "k", 10, 10)
	if redisstate.Cause(err) != redisstate.CauseUnavailable || !errors.Is(err, redisstate.ErrUnavailable) {
		t.Fatalf("first Allow in the stall = %v, want unavailable", err)
	}
	uses := map[string]func(ctx context.Context) error{
		"upstream Allow": func(ctx context.Context) error {
			_, _, err := c.Limiter("upstream").Allow(ctx, "id", 10, 10)
			return err
		},
		"status Get":  func(ctx context.Context) error { _, _, _, err := sc.Get(ctx, "svc"); return err },
		"status Lead": func(ctx context.Context) error { _, err := sc.Lead(ctx, "svc", time.Second); return err },
		"status Put":  func(ctx context.Context) error { return sc.Put(ctx, "svc", upstream.ServiceStatus{}, time.Second) },
	}
	for name, use := range uses {
		err := use(call)
		if redisstate.Cause(err) != redisstate.CauseSkipped || !errors.Is(err, redisstate.ErrUnavailable) {
			t.Errorf("%s after a timeout in the same call = %v, want skipped (and matching ErrUnavailable)", name, err)
		}
	}
	// Another call pays its own timeout: the budget is per call.
	if err := uses["status Get"](redisstate.WithCallBudget(ctx)); redisstate.Cause(err) != redisstate.CauseUnavailable {
		t.Errorf("status Get in another call = %v (cause %s), want a Redis attempt that times out", err, redisstate.Cause(err))
	}
}

func keyring(t *testing.T) *redisstate.Keyring {
	t.Helper()
	key := make([]byte, redisstate.KeySize)
	_, _ = rand.Read(key)
	ring, err := redisstate.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func sha256Hex(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }
