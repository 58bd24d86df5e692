package ratelimit_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"

	"github.com/radkit/radkit-access-facade/internal/ratelimit"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func TestAllow(t *testing.T) {
	// op is one step: advance the clock, then call Allow for key.
	type op struct {
		advance   time.Duration
		key       string
		wantOK    bool
		wantRetry time.Duration // when !wantOK
	}
	tests := []struct {
		name    string
		cfg     ratelimit.Config
		ops     []op
		wantLen int
	}{
		{
			name: "burst then refused",
			cfg:  ratelimit.Config{Rate: 1, Burst: 3},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantRetry: time.Second},
			},
			wantLen: 1,
		},
		{
			name: "burst below one means one",
			cfg:  ratelimit.Config{Rate: 1, Burst: 0},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantRetry: time.Second},
			},
			wantLen: 1,
		},
		{
			name: "retry delay shrinks as the bucket refills",
			cfg:  ratelimit.Config{Rate: 2, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantRetry: 500 * time.Millisecond},
				{advance: 200 * time.Millisecond, key: "a", wantRetry: 300 * time.Millisecond},
				{advance: 300 * time.Millisecond, key: "a", wantOK: true},
				{key: "a", wantRetry: 500 * time.Millisecond},
			},
			wantLen: 1,
		},
		{
			name: "refill stops at burst",
			cfg:  ratelimit.Config{Rate: 10, Burst: 2},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantRetry: 100 * time.Millisecond},
				{advance: time.Hour, key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantRetry: 100 * time.Millisecond},
			},
			wantLen: 1,
		},
		{
			name: "retry delay rounds up to a millisecond",
			cfg:  ratelimit.Config{Rate: 3, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantRetry: 334 * time.Millisecond},
			},
			wantLen: 1,
		},
		{
			name: "slow rate",
			cfg:  ratelimit.Config{Rate: 0.5, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantRetry: 2 * time.Second},
			},
			wantLen: 1,
		},
		{
			name: "keys are independent",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantRetry: time.Second},
				{key: "b", wantOK: true},
				{key: "b", wantRetry: time.Second},
				{key: "", wantOK: true},
				{key: "", wantRetry: time.Second},
			},
			wantLen: 3,
		},
		{
			name: "least recently used is dropped past MaxKeys",
			cfg:  ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: 2},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "b", wantOK: true},
				{key: "a", wantRetry: time.Second}, // a is now the most recent
				{key: "c", wantOK: true},           // drops b, not a
				{key: "a", wantRetry: time.Second}, // still tracked
				{key: "b", wantOK: true},           // a fresh bucket; drops c
				{key: "c", wantOK: true},           // a fresh bucket; drops a
			},
			wantLen: 2,
		},
		{
			name: "idle full buckets are dropped",
			cfg:  ratelimit.Config{Rate: 1, Burst: 2},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "b", wantOK: true},
				{advance: 1999 * time.Millisecond, key: "c", wantOK: true}, // a, b not yet full
				{advance: time.Millisecond, key: "c", wantOK: true},        // now they are
			},
			wantLen: 1,
		},
		{
			name: "disabled by zero rate",
			cfg:  ratelimit.Config{Rate: 0, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
			},
		},
		{
			name: "disabled by negative rate",
			cfg:  ratelimit.Config{Rate: -1, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
			},
		},
		{
			name: "disabled by infinite rate",
			cfg:  ratelimit.Config{Rate: rate.Inf, Burst: 1},
			ops: []op{
				{key: "a", wantOK: true},
				{key: "a", wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			tt.cfg.Now = clock.Now
			l := ratelimit.New(tt.cfg)
			for i, o := range tt.ops {
				clock.Advance(o.advance)
				ok, retry := l.Allow(o.key)
				if ok != o.wantOK {
					t.Fatalf("op %d: Allow(%q) ok = %v, want %v", i, o.key, ok, o.wantOK)
				}
				if ok && retry != 0 {
					t.Errorf("op %d: Allow(%q) allowed with retry %v, want 0", i, o.key, retry)
				}
				if !ok && retry != o.wantRetry {
					t.Errorf("op %d: Allow(%q) retry = %v, want %v", i, o.key, retry, o.wantRetry)
				}
				if max := tt.cfg.MaxKeys; max > 0 && l.Len() > max {
					t.Errorf("op %d: Len() = %d, over MaxKeys %d", i, l.Len(), max)
				}
			}
			if got := l.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			if got, want := l.Enabled(), tt.cfg.Rate > 0 && tt.cfg.Rate != rate.Inf; got != want {
				t.Errorf("Enabled() = %v, want %v", got, want)
			}
		})
	}
}

