package testkit

import (
	"net/http/httptest"
	"testing"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// StartEmulator serves an emulator made from cfg on a loopback httptest
// server until tb ends, and returns both. A cfg without any seed data gets
// emulator.DefaultSeed, whose first client (DefaultSeed().Clients[0]) is
// the usual upstream credential.
func StartEmulator(tb testing.TB, cfg emulator.Config) (*emulator.Emulator, *httptest.Server) {
	tb.Helper()
	if cfg.Seed.Services == nil && cfg.Seed.Clients == nil && cfg.Seed.APITokens == nil {
		cfg.Seed = emulator.DefaultSeed()
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		tb.Fatalf("emulator.New: %v", err)
	}
	srv := httptest.NewServer(emu)
	tb.Cleanup(srv.Close)
	return emu, srv
}
