package main

import "testing"

// TestAPIDocsFlag checks that the reference page is on unless turned off,
// by the flag or the environment, and that a typo is refused rather than
// read as either.
func TestAPIDocsFlag(t *testing.T) {
	runFlagCases(t, []flagCase[bool]{
		{"default", []string{"--emulator"}, nil, true, ""},
		{"flag off", []string{"--emulator", "--api-docs=false"}, nil, false, ""},
		{"environment off", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_API_DOCS": "false"}, false, ""},
		{"flag wins over the environment", []string{"--emulator", "--api-docs"}, map[string]string{"RADKIT_FACADE_API_DOCS": "false"}, true, ""},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_API_DOCS": "off please"}, false, "RADKIT_FACADE_API_DOCS"},
	}, func(c config) bool { return c.facade.APIDocs })
}
