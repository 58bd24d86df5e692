package facade_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// watchInterval is the poll interval of the watch tests: the minimum, so
// that a change shows within seconds.
const watchInterval = time.Second

// changeTimeout bounds waiting for a change to reach a watcher: one
// interval in theory, generous for a loaded machine.
const changeTimeout = 15 * time.Second

// offlineService is a service of emulator.DefaultSeed that is active and
// offline.
const offlineService = "offl-ine0-0001"

// startWatchFacade starts an emulator-mode facade polling every
// watchInterval, with cfg's other watch settings.
func startWatchFacade(t *testing.T, cfg facade.Config) (*harness, *emulator.Emulator) {
	t.Helper()
	cfg.Emulator = true
	cfg.WatchInterval = watchInterval
	h := startFacade(t, cfg)
	h.waitServing(t)
	return h, h.f.Emulator()
}

// setService changes a service on the emulator through its admin API.
func (h *harness) setService(t *testing.T, s emulator.Service) {
	t.Helper()
	emulatorAdmin(t, h.http, h.f.UpstreamURL(), http.MethodPut, "/services", nil, s)
}

// recv receives one message of stream, failing t if none comes in time.
func recv(t *testing.T, stream grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse]) *accessv1.WatchServiceStatusResponse {
	t.Helper()
	type result struct {
		m   *accessv1.WatchServiceStatusResponse
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := stream.Recv(); ch <- result{m, err} }()
	r := testkit.Receive(t, ch, changeTimeout, "a watch message")
	if r.err != nil {
		t.Fatalf("Recv: %v", r.err)
	}
	return r.m
}

// end receives from stream until it ends and returns how it ended (nil
// for OK), failing t if it does not end in time.
func end(t *testing.T, stream grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse]) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ch <- err
				return
			}
		}
	}()
	err := testkit.Receive(t, ch, changeTimeout, "the end of the watch")
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func wantStatus(t *testing.T, m *accessv1.WatchServiceStatusResponse, kind accessv1.WatchServiceStatusResponse_Kind, id string, active, online bool) {
	t.Helper()
	if m.GetKind() != kind || m.GetServiceId() != id || m.GetActive() != active || m.GetOnline() != online || m.GetObservedTime() == nil {
		t.Fatalf("message %v, want kind %v service %s active %v online %v with an observed_time", m, kind, id, active, online)
	}
}

func TestWatchSendsInitialStatusThenEachChange(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{})
	stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: offlineService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_INITIAL, offlineService, true, false)

	h.setService(t, emulator.Service{ID: offlineService, Active: true, Online: true})
	wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_CHANGE, offlineService, true, true)
	h.setService(t, emulator.Service{ID: offlineService, Active: false, Online: true})
	wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_CHANGE, offlineService, false, true)
}

func TestWatchSendsHeartbeats(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{WatchHeartbeat: 2 * time.Second})
	stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	first := recv(t, stream)
	wantStatus(t, first, accessv1.WatchServiceStatusResponse_KIND_INITIAL, liveService, true, true)
	beat := recv(t, stream)
	wantStatus(t, beat, accessv1.WatchServiceStatusResponse_KIND_HEARTBEAT, liveService, true, true)
	if !beat.GetObservedTime().AsTime().After(first.GetObservedTime().AsTime()) {
		t.Errorf("heartbeat observed at %v, not after the first message's %v: polling stopped?", beat.GetObservedTime().AsTime(), first.GetObservedTime().AsTime())
	}
}

