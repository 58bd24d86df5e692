package watch

import (
	"testing"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// TestBeatKind: when a poll's outcome and the heartbeat are ready
// together and the heartbeat wins, the status it re-reads may be new; it
// must then go out as a Change, or the watcher never gets one for it.
func TestBeatKind(t *testing.T) {
	base := upstream.ServiceStatus{ServiceID: "svc", Active: true, Online: true}
	offline, inactive := base, base
	offline.Online = false
	inactive.Active = false
	for _, tc := range []struct {
		name     string
		st, last upstream.ServiceStatus
		want     Kind
	}{
		{"unchanged", base, base, Heartbeat},
		{"went offline", offline, base, Change},
		{"went inactive", inactive, base, Change},
		{"came back", base, offline, Change},
	} {
		if got := beatKind(tc.st, tc.last); got != tc.want {
			t.Errorf("%s: beatKind = %v, want %v", tc.name, got, tc.want)
		}
	}
}
