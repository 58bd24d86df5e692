//go:build unix

package testkit

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
)

// Port is a loopback TCP port held by a bound socket that does not listen:
// until Listen is called, a dial to it is refused, and no other socket can
// bind it (the socket is bound without SO_REUSEADDR). It replaces "listen
// on port 0, close, use the address later", in which a parallel test can
// take the port in between.
type Port struct {
	addr string

	mu sync.Mutex
	fd int // -1 once handed over or closed
}

// Reserve binds a socket to a free port on 127.0.0.1 and returns it. The
// port is released when tb ends, unless Listen has handed it over.
func Reserve(tb testing.TB) *Port {
	tb.Helper()
	p, err := reserve()
	if err != nil {
		tb.Fatalf("reserve a loopback port: %v", err)
	}
	tb.Cleanup(p.close)
	return p
}

func reserve() (*Port, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: unexpected address %T", sa)
	}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(in4.Port))
	return &Port{addr: addr, fd: fd}, nil
}

// Addr returns the reserved address, "127.0.0.1:port".
func (p *Port) Addr() string { return p.addr }

// Listen starts listening on the reserved port and returns the listener,
// closed when tb ends. The port is never free in between. It may be called
// once.
func (p *Port) Listen(tb testing.TB) net.Listener {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		tb.Fatalf("listen on %s: the port was already handed over or released", p.addr)
	}
	if err := syscall.Listen(p.fd, syscall.SOMAXCONN); err != nil {
		tb.Fatalf("listen on %s: %v", p.addr, err)
	}
	f := os.NewFile(uintptr(p.fd), p.addr)
	p.fd = -1
	lis, err := net.FileListener(f) // a duplicate of f's descriptor
	_ = f.Close()
	if err != nil {
		tb.Fatalf("listener for %s: %v", p.addr, err)
	}
	tb.Cleanup(func() { _ = lis.Close() })
	return lis
}

// close releases the port unless Listen has handed it over.
func (p *Port) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		_ = syscall.Close(p.fd)
		p.fd = -1
	}
}
