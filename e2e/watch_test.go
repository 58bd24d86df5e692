package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
)

// watchTimeout bounds a watch that waits for one change: the default
// 5 s watch interval, with room for a loaded machine.
const watchTimeout = 30 * time.Second

// offlineService is a service of emulator.DefaultSeed that is active and
// offline.
const offlineService = "offl-ine0-0001"

// TestWatchGRPCurl is the README's enrollment wait with the pinned
// grpcurl, on a service that comes online while grpcurl waits: grpcurl
// prints the initial status, then the change, and exits 0.
func TestWatchGRPCurl(t *testing.T) {
	bin := grpcurlBinary(t)
	h := startFacade(t)
	ctx, cancel := context.WithTimeout(context.Background(), watchTimeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-plaintext", "-max-time", "60",
		"-d", `{"service_id": "`+offlineService+`", "until": "UNTIL_ONLINE"}`,
		h.grpcAddr, "radkit.access.v1.AccessService/WatchServiceStatus")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting grpcurl: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if !eventually(watchTimeout, func() bool { return strings.Contains(stdout.String(), "KIND_INITIAL") }) {
		t.Fatalf("grpcurl printed no initial status\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	h.emu.SetService(emulator.Service{ID: offlineService, Active: true, Online: true})
	if err := testkit.Receive(t, exited, watchTimeout, "grpcurl to exit once the service is online"); err != nil {
		t.Fatalf("grpcurl: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := removeSpace(stdout.String())
	for _, want := range []string{`"kind":"KIND_INITIAL"`, `"kind":"KIND_CHANGE"`, `"online":true`, `"serviceId":"` + offlineService + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("grpcurl output lacks %s:\n%s", want, stdout.String())
		}
	}
}

// TestWatchNode reads WatchServiceStatus as a server stream in
// @grpc/grpc-js: the initial status of an online service ends an
// UNTIL_ONLINE watch with OK, and an unknown service ends with NOT_FOUND.
func TestWatchNode(t *testing.T) {
	node := NodeClient(t)
	h := startFacade(t)
	results, err := node.Call(testkit.Context(t, time.Minute), h.grpcAddr, []NodeCall{
		{RPC: "WatchServiceStatus", Request: map[string]any{"service_id": "1ryq-e8n8-5g5n", "until": "UNTIL_ONLINE"}, DeadlineMS: 20000},
		{RPC: "WatchServiceStatus", Request: map[string]any{"service_id": "no-such-service"}, DeadlineMS: 20000},
	})
	if err != nil {
		t.Fatal(err)
	}
	online := results[0]
	if !online.OK || len(online.Messages) != 1 {
		t.Fatalf("UNTIL_ONLINE on an online service: %+v, want OK after one message", online)
	}
	m := online.Messages[0]
	if m["kind"] != "KIND_INITIAL" || m["online"] != true || m["service_id"] != "1ryq-e8n8-5g5n" || m["observed_time"] == nil {
		t.Errorf("message %v, want the initial, online status with an observed_time", m)
	}
	missing := results[1]
	if missing.OK || missing.Code != codes.NotFound || len(missing.ErrorReasons) != 1 || missing.ErrorReasons[0] != "UPSTREAM_NOT_FOUND" {
		t.Errorf("unknown service: %+v, want NOT_FOUND with reason UPSTREAM_NOT_FOUND", missing)
	}
}
