//go:build unix

package testkit

import "syscall"

// Pause stops the redis-server with SIGSTOP: it keeps its connections and
// its data but answers nothing, as a Redis stalled by a fork, a swap storm
// or a paused VM does, until Resume (or the test's end). Redis expires keys
// by the wall clock, so once resumed, keys whose time passed during the
// pause are gone.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a redis-server stopped by Pause (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.tb.Fatalf("redis-server: %v while it is stopped", sig)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.tb.Fatalf("redis-server: %v: %v", sig, err)
	}
}
