package redisstate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// testCallTimeout bounds each Redis call of the clients tests open, unless
// a test sets its own: the default (200 ms) is a production figure, and a
// loaded CI machine can take longer than that to run any Redis round trip.
// The fault tests assert outcomes (one value per key, a refusal while Redis
// is stalled), which hold whatever the timeout.
const testCallTimeout = 2 * time.Second

func open(t *testing.T, cfg redisstate.Config) *redisstate.Client {
	t.Helper()
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = testCallTimeout
	}
	c, err := redisstate.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClientAgainstRedis(t *testing.T) {
	srv := testkit.StartRedis(t, "--requirepass", "s3cret-pw")
	ctx := testkit.Context(t, 10*time.Second)

	if err := open(t, redisstate.Config{URL: srv.URL()}).Ping(ctx); err == nil {
		t.Fatal("Ping without the password succeeded against a server that requires one")
	}
	c := open(t, redisstate.Config{URL: srv.URL(), Password: "s3cret-pw", Prefix: "test:"})
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping with the password: %v", err)
	}
	key := c.Key("a", "b")
	if key != "test:a:b" {
		t.Fatalf("Key = %q, want test:a:b", key)
	}
	cctx, cancel := c.Context(ctx)
	defer cancel()
	if err := c.Redis().Set(cctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Redis().Get(cctx, "test:a:b").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	for _, url := range []string{
		"redis://" + testkit.ClosedAddr(t),
		"unix://" + t.TempDir() + "/nothing.sock",
	} {
		c := open(t, redisstate.Config{URL: url, CallTimeout: 100 * time.Millisecond})
		ctx := testkit.Context(t, 10*time.Second)
		for i := range 5 {
			start := time.Now()
			err := c.Ping(ctx)
			if !errors.Is(err, redisstate.ErrUnavailable) {
				t.Fatalf("%s: Ping %d = %v, want ErrUnavailable", url, i, err)
			}
			// Generous: the point is "not seconds", on a loaded machine.
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("%s: Ping %d took %s against a Redis that is not there", url, i, took)
			}
		}
	}
}

// TestURLsWithSecretsRefused: a Redis URL carrying a password in any form
// go-redis reads is refused, and neither the error nor the URL redacted
// for logs repeats the password.
func TestURLsWithSecretsRefused(t *testing.T) {
	const secret = "pw-s3cret"
	for _, tc := range []struct{ name, url, want string }{
		{"userinfo", "redis://u:" + secret + "@host:6379/0", "userinfo"},
		{"userinfo, no user", "rediss://:" + secret + "@host:6380", "userinfo"},
		{"userinfo, unix", "unix://u:" + secret + "@/run/redis.sock", "userinfo"},
		{"password parameter", "redis://host:6379/0?password=" + secret, "password parameter"},
		{"password parameter, sentinel", "redis://s1:26379?master_name=m&password=" + secret, "password parameter"},
		{"sentinel_password parameter", "redis://s1:26379?master_name=m&sentinel_password=" + secret, "sentinel_password parameter"},
		{"addr userinfo", "redis://s1:26379?master_name=m&addr=u:" + secret + "@s2:26379", "addr"},
		{"addr userinfo, password only", "redis://s1:26379?master_name=m&addr=:" + secret + "@s2:26379", "addr"},
		{"sentinel userinfo", "redis://u:" + secret + "@s1:26379?master_name=m", "userinfo"},
		{"bad port", "redis://u:" + secret + "@host:notaport", ""},
		{"bad scheme", "http://u:" + secret + "@host:6379", "scheme"},
		{"empty", "", "no URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redacted, err := redisstate.CheckURL(tc.url)
			if err == nil {
				t.Fatalf("CheckURL(%q) accepted it", tc.url)
			}
			_, openErr := redisstate.Open(redisstate.Config{URL: tc.url})
			if openErr == nil {
				t.Fatalf("Open(%q) accepted it", tc.url)
			}
			for _, s := range []string{err.Error(), openErr.Error(), redacted, redisstate.RedactURL(tc.url)} {
				if strings.Contains(s, secret) {
					t.Errorf("%q repeats the password", s)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if passwordForm := tc.want != "" && tc.want != "scheme" && tc.want != "no URL"; passwordForm != errors.Is(err, redisstate.ErrPasswordInURL) {
				t.Errorf("error %q: errors.Is ErrPasswordInURL = %v, want %v", err, !passwordForm, passwordForm)
			}
		})
	}
	for _, url := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://radkit-facade@127.0.0.1:6379/0",
		"rediss://127.0.0.1:6380",
		"unix:///run/redis.sock?db=1",
		"redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379",
	} {
		redacted, err := redisstate.CheckURL(url)
		if err != nil {
			t.Errorf("CheckURL(%q): %v", url, err)
			continue
		}
		c, err := redisstate.Open(redisstate.Config{URL: url, Password: "pw"})
		if err != nil {
			t.Errorf("Open(%q): %v", url, err)
			continue
		}
		if c.URL() != redacted {
			t.Errorf("URL() = %q, want CheckURL's %q", c.URL(), redacted)
		}
		_ = c.Close()
	}
}

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, redisstate.KeySize)
	_, _ = rand.Read(k)
	return k
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newKey_ := newKey(t), newKey(t)
	before, err := redisstate.NewKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	after, err := redisstate.NewKeyring(newKey_, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("prefix:otp:k")
	sealedOld := before.Seal([]byte("123456"), aad)
	if bytes.Contains(sealedOld, []byte("123456")) {
		t.Fatal("sealed value holds the plaintext")
	}
	for _, tc := range []struct {
		name    string
		k       *redisstate.Keyring
		sealed  []byte
		aad     []byte
		wantErr error
	}{
		{"old value, rotated keyring", after, sealedOld, aad, nil},
		{"new value, rotated keyring", after, after.Seal([]byte("123456"), aad), aad, nil},
		{"new value, old keyring", before, after.Seal([]byte("123456"), aad), aad, redisstate.ErrUnknownKey},
		{"moved to another key", after, sealedOld, []byte("prefix:otp:other"), errors.New("any")},
		{"garbage", after, []byte("123456"), aad, errors.New("any")},
	} {
		got, err := tc.k.Open(tc.sealed, tc.aad)
		switch {
		case tc.wantErr == nil && (err != nil || string(got) != "123456"):
			t.Errorf("%s: Open = %q, %v", tc.name, got, err)
		case tc.wantErr != nil && err == nil:
			t.Errorf("%s: Open succeeded", tc.name)
		case errors.Is(tc.wantErr, redisstate.ErrUnknownKey) && !errors.Is(err, redisstate.ErrUnknownKey):
			t.Errorf("%s: Open = %v, want ErrUnknownKey", tc.name, err)
		}
	}
	if a, b := before.Seal([]byte("x"), nil), before.Seal([]byte("x"), nil); bytes.Equal(a, b) {
		t.Error("two seals of one value are equal: nonce reused")
	}
}

func TestParseKey(t *testing.T) {
	k := newKey(t)
	for _, s := range []string{
		hex.EncodeToString(k),
		base64.StdEncoding.EncodeToString(k) + "\n",
		base64.RawURLEncoding.EncodeToString(k),
	} {
		got, err := redisstate.ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(k[:16])} {
		if _, err := redisstate.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) succeeded", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseKey error repeats the input: %v", err)
		}
	}
	if _, err := redisstate.NewKeyring(k[:16]); err == nil {
		t.Error("NewKeyring accepted a 16-byte key")
	}
}
