//go:build !unix

package testkit

// Pause would stop the redis-server with SIGSTOP; off unix there is no
// such signal, so the test is skipped (a platform skip: the fault it
// injects does not exist here).
func (r *Redis) Pause() {
	r.tb.Helper()
	r.tb.Skip("pausing a process needs SIGSTOP (unix only)")
}

// Resume would continue a redis-server stopped by Pause.
func (r *Redis) Resume() { r.Pause() }
