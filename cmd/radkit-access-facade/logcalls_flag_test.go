package main

import "testing"

func TestLogCallsFlag(t *testing.T) {
	runFlagCases(t, []flagCase[string]{
		{"default", []string{"--emulator"}, nil, "all", ""},
		{"errors", []string{"--emulator", "--log-calls", "errors"}, nil, "errors", ""},
		{"sample", []string{"--emulator", "--log-calls", "sample:100"}, nil, "sample:100", ""},
		{"sample of one is all", []string{"--emulator", "--log-calls", "sample:1"}, nil, "all", ""},
		{"environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "errors"}, "errors", ""},
		{"flag wins over the environment", []string{"--emulator", "--log-calls", "all"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "errors"}, "all", ""},
		{"sample of zero", []string{"--emulator", "--log-calls", "sample:0"}, nil, "", "log-calls"},
		{"sample of nothing", []string{"--emulator", "--log-calls", "sample:"}, nil, "", "log-calls"},
		{"unknown", []string{"--emulator", "--log-calls", "some"}, nil, "", "log-calls"},
		{"malformed environment", []string{"--emulator"}, map[string]string{"RADKIT_FACADE_LOG_CALLS": "sample:x"}, "", "RADKIT_FACADE_LOG_CALLS"},
	}, func(c config) string { return c.facade.CallLog.String() })
}
