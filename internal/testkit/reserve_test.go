//go:build unix

package testkit_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// TestReservedPortRefusesThenServes checks what the port helpers promise:
// a dial to a reserved port is refused, nobody else can listen on it, and
// Listen hands the very port over to a server.
func TestReservedPortRefusesThenServes(t *testing.T) {
	p := testkit.Reserve(t)
	ctx := testkit.Context(t, 10*time.Second)
	var d net.Dialer
	if c, err := d.DialContext(ctx, "tcp", p.Addr()); err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want it refused", p.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", p.Addr(), err)
	}
	if lis, err := net.Listen("tcp", p.Addr()); err == nil {
		lis.Close()
		t.Fatalf("another listener took the reserved port %s", p.Addr())
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	srv.Listener.Close()
	srv.Listener = p.Listen(t)
	srv.Start()
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET after Listen: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d, want %d from the server given the listener", resp.StatusCode, http.StatusTeapot)
	}
}

func TestClosedAddrRefuses(t *testing.T) {
	addr := testkit.ClosedAddr(t)
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.DialContext(ctx, "tcp", addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
}
