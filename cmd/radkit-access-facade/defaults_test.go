package main

import (
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/idempotency"
	"github.com/radkit/radkit-access-facade/internal/redisstate"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// helpFlags returns the flags as --help shows them.
func helpFlags(t *testing.T) *flag.FlagSet {
	t.Helper()
	c := config{from: map[string]string{}, secretFrom: map[string]string{}}
	c.setDefaults()
	return newFlagSet(c.options(), c.credentials(), io.Discard)
}

// TestHelpDefaultsFromOwners: the defaults --help shows are the owning
// packages' constants, and no usage restates its flag's default, which
// would then be a second copy to drift.
func TestHelpDefaultsFromOwners(t *testing.T) {
	fs := helpFlags(t)
	for _, tc := range []struct {
		flag string
		want string
	}{
		{"grpc-addr", facade.DefaultGRPCAddr},
		{"http-addr", facade.DefaultHTTPAddr},
		{"shutdown-timeout", shortDuration(facade.DefaultShutdownTimeout)},
		{"reload-poll-interval", shortDuration(facade.DefaultReloadPollInterval)},
		{"upstream-max-in-flight", strconv.Itoa(facade.DefaultUpstreamMaxInFlight)},
		{"call-timeout", shortDuration(server.DefaultCallTimeout)},
		{"max-watches-per-caller", strconv.Itoa(server.DefaultMaxWatchesPerCaller)},
		{"watch-interval", shortDuration(watch.DefaultInterval)},
		{"watch-heartbeat", shortDuration(watch.DefaultHeartbeat)},
		{"idempotency-keys-per-caller", strconv.Itoa(idempotency.DefaultMaxEntriesPerOwner)},
		{"redis-prefix", redisstate.DefaultPrefix},
		// Zero means "off" for these; --help shows no default and the
		// usage says what zero does.
		{"rate-limit", ""},
		{"upstream-rate-limit", ""},
		{"expect-replicas", ""},
		{"status-cache-ttl", ""},
	} {
		if got := fs.Lookup(tc.flag).DefValue; got != tc.want {
			t.Errorf("--help: --%s defaults to %q, want %q", tc.flag, got, tc.want)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if d := f.DefValue; d != "" && d[0] >= '0' && d[0] <= '9' && strings.Contains(f.Usage, d) {
			t.Errorf("--%s: the usage restates the default %s that --help prints: %q", f.Name, d, f.Usage)
		}
	})
}

// TestZeroMeaningDefaultRefused: settings whose zero the facade would
// replace with its default refuse 0, so that a 0 never silently means
// the default --help shows.
func TestZeroMeaningDefaultRefused(t *testing.T) {
	for _, o := range []struct{ flag, env string }{
		{"watch-interval", "RADKIT_FACADE_WATCH_INTERVAL"},
		{"watch-heartbeat", "RADKIT_FACADE_WATCH_HEARTBEAT"},
		{"call-timeout", "RADKIT_FACADE_CALL_TIMEOUT"},
		{"shutdown-timeout", "RADKIT_FACADE_SHUTDOWN_TIMEOUT"},
	} {
		t.Run(o.flag, func(t *testing.T) {
			runFlagCases(t, []flagCase[time.Duration]{
				{"flag", []string{"--emulator", "--" + o.flag, "2s"}, nil, 2 * time.Second, ""},
				{"zero flag", []string{"--emulator", "--" + o.flag, "0"}, nil, 0, "-" + o.flag + ": must be above 0"},
				{"zero variable", []string{"--emulator"}, map[string]string{o.env: "0s"}, 0, o.env + `="0s": must be above 0`},
				{"negative variable", []string{"--emulator"}, map[string]string{o.env: "-1s"}, 0, o.env + `="-1s": must not be negative`},
			}, func(c config) time.Duration {
				return map[string]time.Duration{
					"watch-interval": c.facade.WatchInterval, "watch-heartbeat": c.facade.WatchHeartbeat,
					"call-timeout": c.facade.CallTimeout, "shutdown-timeout": c.facade.ShutdownTimeout,
				}[o.flag]
			})
		})
	}
}