func TestWatchUntil(t *testing.T) {
	for _, tc := range []struct {
		until   accessv1.WatchServiceStatusRequest_Until
		flip    emulator.Service
		already bool // the condition holds at once
	}{
		{until: accessv1.WatchServiceStatusRequest_UNTIL_ONLINE, flip: emulator.Service{ID: offlineService, Active: true, Online: true}},
		{until: accessv1.WatchServiceStatusRequest_UNTIL_INACTIVE, flip: emulator.Service{ID: offlineService, Active: false, Online: false}},
		{until: accessv1.WatchServiceStatusRequest_UNTIL_OFFLINE, already: true},
		{until: accessv1.WatchServiceStatusRequest_UNTIL_ACTIVE, already: true},
	} {
		t.Run(tc.until.String(), func(t *testing.T) {
			h, _ := startWatchFacade(t, facade.Config{})
			stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: offlineService, Until: tc.until})
			if err != nil {
				t.Fatalf("WatchServiceStatus: %v", err)
			}
			wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_INITIAL, offlineService, true, false)
			if !tc.already {
				h.setService(t, tc.flip)
				wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_CHANGE, offlineService, tc.flip.Active, tc.flip.Online)
			}
			if err := end(t, stream); err != nil {
				t.Fatalf("the watch ended with %v, want OK once the condition holds", err)
			}
		})
	}
}

// TestWatchersSharePolls checks that 500 watchers of 5 services cost about
// one upstream status call per service per interval, not one per watcher.
func TestWatchersSharePolls(t *testing.T) {
	const services, watchers, intervals = 5, 500, 3
	h, emu := startWatchFacade(t, facade.Config{MaxWatchesPerCaller: watchers})
	ids := make([]string, services)
	for i := range ids {
		ids[i] = fmt.Sprintf("shar-ed00-%04d", i)
		emu.SetService(emulator.Service{ID: ids[i], Active: true, Online: i%2 == 0})
	}
	// One gRPC connection carries at most MaxConcurrentStreams calls.
	conns := make([]accessv1.AccessServiceClient, 4)
	for i := range conns {
		conn, err := grpc.NewClient(h.f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("grpc.NewClient: %v", err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		conns[i] = accessv1.NewAccessServiceClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*changeTimeout+intervals*watchInterval)
	defer cancel()
	streams := make([]grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse], watchers)
	var wg sync.WaitGroup
	errs := make(chan error, watchers)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := conns[i%len(conns)].WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: ids[i%services]})
			if err == nil {
				_, err = s.Recv()
			}
			if err != nil {
				errs <- err
			}
			streams[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a watcher got no initial status: %v", err)
	}
	before := emu.Calls(emulator.RouteStatus)
	time.Sleep(intervals * watchInterval)
	polls := emu.Calls(emulator.RouteStatus) - before
	t.Logf("%d watchers of %d services over %d intervals of %v: %d upstream status calls", watchers, services, intervals, watchInterval, polls)
	// One per service per interval, with room for a late tick each.
	if polls < services || polls > services*(intervals+2) {
		t.Errorf("%d upstream status calls, want about %d (one per service per interval)", polls, services*intervals)
	}
	if got := watchMetric(t, h, "radkit_watch_streams"); got != watchers {
		t.Errorf("radkit_watch_streams %v, want %d", got, watchers)
	}
	if got := watchMetric(t, h, "radkit_watch_pollers"); got != services {
		t.Errorf("radkit_watch_pollers %v, want %d", got, services)
	}
	if got := watchMetric(t, h, "radkit_watch_messages_sent_total"); got < watchers {
		t.Errorf("radkit_watch_messages_sent_total %v, want at least one per watcher (%d)", got, watchers)
	}
	if got := watchMetric(t, h, "radkit_watch_polls_total"); got < float64(polls) {
		t.Errorf("radkit_watch_polls_total %v, want at least the %d status calls the emulator counted while measuring", got, polls)
	}
}

// TestWatchSurvivesTransientFailures fails every status call for a while:
// the stream stays open, and a change made after the upstream recovers
// still arrives.
func TestWatchSurvivesTransientFailures(t *testing.T) {
	h, emu := startWatchFacade(t, facade.Config{})
	stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: offlineService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_INITIAL, offlineService, true, false)

	// Two polls' worth (each is retried up to 3 times), short of opening
	// the circuit breaker (5 failures in a row).
	before := emu.Calls(emulator.RouteStatus)
	unavailable := emulator.Fault{Status: http.StatusServiceUnavailable}
	emu.Script(emulator.RouteStatus, unavailable, unavailable, unavailable, unavailable)
	testkit.Eventually(t, changeTimeout, "polls answered 503", func() bool {
		return emu.Calls(emulator.RouteStatus)-before >= 3 // the first failed poll, retries included
	})
	h.setService(t, emulator.Service{ID: offlineService, Active: true, Online: true})
	// Backoff after the failures may delay the next poll by a few
	// intervals; the bound allows for it.
	wantStatus(t, recv(t, stream), accessv1.WatchServiceStatusResponse_KIND_CHANGE, offlineService, true, true)
}

