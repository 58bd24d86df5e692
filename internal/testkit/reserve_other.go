//go:build !unix

package testkit

import (
	"net"
	"testing"
)

// Port is a loopback TCP port for a server that starts later. Off unix it
// is only a port that was free when reserved (see the unix version).
type Port struct{ addr string }

// Reserve returns a port on 127.0.0.1 that was free a moment ago.
func Reserve(tb testing.TB) *Port {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("reserve a loopback port: %v", err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return &Port{addr: addr}
}

// Addr returns the reserved address, "127.0.0.1:port".
func (p *Port) Addr() string { return p.addr }

// Listen starts listening on the port and returns the listener, closed
// when tb ends.
func (p *Port) Listen(tb testing.TB) net.Listener {
	tb.Helper()
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		tb.Fatalf("listen on %s: %v", p.addr, err)
	}
	tb.Cleanup(func() { _ = lis.Close() })
	return lis
}
