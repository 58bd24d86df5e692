package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/gateway"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// TestWatchStreamOutlivesServerTimeouts serves a watch through the gateway
// on an http.Server whose ReadTimeout and WriteTimeout are shorter than
// the stream: the stream moves its own deadlines, so heartbeats keep
// flowing past both.
func TestWatchStreamOutlivesServerTimeouts(t *testing.T) {
	_, emuSrv := testkit.StartEmulator(t, emulator.Config{})
	client := emulator.DefaultSeed().Clients[0]
	up, err := upstream.New(upstream.Config{BaseURL: emuSrv.URL, ClientID: client.ID, ClientSecret: client.Secret})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() { _ = up.Close() })
	svc := server.New(server.Config{Upstream: up, WatchInterval: time.Second, WatchHeartbeat: 500 * time.Millisecond})
	t.Cleanup(func() { _ = svc.StopWatches(context.Background()) })
	h, err := gateway.New(context.Background(), gateway.Config{Service: svc, Ready: func() (bool, string) { return true, "" }})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = time.Second
	// Covers discovery, the token and the first poll before the first
	// message on a loaded machine; the heartbeat (500 ms) keeps the stream
	// past it many times over.
	srv.Config.WriteTimeout = 5 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)

	ctx := testkit.Context(t, 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/services/1ryq-e8n8-5g5n/status:watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET status:watch: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	started := time.Now()
	for n := 0; time.Since(started) < 8*time.Second; n++ { // past the WriteTimeout
		if !sc.Scan() {
			t.Fatalf("the stream ended after %v and %d lines: %v", time.Since(started), n, sc.Err())
		}
		if line := sc.Text(); !strings.Contains(line, `"result"`) {
			t.Fatalf("line %d after %v: %s, want a result", n, time.Since(started), line)
		}
	}
}

// smallWriteBuffers gives every connection it accepts a small socket send
// buffer, so that a client that does not read soon leaves the server's
// writes waiting.
type smallWriteBuffers struct{ net.Listener }

func (l smallWriteBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(testkit.NonReaderBuffer)
	}
	return c, err
}

// TestWatchStreamCutWhenClientDoesNotRead serves a watch, heartbeats every
// millisecond, to a client that never reads, until the server's writes
// wait for it; then the watches are stopped with a short share of time:
// the write is abandoned when they are cut and the connection closed at
// once, not a write window (a minute) later.
func TestWatchStreamCutWhenClientDoesNotRead(t *testing.T) {
	_, emuSrv := testkit.StartEmulator(t, emulator.Config{})
	client := emulator.DefaultSeed().Clients[0]
	up, err := upstream.New(upstream.Config{BaseURL: emuSrv.URL, ClientID: client.ID, ClientSecret: client.Secret})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	t.Cleanup(func() { _ = up.Close() })
	svc := server.New(server.Config{Upstream: up, WatchInterval: time.Second, WatchHeartbeat: time.Millisecond})
	h, err := gateway.New(context.Background(), gateway.Config{Service: svc, Ready: func() (bool, string) { return true, "" }, StreamsCut: svc.WatchesCut()})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallWriteBuffers{srv.Listener}
	closed := make(chan struct{}, 1)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	conn := testkit.DialNonReader(t, srv.Listener.Addr().String())
	if _, err := fmt.Fprintf(conn, "GET /v1/services/1ryq-e8n8-5g5n/status:watch HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("request: %v", err)
	}
	// The heartbeats stop going out: the server's writes wait for the
	// client.
	var last uint64
	testkit.Eventually(t, 30*time.Second, "the stream's sends to stall", func() bool {
		time.Sleep(200 * time.Millisecond)
		sent := svc.WatchStats().Sent
		stalled := sent > 0 && sent == last
		last = sent
		return stalled
	})
	if err := svc.StopWatches(testkit.Context(t, 500*time.Millisecond)); err == nil {
		t.Fatal("StopWatches returned nil with a stream whose client does not read, want the error that says it was cut")
	}
	testkit.Receive(t, closed, 10*time.Second, "the server to close the connection of the stream it cut")
	testkit.Eventually(t, 10*time.Second, "the watch to end", func() bool { return svc.WatchStats().Watches == 0 })
}