// TestWatchFirstPollTransientFailures opens watches of services whose
// first polls fail: with the upstream answering most status calls 503,
// no stream ends (transient failures never end one, the first poll's no
// more than later ones), and each gets its initial status once the
// upstream recovers.
func TestWatchFirstPollTransientFailures(t *testing.T) {
	// At 60 % some first polls fail even after their retries, so that
	// with 30 watchers several fail; more would have the adaptive
	// throttle refuse calls for minutes after the upstream recovered.
	const watchers, failureRate = 30, 0.6
	h, emu := startWatchFacade(t, facade.Config{})
	emu.SetFailureRate(emulator.RouteStatus, failureRate, emulator.Fault{Status: http.StatusServiceUnavailable})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		i   int
		m   *accessv1.WatchServiceStatusResponse
		err error
	}
	first := make(chan result, watchers)
	for i := range watchers {
		id := fmt.Sprintf("flak-y000-%04d", i)
		emu.SetService(emulator.Service{ID: id, Active: true, Online: true})
		stream, err := h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: id})
		if err != nil {
			t.Fatalf("WatchServiceStatus %s: %v", id, err)
		}
		go func() { m, err := stream.Recv(); first <- result{i, m, err} }()
	}
	// Every service's first poll has been made, most of them failed (503,
	// or refused by the breaker or the throttle the 503s set off), and the
	// pollers backed off and tried again: a stream that ends for a
	// transient failure has ended by now.
	testkit.Eventually(t, 2*changeTimeout, "two polls per service", func() bool {
		select {
		case r := <-first:
			if r.err != nil {
				t.Fatalf("watch %d ended with %v while the upstream failed transiently, want it open", r.i, r.err)
			}
			first <- r // a poll that got through: that stream is fine
		default:
		}
		return watchMetric(t, h, "radkit_watch_polls_total") >= 2*watchers
	})
	emu.ResetFaults()
	for range watchers {
		r := testkit.Receive(t, first, 2*changeTimeout, "each watch's initial status once the upstream recovered")
		if r.err != nil {
			t.Fatalf("watch %d ended with %v, want its initial status", r.i, r.err)
		}
		if r.m.GetKind() != accessv1.WatchServiceStatusResponse_KIND_INITIAL {
			t.Errorf("watch %d: first message %v, want KIND_INITIAL", r.i, r.m)
		}
	}
}

func TestWatchEndsOnPermanentFailures(t *testing.T) {
	h, emu := startWatchFacade(t, facade.Config{})
	t.Run("at once", func(t *testing.T) {
		stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: "unkn-own0-0001"})
		if err != nil {
			t.Fatalf("WatchServiceStatus: %v", err)
		}
		wantError(t, end(t, stream), codes.NotFound, accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String())
	})
	t.Run("mid-stream", func(t *testing.T) {
		stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
		if err != nil {
			t.Fatalf("WatchServiceStatus: %v", err)
		}
		recv(t, stream)
		emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: http.StatusNotFound, Details: "service not found"})
		t.Cleanup(emu.ResetFaults)
		wantError(t, end(t, stream), codes.NotFound, accessv1.ErrorReason_UPSTREAM_NOT_FOUND.String())
	})
	t.Run("credentials rejected", func(t *testing.T) {
		stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
		if err != nil {
			t.Fatalf("WatchServiceStatus: %v", err)
		}
		recv(t, stream)
		// Every status call answers 401, after the client's token refresh
		// and retry too.
		emu.SetFailureRate(emulator.RouteStatus, 1, emulator.Fault{Status: http.StatusUnauthorized})
		t.Cleanup(emu.ResetFaults)
		wantError(t, end(t, stream), codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CREDENTIALS_REJECTED.String())
	})
}

