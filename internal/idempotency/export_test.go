package idempotency

// Waiters returns how many callers wait for the call in flight for owner's
// key with fingerprint, so that tests can order events by counting instead
// of sleeping.
func Waiters(s *Store, owner, key string, fingerprint Digest) int {
	return s.calls.Waiters(callKey{Fingerprint(owner, key), fingerprint})
}

// Sweeping reports whether the sweep goroutine runs.
func Sweeping(s *Store) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweeping
}
