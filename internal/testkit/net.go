package testkit

import (
	"net"
	"testing"
)

// Listen returns a TCP listener on 127.0.0.1 with a port the kernel chose,
// closed when tb ends. Hand the listener itself to the server under test:
// an address whose listener was closed can be taken by anyone.
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on 127.0.0.1: %v", err)
	}
	tb.Cleanup(func() { _ = lis.Close() })
	return lis
}

// ClosedAddr returns a loopback address ("127.0.0.1:port") where nothing
// listens, so that a dial to it is refused, for as long as tb runs: the
// port stays reserved until tb ends, so no parallel test can start
// listening on it.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	return Reserve(tb).Addr()
}
