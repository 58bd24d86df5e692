package idempotency

// Waiters returns how many callers wait for key's call in flight, so that
// tests can order events by counting instead of sleeping.
func Waiters(s *Store, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && !e.finished {
		return e.waiters
	}
	return 0
}
