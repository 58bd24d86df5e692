package testkit

import "sync"

// Loop starts n goroutines, each calling f with its index over and over,
// until f returns false or the returned stop is called: load that a test
// keeps up while it injects a fault. stop waits for every goroutine to
// return; call it once.
func Loop(n int, f func(worker int) bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if !f(i) {
					return
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
