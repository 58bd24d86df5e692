package testkit

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in CI: the CI environment variable
// (which .ci/run exports, as most CI services do) is set to a true value
// ("true", "1", ...). An unparsable non-empty value counts as true.
func InCI() bool {
	v := os.Getenv("CI")
	if v == "" {
		return false
	}
	on, err := strconv.ParseBool(v)
	return err != nil || on
}

// Skip skips tb, saying why, or fails it when InCI: in CI a test that
// cannot run (a missing tool, -short) is a failure, never a silent skip.
// Only a platform skip, where the test means nothing on this operating
// system, may call tb.Skip directly, with a comment saying so.
func Skip(tb testing.TB, why string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s; CI is set, so this is a failure, not a skip", why)
	}
	tb.Skip(why + " (skipped; with CI=true this fails instead)")
}
