package facade_test

import (
	"context"
	"testing"
	"time"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestWatchEndedByCallerDeadlineIsInfo ends a real watch stream with its
// caller's own deadline, a documented way to end it: its log line is INFO
// with ended_by caller_deadline, not a warning; and under --log-calls
// errors it is not logged at all, while a failed call still is.
func TestWatchEndedByCallerDeadlineIsInfo(t *testing.T) {
	for _, policy := range []server.CallLog{server.CallLogAll, server.CallLogErrors} {
		t.Run(policy.String(), func(t *testing.T) {
			h := startFacade(t, facade.Config{Emulator: true, CallLog: policy})
			h.waitServing(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			stream, err := h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
			if err != nil {
				t.Fatalf("WatchServiceStatus: %v", err)
			}
			for {
				if _, err := stream.Recv(); err != nil {
					break
				}
			}
			// A failed call, to see that the errors policy logs it.
			_, _ = h.status("no-such-service-0")

			var watchLines, failedLines []map[string]any
			testkit.Eventually(t, 10*time.Second, "the calls' log lines", func() bool {
				watchLines, failedLines = nil, nil
				for _, m := range testkit.JSONLines(h.logs.String()) {
					switch {
					case m["msg"] != "finished call":
					case m["grpc.method"] == "WatchServiceStatus":
						watchLines = append(watchLines, m)
					case m["grpc.method"] == "GetServiceStatus" && m["grpc.code"] != "OK":
						failedLines = append(failedLines, m)
					}
				}
				return len(failedLines) > 0
			})
			if policy == server.CallLogErrors {
				if len(watchLines) != 0 {
					t.Errorf("a watch ended by its caller was logged under --log-calls errors: %v", watchLines)
				}
				return
			}
			if len(watchLines) != 1 {
				t.Fatalf("%d watch log lines, want 1", len(watchLines))
			}
			// The code is the server's view: its own deadline timer
			// (DeadlineExceeded) or the client's cancel on its deadline
			// (Canceled), whichever came first.
			if l := watchLines[0]; l["level"] != "INFO" || l["ended_by"] != "caller_deadline" || (l["grpc.code"] != "DeadlineExceeded" && l["grpc.code"] != "Canceled") {
				t.Errorf("watch log line %v, want INFO, ended_by caller_deadline", l)
			}
		})
	}
}
