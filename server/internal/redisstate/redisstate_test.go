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

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/internal/redisstate"
)

func open(t *testing.T, cfg redisstate.Config) *redisstate.Client {
	t.Helper()
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

func TestOpenRejectsAndRedacts(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://user:pw-secret@host:6379", "scheme"},
		{"redis://user:pw-secret@host:notaport", ""},
		{"", "no URL"},
	} {
		_, err := redisstate.Open(redisstate.Config{URL: tc.url})
		if err == nil {
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("Open(%q) error %q repeats the password", tc.url, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error %q does not say %q", tc.url, err, tc.want)
		}
	}
	for _, url := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://127.0.0.1:6380",
		"unix:///run/redis.sock?db=1",
		"redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379",
	} {
		c, err := redisstate.Open(redisstate.Config{URL: url})
		if err != nil {
			t.Errorf("Open(%q): %v", url, err)
			continue
		}
		_ = c.Close()
	}
	if got := redisstate.RedactURL("rediss://u:pw-secret@h:6380/1"); strings.Contains(got, "pw-secret") || !strings.Contains(got, "h:6380") {
		t.Errorf("RedactURL = %q", got)
	}
	c, err := redisstate.Open(redisstate.Config{URL: "redis://u:pw-secret@h:6380/1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if strings.Contains(c.URL(), "pw-secret") {
		t.Errorf("URL() = %q", c.URL())
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
