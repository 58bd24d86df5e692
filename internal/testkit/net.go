package testkit

import (
	"net"
	"testing"
	"time"
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

// NonReaderBuffer is the socket buffer of a client that never reads
// (DialNonReader): the kernel then holds little of what a server writes
// to it, so that the server's writes soon wait for it.
const NonReaderBuffer = 4 << 10

// DialNonReader opens a TCP connection to addr for a client that will
// never read, with a receive buffer of NonReaderBuffer; it is closed when
// tb ends.
func DialNonReader(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(NonReaderBuffer); err != nil {
		tb.Fatalf("receive buffer of the connection to %s: %v", addr, err)
	}
	return conn
}
