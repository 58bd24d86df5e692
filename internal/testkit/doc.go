// Package testkit holds the helpers that tests across the module share: a
// goroutine-safe log buffer, a settable clock, bounded waits, loopback
// listeners and an emulator served on loopback.
//
// It lives in the module's one private tree (internal/), which every
// package of the module may import, cmd/... and e2e included. Only tests
// import it. It must not
// import a package whose own in-package tests import it, or those tests
// would not compile: it depends on the standard library and server/emulator
// alone.
package testkit