// TestAllowConcurrent checks, under the race detector, that a bucket never
// hands out more tokens than it holds however many goroutines ask at once.
func TestAllowConcurrent(t *testing.T) {
	const (
		burst      = 50
		goroutines = 8
		perG       = 100
		keys       = 4
	)
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) // frozen: no refill during the test
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: burst, MaxKeys: keys, Now: clock.Now})
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				k := (g + i) % keys
				if ok, _ := l.Allow(fmt.Sprint("caller-", k)); ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := allowed[k].Load(); got != burst {
			t.Errorf("caller-%d: %d calls allowed, want exactly the burst, %d", k, got, burst)
		}
	}
	if got := l.Len(); got != keys {
		t.Errorf("Len() = %d, want %d", got, keys)
	}
}

// TestAllowBoundedMemory feeds many distinct keys, as a caller rotating
// addresses would, and checks that the Limiter holds at most MaxKeys.
func TestAllowBoundedMemory(t *testing.T) {
	const maxKeys = 100
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 5, MaxKeys: maxKeys, Now: clock.Now})
	for i := range 10 * maxKeys {
		if ok, _ := l.Allow(fmt.Sprint("10.0.", i/256, ".", i%256)); !ok {
			t.Fatalf("new key %d refused", i)
		}
		if got := l.Len(); got > maxKeys {
			t.Fatalf("after %d keys: Len() = %d, over MaxKeys %d", i+1, got, maxKeys)
		}
	}
	if got := l.Len(); got != maxKeys {
		t.Errorf("Len() = %d, want %d", got, maxKeys)
	}
}

func TestDefaultMaxKeys(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, Now: clock.Now})
	for i := range ratelimit.DefaultMaxKeys + 10 {
		l.Allow(fmt.Sprint(i))
	}
	if got := l.Len(); got != ratelimit.DefaultMaxKeys {
		t.Errorf("Len() = %d, want DefaultMaxKeys (%d)", got, ratelimit.DefaultMaxKeys)
	}
}

// namedAddr is a net.Addr that is neither TCP nor UDP, as the gateway makes
// for remote addresses it cannot parse.
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }

func TestPeerKey(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no peer", context.Background(), ""},
		{"peer without address", peer.NewContext(context.Background(), &peer.Peer{}), ""},
		{"IPv4", withAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}), "192.0.2.7"},
		{"IPv4 port does not matter", withAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40001}), "192.0.2.7"},
		{"IPv6", withAddr(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}), "2001:db8::1"},
		{"IPv4-mapped IPv6 reads as IPv4", withAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}), "192.0.2.7"},
		{"UDP", withAddr(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 53}), "198.51.100.1"},
		{"host:port string", withAddr(namedAddr("[2001:db8::2]:8080")), "2001:db8::2"},
		{"unparsable string", withAddr(namedAddr("pipe")), "pipe"},
		{"unix socket", withAddr(&net.UnixAddr{Name: "/run/facade.sock", Net: "unix"}), "/run/facade.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratelimit.PeerKey(tt.ctx); got != tt.want {
				t.Errorf("PeerKey() = %q, want %q", got, tt.want)
			}
		})
	}
}

func withAddr(a net.Addr) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: a})
}

// BenchmarkAllow measures Allow from parallel goroutines over many callers,
// most of them allowed: the cost every AccessService call pays.
func BenchmarkAllow(b *testing.B) {
	for _, keys := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprint("keys=", keys), func(b *testing.B) {
			names := make([]string, keys)
			for i := range names {
				names[i] = fmt.Sprint("caller-", i)
			}
			// MaxKeys below the key count for the largest case, so that
			// eviction is part of what is measured.
			l := ratelimit.New(ratelimit.Config{Rate: 1e6, Burst: 1000, MaxKeys: 10_000})
			var seed atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					l.Allow(names[i%keys])
					i++
				}
			})
		})
	}
}
