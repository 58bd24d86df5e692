package emulator_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestConcurrentUse exercises every mutable path at once; it is meant for
// -race.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			tok := e.clientToken(t, clientID, clientSecret)
			for range 10 {
				if r := e.do(t, otpRequest(tok, otpBody)); r.status != 200 && r.status != 503 && r.status != 401 {
					t.Errorf("otp: %d", r.status)
				}
				e.do(t, request{method: http.MethodGet, path: "/public/admin/service/status/123-123-123", header: bearer(tok)})
				_ = e.emu.LastServiceID()
				_ = e.emu.Calls(emulator.RouteOTP)
			}
			if i%2 == 0 {
				e.emu.RevokeAccessTokens()
			}
		})
		wg.Go(func() {
			e.emu.Script(emulator.RouteOTP, emulator.Fault{Status: 503})
			e.emu.SetFailureRate(emulator.RouteStatus, 0.1, emulator.Fault{Status: 500})
			e.emu.SetService(emulator.Service{ID: "svc"})
			_ = e.emu.OTPs()
			e.emu.ResetFaults()
		})
	}
	wg.Wait()
	if got := e.emu.Calls(emulator.RouteToken); got != 8 {
		t.Errorf("Calls(token) = %d, want 8", got)
	}
}
