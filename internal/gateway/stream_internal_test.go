package gateway

import (
	"testing"
	"time"
)

// TestStreamWriteWindowOutlastsHeartbeat: the deadline set for one message
// must outlast the silence before the next, the heartbeat; a fixed minute
// cut every watch served with a heartbeat of a minute or more.
func TestStreamWriteWindowOutlastsHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		heartbeat, want time.Duration
	}{
		{0, time.Minute},
		{30 * time.Second, time.Minute},
		{time.Minute, 2 * time.Minute},
		{5 * time.Minute, 10 * time.Minute},
	} {
		got := streamWriteWindow(tc.heartbeat)
		if got != tc.want || got <= tc.heartbeat {
			t.Errorf("streamWriteWindow(%v) = %v, want %v (more than the heartbeat)", tc.heartbeat, got, tc.want)
		}
	}
}