func TestWatchDeadline(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*watchInterval)
	defer cancel()
	stream, err := h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	recv(t, stream)
	wantError(t, end(t, stream), codes.DeadlineExceeded)
}

func TestWatchInvalidRequest(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{})
	for _, req := range []*accessv1.WatchServiceStatusRequest{
		{ServiceId: ""},
		{ServiceId: "a/b"},
		{ServiceId: liveService, Until: 42},
	} {
		stream, err := h.client.WatchServiceStatus(callCtx(t), req)
		if err == nil {
			err = end(t, stream)
		}
		wantError(t, err, codes.InvalidArgument, accessv1.ErrorReason_INVALID_REQUEST.String())
	}
}

func TestWatchLimitPerCaller(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{MaxWatchesPerCaller: 2})
	ctx, cancel := context.WithCancel(callCtx(t))
	for range 2 {
		stream, err := h.client.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
		if err != nil {
			t.Fatalf("WatchServiceStatus: %v", err)
		}
		recv(t, stream)
	}
	stream, err := h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err == nil {
		err = end(t, stream)
	}
	wantError(t, err, codes.ResourceExhausted, accessv1.ErrorReason_TOO_MANY_WATCHES.String())

	r := h.do(t, http.MethodGet, "/v1/services/"+liveService+"/status:watch", nil)
	if r.code != http.StatusTooManyRequests || r.reason() != accessv1.ErrorReason_TOO_MANY_WATCHES.String() {
		t.Errorf("over HTTP: %d %s, want 429 with reason %s", r.code, r.body, accessv1.ErrorReason_TOO_MANY_WATCHES.String())
	}

	// Leaving frees the caller's watches, and then the poller.
	cancel()
	testkit.Eventually(t, changeTimeout, "the watches to close", func() bool {
		return watchMetric(t, h, "radkit_watch_streams") == 0 && watchMetric(t, h, "radkit_watch_pollers") == 0
	})
	stream, err = h.client.WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus after the others left: %v", err)
	}
	recv(t, stream)
}

// TestWatchOverHTTP reads the gateway's stream as newline-delimited JSON,
// one line as it comes, up to the end that UNTIL_ONLINE brings.
func TestWatchOverHTTP(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{})
	req, err := http.NewRequestWithContext(callCtx(t), http.MethodGet,
		h.base+"/v1/services/"+offlineService+"/status:watch?"+url.Values{"until": {"UNTIL_ONLINE"}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		t.Fatalf("GET status:watch: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	first := readLine(t, lines)
	if !strings.Contains(first, `"kind":"KIND_INITIAL"`) || !strings.Contains(first, `"online":false`) || !strings.Contains(first, `"service_id":"`+offlineService+`"`) {
		t.Fatalf("first line %s, want the initial, offline status", first)
	}
	h.setService(t, emulator.Service{ID: offlineService, Active: true, Online: true})
	second := readLine(t, lines)
	if !strings.Contains(second, `"kind":"KIND_CHANGE"`) || !strings.Contains(second, `"online":true`) {
		t.Fatalf("second line %s, want the change to online", second)
	}
	select {
	case s, ok := <-lines:
		if ok {
			t.Fatalf("a line after the condition held: %s", s)
		}
	case <-time.After(changeTimeout):
		t.Fatal("the stream did not end once the service was online")
	}
	// The stream has its per-call log line, marked as come in over HTTP.
	testkit.Eventually(t, changeTimeout, "the stream's log line", func() bool {
		for _, r := range h.logs.Records(t) {
			if r["msg"] == "finished call" && r["grpc.method"] == "WatchServiceStatus" && r["protocol"] == "http" && r["grpc.code"] == "OK" {
				return true
			}
		}
		return false
	})
}

// readLine returns the next line, failing t unless one comes in time.
func readLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case s, ok := <-lines:
		if !ok {
			t.Fatal("the stream ended early")
		}
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &v); err != nil || v["result"] == nil {
			t.Fatalf("line %q is not {\"result\": ...}: %v", s, err)
		}
		return s
	case <-time.After(changeTimeout):
		t.Fatal("no line in time")
	}
	return ""
}

// TestWatchEndsOnShutdown stops a facade under an open watch: the stream
// ends with UNAVAILABLE, reason SHUTTING_DOWN and a RetryInfo, and the
// facade stops well within its shutdown timeout.
func TestWatchEndsOnShutdown(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := facade.New(ctx, facade.Config{Emulator: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", WatchInterval: watchInterval, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("facade.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer conn.Close()
	stream, err := accessv1.NewAccessServiceClient(conn).WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	recv(t, stream)
	started := time.Now()
	cancel()
	err = end(t, stream)
	wantError(t, err, codes.Unavailable, accessv1.ErrorReason_SHUTTING_DOWN.String())
	var retry bool
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			retry = true
		}
	}
	if !retry {
		t.Errorf("%v has no RetryInfo", err)
	}
	if err := testkit.Receive(t, done, stopTimeout, "Run to return"); err != nil {
		t.Errorf("Run: %v", err)
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("shutdown took %v with a watch open, want well under the 10s timeout", took)
	}
}

// TestWatchShutdownCutsStreamsNotRead stops a facade under watch streams
// whose client does not read (raw HTTP/2 with a zero window, heartbeats
// every millisecond, so that the server's sends wait on flow control) and
// one that does: the reader gets SHUTTING_DOWN at once, the others are cut
// when the watch share of the shutdown budget ends, their handlers ending
// with SHUTTING_DOWN too, and Run returns.
func TestWatchShutdownCutsStreamsNotRead(t *testing.T) {
	checkGoroutines(t)
	logs := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := facade.New(ctx, facade.Config{
		Emulator: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		WatchInterval: watchInterval, WatchHeartbeat: time.Millisecond, ShutdownTimeout: 4 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("facade.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer conn.Close()
	stream, err := accessv1.NewAccessServiceClient(conn).WatchServiceStatus(callCtx(t), &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	req, err := proto.Marshal(&accessv1.WatchServiceStatusRequest{ServiceId: liveService})
	if err != nil {
		t.Fatal(err)
	}
	testkit.OpenNonReadingGRPC(t, f.GRPCAddr(), accessv1.AccessService_WatchServiceStatus_FullMethodName, req, 2)
	// Thousands of heartbeats to the reader: the non-readers, sent as
	// many, have long filled the server's write quota of their streams.
	for range 3000 {
		recv(t, stream)
	}
	cancel()
	wantError(t, end(t, stream), codes.Unavailable, accessv1.ErrorReason_SHUTTING_DOWN.String())
	if err := testkit.Receive(t, done, stopTimeout, "Run to return"); err != nil {
		t.Errorf("Run: %v", err)
	}
	var ended int
	for _, r := range logs.Records(t) {
		if r["msg"] != "finished call" || r["grpc.method"] != "WatchServiceStatus" {
			continue
		}
		ended++
		if r["grpc.code"] != "Unavailable" || !strings.Contains(fmt.Sprint(r["grpc.error"]), "shutting down") {
			t.Errorf("a watch stream ended with %v %v, want UNAVAILABLE, shutting down", r["grpc.code"], r["grpc.error"])
		}
	}
	if ended != 3 {
		t.Errorf("%d watch streams logged their end, want 3", ended)
	}
	if !strings.Contains(logs.String(), "2 watch streams whose clients did not read were cut") {
		t.Errorf("no warning that 2 streams were cut in the log:\n%s", logs.String())
	}
}

var metricLine = regexp.MustCompile(`(?m)^(radkit_watch_[a-z_]+) ([0-9.e+]+)$`)

// watchMetric reads a radkit_watch_* metric from the facade's /metrics.
func watchMetric(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	r := h.do(t, http.MethodGet, "/metrics", nil)
	for _, m := range metricLine.FindAllStringSubmatch(string(r.body), -1) {
		if m[1] == name {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestWatchCallerAuthAndRateLimit checks that a stream is authenticated
// like a unary call, counts once against its caller's rate limit when it
// opens, and counts against the watch limit of the authenticated caller.
func TestWatchCallerAuthAndRateLimit(t *testing.T) {
	keysFile := filepath.Join(t.TempDir(), "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": "alice-key-0123456789", "bob": "bob-key-0123456789"})
	s := startSecured(t, facade.Config{CallerKeysFile: keysFile, RateLimit: 0.001, RateBurst: 3, MaxWatchesPerCaller: 1}, nil)
	watch := func(key string) (grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse], error) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		t.Cleanup(cancel)
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		stream, err := s.access.WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: liveService})
		if err != nil {
			return nil, err
		}
		if _, err := stream.Recv(); err != nil {
			return nil, err
		}
		return stream, nil
	}

	if _, err := watch(""); status.Code(err) != codes.Unauthenticated || reason(err) != accessv1.ErrorReason_CALLER_UNAUTHENTICATED.String() {
		t.Fatalf("no key: %v, want UNAUTHENTICATED", err)
	}
	if resp, body := s.get(t, "/v1/services/"+liveService+"/status:watch", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key over HTTP: %d %s, want 401", resp.StatusCode, body)
	}
	if _, err := watch("alice-key-0123456789"); err != nil { // alice: 1 of 3 calls
		t.Fatalf("alice's first watch: %v", err)
	}
	if _, err := watch("bob-key-0123456789"); err != nil {
		t.Fatalf("bob's first watch, while alice holds hers: %v", err)
	}
	if _, err := watch("alice-key-0123456789"); status.Code(err) != codes.ResourceExhausted || reason(err) != accessv1.ErrorReason_TOO_MANY_WATCHES.String() { // 2 of 3
		t.Fatalf("alice's second watch: %v, want TOO_MANY_WATCHES", err)
	}
	if err := s.status("alice-key-0123456789"); err != nil { // 3 of 3: the open stream's messages did not count
		t.Fatalf("alice's GetServiceStatus: %v", err)
	}
	if _, err := watch("alice-key-0123456789"); status.Code(err) != codes.ResourceExhausted || reason(err) != accessv1.ErrorReason_CALLER_RATE_LIMITED.String() {
		t.Fatalf("alice's fourth call: %v, want CALLER_RATE_LIMITED", err)
	}
}

// TestWatchOverHTTPFreedWhenCallerLeaves holds an HTTP watch open with
// heartbeats flowing, then leaves: its watch and poller are freed.
// (package gateway tests streams past the HTTP server's timeouts.)
func TestWatchOverHTTPFreedWhenCallerLeaves(t *testing.T) {
	h, _ := startWatchFacade(t, facade.Config{WatchHeartbeat: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/v1/services/"+liveService+"/status:watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}} // no client timeout: the stream is long
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET status:watch: %v", err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if first := readLine(t, lines); !strings.Contains(first, "KIND_INITIAL") {
		t.Fatalf("first line %s, want the initial status", first)
	}
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); {
		if l := readLine(t, lines); !strings.Contains(l, "KIND_HEARTBEAT") {
			t.Fatalf("line %s, want a heartbeat", l)
		}
	}
	cancel()
	testkit.Eventually(t, changeTimeout, "the watch and its poller to be freed", func() bool {
		return watchMetric(t, h, "radkit_watch_streams") == 0 && watchMetric(t, h, "radkit_watch_pollers") == 0
	})
}

// TestReflectionAndHealthStreamsStayOpen checks that intercepting streams
// for caller authentication left server reflection and health watches
// open to callers without a key, as they were.
func TestReflectionAndHealthStreamsStayOpen(t *testing.T) {
	keysFile := filepath.Join(t.TempDir(), "callers.keys")
	writeKeys(t, keysFile, map[string]string{"alice": "alice-key-0123456789"})
	s := startSecured(t, facade.Config{CallerKeysFile: keysFile}, nil)
	ctx := callCtx(t)
	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatalf("reflection Send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetListServicesResponse() == nil {
		t.Fatalf("reflection list without a key: %v %v, want the services", resp, err)
	}
	watch, err := s.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	if err != nil {
		t.Fatalf("health Watch without a key: %v", err)
	}
}
